// An unauthenticated visit to an admin page goes to the login page and comes back after login.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, eventually, pathOf, SECRET } from "./helpers.mjs";

describe("login redirect", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("sends /files to /login and back to /files", async () => {
    const page = await ctx.newPage();
    const resp = await page.goto("/files");
    assert.equal(new URL(resp.url()).pathname, "/login");
    assert.equal(new URL(resp.url()).searchParams.get("next"), "/files");
    await page.getByLabel("Passphrase").fill(SECRET);
    await page.getByRole("button", { name: "Authenticate" }).click();
    await eventually(() => pathOf(page) === "/files", { message: "return to /files" });
    await page.getByLabel("Filter by name").waitFor();
    ctx.checkPage(page);
    await page.context().close();
  });
});
