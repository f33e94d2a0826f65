// Upload experience: progress (percent, bytes sent of the size, speed, time
// left) in the item and in the tab title while a slow upload runs, Cancel, and
// a confirmation when leaving the page meanwhile.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, bytes, uploadItem, completedUpload, eventually, apiEntries, visible } from "./helpers.mjs";

describe("upload progress", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("shows percent, speed and time left, in the page and the title, then completes", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    // Throttle uploads to ~1 MB/s so that progress can be seen.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_000_000 });
    const content = bytes(3_000_000, 31);
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "slow.bin", content));
    const item = uploadItem(page, "slow.bin");
    const progressText = /\d+ % · [\d.]+ [kMG]?B of 2\.86 MB · [\d.]+ [kMG]?B\/s · .*left/;
    await eventually(async () => progressText.test(await item.innerText()), { message: `progress text like "45 % · 1.29 MB of 2.86 MB · 1.0 MB/s · 2 s left"` });
    await eventually(async () => /^PicoShare ↑ \d+%/.test(await page.title()), { message: `title "PicoShare ↑ N%" (was "${await page.title()}")` });
    const value = await item.locator("progress").evaluate((p) => p.value / (p.max || 1));
    assert.ok(value > 0 && value < 1, `progress bar part-way (${value})`);
    await completedUpload(page, "slow.bin");
    await eventually(async () => !/↑/.test(await page.title()), { message: "title without progress after completion" });
    ctx.checkPage(page);
    await page.context().close();
  });

  it("cancels a resumable upload: nothing is kept, and it can be sent again", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 500_000 });
    const deletes = [];
    page.on("request", (r) => {
      if (r.method() === "DELETE" && r.url().includes("/api/tus/")) deletes.push(r.url());
    });
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "cancel-me.bin", bytes(6 * 1024 * 1024, 33)));
    const item = uploadItem(page, "cancel-me.bin");
    await eventually(async () => /[1-9]\d* % · /.test(await item.innerText()), { message: "upload under way" });
    await item.getByRole("button", { name: "Cancel the upload of cancel-me.bin" }).click();
    await visible(item.getByText("The upload was cancelled."), "the cancelled state");
    assert.equal(await item.getByRole("button", { name: /^Cancel/ }).isVisible(), false, "no Cancel once cancelled");
    await eventually(() => deletes.length === 1, { message: "the resumable upload is removed from the server (DELETE)" });
    await eventually(async () => !/↑/.test(await page.title()), { message: "title without progress after Cancel" });
    assert.equal((await apiEntries(page.context())).filter((e) => e.filename === "cancel-me.bin").length, 0, "nothing listed");
    // Sent again, it completes.
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await item.getByRole("button", { name: "Upload again" }).click();
    await completedUpload(page, "cancel-me.bin");
    assert.equal((await apiEntries(page.context())).filter((e) => e.filename === "cancel-me.bin").length, 1);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("asks for confirmation before leaving during an upload", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 200_000 });
    // beforeunload dialogs need a user gesture on the page first.
    await page.mouse.click(5, 400);
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "leaving.bin", bytes(3_000_000, 32)));
    await eventually(async () => /\d+ %/.test(await uploadItem(page, "leaving.bin").innerText()), { message: "upload in progress" });
    const dialog = new Promise((resolve) => page.once("dialog", resolve));
    await page.close({ runBeforeUnload: true });
    const d = await dialog;
    assert.equal(d.type(), "beforeunload");
    await d.dismiss();
    assert.equal(page.isClosed(), false, "the page stays when the visitor cancels");
    // The upload is still running: closing the context may race with the page's
    // own teardown in Chromium, which is not what this test is about.
    await page.context().close().catch(() => {});
  });
});
