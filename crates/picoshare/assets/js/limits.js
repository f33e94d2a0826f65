// Download limits and passwords, as the owner sets them on the upload page and
// changes them on the edit page. The upload page's options travel with each
// upload both as multipart fields and as tus metadata (`maxDownloads`,
// `password`); the edit page sends them in the PUT body only when they change.

import { showError } from "./dom.js";

/** The upload page's options: max downloads (one-shot = 1) and password. Throws if invalid. */
export function uploadLimits() {
  const max = document.getElementById("max-downloads");
  const oneShot = document.getElementById("one-shot");
  const password = document.getElementById("file-password");
  const out = {};
  if (oneShot && oneShot.checked) out.maxDownloads = "1";
  else if (max && max.value.trim()) {
    const n = Number(max.value.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error("Max downloads must be a whole number of at least 1.");
    out.maxDownloads = String(n);
  }
  if (password && password.value) out.password = password.value;
  return out;
}

/** Passes each set option of `params` (from `uploadLimits`) to `add(name, value)`. */
export function limitFields(params, add) {
  if (params.maxDownloads) add("maxDownloads", params.maxDownloads);
  if (params.password) add("password", params.password);
}

/** Adds the edit page's limit changes to `body`; false (with a message in `error`) if invalid. */
export function editLimits(section, body, error) {
  const max = section.querySelector("#edit-max-downloads");
  const password = section.querySelector("#edit-password");
  const remove = section.querySelector("#edit-remove-password");
  const value = max.value.trim();
  if (value !== max.dataset.original) {
    if (value === "") body.maxDownloads = null;
    else {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) {
        showError(error, "Max downloads must be a whole number of at least 1, or empty for no limit.");
        return false;
      }
      body.maxDownloads = n;
    }
  }
  if (remove && remove.checked) body.password = null;
  else if (password.value) body.password = password.value;
  return true;
}
