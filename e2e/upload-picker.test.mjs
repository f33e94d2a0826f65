// Upload with the file picker; the result's links open the file byte for byte.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, bytes, completedUpload, uploadItem, fetchBytesInPage, visible } from "./helpers.mjs";

describe("upload by file picker", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads the chosen file and shows working links, copy buttons and a QR code", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const content = bytes(2_000_000, 3);
    const file = await tempFile(ctx, "picked photo.bin", content);
    await page.getByLabel("Choose files").setInputFiles(file);
    const { short, full } = await completedUpload(page, "picked photo.bin");
    const item = uploadItem(page, "picked photo.bin");
    await visible(item.getByRole("button", { name: "Copy full link" }));
    await visible(item.getByRole("button", { name: "Copy short link" }));
    assert.equal(await item.getByRole("img").count(), 0, "no QR code until asked for");
    await item.getByText("Show QR code").click();
    await visible(item.getByRole("img", { name: "QR code of the short link" }));
    await visible(item.locator("progress"));
    assert.equal(full, `${short}/picked%20photo.bin`);

    assert.ok((await fetchBytesInPage(page, short)).equals(content), "short link serves the bytes");
    assert.ok((await fetchBytesInPage(page, full)).equals(content), "full link serves the bytes");
    // Following the link in the browser opens the file too.
    const resp = await page.request.get(short);
    assert.equal(resp.status(), 200);
    ctx.checkPage(page);
    await page.context().close();
  });
});
