// The upload pages (the owner's `/` and a guest link's `/g/{id}`): the ways
// to choose files (picker, folder, drag and drop, paste, typed text) first,
// all feeding one upload queue shown right under the picker, and the options
// (expiration, note, limits) folded away below with a one-line summary of
// what applies. The note, limits and password apply to the files chosen next
// and are then cleared, so that they never silently carry over.

import { pageData } from "../dom.js";
import { uploadLimits } from "../limits.js";
import { uploadQueue } from "../upload-queue.js";

/** RFC 3339 without milliseconds. */
function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A local date as YYYY-MM-DD (for date inputs). */
function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** `pasted-2026-11-26T153300Z` style names for pasted content. */
function pastedName(ext) {
  return `pasted-${rfc3339(new Date()).replace(/:/g, "")}.${ext}`;
}

/** Every file under the dropped `entries` (folders read recursively), with relative paths. */
async function droppedFiles(entries) {
  const out = [];
  const readAll = (reader) =>
    new Promise((resolve, reject) => {
      const all = [];
      const next = () =>
        reader.readEntries((batch) => {
          if (batch.length === 0) resolve(all);
          else {
            all.push(...batch);
            next();
          }
        }, reject);
      next();
    });
  const walk = async (entry) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: entry.fullPath.replace(/^\/+/, "") });
    } else if (entry.isDirectory) {
      for (const child of await readAll(entry.createReader())) await walk(child);
    }
  };
  for (const entry of entries) await walk(entry);
  return out;
}

export function init() {
  const data = pageData();
  const fileInput = document.getElementById("file-input");
  const pastebox = document.getElementById("pastebox");
  const select = document.getElementById("expiration");
  const dateField = document.getElementById("custom-date-field");
  const dateInput = document.getElementById("expiration-date");
  const note = document.getElementById("note");
  const list = document.getElementById("uploads");
  const overlay = document.getElementById("drop-overlay");
  const loadedAt = Date.now();
  const serverNow = () => data.serverNow + (Date.now() - loadedAt);

  // Expiration: a custom date (owner only) between tomorrow and any time later.
  if (dateInput) {
    const day = 86400000;
    dateInput.min = localDate(new Date(Date.now() + day));
    dateInput.value = localDate(new Date(Date.now() + 30 * day));
    const sync = () => {
      const custom = select.value === "custom";
      dateField.hidden = !custom;
      dateInput.required = custom;
    };
    select.addEventListener("change", sync);
    sync();
  }

  /** The `expiration` parameter for the current choice (null: the server's default). */
  function expiration() {
    const v = select.value;
    if (v === "max") return null;
    if (v === "never") return data.neverExpire;
    if (v === "custom") {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateInput.value);
      if (!m) throw new Error("Choose an expiration date (YYYY-MM-DD).");
      const when = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      if (when.getTime() <= Date.now()) throw new Error("The expiration date must be in the future.");
      return rfc3339(when);
    }
    const days = Number(v.replace(/^days:/, ""));
    return rfc3339(new Date(serverNow() + days * 86400000));
  }

  // The summary of the folded options: what the next upload gets.
  const summary = document.getElementById("options-summary");
  const maxDownloads = document.getElementById("max-downloads");
  const oneShot = document.getElementById("one-shot");
  const password = document.getElementById("file-password");
  function summarize() {
    const parts = [];
    const option = select.selectedOptions[0];
    const v = select.value;
    if (v === "never") parts.push("never expires");
    else if (v === "custom") parts.push(`expires on ${dateInput.value || "(choose a date)"}`);
    else parts.push(`expires after ${option ? option.textContent.trim() : v}`);
    if (note && note.value.trim()) parts.push("with a note");
    if (oneShot && oneShot.checked) parts.push("1 download");
    else if (maxDownloads && maxDownloads.value) parts.push(`${maxDownloads.value} downloads at most`);
    if (password && password.value) parts.push("password");
    summary.textContent = `(${parts.join(", ")})`;
  }
  document.getElementById("upload-form").addEventListener("input", summarize);
  document.getElementById("upload-form").addEventListener("change", summarize);
  summarize();

  let params = null;
  const { enqueue, enqueueAll } = uploadQueue({
    data,
    list,
    params: () => {
      if (!params) params = { expiration: expiration(), note: note ? note.value.trim() : "", ...uploadLimits() };
      return params;
    },
  });
  /** Runs `start` (which enqueues files) with one set of options, then clears the one-off options. */
  const batch = (start) => {
    params = null;
    try {
      start();
    } finally {
      const used = params !== null;
      params = null;
      if (used) clearOneOffs();
      summarize();
    }
  };
  const clearOneOffs = () => {
    for (const el of [note, maxDownloads, password]) if (el) el.value = "";
    if (oneShot && oneShot.checked) {
      oneShot.checked = false;
      oneShot.dispatchEvent(new Event("change", { bubbles: true }));
    }
  };
  const enqueueBatch = (files, paths) => batch(() => enqueueAll(files, paths));

  fileInput.addEventListener("change", () => {
    enqueueBatch(Array.from(fileInput.files));
    fileInput.value = "";
  });
  const folderInput = document.getElementById("folder-input");
  if (folderInput) {
    folderInput.addEventListener("change", () => {
      const files = Array.from(folderInput.files);
      enqueueBatch(files, files.map((f) => f.webkitRelativePath || null));
      folderInput.value = "";
    });
  }

  // Drag and drop anywhere on the page.
  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    overlay.hidden = false;
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) overlay.hidden = true;
  });
  document.addEventListener("drop", async (event) => {
    dragDepth = 0;
    overlay.hidden = true;
    if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
    event.preventDefault();
    // Dropped folders are read through their entries, with relative paths.
    const entries = Array.from(event.dataTransfer.items || [])
      .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
      .filter(Boolean);
    if (entries.some((e) => e.isDirectory)) {
      const found = await droppedFiles(entries);
      enqueueBatch(found.map((f) => f.file), found.map((f) => f.path));
      return;
    }
    enqueueBatch(Array.from(event.dataTransfer.files));
  });

  // Paste of files, images and text, anywhere but in other text fields.
  document.addEventListener("paste", (event) => {
    const target = event.target;
    if (target !== pastebox && target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    const clip = event.clipboardData;
    if (!clip) return;
    const files = Array.from(clip.files || []);
    if (files.length > 0) {
      event.preventDefault();
      enqueueBatch(
        files.map((f) => {
          if (f.name && f.name !== "image.png") return f;
          const ext = (f.type.split("/")[1] || "bin").replace(/[^a-z0-9]/gi, "");
          return new File([f], pastedName(ext), { type: f.type });
        }),
      );
      return;
    }
    const text = clip.getData("text/plain");
    if (text) {
      event.preventDefault();
      batch(() => enqueue(new File([text], pastedName("txt"), { type: "text/plain;charset=utf-8" })));
    }
  });
  // Typed text goes up with the Upload text button.
  document.getElementById("upload-text").addEventListener("click", () => {
    const text = pastebox.value;
    if (!text.trim()) {
      pastebox.focus();
      return;
    }
    pastebox.value = "";
    batch(() => enqueue(new File([text], pastedName("txt"), { type: "text/plain;charset=utf-8" })));
  });
}
