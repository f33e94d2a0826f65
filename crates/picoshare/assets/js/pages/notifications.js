// Notifications (`/settings/notifications`): add a destination
// (POST /api/notifications; the reply holds its secret, shown once; an
// e-mail destination takes addresses instead of a URL and a secret), send it
// a test event (POST /api/notifications/{id}/test, then the delivery state
// is read back until it changes), delete it (DELETE /api/notifications/{id}).

import * as api from "../api.js";
import { confirmAction, h, showError } from "../dom.js";

/** A date as the server renders it: `YYYY-MM-DD HH:MM:SS UTC`. */
function serverDate(iso) {
  return `${iso.replace("T", " ").replace("Z", "")} UTC`;
}

/** The delivery state of destination `d` (as the API gives it). */
function stateList(d) {
  const s = d.state;
  const items = [h("li", { text: `Last delivered: ${s.lastSuccess ? serverDate(s.lastSuccess) : "never"}` })];
  if (s.lastError) {
    items.push(h("li", { text: `Last error: ${s.lastError} (${serverDate(s.lastErrorTime)})` }));
  }
  items.push(h("li", { text: `Waiting: ${s.queued}` }));
  return h("ul", { class: "plain" }, ...items);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Where destination `d` sends its events: its URL, or its addresses. */
const sendsTo = (d) => (d.kind === "email" ? (d.to || []).join(", ") : d.url);

export function init(section) {
  const form = section.querySelector("#hook-form");
  const error = section.querySelector("#hook-error");
  const status = section.querySelector("#hooks-status");
  const created = section.querySelector("#hook-created");
  const secretOut = section.querySelector("#hook-created-secret");
  const empty = section.querySelector("#hooks-empty");
  const tableBox = section.querySelector(".table-scroll");
  const tbody = section.querySelector("tbody");
  const kind = section.querySelector("#hook-kind");
  const urlRow = section.querySelector("#hook-url-row");
  const secretRow = section.querySelector("#hook-secret-row");
  const toRow = section.querySelector("#hook-to-row");

  // E-mail takes addresses; the other formats a URL and maybe a secret.
  const showKind = () => {
    const email = kind.value === "email";
    urlRow.hidden = email;
    urlRow.querySelector("input").required = !email;
    secretRow.hidden = email;
    if (toRow) {
      toRow.hidden = !email;
      toRow.querySelector("input").required = email;
    }
  };
  kind.addEventListener("change", showKind);
  showKind();

  const row = (d) =>
    h(
      "tr",
      { "data-hook-id": d.id },
      h("td", { class: "name", text: d.name }),
      h("td", { text: d.kind }),
      h("td", { class: "url" }, h("code", { text: sendsTo(d) })),
      h("td", { class: "hook-state" }, stateList(d)),
      h(
        "td",
        { class: "actions" },
        h("button", { class: "button secondary", type: "button", "data-action": "hook-test", text: "Send test event" }),
        " ",
        h("button", { class: "button danger", type: "button", "data-action": "hook-delete", text: "Delete" }),
      ),
    );

  /** The destinations as the server has them now. */
  const list = async () => {
    const resp = await api.send("GET", "/api/notifications");
    if (!resp.ok) throw new Error(await api.errorText(resp));
    return (await resp.json()).destinations;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    status.textContent = "";
    const data = new FormData(form);
    const body = {
      name: data.get("name"),
      kind: data.get("kind"),
      events: data.getAll("events"),
      firstDownloadOnly: data.get("firstDownloadOnly") !== null,
      entryIds: String(data.get("entryIds") || "")
        .split(/[\s,]+/)
        .filter((s) => s),
    };
    if (body.kind === "email") {
      body.to = String(data.get("to") || "")
        .split(/[\s,;]+/)
        .filter((s) => s);
    } else {
      body.url = data.get("url");
      if (data.get("secret")) body.secret = data.get("secret");
    }
    let resp;
    try {
      resp = await api.send("POST", "/api/notifications", body);
    } catch (e) {
      showError(error, `Could not reach the server: ${e.message}`);
      return;
    }
    if (!resp.ok) {
      showError(error, await api.errorText(resp));
      return;
    }
    const d = await resp.json();
    tbody.append(row(d));
    empty.hidden = true;
    tableBox.hidden = false;
    form.reset();
    showKind();
    status.textContent = `Destination “${d.name}” added`;
    if (d.secret) {
      secretOut.value = d.secret;
      created.hidden = false;
      secretOut.focus();
      secretOut.select();
    }
  });

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const tr = button.closest("tr");
    const id = tr?.dataset.hookId;
    switch (button.dataset.action) {
      case "hook-done":
        secretOut.value = "";
        created.hidden = true;
        break;
      case "hook-test": {
        button.disabled = true;
        status.textContent = "Sending a test event…";
        try {
          const before = (await list()).find((d) => d.id === id);
          const resp = await api.send("POST", `/api/notifications/${encodeURIComponent(id)}/test`);
          if (!resp.ok) throw new Error(await api.errorText(resp));
          // Read the state back until this attempt shows in it.
          let now = before;
          for (let i = 0; i < 40; i += 1) {
            await sleep(250);
            now = (await list()).find((d) => d.id === id);
            if (!now) break;
            const s = now.state;
            const b = before.state;
            if (s.lastSuccess !== b.lastSuccess || s.lastErrorTime !== b.lastErrorTime) break;
          }
          if (now) {
            tr.querySelector(".hook-state").replaceChildren(stateList(now));
            const ok = now.state.lastSuccess !== before.state.lastSuccess;
            status.textContent = ok
              ? "Test event delivered"
              : now.state.lastError
                ? `Test event not delivered yet: ${now.state.lastError}`
                : "Test event queued";
          }
        } catch (e) {
          status.textContent = e.message;
        }
        button.disabled = false;
        break;
      }
      case "hook-delete": {
        const name = tr.querySelector("td")?.textContent.trim();
        if (!(await confirmAction(`Delete the destination “${name}” and the events waiting for it?`, "Delete"))) break;
        button.disabled = true;
        try {
          const resp = await api.send("DELETE", `/api/notifications/${encodeURIComponent(id)}`);
          if (!resp.ok) throw new Error(await api.errorText(resp));
          tr.remove();
          if (!tbody.rows.length) {
            empty.hidden = false;
            tableBox.hidden = true;
          }
          status.textContent = "Destination deleted";
        } catch (e) {
          status.textContent = e.message;
          button.disabled = false;
        }
        break;
      }
      default:
    }
  });
}
