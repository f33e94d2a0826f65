// Dropping files anywhere on the page uploads them.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, bytes, completedUpload, dropFiles, fetchBytesInPage } from "./helpers.mjs";

describe("upload by drag and drop", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads a file dropped on the page", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const content = bytes(150_000, 11);
    await dropFiles(page, [{ name: "dropped.bin", content }]);
    const { short } = await completedUpload(page, "dropped.bin");
    assert.ok((await fetchBytesInPage(page, short)).equals(content));
    ctx.checkPage(page);
    await page.context().close();
  });
});
