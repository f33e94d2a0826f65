// API tokens (`/tokens`): create (POST /api/tokens; the reply holds the token,
// shown once), revoke (DELETE /api/tokens/{id}). The curl commands and the
// ShareX configuration are built here from the token just received; the token
// is never sent anywhere else.

import * as api from "../api.js";
import { copyText } from "../clipboard.js";
import { confirmAction, h, showError } from "../dom.js";

/** A date as the server renders it: `YYYY-MM-DD HH:MM:SS UTC`. */
function serverDate(iso) {
  return `${iso.replace("T", " ").replace("Z", "")} UTC`;
}

/** A ShareX custom uploader (.sxcu) that uploads to this server with `token`. */
function sharexConfig(token, origin) {
  return {
    Version: "15.0.0",
    Name: `PicoShare (${new URL(origin).host})`,
    DestinationType: "ImageUploader, TextUploader, FileUploader",
    RequestMethod: "POST",
    RequestURL: `${origin}/api/entry`,
    Headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    Body: "MultipartFormData",
    FileFormName: "file",
    URL: "{json:url}",
    ErrorMessage: "{response}",
  };
}

/** A file name made of the safe characters of `name`. */
function sxcuFileName(name) {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return `picoshare-${safe || "token"}.sxcu`;
}

export function init(section) {
  const form = section.querySelector("#token-form");
  const nameInput = section.querySelector("#token-name");
  const error = section.querySelector("#token-error");
  const status = section.querySelector("#tokens-status");
  const created = section.querySelector("#token-created");
  const tokenValue = section.querySelector("#token-value");
  const curl = section.querySelector("#token-curl");
  const empty = section.querySelector("#tokens-empty");
  const tableBox = section.querySelector(".table-scroll");
  const tbody = section.querySelector("tbody");
  // The new token lives only in this closure (and the panel) until "Done".
  let fresh = null;

  const hideToken = () => {
    fresh = null;
    tokenValue.value = "";
    curl.value = "";
    created.hidden = true;
  };

  const addRow = (t) => {
    const row = h(
      "tr",
      { "data-token-id": t.id },
      h("td", { class: "name", text: t.name }),
      h("td", {}, h("code", { text: `${t.prefix}…` })),
      h("td", { text: serverDate(t.created) }),
      h("td", { text: t.lastUsed ? serverDate(t.lastUsed) : "Never" }),
      h(
        "td",
        { class: "actions" },
        h("button", { class: "button danger", type: "button", "data-action": "revoke-token", text: "Revoke" }),
      ),
    );
    tbody.prepend(row);
    empty.hidden = true;
    tableBox.hidden = false;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    status.textContent = "";
    let resp;
    try {
      resp = await api.send("POST", "/api/tokens", { name: nameInput.value });
    } catch (e) {
      showError(error, `Could not reach the server: ${e.message}`);
      return;
    }
    if (!resp.ok) {
      showError(error, await api.errorText(resp));
      return;
    }
    const t = await resp.json();
    fresh = t;
    const origin = window.location.origin;
    section.querySelector("#token-created-name").textContent = t.name;
    tokenValue.value = t.token;
    curl.value =
      `curl -H "Authorization: Bearer ${t.token}" -T FILE ${origin}/api/upload/\n` +
      `curl -H "Authorization: Bearer ${t.token}" -F file=@FILE ${origin}/api/entry`;
    created.hidden = false;
    addRow(t);
    form.reset();
    tokenValue.focus();
    tokenValue.select();
  });

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    switch (button.dataset.action) {
      case "copy-token": {
        if (!fresh) return;
        const ok = await copyText(fresh.token);
        status.textContent = ok ? "Token copied" : "Could not copy: select the token and copy it by hand";
        break;
      }
      case "download-sxcu": {
        if (!fresh) return;
        const config = sharexConfig(fresh.token, window.location.origin);
        const blob = new Blob([`${JSON.stringify(config, null, 2)}\n`], { type: "application/json" });
        const url = URL.createObjectURL(blob);
        const a = h("a", { href: url, download: sxcuFileName(fresh.name), hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        status.textContent = "ShareX configuration downloaded: open it to add PicoShare to ShareX";
        break;
      }
      case "token-done":
        hideToken();
        status.textContent = "";
        break;
      case "revoke-token": {
        const row = button.closest("tr");
        const id = row.dataset.tokenId;
        const name = row.querySelector("td")?.textContent.trim();
        if (!(await confirmAction(`Revoke the token “${name}”? Tools that use it can no longer upload.`, "Revoke"))) break;
        button.disabled = true;
        try {
          const resp = await api.send("DELETE", `/api/tokens/${encodeURIComponent(id)}`);
          if (!resp.ok) throw new Error(await api.errorText(resp));
          if (fresh && fresh.id === id) hideToken();
          row.remove();
          if (!tbody.rows.length) {
            empty.hidden = false;
            tableBox.hidden = true;
          }
          status.textContent = "Token revoked";
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
