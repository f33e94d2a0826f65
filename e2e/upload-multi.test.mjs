// Several files chosen at once: one progress item each, all complete.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, bytes, completedUpload, fetchBytesInPage } from "./helpers.mjs";

describe("multi-file upload", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads two files with two progress items", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const a = bytes(1_500_000, 21);
    const b = bytes(40_000, 22);
    await page.getByLabel("Choose files").setInputFiles([await tempFile(ctx, "first.bin", a), await tempFile(ctx, "second.bin", b)]);
    const items = page.getByRole("list", { name: "Uploads" }).getByRole("listitem");
    const ra = await completedUpload(page, "first.bin");
    const rb = await completedUpload(page, "second.bin");
    assert.equal(await items.count(), 3, "two upload items and their share's");
    assert.equal(await items.locator("progress").count(), 2, "a progress bar each");
    assert.notEqual(ra.id, rb.id);
    assert.ok((await fetchBytesInPage(page, ra.short)).equals(a));
    assert.ok((await fetchBytesInPage(page, rb.short)).equals(b));
    ctx.checkPage(page);
    await page.context().close();
  });
});
