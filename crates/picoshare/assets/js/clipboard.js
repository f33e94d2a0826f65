// Copying to the clipboard: the one implementation every page uses, and the
// two kinds of copy button (a button made by a script, and the server-rendered
// `data-action=copy-link` buttons).

import { statusLine, toast } from "./dom.js";

/**
 * Copies `text` to the clipboard; resolves to whether it worked. The Clipboard
 * API needs a secure context (HTTPS or localhost); over plain HTTP, or when it
 * is refused, a hidden textarea and execCommand do it.
 */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Fall through to the fallback (e.g. permission denied).
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  const focused = document.activeElement;
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  if (focused && focused.focus) focused.focus();
  return ok;
}

/**
 * A "Copy" button for `text`; `name` is its accessible name
 * (e.g. "Copy full link"). Shows "Copied" for a moment.
 */
export function copyButton(text, name) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  if (name) button.setAttribute("aria-label", name);
  button.addEventListener("click", async () => {
    if (await copyText(text)) {
      button.textContent = "Copied";
      toast("Copied link", { quiet: true });
      setTimeout(() => (button.textContent = "Copy"), 2000);
    } else {
      toast("Could not copy: Copying is not allowed by this browser.");
    }
  });
  return button;
}

/**
 * Makes the server-rendered copy buttons of `section` work
 * (`data-action=copy-link`, `data-path`: the absolute URL of the path is
 * copied). The whole behaviour of the pages file-info, view and share.
 */
export function copyLinkButtons(section) {
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=copy-link]");
    if (!button) return;
    const url = new URL(button.dataset.path, window.location.origin).href;
    const ok = await copyText(url);
    statusLine(section).textContent = ok ? "Copied link" : `Could not copy the link: ${url}`;
  });
}
