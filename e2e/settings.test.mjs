// Changing the default lifetime in Settings preselects it on the upload page.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, visible } from "./helpers.mjs";

describe("settings", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("saves 7 days and the upload page preselects it", async () => {
    const page = await adminPage(ctx);
    await page.goto("/settings");
    const forever = page.getByLabel("Store files forever");
    if (await forever.isChecked()) await forever.uncheck();
    await page.getByLabel("Default file expiration").fill("7");
    await page.getByLabel("Unit").selectOption({ label: "Days" });
    await page.getByRole("button", { name: "Save" }).click();
    await visible(page.getByRole("status").filter({ hasText: "Settings saved" }));
    const api = await (await page.request.get("/api/settings")).json();
    assert.equal(api.defaultExpirationDays, 7);

    await page.goto("/");
    const selected = await page.getByLabel("Expiration", { exact: true }).evaluate((s) => s.selectedOptions[0]?.textContent.trim());
    assert.equal(selected, "7 days");
    ctx.checkPage(page);
    await page.context().close();
  });
});
