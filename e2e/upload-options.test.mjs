// The options, folded under the picker with a summary of what applies: a
// custom expiration date and a note go with the upload, then the note is
// cleared (it never silently carries over) while the expiration stays.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, completedUpload, apiEntries, visible, openOptions, optionsSummary } from "./helpers.mjs";

describe("upload options", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads with a custom expiration date and a note", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    assert.equal(await page.locator("#upload-options").evaluate((d) => d.open), false, "options folded");
    assert.equal(await optionsSummary(page), "(expires after 30 days)");
    await openOptions(page);
    const select = page.getByLabel("Expiration", { exact: true });
    const options = await select.locator("option").allTextContents();
    for (const o of ["1 day", "7 days", "30 days", "1 year", "Never", "Custom"]) {
      assert.ok(options.map((s) => s.trim()).includes(o), `option ${o} in ${options}`);
    }
    await select.selectOption({ label: "Custom" });
    const date = page.getByLabel("Expiration date");
    await visible(date);
    const when = new Date(Date.now() + 45 * 86400_000).toISOString().slice(0, 10);
    await date.fill(when);
    await page.getByLabel("Note (optional)").fill("for the e2e test");
    assert.equal(await optionsSummary(page), `(expires on ${when}, with a note)`);
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "with-options.txt", "options\n"));
    await completedUpload(page, "with-options.txt");
    const [entry] = await apiEntries(page.context());
    assert.equal(entry.filename, "with-options.txt");
    assert.equal(entry.note, "for the e2e test");
    assert.ok(entry.expiration, "has an expiration");
    const days = (Date.parse(entry.expiration) - Date.now()) / 86400_000;
    assert.ok(days > 43 && days < 47, `expires in about 45 days (${entry.expiration})`);
    assert.equal(await page.getByLabel("Note (optional)").inputValue(), "", "the note is cleared after the upload");
    assert.equal(await optionsSummary(page), `(expires on ${when})`);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("uploads with Never", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    await openOptions(page);
    await page.getByLabel("Expiration", { exact: true }).selectOption({ label: "Never" });
    assert.equal(await optionsSummary(page), "(never expires)");
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "forever.txt", "forever\n"));
    await completedUpload(page, "forever.txt");
    const entry = (await apiEntries(page.context())).find((e) => e.filename === "forever.txt");
    assert.equal(entry.expiration, null);
    ctx.checkPage(page);
    await page.context().close();
  });
});
