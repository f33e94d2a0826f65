// Confirming a file's deletion (`/files/{id}/confirm-delete`): DELETE /api/entry/{id}.

import * as api from "../api.js";
import { showError } from "../dom.js";

export function init(section) {
  const id = section.dataset.entryId;
  const error = section.querySelector("#delete-error");
  section.querySelector("[data-action=delete-entry]").addEventListener("click", async () => {
    showError(error, "");
    if (await api.request(error, "DELETE", `/api/entry/${encodeURIComponent(id)}`)) {
      window.location.assign("/files");
    }
  });
}
