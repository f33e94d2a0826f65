// Keyboard use: the login form works with the keyboard alone, and the focused
// control on the upload page is visibly outlined.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, SECRET, eventually, pathOf } from "./helpers.mjs";

describe("keyboard", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("logs in with the keyboard alone", async () => {
    const page = await ctx.newPage();
    await page.goto("/login");
    // Tab from the top of the page until the passphrase field has focus.
    let found = false;
    for (let i = 0; i < 20 && !found; i++) {
      await page.keyboard.press("Tab");
      found = await page.evaluate(() => document.activeElement?.getAttribute("type") === "password");
    }
    assert.ok(found, "the passphrase field is reachable with Tab");
    await page.keyboard.type(SECRET);
    await page.keyboard.press("Enter");
    await eventually(() => pathOf(page) === "/", { message: "login by keyboard lands on /" });
    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows a visible focus outline on the upload page", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const select = page.getByLabel("Expiration", { exact: true });
    await select.focus();
    await page.keyboard.press("Tab");
    await page.keyboard.press("Shift+Tab");
    const outline = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { tag: el.tagName, width: parseFloat(style.outlineWidth), outline: style.outlineStyle };
    });
    assert.equal(outline.tag, "SELECT");
    assert.ok(outline.width >= 2 && outline.outline !== "none", `focus outline: ${JSON.stringify(outline)}`);
    ctx.checkPage(page);
    await page.context().close();
  });
});
