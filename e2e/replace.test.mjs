// Replacing a file's content from its page: the "Replace file" form sends the
// new version (PUT /api/entry/{id}/content); the page shows the new name and
// size, and the same links serve the new bytes; "Keep the name" keeps the
// old name; an empty file is refused with a message.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, bytes, eventually, fetchBytesInPage, pathOf, tempFile, visible } from "./helpers.mjs";

describe("replace a file", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("replaces the content behind the same links, with and without the name", async () => {
    const page = await adminPage(ctx);
    const id = await apiUpload(page.context(), "report-v1.txt", "version one\n");
    const share = await page.context().request.post("/api/shares", { data: { entries: [id] } });
    assert.equal(share.status(), 200);
    const shareId = (await share.json()).id;
    await page.goto(`/files/${id}/info`);
    const form = page.getByRole("form", { name: "Replace file" });
    await visible(form, "the Replace file form");

    // An empty file: refused before anything is sent.
    await form.getByLabel("New file").setInputFiles(await tempFile(ctx, "empty.txt", ""));
    await form.getByRole("button", { name: "Replace file" }).click();
    await visible(form.getByRole("alert").getByText("The new file is empty"), "the empty-file message");

    // A larger new version, its name and size follow.
    const v2 = bytes(3 << 20, 7);
    await form.getByLabel("New file").setInputFiles(await tempFile(ctx, "report-v2.bin", v2));
    await form.getByRole("button", { name: "Replace file" }).click();
    await visible(page.getByRole("heading", { level: 1, name: "report-v2.bin" }), "the new name after the reload");
    assert.equal(pathOf(page), `/files/${id}/info`);
    await visible(page.getByText("3.00 MB", { exact: true }), "the new size");
    const got = await fetchBytesInPage(page, `/-${id}`);
    assert.ok(got.equals(v2), `the short link serves the new bytes (${got.length} of ${v2.length}: ${got.subarray(0, 20).toString("hex")} vs ${v2.subarray(0, 20).toString("hex")})`);
    const zip = await page.context().request.get(`/s/${shareId}/zip`);
    assert.equal(zip.status(), 200, "the share still works");
    assert.ok((await zip.body()).includes(Buffer.from("report-v2.bin")), "the share's ZIP holds the new version");

    // Keep the name: only the bytes change.
    const v3 = "version three\n";
    const again = page.getByRole("form", { name: "Replace file" });
    await again.getByLabel("New file").setInputFiles(await tempFile(ctx, "other-name.txt", v3));
    await again.getByLabel(/Keep the name/).check();
    await again.getByRole("button", { name: "Replace file" }).click();
    await eventually(async () => (await fetchBytesInPage(page, `/-${id}`)).toString() === v3, { message: "the new bytes" });
    await visible(page.getByRole("heading", { level: 1, name: "report-v2.bin" }), "the name kept");
    assert.equal(await page.getByText("other-name.txt").count(), 0);
    ctx.checkPage(page);
    await page.context().close();
  });
});
