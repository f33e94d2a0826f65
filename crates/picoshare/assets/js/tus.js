// Resumable uploads (tus 1.0.0), the upload queue's way to send large files.
// A file is created on the server first, then sent from the server's offset.
// When the connection drops or the server restarts, the client asks for the
// offset again and continues from there, waiting longer between attempts (up
// to 30 s) for as long as the upload exists. The upload's URL is kept in
// localStorage, so choosing the same file again after the page was closed
// continues it too.
//
// Each PATCH carries at most the page's `tusRequestBytes` (PS_TUS_REQUEST_MIB,
// 32 MiB by default): behind an HTTP/1.1 reverse proxy a request over its
// body limit is refused only after it was sent (and browsers may silently
// send it again), so large requests waste much more than they save. A 413
// that is not the server's own halves the size (down to 1 MiB) and the size
// that worked is kept in localStorage for the next uploads to this endpoint.

import { readableReply } from "./dom.js";

const TUS = "1.0.0";

/** A failure that retrying cannot fix (the queue shows it with a Retry button that starts over). */
export class Refused extends Error {}

/** The person cancelled the upload (`session.abort()`). */
export class Cancelled extends Error {}

/** The smallest request the 413 fallback goes down to. */
const SMALLEST_REQUEST = 1 << 20;

/** The request size learned behind a proxy, by endpoint (0: none learned). */
const learned = {
  key: (endpoint) => `picoshare-tus-request-bytes:${endpoint}`,
  get(endpoint) {
    try {
      return Number(window.localStorage.getItem(learned.key(endpoint))) || 0;
    } catch {
      return 0;
    }
  },
  set(endpoint, bytes) {
    try {
      window.localStorage.setItem(learned.key(endpoint), String(bytes));
    } catch {
      // Private mode: the page still uses it while it stays open.
    }
  },
};

const b64 = (text) => {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The upload URLs kept in localStorage, by endpoint and file. */
const saved = {
  key: (endpoint, file) => `picoshare-tus:${endpoint}:${file.name}:${file.size}:${file.lastModified}`,
  get(endpoint, file) {
    try {
      return window.localStorage.getItem(saved.key(endpoint, file));
    } catch {
      return null;
    }
  },
  set(endpoint, file, url) {
    try {
      window.localStorage.setItem(saved.key(endpoint, file), url);
    } catch {
      // Private mode: resuming still works while the page stays open.
    }
  },
  forget(endpoint, file) {
    try {
      window.localStorage.removeItem(saved.key(endpoint, file));
    } catch {
      // Nothing stored.
    }
  },
};

/** Creates the upload; resolves to its URL. `metadata` is a list of [key, value] pairs. */
async function create(endpoint, file, metadata) {
  const meta = metadata.map(([k, v]) => `${k} ${b64(v)}`);
  const resp = await fetch(endpoint, {
    method: "POST",
    headers: { "Tus-Resumable": TUS, "Upload-Length": String(file.size), "Upload-Metadata": meta.join(",") },
  });
  if (resp.status !== 201) {
    const text = readableReply(resp.status, resp.headers.get("Content-Type"), await resp.text());
    if (resp.status >= 500 || resp.status === 423) throw new Error(text);
    throw new Refused(text);
  }
  return resp.headers.get("Location");
}

/** The server's offset (and entry, once complete), or null if the upload is gone (expired or cancelled). */
async function serverOffset(url) {
  const resp = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": TUS }, cache: "no-store" });
  if (resp.status === 404 || resp.status === 410) return null;
  if (resp.status === 401) throw new Refused("Your session has ended: log in again in another tab, then press Retry.");
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return { offset: Number(resp.headers.get("Upload-Offset")), entry: resp.headers.get("PicoShare-Entry-ID") };
}

/** Sends `file` from `offset` in one request (of at most `limit` bytes, if set); resolves to the XHR. */
function patch(session, url, file, offset, limit, onProgress) {
  return new Promise((resolve, reject) => {
    if (session.cancelled) {
      reject(new Cancelled("cancelled"));
      return;
    }
    const end = Math.min(file.size, offset + (limit || file.size));
    const xhr = new XMLHttpRequest();
    session.xhr = xhr;
    xhr.open("PATCH", url);
    xhr.setRequestHeader("Tus-Resumable", TUS);
    xhr.setRequestHeader("Upload-Offset", String(offset));
    xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
    xhr.upload.addEventListener("progress", (event) => onProgress(offset + event.loaded));
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => reject(new Error("connection lost")));
    xhr.addEventListener("abort", () => reject(new Cancelled("cancelled")));
    xhr.send(file.slice(offset, end));
  });
}

