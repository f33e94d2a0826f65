// PicoShare's browser code: one plain module, no framework, no build step.
//
// Layout of this file:
//   1. The dispatcher: `page(name, init)` registers a page's behaviour; once the
//      module has run, the init of the page named by the first
//      `[data-page]` element (`<section data-page="NAME">` in <main>) is called.
//   2. Shared helpers (clipboard, sizes, page data, QR codes, uploads).
//   3. One section per page, each starting with a banner
//      `// ==== page: NAME ====`. Add new pages as new sections at the end.

// ---------------------------------------------------------------------------
// 1. Dispatcher
// ---------------------------------------------------------------------------

const pageInits = new Map();

/** Registers the behaviour of the page whose `data-page` is `name`. */
function page(name, init) {
  pageInits.set(name, init);
}

function runPage() {
  fillQrCodes();
  fillTextPreviews();
  const el = document.querySelector("[data-page]");
  if (!el) return;
  const init = pageInits.get(el.dataset.page);
  if (init) init(el);
}

// Runs after every section below has registered itself.
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

// ---------------------------------------------------------------------------
// 2. Shared helpers
// ---------------------------------------------------------------------------

/** The JSON a page embeds with `pages::json_data(id, …)`, or null. */
function pageData(id = "page-data") {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

/** Sizes in 1024-based units, as the file list shows them. */
function humanSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB", "PB", "EB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/**
 * Copies `text` to the clipboard. The Clipboard API needs a secure context
 * (HTTPS or localhost); over plain HTTP a hidden textarea and execCommand do it.
 */
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
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
  const ok = document.execCommand("copy");
  area.remove();
  if (focused && focused.focus) focused.focus();
  if (!ok) throw new Error("Copying is not allowed by this browser.");
}

/** A short-lived message at the bottom of the screen (role=status). */
function toast(message) {
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

/**
 * A "Copy" button for `text`; `name` is its accessible name
 * (e.g. "Copy full link"). Shows "Copied" for a moment.
 */
function copyButton(text, name) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  if (name) button.setAttribute("aria-label", name);
  button.addEventListener("click", async () => {
    try {
      await copyText(text);
      button.textContent = "Copied";
      toast("Copied link");
      setTimeout(() => (button.textContent = "Copy"), 2000);
    } catch (err) {
      toast(`Could not copy: ${err.message}`);
    }
  });
  return button;
}

