// Rename a file from the Files page, then delete it.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, apiEntries, eventually, pathOf, visible } from "./helpers.mjs";

describe("edit and delete", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("lists, filters, renames and deletes a file", async () => {
    const page = await adminPage(ctx);
    const id = await apiUpload(page.context(), "original-name.txt", "edit me\n", { note: "a note" });
    await apiUpload(page.context(), "other.txt", "other\n");
    await page.goto("/files");
    const row = page.locator('tr[data-filename="original-name.txt"]');
    await visible(row, "the file's row");
    await visible(row.getByRole("link", { name: "original-name.txt" }));
    await page.getByLabel("Filter by name").fill("original");
    await eventually(async () => !(await page.locator('tr[data-filename="other.txt"]').isVisible()), { message: "filter hides other.txt" });
    await visible(row);

    await row.getByRole("link", { name: "Edit" }).click();
    await eventually(() => pathOf(page) === `/files/${id}/edit`, { message: "edit page" });
    const name = page.getByLabel("Filename");
    assert.equal(await name.inputValue(), "original-name.txt");
    assert.equal(await page.getByLabel("Note").inputValue(), "a note");
    await name.fill("renamed.txt");
    await page.getByRole("button", { name: "Save" }).click();
    await eventually(() => pathOf(page) === "/files", { message: "back to /files after Save" });
    await visible(page.locator('tr[data-filename="renamed.txt"]'), "the renamed row");
    assert.equal(await page.locator('tr[data-filename="original-name.txt"]').count(), 0);
    assert.ok((await apiEntries(page.context())).some((e) => e.id === id && e.filename === "renamed.txt"));

    await page.goto(`/files/${id}/edit`);
    await page.getByRole("button", { name: "Delete" }).click();
    await eventually(() => pathOf(page) === `/files/${id}/confirm-delete`, { message: "confirm-delete page" });
    await visible(page.getByText("Permanently delete renamed.txt?"));
    await page.getByRole("button", { name: "Delete" }).click();
    await eventually(() => pathOf(page) === "/files", { message: "back to /files after Delete" });
    await page.locator("table").first().waitFor();
    assert.equal(await page.locator('tr[data-filename="renamed.txt"]').count(), 0, "row gone");
    assert.ok(!(await apiEntries(page.context())).some((e) => e.id === id), "entry gone");
    const resp = await page.request.get(`/-${id}`);
    assert.equal(resp.status(), 404);
    ctx.checkPage(page);
    await page.context().close();
  });
});
