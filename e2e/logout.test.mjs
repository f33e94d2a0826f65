// Log out from the navigation.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, visible, eventually, pathOf } from "./helpers.mjs";

describe("logout", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("logs out with the Log Out button", async () => {
    const page = await adminPage(ctx);
    await page.goto("/files");
    await page.getByRole("button", { name: "Log Out" }).click();
    await eventually(() => pathOf(page) === "/", { message: "back to /" });
    await visible(page.getByRole("link", { name: "Log In" }), "the Log In link after logout");
    await visible(page.getByRole("heading", { name: "What is PicoShare?" }));
    const status = await page.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(status, 401, "the session is gone after logout");
    const resp = await page.goto("/files");
    assert.equal(new URL(resp.url()).pathname, "/login", "admin pages need a login again");
    ctx.checkPage(page, { allow: [/status of 401/] });
    await page.context().close();
  });
});