/** Creates an element with attributes and children (strings become text). */
function h(tag, attrs = {}, ...children) {
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

// ---- QR codes ------------------------------------------------------------
// A small QR code encoder: byte mode, error correction level M (L when M does
// not fit), versions 1 to 10, the best of the eight masks by the standard
// penalty rules. Returns the module matrix (true = dark) or null if `text` is
// too long.

const QR_ECC = {
  // Error correction codewords per block, and blocks, by version (index 1–10).
  M: { ecl: 0, perBlock: [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26], blocks: [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5] },
  L: { ecl: 1, perBlock: [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18], blocks: [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4] },
};

function qrRawModules(ver) {
  let n = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const align = Math.floor(ver / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (ver >= 7) n -= 36;
  }
  return n;
}

function gfMul(x, y) {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

function rsDivisor(degree) {
  const result = new Array(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < degree; j++) {
      result[j] = gfMul(result[j], root);
      if (j + 1 < degree) result[j] ^= result[j + 1];
    }
    root = gfMul(root, 2);
  }
  return result;
}

function rsRemainder(data, divisor) {
  const result = divisor.map(() => 0);
  for (const b of data) {
    const factor = b ^ result.shift();
    result.push(0);
    divisor.forEach((coef, i) => (result[i] ^= gfMul(coef, factor)));
  }
  return result;
}

function qrEncode(text) {
  const bytes = Array.from(new TextEncoder().encode(text));
  for (const level of ["M", "L"]) {
    const ecc = QR_ECC[level];
    for (let ver = 1; ver <= 10; ver++) {
      const totalCodewords = Math.floor(qrRawModules(ver) / 8);
      const dataCodewords = totalCodewords - ecc.perBlock[ver] * ecc.blocks[ver];
      const countBits = ver <= 9 ? 8 : 16;
      if (4 + countBits + bytes.length * 8 > dataCodewords * 8) continue;
      return qrBuild(ver, ecc, bytes, countBits, dataCodewords, totalCodewords);
    }
  }
  return null;
}

function qrBuild(ver, ecc, bytes, countBits, dataCodewords, totalCodewords) {
  // Data bits: mode, count, bytes, terminator, padding.
  const bits = [];
  const put = (val, len) => {
    for (let i = len - 1; i >= 0; i--) bits.push((val >>> i) & 1);
  };
  put(4, 4);
  put(bytes.length, countBits);
  for (const b of bytes) put(b, 8);
  const capacity = dataCodewords * 8;
  put(0, Math.min(4, capacity - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  for (let pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
  const data = [];
  for (let i = 0; i < bits.length; i += 8) data.push(parseInt(bits.slice(i, i + 8).join(""), 2));

  // Blocks with error correction, interleaved.
  const numBlocks = ecc.blocks[ver];
  const eccLen = ecc.perBlock[ver];
  const numShort = numBlocks - (totalCodewords % numBlocks);
  const shortLen = Math.floor(totalCodewords / numBlocks);
  const divisor = rsDivisor(eccLen);
  const blocks = [];
  for (let i = 0, k = 0; i < numBlocks; i++) {
    const len = shortLen - eccLen + (i < numShort ? 0 : 1);
    const dat = data.slice(k, k + len);
    k += len;
    blocks.push({ dat, ecc: rsRemainder(dat, divisor) });
  }
  const codewords = [];
  const maxData = shortLen - eccLen + 1;
  for (let i = 0; i < maxData; i++) {
    for (const b of blocks) if (i < b.dat.length) codewords.push(b.dat[i]);
  }
  for (let i = 0; i < eccLen; i++) for (const b of blocks) codewords.push(b.ecc[i]);

  // Function patterns.
  const size = ver * 4 + 17;
  const mod = Array.from({ length: size }, () => new Array(size).fill(false));
  const fn = Array.from({ length: size }, () => new Array(size).fill(false));
  const set = (x, y, dark) => {
    mod[y][x] = dark;
    fn[y][x] = true;
  };
  for (let i = 0; i < size; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]]) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        const dist = Math.max(Math.abs(dx), Math.abs(dy));
        if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, dist !== 2 && dist !== 4);
      }
    }
  }
  if (ver >= 2) {
    const n = Math.floor(ver / 7) + 2;
    const step = Math.ceil((ver * 4 + 4) / (n * 2 - 2)) * 2;
    const pos = [6];
    for (let p = size - 7; pos.length < n; p -= step) pos.splice(1, 0, p);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if ((i === 0 && j === 0) || (i === 0 && j === n - 1) || (i === n - 1 && j === 0)) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) {
            set(pos[i] + dx, pos[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
          }
        }
      }
    }
  }
  const drawFormat = (mask) => {
    const d = (ecc.ecl << 3) | mask;
    let rem = d;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const f = ((d << 10) | rem) ^ 0x5412;
    const bit = (i) => ((f >>> i) & 1) === 1;
    for (let i = 0; i <= 5; i++) set(8, i, bit(i));
    set(8, 7, bit(6));
    set(8, 8, bit(7));
    set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
    set(8, size - 8, true);
  };
  drawFormat(0);
  if (ver >= 7) {
    let rem = ver;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const v = (ver << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const dark = ((v >>> i) & 1) === 1;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      set(a, b, dark);
      set(b, a, dark);
    }
  }

  // Codewords in the zigzag order.
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (!fn[y][x] && i < codewords.length * 8) {
          mod[y][x] = ((codewords[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }

  // The mask with the lowest penalty.
  const masks = [
    (x, y) => (x + y) % 2 === 0,
    (x, y) => y % 2 === 0,
    (x) => x % 3 === 0,
    (x, y) => (x + y) % 3 === 0,
    (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
    (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
    (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
    (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
  ];
  const applyMask = (m) => {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) if (!fn[y][x] && masks[m](x, y)) mod[y][x] = !mod[y][x];
    }
  };
  let best = 0;
  let bestPenalty = Infinity;
  for (let m = 0; m < 8; m++) {
    applyMask(m);
    drawFormat(m);
    const p = qrPenalty(mod);
    if (p < bestPenalty) {
      best = m;
      bestPenalty = p;
    }
    applyMask(m); // XOR again undoes it.
  }
  applyMask(best);
  drawFormat(best);
  return mod;
}

function qrPenalty(mod) {
  const size = mod.length;
  let penalty = 0;
  const lines = [];
  for (let y = 0; y < size; y++) lines.push(mod[y]);
  for (let x = 0; x < size; x++) lines.push(mod.map((row) => row[x]));
  const finder = [true, false, true, true, true, false, true];
  for (const line of lines) {
    // Runs of five or more of one colour.
    let run = 1;
    for (let i = 1; i <= size; i++) {
      if (i < size && line[i] === line[i - 1]) {
        run++;
      } else {
        if (run >= 5) penalty += run - 2;
        run = 1;
      }
    }
    // Finder-like patterns with four light modules on a side.
    for (let i = 0; i + 7 <= size; i++) {
      if (!finder.every((v, k) => line[i + k] === v)) continue;
      const lightBefore = [1, 2, 3, 4].every((k) => i - k < 0 || !line[i - k]);
      const lightAfter = [0, 1, 2, 3].every((k) => i + 7 + k >= size || !line[i + 7 + k]);
      if (lightBefore) penalty += 40;
      if (lightAfter) penalty += 40;
    }
  }
  let dark = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (mod[y][x]) dark++;
      if (x + 1 < size && y + 1 < size) {
        const c = mod[y][x];
        if (c === mod[y][x + 1] && c === mod[y + 1][x] && c === mod[y + 1][x + 1]) penalty += 3;
      }
    }
  }
  const total = size * size;
  penalty += Math.floor(Math.abs(dark * 20 - total * 10) / total) * 10;
  return penalty;
}

/** An inline SVG QR code of `text` (null if it is too long), labelled "QR code". */
function qrSvg(text) {
  const mod = qrEncode(text);
  if (!mod) return null;
  const size = mod.length;
  const quiet = 4;
  let path = "";
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) if (mod[y][x]) path += `M${x + quiet} ${y + quiet}h1v1h-1z`;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const full = size + 2 * quiet;
  svg.setAttribute("viewBox", `0 0 ${full} ${full}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code");
  svg.setAttribute("class", "qr");
  svg.setAttribute("shape-rendering", "crispEdges");
  const title = document.createElementNS(ns, "title");
  title.textContent = "QR code";
  const bg = document.createElementNS(ns, "rect");
  bg.setAttribute("width", full);
  bg.setAttribute("height", full);
  bg.setAttribute("fill", "#fff");
  const fg = document.createElementNS(ns, "path");
  fg.setAttribute("d", path);
  fg.setAttribute("fill", "#000");
  svg.append(title, bg, fg);
  return svg;
}

/**
 * Draws a QR code in every `[data-qr]` element of the page: the absolute URL
 * of its `data-qr` path, labelled by `data-qr-label`.
 */
function fillQrCodes() {
  for (const el of document.querySelectorAll("[data-qr]")) {
    if (el.querySelector("svg")) continue;
    const svg = qrSvg(new URL(el.dataset.qr, window.location.origin).href);
    if (!svg) continue;
    if (el.dataset.qrLabel) {
      svg.setAttribute("aria-label", el.dataset.qrLabel);
      svg.querySelector("title").textContent = el.dataset.qrLabel;
    }
    el.append(svg);
  }
}

// ---- Previews -------------------------------------------------------------
// Text previews (`<pre data-preview-text=URL data-limit=N>`): the first N bytes
// of the file, fetched with a Range request and shown as text (textContent,
// never parsed as HTML). A multi-byte character cut at the end is dropped.

async function fillTextPreviews() {
  for (const pre of document.querySelectorAll("pre[data-preview-text]")) {
    const limit = Number(pre.dataset.limit) || 65536;
    try {
      const resp = await fetch(pre.dataset.previewText, { headers: { Range: `bytes=0-${limit - 1}` } });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const buf = await resp.arrayBuffer();
      const text = new TextDecoder("utf-8").decode(buf.slice(0, limit), { stream: true });
      pre.textContent = text;
      pre.dataset.loaded = "true";
    } catch (err) {
      pre.textContent = `The preview could not be loaded: ${err.message}`;
      pre.dataset.loaded = "error";
    }
  }
}

// ==== page: login ====

page("login", () => {
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
      const text = (await resp.text()).trim();
      error.textContent = text || `Login failed (HTTP ${resp.status}).`;
      input.select();
    } catch (err) {
      error.textContent = `Could not reach the server: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
});

// ==== page: upload ====

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

/** "3 s", "2 min 5 s", "1 h 3 min". */
function humanDuration(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

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

page("upload", () => {
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
  const baseTitle = document.title;
  const running = new Set();

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

  /** Adds one file to the list and sends it (as part of `group`, a share, if given). */
  function enqueue(file, group, path) {
    const status = h("span", { class: "upload-status" }, "Waiting…");
    const bar = h("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
    const detail = h("div", { class: "upload-detail" });
    const li = h(
      "li",
      { class: "upload-item" },
      h("div", { class: "upload-head" }, h("span", { class: "upload-name", text: file.name }), status),
      bar,
      detail,
    );
    list.append(li);
    const u = { file, li, status, bar, detail, loaded: 0, params: null, path: path || null };
    if (group) shareGroupAdd(group, u);
    if (data.maxFileBytes !== null && data.maxFileBytes !== undefined && file.size > data.maxFileBytes) {
      fail(u, `File is too large. Maximum upload size is ${data.maxFileBytes} bytes.`, false);
      shareGroupSkip(u);
      return;
    }
    if (file.size === 0) {
      fail(u, "The file is empty.", false);
      shareGroupSkip(u);
      return;
    }
    send(u);
  }

  function send(u) {
    if (!u.params) {
      try {
        u.params = { expiration: expiration(), note: note ? note.value.trim() : "", ...shareOptions() };
      } catch (err) {
        fail(u, err.message, true);
        return;
      }
    }
    u.li.classList.remove("failed", "done");
    u.detail.replaceChildren();
    u.samples = null;
    running.add(u);
    if (data.tusEndpoint && u.file.size >= data.resumableFrom) {
      sendResumable(u);
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
    let text = `${pct} %`;
    if (rate > 0) text += ` · ${humanRate(rate)} · ${humanDuration((total - u.loaded) / rate)} left`;
    u.status.textContent = text;
    updateTitle();
  }

  function finished(u) {
    running.delete(u);
    updateTitle();
  }

  /** One multipart request (small files). */
  function sendForm(u) {
    u.bar.value = 0;
    progress(u, 0);
    const url = new URL(data.endpoint, window.location.origin);
    if (u.params.expiration) url.searchParams.set("expiration", u.params.expiration);
    const body = new FormData();
    if (u.params.note) body.append("note", u.params.note);
    shareOptionFields(u.params, (k, v) => body.append(k, v));
    body.append("file", u.file, u.file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url.pathname + url.search);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      // The request is a little larger than the file (multipart framing).
      progress(u, Math.round((event.loaded / (event.total || 1)) * u.file.size));
    });
    xhr.addEventListener("load", () => {
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
        fail(u, xhr.responseText.trim() || `Upload failed (HTTP ${xhr.status}).`, true);
      }
    });
    xhr.addEventListener("error", () => {
      finished(u);
      fail(u, "The connection to the server was lost.", true);
    });
    updateTitle();
    xhr.send(body);
  }

  // ---- resumable uploads (tus 1.0.0) ----
  // A large file is created on the server first, then sent from the server's
  // offset. When the connection drops or the server restarts, the page asks
  // for the offset again and continues from there, waiting longer between
  // attempts (up to 30 s) for as long as the upload exists. The upload's URL
  // is kept in localStorage, so choosing the same file again after the page
  // was closed continues it too.

  const TUS = "1.0.0";
  const tusKey = (file) => `picoshare-tus:${data.tusEndpoint}:${file.name}:${file.size}:${file.lastModified}`;
  const b64 = (text) => {
    const bytes = new TextEncoder().encode(text);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const store = {
    get(file) {
      try {
        return window.localStorage.getItem(tusKey(file));
      } catch {
        return null;
      }
    },
    set(file, url) {
      try {
        window.localStorage.setItem(tusKey(file), url);
      } catch {
        // Private mode: resuming still works while the page stays open.
      }
    },
    forget(file) {
      try {
        window.localStorage.removeItem(tusKey(file));
      } catch {
        // Nothing stored.
      }
    },
  };

  /** A failure that retrying cannot fix (shown with a Retry button that starts over). */
  class Refused extends Error {}

  async function tusCreate(u) {
    const meta = [`filename ${b64(u.file.name)}`];
    if (u.file.type) meta.push(`filetype ${b64(u.file.type)}`);
    if (u.params.note) meta.push(`note ${b64(u.params.note)}`);
    if (u.params.expiration) meta.push(`expiration ${b64(u.params.expiration)}`);
    shareOptionFields(u.params, (k, v) => meta.push(`${k} ${b64(v)}`));
    const resp = await fetch(data.tusEndpoint, {
      method: "POST",
      headers: { "Tus-Resumable": TUS, "Upload-Length": String(u.file.size), "Upload-Metadata": meta.join(",") },
    });
    if (resp.status !== 201) {
      const text = (await resp.text()).trim();
      if (resp.status >= 500 || resp.status === 423) throw new Error(text || `HTTP ${resp.status}`);
      throw new Refused(text || `Upload failed (HTTP ${resp.status}).`);
    }
    return resp.headers.get("Location");
  }

  /** The server's offset, or null if the upload is gone (expired or cancelled). */
  async function tusOffset(url) {
    const resp = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": TUS }, cache: "no-store" });
    if (resp.status === 404 || resp.status === 410) return null;
    if (resp.status === 401) throw new Refused("Your session has ended: log in again in another tab, then press Retry.");
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    return { offset: Number(resp.headers.get("Upload-Offset")), entry: resp.headers.get("PicoShare-Entry-ID") };
  }

  /** Sends the file from `offset` in one request (or `tusRequestBytes`). */
  function tusPatch(u, url, offset) {
    return new Promise((resolve, reject) => {
      const limit = u.requestBytes || u.file.size;
      const end = Math.min(u.file.size, offset + limit);
      const xhr = new XMLHttpRequest();
      xhr.open("PATCH", url);
      xhr.setRequestHeader("Tus-Resumable", TUS);
      xhr.setRequestHeader("Upload-Offset", String(offset));
      xhr.setRequestHeader("Content-Type", "application/offset+octet-stream");
      xhr.upload.addEventListener("progress", (event) => progress(u, offset + event.loaded));
      xhr.addEventListener("load", () => resolve(xhr));
      xhr.addEventListener("error", () => reject(new Error("connection lost")));
      xhr.addEventListener("abort", () => reject(new Error("aborted")));
      xhr.send(u.file.slice(offset, end));
    });
  }

  async function sendResumable(u) {
    let delay = 1000;
    const waitAndRetry = async (why) => {
      const seconds = Math.round(delay / 1000);
      u.status.textContent = `${why} Resuming in ${seconds} s…`;
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    };
    u.requestBytes = data.tusRequestBytes || 0;
    u.tusUrl = u.tusUrl || store.get(u.file);
    let offset = null;
    for (;;) {
      try {
        if (u.tusUrl && offset === null) {
          const state = await tusOffset(u.tusUrl);
          if (state === null) {
            // Gone: start a new one.
            store.forget(u.file);
            u.tusUrl = null;
          } else if (state.entry) {
            store.forget(u.file);
            finished(u);
            done(u, state.entry);
            return;
          } else {
            offset = state.offset;
            progress(u, offset);
          }
        }
        if (!u.tusUrl) {
          progress(u, 0);
          u.tusUrl = await tusCreate(u);
          store.set(u.file, u.tusUrl);
          offset = 0;
        }
        const xhr = await tusPatch(u, u.tusUrl, offset);
        if (xhr.status === 204) {
          delay = 1000;
          const entry = xhr.getResponseHeader("PicoShare-Entry-ID");
          offset = Number(xhr.getResponseHeader("Upload-Offset"));
          progress(u, offset);
          if (entry) {
            store.forget(u.file);
            finished(u);
            done(u, entry);
            return;
          }
          continue;
        }
        const text = xhr.responseText.trim();
        if (xhr.status === 413 && !text.startsWith("File is too large") && u.requestBytes !== 50 << 20) {
          // A proxy in front refused the request's size: send smaller ones.
          u.requestBytes = 50 << 20;
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
        if (err instanceof Refused) {
          finished(u);
          fail(u, err.message, true);
          return;
        }
        offset = null;
        await waitAndRetry("The connection to the server was lost.");
      }
    }
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
    const qr = qrSvg(short);
    u.detail.replaceChildren(
      h("p", { class: "success", text: "Upload complete!" }),
      h("div", { class: "result" }, links, qr),
    );
    if (data.endpoint === "/api/entry") {
      links.append(h("a", { class: "button", href: `/files/${id}/edit`, text: "Edit" }));
    }
    shareGroupDone(u, id);
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

  /** Sends `files` (with their relative `paths` from a folder, if any), as one share when asked. */
  function enqueueAll(files, paths) {
    const group = shareGroupNew(list, files.length);
    files.forEach((file, i) => enqueue(file, group, paths ? paths[i] : null));
  }

  fileInput.addEventListener("change", () => {
    enqueueAll(Array.from(fileInput.files));
    fileInput.value = "";
  });
  const folderInput = document.getElementById("folder-input");
  if (folderInput) {
    folderInput.addEventListener("change", () => {
      const files = Array.from(folderInput.files);
      enqueueAll(files, files.map((f) => f.webkitRelativePath || null));
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
      const found = await shareDroppedFiles(entries);
      enqueueAll(found.map((f) => f.file), found.map((f) => f.path));
      return;
    }
    enqueueAll(Array.from(event.dataTransfer.files));
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
      enqueueAll(
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
      enqueue(new File([text], pastedName("txt"), { type: "text/plain;charset=utf-8" }));
    }
  });
  // The paste box only receives pastes; typed text would go nowhere.
  pastebox.addEventListener("input", () => {
    pastebox.value = "";
  });
});

// ==== page: admin pages (files, file-info, file-edit, file-delete, file-downloads,
//      guest-links, guest-link-new, settings) ====
// Everything is rendered on the server; these functions add sorting, filtering,
// copying and the calls to the JSON API. Names start with `admin` to stay apart
// from the other sections.

/** Copies `text`; falls back to a hidden textarea where the Clipboard API is
 *  unavailable (plain HTTP). Resolves to whether it worked. */
async function adminCopyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall back below
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** The page's live status line (created if the page has none). */
function adminStatus(section) {
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
function adminError(el, text) {
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
}

/** The text of a failed response, without the trailing newline. */
async function adminErrorText(resp) {
  const text = (await resp.text()).trim();
  return text || `Request failed (${resp.status})`;
}

/**
 * Sends JSON and reports failure in `error` (the server's message, or that it
 * could not be reached). Returns whether the request succeeded.
 */
async function adminRequest(error, method, url, body) {
  try {
    const resp = await adminSend(method, url, body);
    if (resp.ok) return true;
    adminError(error, await adminErrorText(resp));
  } catch (e) {
    adminError(error, `Could not reach the server: ${e.message}`);
  }
  return false;
}

/** Copy buttons (`data-action=copy-link`, `data-path`) on any admin page. */
function adminCopyButtons(section) {
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=copy-link]");
    if (!button) return;
    const url = new URL(button.dataset.path, window.location.origin).href;
    const ok = await adminCopyText(url);
    adminStatus(section).textContent = ok ? "Copied link" : `Could not copy the link: ${url}`;
  });
}

/** Sends JSON with `method` to `url`; returns the response (throws on network errors). */
function adminSend(method, url, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(url, init);
}

// The file list: filter by name, sort by column, copy links.
page("files", (section) => {
  adminCopyButtons(section);
  const tbody = section.querySelector("tbody");
  if (!tbody) return;
  const rows = () => Array.from(tbody.rows);
  const filter = section.querySelector("#files-filter");
  const status = adminStatus(section);
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const tr of rows()) {
      const match = tr.dataset.filename.toLowerCase().includes(q);
      tr.hidden = !match;
      if (match) shown += 1;
    }
    status.textContent = q ? `${shown} of ${rows().length} files shown` : "";
  });
  for (const button of section.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const th = button.closest("th");
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of section.querySelectorAll("thead th")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = button.dataset.sort;
      const numeric = button.dataset.type === "number";
      const value = (tr) => (numeric ? Number(tr.dataset[key]) : tr.dataset[key]);
      const sorted = rows().sort((a, b) => {
        const x = value(a);
        const y = value(b);
        let c;
        if (numeric) c = x - y;
        else if (key === "filename") c = x.localeCompare(y, undefined, { sensitivity: "base", numeric: true });
        else c = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? c : -c;
      });
      tbody.append(...sorted);
    });
  }
});

