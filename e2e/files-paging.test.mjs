// The file list in pages: 100 files a page, sort by a column, filter by
// name and page on, all swapped in without reloading the page, the address
// following; and the same links work as plain navigation.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, eventually, visible } from "./helpers.mjs";

describe("files in pages", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("pages, sorts and filters 130 files in place", async () => {
    const page = await adminPage(ctx);
    for (let i = 0; i < 130; i++) {
      const name = `${i % 2 ? "photo" : "Report"}-${String(i).padStart(3, "0")}.txt`;
      await apiUpload(page.context(), name, "x".repeat(i + 1));
    }
    await page.goto("/files");
    const rows = page.locator("tbody tr");
    await eventually(async () => (await rows.count()) === 100, { message: "100 rows on page 1" });
    await visible(page.getByText("Showing 1–100 of 130 files"), "the summary");
    await visible(page.getByText("Page 1 of 2"), "the position");
    // Newest first.
    assert.equal(await rows.first().getAttribute("data-filename"), "photo-129.txt");

    // Marks the document: a reload would lose it.
    await page.evaluate(() => {
      window.__samePage = true;
    });
    const samePage = () => page.evaluate(() => window.__samePage === true);

    await page.getByRole("link", { name: "Next" }).click();
    await eventually(async () => (await rows.count()) === 30, { message: "30 rows on page 2" });
    await visible(page.getByText("Page 2 of 2"));
    assert.equal(await rows.last().getAttribute("data-filename"), "Report-000.txt");
    assert.match(page.url(), /page=2/);
    assert.ok(await samePage(), "page 2 came without a reload");

    // Largest first: sizes go up with the index.
    await page.getByRole("link", { name: "Size" }).click();
    await eventually(async () => (await rows.first().getAttribute("data-filename")) === "Report-000.txt", {
      message: "smallest first after one click on Size",
    });
    await page.getByRole("link", { name: "Size" }).click();
    await eventually(async () => (await rows.first().getAttribute("data-filename")) === "photo-129.txt", {
      message: "largest first after a second click",
    });
    assert.equal(await page.locator('th[aria-sort="descending"]').innerText(), "Size");
    assert.match(page.url(), /sort=size&order=desc/);

    // The filter asks the server, ignoring case, and keeps the order.
    await page.getByLabel("Filter by name").fill("REPORT-1");
    await eventually(async () => (await rows.count()) === 15, { message: "15 reports from 100 to 128" });
    await visible(page.getByRole("status").filter({ hasText: "Showing 1–15 of 15 matching files" }), "the live summary");
    assert.equal(await rows.first().getAttribute("data-filename"), "Report-128.txt");
    assert.ok(await samePage(), "filtered without a reload");
    assert.match(page.url(), /q=REPORT-1/);

    // The address works on its own (a reload, or a link shared).
    await page.reload();
    await eventually(async () => (await rows.count()) === 15, { message: "the same 15 after a reload" });
    assert.equal(await page.getByLabel("Filter by name").inputValue(), "REPORT-1");
    ctx.checkPage(page);
    await page.context().close();
  });
});
