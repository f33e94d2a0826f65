// A failed upload shows the server's message in plain words and a Retry button that works.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, uploadItem, completedUpload, fetchBytesInPage, visible } from "./helpers.mjs";

describe("upload error and retry", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("shows the error, and Retry uploads the file", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    // The first attempt meets a full disk; later ones reach the real server.
    let failed = 0;
    await page.route("**/api/entry**", async (route) => {
      if (route.request().method() === "POST" && failed === 0) {
        failed++;
        // The server's errors are text/plain messages.
        await route.fulfill({ status: 507, contentType: "text/plain; charset=utf-8", body: "The server's disk is full: the file was not stored." });
      } else {
        await route.continue();
      }
    });
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "retry-me.txt", "second time lucky\n"));
    const item = uploadItem(page, "retry-me.txt");
    await visible(item.getByRole("alert").filter({ hasText: "The server's disk is full: the file was not stored." }), "the error message");
    await item.getByRole("button", { name: "Retry" }).click();
    const { short } = await completedUpload(page, "retry-me.txt");
    assert.equal((await fetchBytesInPage(page, short)).toString(), "second time lucky\n");
    ctx.checkPage(page, { allow: [/status of 507/] });
    await page.context().close();
  });
});
