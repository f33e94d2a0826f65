// The public landing page for visitors who are not logged in.
import { describe, it, before, after } from "node:test";
import { setup, teardown, visible } from "./helpers.mjs";

describe("landing page", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("shows the landing page to visitors", async () => {
    const page = await ctx.newPage();
    await page.goto("/");
    await visible(page.getByRole("heading", { name: "What is PicoShare?" }));
    await visible(page.getByRole("link", { name: "Log In" }));
    ctx.checkPage(page);
    await page.context().close();
  });
});
