// After a download, the file's info shows it and its history has a row.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, visible, eventually, pathOf } from "./helpers.mjs";

describe("download history", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("shows no downloads, then one row after a download", async () => {
    const page = await adminPage(ctx);
    const id = await apiUpload(page.context(), "history.txt", "history\n");
    await page.goto(`/files/${id}/downloads`);
    await visible(page.getByRole("heading", { name: /history\.txt/ }));
    await visible(page.getByText("No downloads yet."));

    // A visitor (no session) downloads the file in the browser.
    const visitor = await ctx.newPage();
    const resp = await visitor.goto(`/-${id}`);
    assert.equal(resp.status(), 200);
    await visitor.context().close();

    // Download records are gathered for about a second before they are
    // written: reload the file's page until it counts the download.
    await eventually(
      async () => {
        await page.goto(`/files/${id}/info`);
        return (await page.getByText(/Downloads: 1/).count()) > 0;
      },
      { interval: 250, message: "the file's page to count the download" },
    );
    await page.getByRole("link", { name: "History", exact: true }).click();
    await eventually(() => pathOf(page).startsWith(`/files/${id}/downloads`), { message: "history page" });
    const rows = page.locator("tbody tr");
    await visible(rows);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /127\.0\.0\.1/);
    assert.match(await rows.first().innerText(), /Chrome/);
    assert.equal(await page.getByText("No downloads yet.").count(), 0);
    await page.getByLabel("Unique IPs only").check();
    await eventually(() => new URL(page.url()).searchParams.get("unique") === "true", { message: "unique=true" });
    await visible(page.locator("tbody tr"));
    ctx.checkPage(page);
    await page.context().close();
  });
});
