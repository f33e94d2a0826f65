// Shared harness of the end-to-end tests: starts the real server binary on a free
// port with a temporary database, and drives Debian's Chromium with playwright-core.
//
// Each test file calls `setup()` in a `before` hook: it gets its own server (and so
// its own empty database) and its own browser, and `teardown()` stops both.

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SERVER_BIN = process.env.PICOSHARE_BIN ?? path.join(ROOT, "target/debug/picoshare");
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const SECRET = "e2e-passphrase-correct-horse";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Default timeout of every Playwright action and expectation, in ms. */
export const TIMEOUT = 15_000;

/**
 * Starts `picoshare` on 127.0.0.1 with a free port and a fresh database.
 * Resolves once it printed `picoshare listening on http://ADDR`.
 */
export async function startServer({ env = {} } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "picoshare-e2e-"));
  let proc;
  try {
    proc = await spawnServer({ dir, env });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url: proc.url,
    dir,
    stderr: proc.stderr,
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts one `picoshare` process on the database `<dir>/store.db`, listening on
 * `listen` (default: a free port of 127.0.0.1), with extra command-line `args`.
 * Unlike `startServer` it leaves `dir` alone, so a test can stop the process and
 * start another one on the same database and port (`listen: "127.0.0.1:PORT"`).
 * Resolves once it printed `picoshare listening on http://ADDR`.
 * `stop(signal = "SIGTERM", { killAfterMs = 5000 })` sends `signal`, SIGKILL if
 * the process is still there `killAfterMs` later, waits for the exit and returns
 * `{ code, signal }` as the process ended.
 */
export async function spawnServer({ dir, listen = "127.0.0.1:0", args = [], env = {} }) {
  const child = spawn(SERVER_BIN, ["--listen", listen, "--db", path.join(dir, "store.db"), ...args], {
    env: { ...process.env, PS_SHARED_SECRET: SECRET, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise((r) => child.once("exit", r));
  const stop = async (signal = "SIGTERM", { killAfterMs = 5_000 } = {}) => {
    // No pid: it never started (and may never emit "exit").
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      await exited;
      clearTimeout(t);
    }
    return { code: child.exitCode, signal: child.signalCode };
  };
  let url;
  try {
    url = await new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`server did not start in 20 s\n${stderr}`)), 20_000);
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/picoshare listening on (http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/$/, ""));
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code ?? signal}) before listening\n${stderr}`));
      });
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    await stop("SIGKILL");
    throw e;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout.resume();
  return { url, port: Number(new URL(url).port), child, stderr: () => stderr, stop };
}

/**
 * Launches headless Chromium. Playwright gives each launch a fresh, temporary
 * user-data directory (it refuses `--user-data-dir` in `args` for that reason)
 * and removes it on close.
 */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

/**
 * A server and a browser for one test file. `ctx.newPage()` opens a page in a new
 * browser context (own cookies) that records page errors, failed console
 * messages (CSP violations among them) and requests to other origins;
 * `ctx.checkPage(page)` asserts that none happened.
 */
export async function setup({ env } = {}) {
  const server = await startServer({ env });
  let browser;
  try {
    browser = await launchBrowser();
  } catch (e) {
    await server.stop();
    throw e;
  }
  const problems = new WeakMap();
  const ctx = {
    server,
    browser,
    url: server.url,
    async newContext(options = {}) {
      const context = await browser.newContext({
        baseURL: server.url,
        viewport: { width: 1280, height: 800 },
        ...options,
      });
      context.setDefaultTimeout(TIMEOUT);
      return context;
    },
    async newPage(options = {}) {
      const context = await ctx.newContext(options);
      const page = await context.newPage();
      const list = [];
      problems.set(page, list);
      page.on("pageerror", (e) => list.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") list.push(`console error: ${m.text()}`);
      });
      page.on("request", (r) => {
        const u = r.url();
        if (/^https?:/.test(u) && !u.startsWith(server.url)) list.push(`third-party request: ${u}`);
      });
      return page;
    },
    checkPage(page, { allow = [] } = {}) {
      const list = (problems.get(page) ?? []).filter((p) => !allow.some((re) => re.test(p)));
      assert.deepEqual(list, [], "the page logged errors or made third-party requests");
    },
  };
  return ctx;
}

export async function teardown(ctx) {
  if (!ctx) return;
  await ctx.browser?.close().catch(() => {});
  await ctx.server?.stop();
}

/** Logs in through the login page (which must then lead to `expectPath`). */
export async function loginViaPage(page, { next, secret = SECRET } = {}) {
  await page.goto(next ? `/login?next=${encodeURIComponent(next)}` : "/login");
  await page.getByLabel("Passphrase").fill(secret);
  await page.getByRole("button", { name: "Authenticate" }).click();
}

/** Starts a session for `context` through the API (fast path for flows that are not about login). */
export async function loginViaApi(context, secret = SECRET) {
  const resp = await context.request.post("/api/auth", { data: { sharedSecretKey: secret } });
  assert.equal(resp.status(), 200, `login through the API: ${await resp.text()}`);
}

/** A logged-in page in a fresh context. */
export async function adminPage(ctx, options) {
  const page = await ctx.newPage(options);
  await loginViaApi(page.context());
  return page;
}

/** Uploads `content` as `name` through the API; returns the entry id. */
export async function apiUpload(context, name, content, { expiration, note } = {}) {
  const q = expiration ? `?expiration=${encodeURIComponent(expiration)}` : "";
  const multipart = { file: { name, mimeType: "application/octet-stream", buffer: Buffer.from(content) } };
  if (note !== undefined) multipart.note = note;
  const resp = await context.request.post(`/api/entry${q}`, { multipart, headers: { Accept: "application/json" } });
  assert.equal(resp.status(), 200, `upload through the API: ${await resp.text()}`);
  return (await resp.json()).id;
}

/** Creates a guest link through the API; returns its id. */
export async function apiGuestLink(context, body) {
  const resp = await context.request.post("/api/guest-links", { data: body });
  assert.equal(resp.status(), 200, `guest link through the API: ${await resp.text()}`);
  return (await resp.json()).id;
}

/** Writes a temporary file for the file picker; returns its path. */
export async function tempFile(ctx, name, content) {
  const p = path.join(ctx.server.dir, name);
  await writeFile(p, content);
  return p;
}

/** Deterministic pseudo-random bytes (so a byte-for-byte comparison means something). */
export function bytes(n, seed = 1) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Polls `fn` until it returns a truthy value (or throws on timeout). */
export async function eventually(fn, { timeout = TIMEOUT, interval = 100, message = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${message}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * Fetches `url` from the page (with its cookies) and returns the bytes as a
 * Buffer. They cross from the page as base64 (a data: URL from FileReader):
 * an array of numbers costs seconds per MB on the way through the protocol.
 */
export async function fetchBytesInPage(page, url) {
  const b64 = await page.evaluate(async (u) => {
    const r = await fetch(u);
    if (!r.ok) throw new Error(`GET ${u}: ${r.status}`);
    const blob = await r.blob();
    const dataUrl = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
    return dataUrl.slice(dataUrl.indexOf(",") + 1);
  }, url);
  return Buffer.from(b64, "base64");
}

/** The computed background colour of <body>. */
export function bodyBackground(page) {
  return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

/** Whether the page is wider than its viewport (horizontal scrolling). */
export function scrollWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

/**
 * Drops files on `selector` (default: <body>) with a DataTransfer built in the page,
 * as a person dragging files from the desktop would.
 */
export async function dropFiles(page, files, selector = "body") {
  const payload = files.map((f) => ({ name: f.name, type: f.type ?? "application/octet-stream", data: Array.from(Buffer.from(f.content)) }));
  await page.evaluate(
    ({ payload, selector }) => {
      const dt = new DataTransfer();
      for (const f of payload) dt.items.add(new File([new Uint8Array(f.data)], f.name, { type: f.type }));
      const target = document.querySelector(selector);
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
      }
    },
    { payload, selector },
  );
}

/** Pastes `text` into the element labelled `label` with a real ClipboardEvent. */
export async function pasteText(page, label, text) {
  const field = page.getByLabel(label);
  await field.focus();
  await field.evaluate((el, text) => {
    const dt = new DataTransfer();
    dt.setData("text/plain", text);
    el.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: dt }));
  }, text);
}

/** The `<li>` of the upload list whose text contains `name`. */
export function uploadItem(page, name) {
  return page.getByRole("list", { name: "Uploads" }).getByRole("listitem").filter({ hasText: name });
}

/** Waits for an upload item to finish and returns its short and full link hrefs. */
export async function completedUpload(page, name) {
  const item = uploadItem(page, name);
  await item.getByText("Upload complete!").waitFor();
  const hrefs = await item.locator("a[href^='/-'], a[href*='/-']").evaluateAll((as) => as.map((a) => new URL(a.href).pathname));
  const short = hrefs.find((h) => /^\/-[^/]+$/.test(h));
  const full = hrefs.find((h) => /^\/-[^/]+\/.+/.test(h));
  assert.ok(short, `short link in the upload item (links: ${hrefs.join(", ")})`);
  assert.ok(full, `full link in the upload item (links: ${hrefs.join(", ")})`);
  return { short, full, id: short.slice(2) };
}

/** Expects `locator` to become visible (Playwright's waitFor with a clearer message). */
export async function visible(locator, what) {
  try {
    await locator.first().waitFor({ state: "visible" });
  } catch (e) {
    throw new Error(`${what ?? locator} is not visible: ${e.message.split("\n")[0]}`);
  }
}

/** `GET /api/entries` with the context's session. */
export async function apiEntries(context) {
  const resp = await context.request.get("/api/entries");
  assert.equal(resp.status(), 200, `list entries: ${await resp.text()}`);
  return resp.json();
}

/** The path (and query) of the page's current URL. */
export function pathOf(page) {
  const u = new URL(page.url());
  return u.pathname + u.search;
}

/** Unfolds the upload page's Options (expiration, note, limits), if folded. */
export async function openOptions(page) {
  const details = page.locator("#upload-options");
  if (!(await details.evaluate((d) => d.open))) await details.locator("summary").click();
  await page.getByLabel("Expiration", { exact: true }).waitFor();
}

/** The upload page's one-line summary of the folded options. */
export function optionsSummary(page) {
  return page.locator("#options-summary").innerText();
}
