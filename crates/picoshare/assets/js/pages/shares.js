// The owner's shares (`/shares`): copy, delete (DELETE /api/shares/{id}, with
// `?files=true` to delete the files too).

import * as api from "../api.js";
import { copyLinkButtons } from "../clipboard.js";
import { confirmAction, showError, statusLine } from "../dom.js";

export function init(section) {
  copyLinkButtons(section);
  const error = section.querySelector("#shares-error");
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=delete-share], [data-action=delete-share-files]");
    if (!button) return;
    const row = button.closest("tr");
    const withFiles = button.dataset.action === "delete-share-files";
    const question = withFiles ? "Delete this share and all of its files?" : "Delete this share? Its files stay.";
    if (!(await confirmAction(question))) return;
    showError(error, "");
    const url = `/api/shares/${encodeURIComponent(row.dataset.shareId)}${withFiles ? "?files=true" : ""}`;
    if (await api.request(error, "DELETE", url)) {
      row.remove();
      statusLine(section).textContent = withFiles ? "Deleted the share and its files" : "Deleted the share";
    }
  });
}
