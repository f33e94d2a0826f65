// Login with a wrong and then the right passphrase.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, loginViaPage, visible, eventually, pathOf } from "./helpers.mjs";

describe("login", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("refuses a wrong passphrase and accepts the right one", async () => {
    const page = await ctx.newPage();
    await loginViaPage(page, { secret: "definitely-wrong" });
    await visible(page.getByRole("alert").filter({ hasText: "incorrect shared secret" }), "the error alert");
    assert.equal(new URL(page.url()).pathname, "/login", "still on the login page");
    const refused = await page.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(refused, 401, "no session after a wrong passphrase");

    await loginViaPage(page);
    await eventually(() => pathOf(page) === "/", { message: "redirect to / after login" });
    for (const name of ["Upload", "Files", "Guest Links", "Information", "Settings"]) {
      await visible(page.getByRole("link", { name }), `nav item ${name}`);
    }
    await visible(page.getByLabel("Choose files"), "the upload page");
    const status = await page.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(status, 200, "logged in");
    // The refused login and the check after it are logged as 401s; nothing else.
    ctx.checkPage(page, { allow: [/status of 401/] });
    await page.context().close();
  });
});
