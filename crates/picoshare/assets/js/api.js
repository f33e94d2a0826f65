// Calls of the JSON API from the pages (same origin, the session cookie goes
// along). Imported as a namespace: `api.send(…)`, `api.errorText(…)`,
// `api.request(…)`.

import { readableReply, showError } from "./dom.js";

/** Sends JSON with `method` to `url`; returns the response (throws on network errors). */
export function send(method, url, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(url, init);
}

/** The text of a failed response, without the trailing newline (never a proxy's HTML page). */
export async function errorText(resp) {
  return readableReply(resp.status, resp.headers.get("Content-Type"), await resp.text());
}

/**
 * Sends JSON and reports failure in `error` (the server's message, or that it
 * could not be reached). Returns whether the request succeeded.
 */
export async function request(error, method, url, body) {
  try {
    const resp = await send(method, url, body);
    if (resp.ok) return true;
    showError(error, await errorText(resp));
  } catch (e) {
    showError(error, `Could not reach the server: ${e.message}`);
  }
  return false;
}
