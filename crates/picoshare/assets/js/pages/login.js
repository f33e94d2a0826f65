// The login page: sends the passphrase to POST /api/auth, then goes to `next`
// (a path on this server only).

import { readableReply } from "../dom.js";

export function init() {
  const form = document.getElementById("login-form");
  const input = document.getElementById("passphrase");
  const error = document.getElementById("login-error");
  const button = form.querySelector("button[type=submit]");
  const next = form.dataset.next || "/";
  const target = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const resp = await fetch("/api/auth", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sharedSecretKey: input.value }),
      });
      if (resp.ok) {
        window.location.assign(target);
        return;
      }
      error.textContent = readableReply(resp.status, resp.headers.get("Content-Type"), await resp.text());
      input.select();
    } catch (err) {
      error.textContent = `Could not reach the server: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
}
