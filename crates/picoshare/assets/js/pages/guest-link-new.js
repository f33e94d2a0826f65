// A new guest link (`/guest-links/new`): POST /api/guest-links, then the list,
// which shows the new link's QR code open.

import * as api from "../api.js";
import { showError } from "../dom.js";

export function init(section) {
  const form = section.querySelector("#guest-link-form");
  const error = section.querySelector("#guest-link-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    const number = (sel) => {
      const v = section.querySelector(sel).value.trim();
      return v === "" ? null : Number(v);
    };
    const mb = number("#gl-max-size");
    const body = {
      label: section.querySelector("#gl-label").value,
      urlExpirationTime: section.querySelector("#gl-expires").value,
      fileLifetime: section.querySelector("#gl-file-lifetime").value,
      maxFileBytes: mb === null ? null : Math.round(mb * 1024 * 1024),
      maxFileUploads: number("#gl-max-uploads"),
    };
    try {
      const resp = await api.send("POST", "/api/guest-links", body);
      if (!resp.ok) {
        showError(error, await api.errorText(resp));
        return;
      }
      const { id } = await resp.json();
      // The list shows the new link's QR code open.
      sessionStorage.setItem("picoshare-new-guest-link", id);
      window.location.assign("/guest-links");
    } catch (e) {
      showError(error, `Could not reach the server: ${e.message}`);
    }
  });
}
