// A 375 px wide phone screen needs no horizontal scrolling.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, scrollWidth, tempFile, completedUpload } from "./helpers.mjs";

describe("phone viewport", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("has no horizontal scroll on the upload and files pages at 375×800", async () => {
    const page = await adminPage(ctx, { viewport: { width: 375, height: 800 }, isMobile: true, hasTouch: true });
    await apiUpload(page.context(), "a-rather-long-file-name-that-could-push-the-table-wide.tar.gz", "x".repeat(5000), { note: "a note" });
    for (const path of ["/", "/files"]) {
      await page.goto(path);
      const w = await scrollWidth(page);
      assert.ok(w <= 375, `${path}: scrollWidth ${w} <= 375`);
    }
    // With a finished upload of a long-named file in the list, links and QR code included.
    await page.goto("/");
    const name = "a-rather-long-file-name-without-any-spaces-to-break-it-up-0123456789.txt";
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, name, "long\n"));
    await completedUpload(page, name);
    const w = await scrollWidth(page);
    assert.ok(w <= 375, `/ after an upload: scrollWidth ${w} <= 375`);
    ctx.checkPage(page);
    await page.context().close();
  });
});
