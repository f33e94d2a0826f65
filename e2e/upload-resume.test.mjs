// Large files go up as resumable uploads: when the server dies mid-upload and
// comes back (same address, same database), the page resumes from the
// server's offset on its own, and the progress bar carries on.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { SERVER_BIN, SECRET, TIMEOUT, launchBrowser, bytes, uploadItem, completedUpload, eventually, fetchBytesInPage } from "./helpers.mjs";

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the server on a fixed address and database; resolves when it listens. */
function startOn(port, db) {
  const child = spawn(SERVER_BIN, ["--listen", `127.0.0.1:${port}`, "--db", db], {
    env: { ...process.env, PS_SHARED_SECRET: SECRET, PS_METRICS_PUBLIC: "1", RUST_LOG: process.env.RUST_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-10_000);
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start\n${stderr}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (/picoshare listening on/.test(out)) {
        clearTimeout(timer);
        child.stdout.resume();
        resolve({ child, stderr: () => stderr });
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal})\n${stderr}`));
    });
  });
}

function kill(server, signal) {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve();
    server.child.once("exit", () => resolve());
    server.child.kill(signal);
  });
}

/** Bytes the server has read from upload bodies since it started. */
async function uploadBytes(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = text.match(/^picoshare_upload_bytes_total (\S+)$/m);
  return m ? Number(m[1]) : 0;
}

describe("resumable upload from the page", () => {
  let dir;
  let server;
  let browser;
  let port;
  let base;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "picoshare-e2e-resume-"));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = await startOn(port, path.join(dir, "store.db"));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close().catch(() => {});
    if (server) await kill(server, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("sends a guest's large file as a resumable upload within the link's limits", async () => {
    const context = await browser.newContext({ baseURL: base });
    context.setDefaultTimeout(TIMEOUT);
    const admin = await browser.newContext({ baseURL: base });
    const login = await admin.request.post("/api/auth", { data: { sharedSecretKey: SECRET } });
    assert.equal(login.status(), 200);
    const created = await admin.request.post("/api/guest-links", {
      data: { label: "big files", urlExpirationTime: "2030-01-01T00:00:00Z", fileLifetime: "876000h0m0s", maxFileBytes: 8 << 20, maxFileUploads: 1 },
    });
    assert.equal(created.status(), 200);
    const { id: link } = await created.json();
    const page = await context.newPage();
    const tusRequests = [];
    page.on("request", (r) => {
      if (r.url().includes(`/api/guest/${link}/tus`)) tusRequests.push(r.method());
    });
    await page.goto(`/g/${link}`);
    const content = bytes(6 * 1024 * 1024, 43);
    const file = path.join(dir, "guest-big.bin");
    await writeFile(file, content);
    await page.getByLabel("Choose files").setInputFiles(file);
    const { short, id } = await completedUpload(page, "guest-big.bin");
    assert.deepEqual(tusRequests.slice(0, 2), ["POST", "PATCH"], `requests: ${tusRequests.join(", ")}`);
    const got = await fetchBytesInPage(page, short);
    assert.ok(got.equals(content), "downloaded bytes differ");
    const entries = await (await admin.request.get("/api/entries")).json();
    const entry = entries.find((e) => e.id === id);
    assert.equal(entry?.guestLinkId, link);
    await context.close();
    await admin.close();
  });

  for (const signal of ["SIGKILL", "SIGTERM"]) {
    it(`continues after the server is stopped with ${signal} and restarted`, async () => {
      const context = await browser.newContext({ baseURL: base });
      context.setDefaultTimeout(TIMEOUT);
      const page = await context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const login = await context.request.post("/api/auth", { data: { sharedSecretKey: SECRET } });
      assert.equal(login.status(), 200);
      await page.goto("/");
      // About 3 MB/s, so the upload is still running when the server goes.
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 3_000_000 });
      const size = 8 * 1024 * 1024;
      const content = bytes(size, signal === "SIGKILL" ? 41 : 42);
      const name = `resume-${signal}.bin`;
      const file = path.join(dir, name);
      await writeFile(file, content);
      await page.getByLabel("Choose files").setInputFiles(file);
      const item = uploadItem(page, name);
      const bar = item.locator("progress");
      const barValue = () => bar.evaluate((p) => p.value);
      await eventually(async () => (await barValue()) >= 40, { timeout: 30_000, message: "40 % of the upload sent" });

      await kill(server, signal);
      await eventually(async () => /Resuming in \d+ s/.test(await item.innerText()), { message: `"Resuming in N s…" shown (was "${await item.innerText()}")` });
      server = await startOn(port, path.join(dir, "store.db"));

      // It resumes on its own, and the bar carries on from the server's offset:
      // it never goes back to 0 (starting over) on the way to completion.
      const seen = [];
      const deadline = Date.now() + 60_000;
      while (!/Upload complete!/.test(await item.innerText())) {
        assert.ok(Date.now() < deadline, `no completion after the restart (bar values ${seen.join(", ")})`);
        seen.push(await barValue());
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen.length > 0 && Math.min(...seen) > 0, `the bar went back to 0: ${seen.join(", ")}`);
      const { short } = await completedUpload(page, name);
      const got = await fetchBytesInPage(page, short);
      assert.equal(createHash("sha256").update(got).digest("hex"), createHash("sha256").update(content).digest("hex"));
      // Only the rest was sent again, not the whole file.
      const resent = await uploadBytes(base);
      assert.ok(resent < size * 0.8, `the restarted server received ${resent} of ${size} bytes`);
      assert.deepEqual(errors, []);
      await context.close();
    });
  }
});
