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

/** A short-lived message at the bottom of the screen (role=status). */
export function toast(message) {
  let box = document.getElementById("toast");
  if (!box) {
    box = document.createElement("div");
    box.id = "toast";
    box.className = "toast";
    box.setAttribute("role", "status");
    document.body.append(box);
  }
  box.textContent = message;
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