page("file-info", (section) => {
  adminCopyButtons(section);
});

// The public view page (/v/{id}): copy its link.
page("view", (section) => {
  adminCopyButtons(section);
});

// Edit: save through PUT /api/entry/{id}.
page("file-edit", (section) => {
  const id = section.dataset.entryId;
  const form = section.querySelector("#edit-form");
  const never = section.querySelector("#edit-never");
  const date = section.querySelector("#edit-expiration");
  const error = section.querySelector("#edit-error");
  const initialDate = date.value;
  never.addEventListener("change", () => {
    date.disabled = never.checked;
    if (!never.checked && !date.value) {
      const d = new Date(Date.now() + 30 * 86400000);
      date.value = d.toISOString().slice(0, 10);
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    adminError(error, "");
    const body = {
      filename: section.querySelector("#edit-filename").value,
      note: section.querySelector("#edit-note").value,
    };
    if (!never.checked) {
      if (!date.value) {
        adminError(error, "Choose an expiration date, or tick “Never expire”.");
        return;
      }
      // An unchanged date keeps the exact expiry; a new one means local midnight.
      body.expiration =
        date.value === initialDate && date.dataset.original
          ? date.dataset.original
          : new Date(`${date.value}T00:00:00`).toISOString();
    }
    if (!editShareOptions(section, body, error)) return;
    if (await adminRequest(error, "PUT", `/api/entry/${encodeURIComponent(id)}`, body)) {
      window.location.assign("/files");
    }
  });
});

// Confirm delete: DELETE /api/entry/{id}.
page("file-delete", (section) => {
  const id = section.dataset.entryId;
  const error = section.querySelector("#delete-error");
  section.querySelector("[data-action=delete-entry]").addEventListener("click", async () => {
    adminError(error, "");
    if (await adminRequest(error, "DELETE", `/api/entry/${encodeURIComponent(id)}`)) {
      window.location.assign("/files");
    }
  });
});

// Download history: the unique-IP checkbox reloads with or without ?unique=true.
page("file-downloads", (section) => {
  const box = section.querySelector("#unique-ips");
  if (!box) return;
  box.addEventListener("change", () => {
    const url = new URL(window.location.href);
    if (box.checked) url.searchParams.set("unique", "true");
    else url.searchParams.delete("unique");
    window.location.assign(url.href);
  });
});

// Guest links: copy, enable/disable, delete.
page("guest-links", (section) => {
  adminCopyButtons(section);
  const status = adminStatus(section);
  const created = sessionStorage.getItem("picoshare-new-guest-link");
  if (created) {
    sessionStorage.removeItem("picoshare-new-guest-link");
    const row = Array.from(section.querySelectorAll("tr[data-guest-link-id]")).find((r) => r.dataset.guestLinkId === created);
    const details = row && row.querySelector("details.qr-details");
    if (details) {
      details.open = true;
      row.classList.add("just-created");
      status.textContent = "Guest link created";
      row.scrollIntoView({ block: "nearest" });
    }
  }
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=toggle-guest-link], [data-action=delete-guest-link]");
    if (!button) return;
    const row = button.closest("tr");
    const id = encodeURIComponent(row.dataset.guestLinkId);
    button.disabled = true;
    try {
      if (button.dataset.action === "delete-guest-link") {
        const resp = await adminSend("DELETE", `/api/guest-links/${id}`);
        if (!resp.ok) throw new Error(await adminErrorText(resp));
        row.remove();
        status.textContent = "Guest link deleted";
        return;
      }
      const enable = button.dataset.disabled === "true";
      const resp = await adminSend("PUT", `/api/guest-links/${id}/${enable ? "enable" : "disable"}`);
      if (!resp.ok) throw new Error(await adminErrorText(resp));
      button.dataset.disabled = enable ? "false" : "true";
      button.textContent = enable ? "Disable" : "Enable";
      row.classList.toggle("inactive", !enable);
      status.textContent = enable ? "Guest link reactivated" : "Guest link disabled";
    } catch (e) {
      status.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
});

// New guest link: POST /api/guest-links.
page("guest-link-new", (section) => {
  const form = section.querySelector("#guest-link-form");
  const error = section.querySelector("#guest-link-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    adminError(error, "");
    const number = (sel) => {
      const v = section.querySelector(sel).value.trim();
      return v === "" ? null : Number(v);
    };
    const mb = number("#gl-max-size");
    const body = {
      label: section.querySelector("#gl-label").value,
      urlExpirationTime: section.querySelector("#gl-expires").value,
      fileLifetime: section.querySelector("#gl-file-lifetime").value,
      maxFileBytes: mb === null ? null : Math.round(mb * 1024 * 1024),
      maxFileUploads: number("#gl-max-uploads"),
    };
    try {
      const resp = await adminSend("POST", "/api/guest-links", body);
      if (!resp.ok) {
        adminError(error, await adminErrorText(resp));
        return;
      }
      const { id } = await resp.json();
      // The list shows the new link's QR code open.
      sessionStorage.setItem("picoshare-new-guest-link", id);
      window.location.assign("/guest-links");
    } catch (e) {
      adminError(error, `Could not reach the server: ${e.message}`);
    }
  });
});

