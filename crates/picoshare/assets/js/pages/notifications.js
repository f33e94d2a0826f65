// Notifications (`/settings/notifications`): add a destination
// (POST /api/notifications; the reply holds its secret, shown once; an
// e-mail destination takes addresses instead of a URL and a secret), change
// one in the same form (Edit: PUT /api/notifications/{id} with the whole
// destination; its secret is kept unless a new one is typed, and never
// shown), pause and resume it (PUT with `enabled`), send it a test event
// (POST /api/notifications/{id}/test, then the delivery state is read back
// until it changes), delete it (DELETE /api/notifications/{id}). A row is
// written as the server writes it (pages/notifications.rs, `hook_row`), the
// events' titles taken from the form's labels.

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

/** Chosen files a row names at most (then "and N more"). */
const FILES_SHOWN = 5;

/**
 * The request that saves destination `d` (as the API lists it) as it is,
 * but for `changes`. No secret: a PUT without one keeps it.
 */
function requestOf(d, changes = {}) {
  const body = {
    name: d.name,
    kind: d.kind,
    events: d.events,
    firstDownloadOnly: d.firstDownloadOnly,
    entryIds: d.entryIds || [],
    enabled: d.enabled,
  };
  if (d.kind === "email") body.to = d.to || [];
  else body.url = d.url;
  return { ...body, ...changes };
}

