// The upload queue of the upload pages (the owner's and a guest link's): one
// row per file with its progress (percentage, bytes sent of the size, rate,
// time left; the tab's title shows the total) and a Cancel button, the links
// and a QR code on demand once done, and the reason with a Retry button when
// it failed. A new row, and then its result, is scrolled into view (phones
// included). Small files go as one multipart request (XHR,
// for upload progress), files from `resumableFrom` bytes on as resumable (tus)
// uploads. Files enqueued together may become one share (share-group.js).

import { copyButton } from "./clipboard.js";
import { h, readableReply } from "./dom.js";
import { limitFields } from "./limits.js";
import { qrDetails } from "./qr.js";
import * as shareGroup from "./share-group.js";
import { Cancelled, sendResumable } from "./tus.js";

/** "120.3 MB/s": 1024-based, one decimal. */
function humanRate(bytesPerSecond) {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** "1.50 MB": 1024-based, as the server's pages write sizes. */
export function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/** Brings `el` into view without jumping when it already is. */
function reveal(el) {
  const r = el.getBoundingClientRect();
  if (r.top >= 0 && r.bottom <= window.innerHeight) return;
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  el.scrollIntoView({ block: r.height > window.innerHeight ? "start" : "nearest", behavior: smooth ? "smooth" : "auto" });
}

/** "3 s", "2 min 5 s", "1 h 3 min". */
function humanDuration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * A queue that shows its uploads in the list element `list`.
 *
 * - `data`: the page's data (`endpoint`, `tusEndpoint`, `resumableFrom`,
 *   `tusRequestBytes`, `maxFileBytes`).
 * - `params()`: the options chosen on the page for a file about to be sent
 *   (`expiration`, `note`, and the limits of limits.js); it throws an Error
 *   whose message is shown when they are invalid.
 *
 * Returns `enqueue(file, group, path)` (one file, as part of `group`, a share,
 * if given) and `enqueueAll(files, paths)` (files with their relative paths
 * from a folder, if any, as one share when asked).
 */