// Settings: PUT /api/settings.
page("settings", (section) => {
  const form = section.querySelector("#settings-form");
  const never = section.querySelector("#settings-never");
  const value = section.querySelector("#settings-value");
  const unit = section.querySelector("#settings-unit");
  const error = section.querySelector("#settings-error");
  const status = section.querySelector("#settings-status");
  const sync = () => {
    value.disabled = never.checked;
    unit.disabled = never.checked;
    value.max = unit.value === "years" ? "10" : "3650";
  };
  never.addEventListener("change", sync);
  unit.addEventListener("change", sync);
  form.addEventListener("input", () => {
    status.textContent = "";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    adminError(error, "");
    status.textContent = "";
    const body = never.checked
      ? { defaultNeverExpire: true }
      : {
          defaultExpirationDays: Number(value.value) * (unit.value === "years" ? 365 : 1),
          defaultNeverExpire: false,
        };
    if (await adminRequest(error, "PUT", "/api/settings", body)) {
      status.textContent = "Settings saved";
    }
  });
});

// ==== download limits and passwords (upload and edit pages) ====
// The upload page's options travel with each upload both as multipart fields
// and as tus metadata (`maxDownloads`, `password`); the edit page sends them
// in the PUT body only when they change.

/** The owner's upload options: max downloads (one-shot = 1) and password. */
function shareOptions() {
  const max = document.getElementById("max-downloads");
  const oneShot = document.getElementById("one-shot");
  const password = document.getElementById("file-password");
  const out = {};
  if (oneShot && oneShot.checked) out.maxDownloads = "1";
  else if (max && max.value.trim()) {
    const n = Number(max.value.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error("Max downloads must be a whole number of at least 1.");
    out.maxDownloads = String(n);
  }
  if (password && password.value) out.password = password.value;
  return out;
}

/** Passes each set option of `params` to `add(name, value)`. */
function shareOptionFields(params, add) {
  if (params.maxDownloads) add("maxDownloads", params.maxDownloads);
  if (params.password) add("password", params.password);
}

/** Adds the edit page's limit changes to `body`; false (with a message) if invalid. */
function editShareOptions(section, body, error) {
  const max = section.querySelector("#edit-max-downloads");
  const password = section.querySelector("#edit-password");
  const remove = section.querySelector("#edit-remove-password");
  const value = max.value.trim();
  if (value !== max.dataset.original) {
    if (value === "") body.maxDownloads = null;
    else {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) {
        adminError(error, "Max downloads must be a whole number of at least 1, or empty for no limit.");
        return false;
      }
      body.maxDownloads = n;
    }
  }
  if (remove && remove.checked) body.password = null;
  else if (password.value) body.password = password.value;
  return true;
}
// ==== page: tokens ====
// API tokens: create (POST /api/tokens; the reply holds the token, shown once),
// revoke (DELETE /api/tokens/{id}). The curl commands and the ShareX
// configuration are built here from the token just received; the token is
// never sent anywhere else.

