// PicoShare's browser code, entry module: the layout of every page loads this
// one file (`<script type="module" nonce=…>`, http/pages/mod.rs), and it
// imports the rest. Plain ES modules: no framework, no build step, no code
// from elsewhere; the files under assets/ are served as they are.
//
// Modules:
//   app.js               this file: what every page does (QR codes, text
//                        previews, Log Out, the navigation's Menu button on
//                        phones, labels for tables shown as cards on phones),
//                        and which module runs the page named by its
//                        `<section data-page="NAME">`.
//   js/pages/NAME.js     one per page with behaviour of its own; each exports
//                        `init(section)`.
//   js/*.js              shared: dom (elements, messages), api (JSON calls),
//                        clipboard (copying, copy buttons), qr (QR code
//                        images, drawn by the server's /qr.svg),
//                        preview (text previews), limits (download limits and
//                        passwords), upload-queue (uploads with progress), tus
//                        (resumable uploads), share-group (several uploads as
//                        one share).
//
// Imports are relative ("./js/qr.js"), and every asset is served under
// /static/VERSION/, VERSION being a hash of all of them: a page's modules
// always come from one version, and any change gives every URL a new name
// (http/pages/assets.rs).

import { copyLinkButtons } from "./js/clipboard.js";
import { init as fileDelete } from "./js/pages/file-delete.js";
import { init as fileDownloads } from "./js/pages/file-downloads.js";
import { init as fileEdit } from "./js/pages/file-edit.js";
import { init as fileInfo } from "./js/pages/file-info.js";
import { init as files } from "./js/pages/files.js";
import { init as guestLinkNew } from "./js/pages/guest-link-new.js";
import { init as guestLinks } from "./js/pages/guest-links.js";
import { init as login } from "./js/pages/login.js";
import { init as notifications } from "./js/pages/notifications.js";
import { init as sessions } from "./js/pages/sessions.js";
import { init as settings } from "./js/pages/settings.js";
import { init as shares } from "./js/pages/shares.js";
import { init as tokens } from "./js/pages/tokens.js";
import { init as upload } from "./js/pages/upload.js";
import { fillTextPreviews } from "./js/preview.js";
import { fillQrCodes } from "./js/qr.js";

/**
 * The behaviour of each page, by the `data-page` of its section. Pages not
 * listed (landing, information, errors, the password form) have none.
 */
const pages = {
  login,
  upload,
  files,
  "file-info": fileInfo,
  "file-edit": fileEdit,
  "file-delete": fileDelete,
  "file-downloads": fileDownloads,
  view: copyLinkButtons,
  "guest-links": guestLinks,
  "guest-link-new": guestLinkNew,
  sessions,
  settings,
  notifications,
  tokens,
  share: copyLinkButtons,
  shares,
};

/**
 * The navigation folds behind a Menu button on phones (the CSS shows the
 * button and hides the links under 640 px once the header has `js-nav`).
 */
function collapsibleNav() {
  const nav = document.querySelector("nav.site-nav");
  const toggle = nav && nav.querySelector(".nav-toggle");
  if (!toggle) return;
  nav.classList.add("js-nav");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
  const phone = window.matchMedia("(max-width: 640px)");
  const sync = () => {
    toggle.hidden = !phone.matches;
  };
  phone.addEventListener("change", sync);
  sync();
}

/**
 * Tables become cards on phones (CSS): each cell gets its column's heading
 * as `data-label`, shown above the value. Rows added later (a new token, a
 * page of files swapped in) are labelled as they arrive.
 */
function labelTables(root = document) {
  for (const table of root.querySelectorAll("table.data-table")) {
    const heads = Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent.trim());
    if (heads.length === 0) continue;
    table.closest(".table-scroll")?.classList.add("cards");
    for (const row of table.querySelectorAll("tbody tr")) {
      Array.from(row.cells).forEach((cell, i) => {
        // The first cell (the name) is the card's title and needs no label.
        if (i > 0 && !cell.hasAttribute("data-label") && !cell.classList.contains("actions")) cell.dataset.label = heads[i] ?? "";
      });
    }
  }
}

function runPage() {
  collapsibleNav();
  labelTables();
  const main = document.getElementById("main");
  if (main) new MutationObserver(() => labelTables(main)).observe(main, { childList: true, subtree: true });
  fillQrCodes();
  // Links shown as text are shown whole (the server writes paths: it cannot
  // know the address a proxy in front gives it).
  for (const a of document.querySelectorAll("a[data-absolute]")) a.textContent = a.href;
  fillTextPreviews();
  const el = document.querySelector("[data-page]");
  if (!el) return;
  const init = pages[el.dataset.page];
  if (init) init(el);
}

// Module scripts run once the document is parsed; the check keeps this
// right if the script is ever loaded otherwise.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", runPage);
} else {
  queueMicrotask(runPage);
}

// Log Out, in the navigation of every admin page.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action=logout]");
  if (!button) return;
  await fetch("/api/auth", { method: "DELETE" });
  window.location.assign("/");
});
