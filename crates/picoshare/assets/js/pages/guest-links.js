// The guest links (`/guest-links`): copy, enable/disable, delete; a link just
// created (by guest-link-new.js) is shown with its QR code open.

import * as api from "../api.js";
import { copyLinkButtons } from "../clipboard.js";
import { confirmAction, statusLine } from "../dom.js";

export function init(section) {
  copyLinkButtons(section);
  const status = statusLine(section);
  const created = sessionStorage.getItem("picoshare-new-guest-link");
  if (created) {
    sessionStorage.removeItem("picoshare-new-guest-link");
    const row = Array.from(section.querySelectorAll("tr[data-guest-link-id]")).find((r) => r.dataset.guestLinkId === created);
    const details = row && row.querySelector("details.qr-details");
    if (details) {
      details.open = true;
      row.classList.add("just-created");
      status.textContent = "Guest link created";
      row.scrollIntoView({ block: "nearest" });
    }
  }
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=toggle-guest-link], [data-action=delete-guest-link]");
    if (!button) return;
    const row = button.closest("tr");
    const id = encodeURIComponent(row.dataset.guestLinkId);
    if (button.dataset.action === "delete-guest-link") {
      const label = row.querySelector("td")?.textContent.trim();
      const what = label ? `the guest link “${label}”` : "this guest link";
      if (!(await confirmAction(`Delete ${what}? People who have it can no longer upload with it. Files already uploaded stay.`))) return;
    }
    button.disabled = true;
    try {
      if (button.dataset.action === "delete-guest-link") {
        const resp = await api.send("DELETE", `/api/guest-links/${id}`);
        if (!resp.ok) throw new Error(await api.errorText(resp));
        row.remove();
        status.textContent = "Guest link deleted";
        return;
      }
      const enable = button.dataset.disabled === "true";
      const resp = await api.send("PUT", `/api/guest-links/${id}/${enable ? "enable" : "disable"}`);
      if (!resp.ok) throw new Error(await api.errorText(resp));
      button.dataset.disabled = enable ? "false" : "true";
      button.textContent = enable ? "Disable" : "Enable";
      row.classList.toggle("inactive", !enable);
      status.textContent = enable ? "Guest link reactivated" : "Guest link disabled";
    } catch (e) {
      status.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
}
