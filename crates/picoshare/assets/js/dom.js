// DOM helpers shared by every page module: building elements, the JSON a page
// embeds for its script, and the three ways a page shows a message (a toast,
// the section's status line, an alert element).

/** Creates an element with attributes and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

/** The JSON a page embeds with `pages::json_data(id, …)`, or null. */
export function pageData(id = "page-data") {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

/**
 * A short-lived message at the bottom of the screen (role=status). A `quiet`
 * one is only announced (a copy button already says "Copied" where the
 * person looks, and a visible toast would cover the links).
 */
export function toast(message, { quiet = false } = {}) {
  let box = document.getElementById("toast");
  if (!box) {
    box = document.createElement("div");
    box.id = "toast";
    box.className = "toast";
    box.setAttribute("role", "status");
    document.body.append(box);
  }
  box.textContent = message;
  box.classList.toggle("quiet", quiet);
  box.classList.add("show");
  clearTimeout(box.hideTimer);
  box.hideTimer = setTimeout(() => box.classList.remove("show"), 3000);
}

/** The section's live status line (created if the page has none). */
export function statusLine(section) {
  let el = section.querySelector("[role=status]");
  if (!el) {
    el = document.createElement("p");
    el.className = "status";
    el.setAttribute("role", "status");
    section.append(el);
  }
  return el;
}

/** Shows `text` in a role=alert element, or hides it when `text` is empty. */
export function showError(el, text) {
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
}

/**
 * The words to show for a refused request: the server's own plain-text
 * message, or, when the reply is a page (HTML, from a reverse proxy in front
 * of the server, such as its "413 Request Entity Too Large"), a sentence about
 * its status: a proxy's page is never shown as it is.
 */
export function readableReply(status, contentType, text) {
  const body = (text || "").trim();
  const html = /html/i.test(contentType || "") || /^<(!doctype|html|head|body)/i.test(body);
  if (body && !html) return body;
  if (status === 413) return "The request was too large for a proxy in front of the server (HTTP 413).";
  if (status === 502 || status === 503 || status === 504) return `The server could not be reached through its proxy (HTTP ${status}). Try again in a moment.`;
  return `The request failed (HTTP ${status}).`;
}

/**
 * Asks before a destructive action, in a modal dialog: `message`, and the
 * buttons Cancel and `confirmLabel` (a danger button). Resolves to whether
 * the person confirmed; Escape cancels. Focus returns where it was.
 */
export function confirmAction(message, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const returnTo = document.activeElement;
    const text = h("p", { id: "confirm-text", text: message });
    const cancel = h("button", { type: "button", class: "button secondary", text: "Cancel" });
    const ok = h("button", { type: "button", class: "button danger", text: confirmLabel });
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-text" }, text, h("div", { class: "actions" }, cancel, ok));
    document.body.append(dialog);
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      if (returnTo && returnTo.focus && returnTo.isConnected) returnTo.focus();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    ok.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    dialog.showModal();
    cancel.focus();
  });
}
