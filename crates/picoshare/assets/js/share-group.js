// Share groups of the owner's upload page. Several files sent together become
// one share when "One share for all files" is checked: each file is uploaded
// as usual (multipart or tus), then POST /api/shares groups the new IDs, with
// their paths when they came from a folder. A group's row shows the share's
// link and QR code once every file is done. The upload queue calls these;
// imported as a namespace (`shareGroup.create(…)`).

import { copyButton } from "./clipboard.js";
import { h, readableReply } from "./dom.js";
import { qrDetails } from "./qr.js";

/** A share group for `count` files about to be sent, or null (one file, a guest, or unchecked). */
export function create(list, count) {
  const box = document.getElementById("one-share");
  if (!box || !box.checked || count < 2) return null;
  const status = h("span", { class: "upload-status" }, `Waiting for ${count} uploads…`);
  const detail = h("div", { class: "upload-detail" });
  const li = h(
    "li",
    { class: "upload-item share-item" },
    h("div", { class: "upload-head" }, h("span", { class: "upload-name", text: `Share of ${count} files` }), status),
    detail,
  );
  list.append(li);
  return { items: [], li, status, detail, created: false, creating: false };
}

/** Whether the queued upload `u` belongs to a share group (whose row has the QR code). */
export function inGroup(u) {
  return Boolean(u.group);
}

/** Adds the queued upload `u` to `group`. */
export function add(group, u) {
  u.group = group;
  group.items.push(u);
}

/** A file that cannot be sent (empty, too large) is left out of its share. */
export function skip(u) {
  if (!u.group) return;
  u.skipped = true;
  done(u, null);
}

/** Called when one of the group's files is done; creates the share after the last. */
export function done(u, id) {
  const group = u.group;
  if (!group || group.created || group.creating) return;
  if (id) u.entryId = id;
  const items = group.items.filter((x) => !x.skipped);
  const left = items.filter((x) => !x.entryId).length;
  if (left > 0) {
    group.status.textContent = `Waiting for ${left} of ${items.length} uploads…`;
    return;
  }
  if (items.length === 0) {
    group.status.textContent = "No file to share";
    return;
  }
  createShare(group, items);
}

async function createShare(group, items) {
  group.creating = true;
  group.status.textContent = "Creating the share…";
  const body = { entries: items.map((x) => x.entryId) };
  if (items.some((x) => x.path)) body.paths = items.map((x) => x.path);
  let message = null;
  try {
    const resp = await fetch("/api/shares", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (resp.ok) {
      const share = await resp.json();
      group.created = true;
      show(group, share);
      return;
    }
    message = readableReply(resp.status, resp.headers.get("Content-Type"), await resp.text());
  } catch (err) {
    message = `Could not reach the server: ${err.message}`;
  } finally {
    group.creating = false;
  }
  group.li.classList.add("failed");
  group.status.textContent = "Failed";
  const retry = h("button", { type: "button", text: "Retry" });
  retry.addEventListener("click", () => {
    group.li.classList.remove("failed");
    createShare(group, items);
  });
  group.detail.replaceChildren(h("p", { class: "alert error", role: "alert", text: message }), retry);
}

function show(group, share) {
  const url = `${window.location.origin}/s/${share.id}`;
  group.li.classList.add("done");
  group.status.textContent = `${share.files.length} files`;
  const links = h(
    "div",
    { class: "links" },
    h(
      "div",
      { class: "link-row" },
      h("span", { class: "link-label", text: "Share link" }),
      h("a", { href: url, text: url, class: "share-link" }),
      copyButton(url, "Copy share link"),
    ),
  );
  group.detail.replaceChildren(
    h("p", { class: "success", text: "Share created!" }),
    h("div", { class: "result" }, links),
  );
  links.append(qrDetails(url, "QR code of the share link"));
}