export function init(section) {
  const form = section.querySelector("#hook-form");
  const formTitle = section.querySelector("#hook-form-title");
  const submit = form.querySelector("button[type=submit]");
  const cancel = form.querySelector("[data-action=hook-cancel]");
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
  const secretHint = section.querySelector("#hook-secret-hint");
  const toRow = section.querySelector("#hook-to-row");
  const eventBoxes = Array.from(form.querySelectorAll("input[name=events]"));
  // The events' titles, in the page's order, from the check boxes' labels.
  const titles = new Map(eventBoxes.map((box) => [box.value, section.querySelector(`label[for="${box.id}"]`).textContent.trim()]));
  const texts = {
    title: formTitle.textContent,
    submit: submit.textContent,
    secretHint: secretHint.textContent,
  };
  /** The destination being changed in the form: `{ id, enabled }`, or null. */
  let editing = null;

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

  /** What destination `d` receives: its event types, then its filters. */
  const eventsList = (d) => {
    const chosen = [...titles.keys()].filter((t) => d.events.includes(t));
    let types = chosen.map((t) => titles.get(t)).join(", ");
    if (chosen.length === 0) types = "No events (test events only)";
    else if (chosen.length === titles.size) types = "All events";
    const items = [h("li", { text: types })];
    if (d.firstDownloadOnly && chosen.includes("download")) {
      items.push(h("li", { text: "Only a file's first download" }));
    }
    const ids = d.entryIds || [];
    if (ids.length) {
      const li = h("li", {}, ids.length === 1 ? "Only file: " : `Only ${ids.length} files: `);
      ids.slice(0, FILES_SHOWN).forEach((id, i) => {
        if (i > 0) li.append(", ");
        li.append(h("code", { text: id }));
      });
      if (ids.length > FILES_SHOWN) li.append(` and ${ids.length - FILES_SHOWN} more`);
      items.push(li);
    }
    return h("ul", { class: "plain" }, ...items);
  };

  const actionButton = (action, text, kindClass = "secondary") =>
    h("button", { class: `button ${kindClass}`, type: "button", "data-action": action, text });

  const row = (d) =>
    h(
      "tr",
      { "data-hook-id": d.id, class: d.enabled ? null : "paused" },
      h(
        "td",
        { class: "name" },
        h("span", { class: "hook-name", text: d.name }),
        ...(d.enabled ? [] : [" ", h("span", { class: "badge paused", text: "paused" })]),
      ),
      h("td", { text: d.kind }),
      h("td", { class: "url" }, h("code", { text: sendsTo(d) })),
      h("td", { class: "hook-events" }, eventsList(d)),
      h("td", { class: "hook-state" }, stateList(d)),
      h(
        "td",
        { class: "actions" },
        actionButton("hook-edit", "Edit"),
        " ",
        actionButton("hook-toggle", d.enabled ? "Pause" : "Resume"),
        " ",
        actionButton("hook-test", "Send test event"),
        " ",
        actionButton("hook-delete", "Delete", "danger"),
      ),
    );

  /** The row of destination `id`, if it is on the page. */
  const rowOf = (id) => Array.from(tbody.rows).find((tr) => tr.dataset.hookId === id);

  /** The destinations as the server has them now. */
  const list = async () => {
    const resp = await api.send("GET", "/api/notifications");
    if (!resp.ok) throw new Error(await api.errorText(resp));
    return (await resp.json()).destinations;
  };

  /** Destination `id` as the server has it now (an error if it is gone). */
  const current = async (id) => {
    const d = (await list()).find((x) => x.id === id);
    if (!d) throw new Error("This destination no longer exists: reload the page.");
    return d;
  };

  /** Back to adding a destination: the form emptied, its title and button as at first. */
  const addMode = () => {
    editing = null;
    form.reset();
    showKind();
    formTitle.textContent = texts.title;
    submit.textContent = texts.submit;
    secretHint.textContent = texts.secretHint;
    cancel.hidden = true;
    showError(error, "");
  };

  /** The form filled with destination `d`, to change it. */
  const editMode = (d) => {
    form.reset();
    showError(error, "");
    editing = { id: d.id, enabled: d.enabled };
    section.querySelector("#hook-name").value = d.name;
    kind.value = d.kind;
    section.querySelector("#hook-url").value = d.kind === "email" ? "" : d.url;
    const to = section.querySelector("#hook-to");
    if (to) to.value = d.kind === "email" ? (d.to || []).join(", ") : "";
    section.querySelector("#hook-secret").value = "";
    for (const box of eventBoxes) box.checked = d.events.includes(box.value);
    section.querySelector("#hook-first").checked = d.firstDownloadOnly;
    section.querySelector("#hook-entries").value = (d.entryIds || []).join(" ");
    showKind();
    formTitle.textContent = `Edit “${d.name}”`;
    submit.textContent = "Save changes";
    secretHint.textContent = d.hasSecret
      ? "Leave it empty to keep the current secret (it is not shown again), or type a new one."
      : "It has none: leave it empty, or type a push service's access token (a webhook needs one to sign with).";
    cancel.hidden = false;
    formTitle.scrollIntoView({ block: "start" });
    section.querySelector("#hook-name").focus();
  };

  /** Ends the change of the form's destination, focus back on its Edit button. */
  const endEdit = () => {
    const id = editing?.id;
    addMode();
    rowOf(id)?.querySelector("[data-action=hook-edit]")?.focus();
  };

  /** Puts `d`'s new row in place of `tr`; returns it. */
  const replaceRow = (tr, d) => {
    const fresh = row(d);
    tr.replaceWith(fresh);
    return fresh;
  };

  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && editing) {
      event.preventDefault();
      endEdit();
    }
  });

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
    const change = editing;
    if (change) body.enabled = change.enabled;
    let resp;
    submit.disabled = true;
    try {
      resp = change
        ? await api.send("PUT", `/api/notifications/${encodeURIComponent(change.id)}`, body)
        : await api.send("POST", "/api/notifications", body);
    } catch (e) {
      showError(error, `Could not reach the server: ${e.message}`);
      return;
    } finally {
      submit.disabled = false;
    }
    if (!resp.ok) {
      showError(error, await api.errorText(resp));
      return;
    }
    const d = await resp.json();
    if (change) {
      const tr = rowOf(d.id);
      if (tr) replaceRow(tr, d);
      else tbody.append(row(d));
      endEdit();
      status.textContent = `Destination “${d.name}” saved`;
      return;
    }
    tbody.append(row(d));
    empty.hidden = true;
    tableBox.hidden = false;
    addMode();
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
      case "hook-cancel":
        endEdit();
        break;
      case "hook-edit": {
        button.disabled = true;
        try {
          editMode(await current(id));
          status.textContent = "";
        } catch (e) {
          status.textContent = e.message;
        }
        button.disabled = false;
        break;
      }
      case "hook-toggle": {
        button.disabled = true;
        try {
          const d = await current(id);
          const resp = await api.send("PUT", `/api/notifications/${encodeURIComponent(id)}`, requestOf(d, { enabled: !d.enabled }));
          if (!resp.ok) throw new Error(await api.errorText(resp));
          const now = await resp.json();
          if (editing?.id === id) editing.enabled = now.enabled;
          replaceRow(tr, now).querySelector("[data-action=hook-toggle]").focus();
          status.textContent = now.enabled
            ? `Destination “${now.name}” resumed`
            : `Destination “${now.name}” paused: it gets no events until it is resumed`;
        } catch (e) {
          status.textContent = e.message;
          button.disabled = false;
        }
        break;
      }
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
            (rowOf(id) || tr).querySelector(".hook-state").replaceChildren(stateList(now));
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
        const name = tr.querySelector(".hook-name")?.textContent.trim();
        if (!(await confirmAction(`Delete the destination “${name}” and the events waiting for it?`, "Delete"))) break;
        button.disabled = true;
        try {
          const resp = await api.send("DELETE", `/api/notifications/${encodeURIComponent(id)}`);
          if (!resp.ok) throw new Error(await api.errorText(resp));
          if (editing?.id === id) addMode();
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