export function uploadQueue({ data, list, params }) {
  const baseTitle = document.title;
  const running = new Set();

  function updateTitle() {
    let loaded = 0;
    let total = 0;
    for (const u of running) {
      loaded += u.loaded;
      total += u.file.size || 1;
    }
    document.title = running.size ? `PicoShare ↑ ${total ? Math.floor((loaded / total) * 100) : 0}%` : baseTitle;
  }

  window.addEventListener("beforeunload", (event) => {
    if (running.size === 0) return;
    event.preventDefault();
    event.returnValue = "";
  });

  function enqueue(file, group, path) {
    const status = h("span", { class: "upload-status" }, "Waiting…");
    const bar = h("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
    const detail = h("div", { class: "upload-detail" });
    const cancel = h("button", { type: "button", class: "button secondary cancel", text: "Cancel", "aria-label": `Cancel the upload of ${file.name}` });
    const li = h(
      "li",
      { class: "upload-item" },
      h("div", { class: "upload-head" }, h("span", { class: "upload-name", text: file.name }), status),
      bar,
      h("div", { class: "upload-controls" }, cancel),
      detail,
    );
    list.append(li);
    const u = { file, li, status, bar, detail, cancel, loaded: 0, params: null, path: path || null, tus: {} };
    cancel.addEventListener("click", () => abort(u));
    if (group) shareGroup.add(group, u);
    reveal(li);
    if (data.maxFileBytes !== null && data.maxFileBytes !== undefined && file.size > data.maxFileBytes) {
      fail(u, `${file.name} is too large (${humanSize(file.size)}): files sent through this link may be at most ${humanSize(data.maxFileBytes)}.`, false);
      shareGroup.skip(u);
      return;
    }
    if (file.size === 0) {
      fail(u, "The file is empty.", false);
      shareGroup.skip(u);
      return;
    }
    send(u);
  }

  function enqueueAll(files, paths) {
    const group = shareGroup.create(list, files.length);
    files.forEach((file, i) => enqueue(file, group, paths ? paths[i] : null));
  }

  function send(u) {
    if (!u.params) {
      try {
        u.params = params();
      } catch (err) {
        fail(u, err.message, true);
        return;
      }
    }
    u.li.classList.remove("failed", "done", "cancelled");
    u.detail.replaceChildren();
    u.samples = null;
    u.cancelled = false;
    u.cancel.hidden = false;
    running.add(u);
    if (data.tusEndpoint && u.file.size >= data.resumableFrom) {
      sendTus(u);
    } else {
      sendForm(u);
    }
  }

  /** Shows that `loaded` of the file's bytes have arrived, with rate and time left. */
  function progress(u, loaded) {
    const total = u.file.size || 1;
    u.loaded = Math.min(total, loaded);
    const now = performance.now();
    if (!u.samples) u.samples = [];
    u.samples.push({ t: now, loaded: u.loaded });
    while (u.samples.length > 2 && now - u.samples[0].t > 3000) u.samples.shift();
    const first = u.samples[0];
    const seconds = (now - first.t) / 1000;
    const rate = seconds > 0 ? (u.loaded - first.loaded) / seconds : 0;
    const pct = Math.floor((u.loaded / total) * 100);
    u.bar.value = pct;
    let text = `${pct} % · ${humanSize(u.loaded)} of ${humanSize(u.file.size)}`;
    if (rate > 0) text += ` · ${humanRate(rate)} · ${humanDuration((total - u.loaded) / rate)} left`;
    u.status.textContent = text;
    updateTitle();
  }

  function finished(u) {
    running.delete(u);
    u.cancel.hidden = true;
    updateTitle();
  }

  /** Cancel: stops sending; a resumable upload is removed from the server too. */
  function abort(u) {
    if (!running.has(u)) return;
    u.cancelled = true;
    if (u.xhr) u.xhr.abort();
    if (u.tus.abort) u.tus.abort();
    finished(u);
    shareGroup.skip(u);
    u.li.classList.add("cancelled");
    u.status.textContent = "Cancelled";
    const retry = h("button", { type: "button", class: "button secondary", text: "Upload again" });
    retry.addEventListener("click", () => send(u));
    u.detail.replaceChildren(h("p", { class: "hint", text: "The upload was cancelled." }), retry);
  }

  /** One multipart request (small files). */
  function sendForm(u) {
    u.bar.value = 0;
    progress(u, 0);
    const url = new URL(data.endpoint, window.location.origin);
    if (u.params.expiration) url.searchParams.set("expiration", u.params.expiration);
    const body = new FormData();
    if (u.params.note) body.append("note", u.params.note);
    limitFields(u.params, (k, v) => body.append(k, v));
    body.append("file", u.file, u.file.name);
    const xhr = new XMLHttpRequest();
    u.xhr = xhr;
    xhr.open("POST", url.pathname + url.search);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      // The request is a little larger than the file (multipart framing).
      progress(u, Math.round((event.loaded / (event.total || 1)) * u.file.size));
    });
    xhr.addEventListener("load", () => {
      u.xhr = null;
      finished(u);
      if (xhr.status >= 200 && xhr.status < 300) {
        let id = null;
        try {
          id = JSON.parse(xhr.responseText).id;
        } catch {
          // Handled below.
        }
        if (id) done(u, id);
        else fail(u, "The server's reply could not be read.", true);
      } else {
        fail(u, readableReply(xhr.status, xhr.getResponseHeader("Content-Type"), xhr.responseText), true);
      }
    });
    xhr.addEventListener("error", () => {
      u.xhr = null;
      if (u.cancelled) return;
      finished(u);
      fail(u, "The connection to the server was lost.", true);
    });
    updateTitle();
    xhr.send(body);
  }

  /** A resumable upload (large files), retried until it completes or is refused. */
  async function sendTus(u) {
    const metadata = [["filename", u.file.name]];
    if (u.file.type) metadata.push(["filetype", u.file.type]);
    if (u.params.note) metadata.push(["note", u.params.note]);
    if (u.params.expiration) metadata.push(["expiration", u.params.expiration]);
    limitFields(u.params, (k, v) => metadata.push([k, v]));
    let id;
    try {
      id = await sendResumable(u.tus, {
        file: u.file,
        endpoint: data.tusEndpoint,
        metadata,
        requestBytes: data.tusRequestBytes,
        onProgress: (loaded) => progress(u, loaded),
        onRetry: (message) => (u.status.textContent = message),
      });
    } catch (err) {
      if (err instanceof Cancelled || u.cancelled) return;
      finished(u);
      // Refused: retrying the same way cannot help (tus.js retries everything else).
      fail(u, err.message, true);
      return;
    }
    finished(u);
    done(u, id);
  }

  function done(u, id) {
    const origin = window.location.origin;
    const full = `${origin}/-${id}/${encodeURIComponent(u.file.name)}`;
    const short = `${origin}/-${id}`;
    u.li.classList.add("done");
    u.bar.value = 100;
    u.status.textContent = "100 %";
    const row = (label, href, copyName) =>
      h(
        "div",
        { class: "link-row" },
        h("span", { class: "link-label", text: label }),
        h("a", { href, text: href }),
        copyButton(href, copyName),
      );
    const links = h(
      "div",
      { class: "links" },
      row("Full link", full, "Copy full link"),
      row("Short link", short, "Copy short link"),
    );
    u.detail.replaceChildren(
      h("p", { class: "success", text: "Upload complete!" }),
      h("div", { class: "result" }, links),
    );
    if (data.endpoint === "/api/entry") {
      links.append(h("a", { class: "button secondary", href: `/files/${id}/edit`, text: "Edit" }));
    }
    // One QR code on demand: of the share when the file is part of one (the
    // share group adds it), else of this file's short link.
    if (!shareGroup.inGroup(u)) links.append(qrDetails(short, "QR code of the short link"));
    shareGroup.done(u, id);
    if (typeof data.uploadsLeft === "number") {
      data.uploadsLeft = Math.max(0, data.uploadsLeft - 1);
      const line = document.getElementById("guest-limits");
      if (line) {
        const left = data.uploadsLeft === 1 ? "You can upload 1 more file." : `You can upload ${data.uploadsLeft} more files.`;
        line.textContent = data.maxFileSize ? `Maximum file size: ${data.maxFileSize}. ${left}` : left;
      }
    }
    reveal(u.li);
  }

  function fail(u, message, retry) {
    u.li.classList.add("failed");
    u.status.textContent = "Failed";
    const parts = [h("p", { class: "alert error", role: "alert", text: message })];
    if (retry) {
      const button = h("button", { type: "button", text: "Retry" });
      button.addEventListener("click", () => send(u));
      parts.push(button);
    }
    u.detail.replaceChildren(...parts);
  }

  return { enqueue, enqueueAll };
}