/**
 * Sends `file` to the tus `endpoint` until it is complete; resolves to the new
 * entry's ID, rejects with `Refused` when retrying cannot help.
 *
 * - `session`: an object kept by the caller for this file; its `url` (the
 *   upload's) survives a Refused, so that Retry continues the same upload.
 * - `metadata`: [key, value] pairs for `Upload-Metadata`.
 * - `requestBytes`: the most bytes per PATCH (0: the whole rest).
 * - `onProgress(bytes)`: bytes the server has (or that are on their way).
 * - `onRetry(message)`: the connection failed; a new attempt follows.
 */
export async function sendResumable(session, { file, endpoint, metadata, requestBytes, onProgress, onRetry }) {
  let delay = 1000;
  session.cancelled = false;
  // Cancel: stop sending, and remove the upload from the server.
  const discard = () => {
    if (!session.url) return;
    fetch(session.url, { method: "DELETE", headers: { "Tus-Resumable": TUS } }).catch(() => {});
    saved.forget(endpoint, file);
    session.url = null;
  };
  session.abort = () => {
    session.cancelled = true;
    if (session.xhr) session.xhr.abort();
    discard();
  };
  const waitAndRetry = async (why) => {
    const seconds = Math.round(delay / 1000);
    onRetry(`${why} Resuming in ${seconds} s…`);
    await sleep(delay);
    delay = Math.min(delay * 2, 30000);
  };
  const known = learned.get(endpoint);
  let limit = known && (!requestBytes || known < requestBytes) ? known : requestBytes || 0;
  session.url = session.url || saved.get(endpoint, file);
  let offset = null;
  for (;;) {
    if (session.cancelled) {
      // Cancelled while the upload was being created: remove it too.
      discard();
      throw new Cancelled("cancelled");
    }
    try {
      if (session.url && offset === null) {
        const state = await serverOffset(session.url);
        if (state === null) {
          // Gone: start a new one.
          saved.forget(endpoint, file);
          session.url = null;
        } else if (state.entry) {
          saved.forget(endpoint, file);
          return state.entry;
        } else {
          offset = state.offset;
          onProgress(offset);
        }
      }
      if (!session.url) {
        onProgress(0);
        session.url = await create(endpoint, file, metadata);
        saved.set(endpoint, file, session.url);
        offset = 0;
      }
      const xhr = await patch(session, session.url, file, offset, limit, onProgress);
      if (xhr.status === 204) {
        delay = 1000;
        const entry = xhr.getResponseHeader("PicoShare-Entry-ID");
        offset = Number(xhr.getResponseHeader("Upload-Offset"));
        onProgress(offset);
        if (entry) {
          saved.forget(endpoint, file);
          return entry;
        }
        continue;
      }
      const text = readableReply(xhr.status, xhr.getResponseHeader("Content-Type"), xhr.responseText);
      if (xhr.status === 413 && !text.startsWith("File is too large")) {
        // A proxy in front refused the request's size: send smaller ones.
        const sent = Math.min(file.size - offset, limit || file.size);
        if (sent <= SMALLEST_REQUEST) throw new Refused(text);
        limit = Math.max(SMALLEST_REQUEST, Math.floor(sent / 2 / SMALLEST_REQUEST) * SMALLEST_REQUEST);
        learned.set(endpoint, limit);
        offset = null;
        continue;
      }
      if (xhr.status === 404 || xhr.status === 410 || xhr.status === 409) {
        // Gone, or the offset moved on: ask again (a gone upload starts over).
        offset = null;
        continue;
      }
      if (xhr.status === 401 || (xhr.status >= 400 && xhr.status < 500 && xhr.status !== 423 && xhr.status !== 408 && xhr.status !== 429)) {
        throw new Refused(text || `Upload failed (HTTP ${xhr.status}).`);
      }
      offset = null;
      await waitAndRetry(`The server answered ${xhr.status}.`);
    } catch (err) {
      if (err instanceof Cancelled || session.cancelled) {
        discard();
        throw new Cancelled("cancelled");
      }
      if (err instanceof Refused) throw err;
      offset = null;
      await waitAndRetry("The connection to the server was lost.");
    }
  }
}