/** A date as the server renders it: `YYYY-MM-DD HH:MM:SS UTC`. */
function tokensDate(iso) {
  return `${iso.replace("T", " ").replace("Z", "")} UTC`;
}

/** A ShareX custom uploader (.sxcu) that uploads to this server with `token`. */
function tokensSharexConfig(token, origin) {
  return {
    Version: "15.0.0",
    Name: `PicoShare (${new URL(origin).host})`,
    DestinationType: "ImageUploader, TextUploader, FileUploader",
    RequestMethod: "POST",
    RequestURL: `${origin}/api/entry`,
    Headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    Body: "MultipartFormData",
    FileFormName: "file",
    URL: "{json:url}",
    ErrorMessage: "{response}",
  };
}

/** A file name made of the safe characters of `name`. */
function tokensFileName(name) {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return `picoshare-${safe || "token"}.sxcu`;
}

page("tokens", (section) => {
  const form = section.querySelector("#token-form");
  const nameInput = section.querySelector("#token-name");
  const error = section.querySelector("#token-error");
  const status = section.querySelector("#tokens-status");
  const created = section.querySelector("#token-created");
  const tokenValue = section.querySelector("#token-value");
  const curl = section.querySelector("#token-curl");
  const empty = section.querySelector("#tokens-empty");
  const tableBox = section.querySelector(".table-scroll");
  const tbody = section.querySelector("tbody");
  // The new token lives only in this closure (and the panel) until "Done".
  let fresh = null;

  const hideToken = () => {
    fresh = null;
    tokenValue.value = "";
    curl.value = "";
    created.hidden = true;
  };

  const addRow = (t) => {
    const row = h(
      "tr",
      { "data-token-id": t.id },
      h("td", { class: "name", text: t.name }),
      h("td", {}, h("code", { text: `${t.prefix}…` })),
      h("td", { text: tokensDate(t.created) }),
      h("td", { text: t.lastUsed ? tokensDate(t.lastUsed) : "Never" }),
      h(
        "td",
        { class: "actions" },
        h("button", { class: "button danger", type: "button", "data-action": "revoke-token", text: "Revoke" }),
      ),
    );
    tbody.prepend(row);
    empty.hidden = true;
    tableBox.hidden = false;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    adminError(error, "");
    status.textContent = "";
    let resp;
    try {
      resp = await adminSend("POST", "/api/tokens", { name: nameInput.value });
    } catch (e) {
      adminError(error, `Could not reach the server: ${e.message}`);
      return;
    }
    if (!resp.ok) {
      adminError(error, await adminErrorText(resp));
      return;
    }
    const t = await resp.json();
    fresh = t;
    const origin = window.location.origin;
    section.querySelector("#token-created-name").textContent = t.name;
    tokenValue.value = t.token;
    curl.value =
      `curl -H "Authorization: Bearer ${t.token}" -T FILE ${origin}/api/upload/\n` +
      `curl -H "Authorization: Bearer ${t.token}" -F file=@FILE ${origin}/api/entry`;
    created.hidden = false;
    addRow(t);
    form.reset();
    tokenValue.focus();
    tokenValue.select();
  });

  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    switch (button.dataset.action) {
      case "copy-token": {
        if (!fresh) return;
        const ok = await adminCopyText(fresh.token);
        status.textContent = ok ? "Token copied" : "Could not copy: select the token and copy it by hand";
        break;
      }
      case "download-sxcu": {
        if (!fresh) return;
        const config = tokensSharexConfig(fresh.token, window.location.origin);
        const blob = new Blob([`${JSON.stringify(config, null, 2)}\n`], { type: "application/json" });
        const url = URL.createObjectURL(blob);
        const a = h("a", { href: url, download: tokensFileName(fresh.name), hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        status.textContent = "ShareX configuration downloaded: open it to add PicoShare to ShareX";
        break;
      }
      case "token-done":
        hideToken();
        status.textContent = "";
        break;
      case "revoke-token": {
        const row = button.closest("tr");
        const id = row.dataset.tokenId;
        button.disabled = true;
        try {
          const resp = await adminSend("DELETE", `/api/tokens/${encodeURIComponent(id)}`);
          if (!resp.ok) throw new Error(await adminErrorText(resp));
          if (fresh && fresh.id === id) hideToken();
          row.remove();
          if (!tbody.rows.length) {
            empty.hidden = false;
            tableBox.hidden = true;
          }
          status.textContent = "Token revoked";
        } catch (e) {
          status.textContent = e.message;
          button.disabled = false;
        }
        break;
      }
      default:
    }
  });
});

