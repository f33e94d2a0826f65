// A file's page (`/files/{id}/info`): its copy buttons, and the "Replace file"
// form, which sends a new version with PUT /api/entry/{id}/content (multipart,
// with upload progress) and shows the page again with the new name and size.

import { copyLinkButtons } from "../clipboard.js";
import { readableReply, showError } from "../dom.js";

export function init(section) {
  copyLinkButtons(section);
  const form = section.querySelector("#replace-form");
  if (!form) return;
  const input = form.querySelector("#replace-file");
  const keepName = form.querySelector("#replace-keep-name");
  const bar = form.querySelector("#replace-progress");
  const error = form.querySelector("#replace-error");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    showError(error, "");
    const file = input.files[0];
    if (!file) {
      showError(error, "Choose the new file first.");
      return;
    }
    if (file.size === 0) {
      showError(error, "The new file is empty: choose a file with content.");
      return;
    }
    const id = encodeURIComponent(form.dataset.entryId);
    const query = keepName.checked ? "?keepName=true" : "";
    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/entry/${id}/content${query}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / (e.total || 1)) * 100);
    });
    const done = () => {
      button.disabled = false;
      bar.hidden = true;
    };
    xhr.addEventListener("load", () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) {
        window.location.reload();
      } else {
        showError(error, readableReply(xhr.status, xhr.getResponseHeader("Content-Type"), xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => {
      done();
      showError(error, "The connection to the server was lost; the file was not replaced.");
    });
    button.disabled = true;
    bar.value = 0;
    bar.hidden = false;
    xhr.send(body);
  });
}
