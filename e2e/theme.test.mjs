// The dark theme follows the system setting.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, bodyBackground } from "./helpers.mjs";

describe("theme", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  for (const path of ["/login", "/"]) {
    it(`renders ${path} differently in dark mode`, async () => {
      const page = path === "/login" ? await ctx.newPage() : await adminPage(ctx);
      await page.emulateMedia({ colorScheme: "light" });
      await page.goto(path);
      const light = await bodyBackground(page);
      await page.emulateMedia({ colorScheme: "dark" });
      const dark = await bodyBackground(page);
      assert.notEqual(dark, light, "body background differs between light and dark");
      const [r, g, b] = dark.match(/\d+/g).map(Number);
      assert.ok(r + g + b < 3 * 100, `dark background is dark (${dark})`);
      ctx.checkPage(page);
      await page.context().close();
    });
  }
});