// ==== shares (upload page; pages: share, shares) ====
// Several files sent together from the owner's upload page become one share
// when "One share for all files" is checked: each file is uploaded as usual
// (multipart or tus), then POST /api/shares groups the new IDs, with their
// paths when they came from a folder. A group's row shows the share's link
// and QR code once every file is done. `shareGroup*` names keep this apart
// from the upload section, which calls them.

/** A share group for `count` files about to be sent, or null (one file, a guest, or unchecked). */
function shareGroupNew(list, count) {
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

function shareGroupAdd(group, u) {
  u.group = group;
  group.items.push(u);
}

/** A file that cannot be sent (empty, too large) is left out of its share. */
function shareGroupSkip(u) {
  if (!u.group) return;
  u.skipped = true;
  shareGroupDone(u, null);
}

/** Called when one of the group's files is done; creates the share after the last. */
function shareGroupDone(u, id) {
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
  shareGroupCreate(group, items);
}

async function shareGroupCreate(group, items) {
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
      shareGroupShow(group, share);
      return;
    }
    message = (await resp.text()).trim() || `The share could not be created (HTTP ${resp.status}).`;
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
    shareGroupCreate(group, items);
  });
  group.detail.replaceChildren(h("p", { class: "alert error", role: "alert", text: message }), retry);
}

function shareGroupShow(group, share) {
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
    h("div", { class: "result" }, links, qrSvg(url)),
  );
}

/** Every file under the dropped `entries` (folders read recursively), with relative paths. */
async function shareDroppedFiles(entries) {
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

// The public share page: copy its link.
page("share", (section) => adminCopyButtons(section));

// The owner's shares: copy, delete (DELETE /api/shares/{id}, with ?files=true
// to delete the files too).
page("shares", (section) => {
  adminCopyButtons(section);
  const error = section.querySelector("#shares-error");
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action=delete-share], [data-action=delete-share-files]");
    if (!button) return;
    const row = button.closest("tr");
    const withFiles = button.dataset.action === "delete-share-files";
    if (withFiles && !window.confirm("Delete this share and all of its files?")) return;
    adminError(error, "");
    const url = `/api/shares/${encodeURIComponent(row.dataset.shareId)}${withFiles ? "?files=true" : ""}`;
    if (await adminRequest(error, "DELETE", url)) {
      row.remove();
      adminStatus(section).textContent = withFiles ? "Deleted the share and its files" : "Deleted the share";
    }
  });
});
