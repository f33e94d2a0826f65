// Editing a file (`/files/{id}/edit`): name, note, expiration, download limit
// and password, saved through PUT /api/entry/{id}.

import * as api from "../api.js";
import { showError } from "../dom.js";
import { editLimits } from "../limits.js";

export function init(section) {
  const id = section.dataset.entryId;
  const form = section.querySelector("#edit-form");
  const never = section.querySelector("#edit-never");
  const date = section.querySelector("#edit-expiration");
  const error = section.querySelector("#edit-error");
  const initialDate = date.value;
  never.addEventListener("change", () => {
    date.disabled = never.checked;
    if (!never.checked && !date.value) {
      const d = new Date(Date.now() + 30 * 86400000);
      date.value = d.toISOString().slice(0, 10);
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const body = {
      filename: section.querySelector("#edit-filename").value,
      note: section.querySelector("#edit-note").value,
    };
    if (!never.checked) {
      if (!date.value) {
        showError(error, "Choose an expiration date, or tick “Never expire”.");
        return;
      }
      // An unchanged date keeps the exact expiry; a new one means local midnight.
      body.expiration =
        date.value === initialDate && date.dataset.original
          ? date.dataset.original
          : new Date(`${date.value}T00:00:00`).toISOString();
    }
    if (!editLimits(section, body, error)) return;
    if (await api.request(error, "PUT", `/api/entry/${encodeURIComponent(id)}`, body)) {
      window.location.assign("/files");
    }
  });
}
