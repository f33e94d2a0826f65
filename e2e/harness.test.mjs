// The harness itself, against what the server serves without any page: the real
// binary starts on a free port, Chromium reaches it, the API session cookie works
// in the browser, assets carry cache headers, and a file uploaded from the page
// downloads byte for byte.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, loginViaApi, bytes, fetchBytesInPage, SECRET } from "./helpers.mjs";

describe("harness", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("serves the stylesheet and script with long-lived cache headers", async () => {
    const page = await ctx.newPage();
    for (const [name, type] of [["style.css", /^text\/css/], ["app.js", /^text\/javascript/]]) {
      const resp = await page.goto(`/static/${name}`);
      assert.equal(resp.status(), 200, name);
      const h = resp.headers();
      assert.match(h["content-type"], type, `${name} content-type`);
      assert.ok(h["cache-control"], `${name} has Cache-Control`);
      assert.doesNotMatch(h["cache-control"], /no-store/, `${name} is cacheable`);
    }
    await page.context().close();
  });

  it("refuses a wrong passphrase and accepts the right one through the API from the browser", async () => {
    const page = await ctx.newPage();
    await page.goto("/static/app.js");
    const wrong = await page.evaluate(async () => {
      const r = await fetch("/api/auth", { method: "POST", body: JSON.stringify({ sharedSecretKey: "nope" }) });
      return { status: r.status, text: await r.text() };
    });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /incorrect shared secret/);
    const right = await page.evaluate(async (s) => {
      const r = await fetch("/api/auth", { method: "POST", body: JSON.stringify({ sharedSecretKey: s }) });
      return r.status;
    }, SECRET);
    assert.equal(right, 200);
    const settings = await page.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(settings, 200, "the session cookie is sent by the browser");
    await page.context().close();
  });

  it("uploads from the page with XHR and downloads the same bytes from the short link", async () => {
    const page = await ctx.newPage();
    await loginViaApi(page.context());
    await page.goto("/static/app.js");
    const content = bytes(300_000, 7);
    const id = await page.evaluate(async (data) => {
      const fd = new FormData();
      fd.append("file", new File([new Uint8Array(data)], "harness.bin"));
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/entry");
      xhr.setRequestHeader("Accept", "application/json");
      const done = new Promise((res, rej) => {
        xhr.onload = () => (xhr.status === 200 ? res(JSON.parse(xhr.responseText).id) : rej(new Error(`${xhr.status} ${xhr.responseText}`)));
        xhr.onerror = () => rej(new Error("network error"));
      });
      xhr.send(fd);
      return done;
    }, Array.from(content));
    assert.match(id, /^[A-Za-z0-9]+$/);
    const got = await fetchBytesInPage(page, `/-${id}`);
    assert.ok(got.equals(content), "downloaded bytes equal the uploaded ones");
    ctx.checkPage(page);
    await page.context().close();
  });
});
