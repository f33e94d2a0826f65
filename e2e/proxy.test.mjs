// Behind a reverse proxy: Debian's nginx (as configured out of the box, with
// its 1 MB client_max_body_size) in front of the server, the page opened
// through it. A resumable upload sent with the default request size meets
// the proxy's 413, goes down to requests the proxy lets through and completes,
// with no error shown; a small file sent in one request gets a sentence about
// the proxy's refusal, and Settings one about its 502 once the server is
// gone, never the proxy's HTML page.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setup, teardown, loginViaApi, tempFile, bytes, completedUpload, uploadItem, visible, fetchBytesInPage, TIMEOUT } from "./helpers.mjs";

const NGINX = "/usr/sbin/nginx";

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts nginx on a free loopback port in front of `upstream` (host:port). */
async function startNginx(upstream, { bodyLimit = "1m" } = {}) {
  await readFile(NGINX).catch(() => assert.fail(`${NGINX} is missing: install Debian's nginx package (scripts/test does)`));
  const dir = await mkdtemp(path.join(tmpdir(), "picoshare-e2e-nginx-"));
  const port = await freePort();
  const conf = `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    client_max_body_size ${bodyLimit};
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }
    }
}
`;
  await writeFile(path.join(dir, "nginx.conf"), conf);
  const child = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log")], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) assert.fail(`nginx exited: ${await readFile(path.join(dir, "error.log"), "utf8").catch(() => "")}`);
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (Date.now() > deadline) assert.fail("nginx is not listening after 15 s");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("behind nginx (1 MB body limit)", () => {
  let ctx;
  let nginx;
  before(async () => {
    ctx = await setup();
    nginx = await startNginx(new URL(ctx.url).host);
  });
  after(async () => {
    await nginx?.stop();
    await teardown(ctx);
  });

  async function proxiedPage() {
    const context = await ctx.browser.newContext({ baseURL: nginx.url, viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(TIMEOUT);
    await loginViaApi(context);
    return context.newPage();
  }

  it("completes a resumable upload with the default request size, in requests the proxy accepts", async () => {
    const page = await proxiedPage();
    const patches = [];
    page.on("response", async (r) => {
      if (r.request().method() === "PATCH") patches.push({ status: r.status(), bytes: Number(r.request().headers()["content-length"] ?? r.request().postDataBuffer()?.length ?? 0) });
    });
    await page.goto("/");
    const content = bytes(6 * 1024 * 1024, 41);
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "through-nginx.bin", content));
    const { short } = await completedUpload(page, "through-nginx.bin");
    const got = await fetchBytesInPage(page, short);
    assert.equal(createHash("sha256").update(got).digest("hex"), createHash("sha256").update(content).digest("hex"));
    assert.ok(patches.some((p) => p.status === 413), `the proxy refused the first, large requests (${JSON.stringify(patches)})`);
    const accepted = patches.filter((p) => p.status === 204);
    assert.ok(accepted.length >= 6, `then 1 MiB requests went through (${JSON.stringify(patches)})`);
    assert.equal(await uploadItem(page, "through-nginx.bin").getByRole("alert").count(), 0, "no error shown");
    // The size that worked is kept for the next uploads.
    assert.equal(await page.evaluate(() => localStorage.getItem("picoshare-tus-request-bytes:/api/tus")), String(1 << 20));
    await page.context().close();
  });

  it("says that the proxy refused a file sent in one request, without its HTML", async () => {
    const page = await proxiedPage();
    await page.goto("/");
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "over-the-limit.bin", bytes(2 * 1024 * 1024, 42)));
    const alert = uploadItem(page, "over-the-limit.bin").getByRole("alert");
    await visible(alert, "the error");
    assert.equal((await alert.innerText()).trim(), "The request was too large for a proxy in front of the server (HTTP 413).");
    assert.doesNotMatch(await uploadItem(page, "over-the-limit.bin").innerText(), /<|nginx/i, "no raw HTML from the proxy");
    await visible(uploadItem(page, "over-the-limit.bin").getByRole("button", { name: "Retry" }), "Retry");
    await page.context().close();
  });

  // Last: it stops the server behind the proxy.
  it("says that the server cannot be reached when the proxy answers 502, without its HTML", async () => {
    const page = await proxiedPage();
    await page.goto("/settings");
    await ctx.server.stop();
    await page.getByRole("button", { name: "Save" }).click();
    const error = page.locator("#settings-error");
    await visible(error, "the error");
    assert.equal((await error.innerText()).trim(), "The server could not be reached through its proxy (HTTP 502). Try again in a moment.");
    await page.context().close();
  });
});
