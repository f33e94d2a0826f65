// Keyboard use: the login form works with the keyboard alone; a file is
// chosen, uploaded, its link copied and its QR code shown with the keyboard
// alone; the focused control is visibly outlined.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, SECRET, eventually, pathOf, tempFile, completedUpload, uploadItem, visible } from "./helpers.mjs";

/** Presses Tab until `test(activeElement)` holds (evaluated in the page); fails after `max` presses. */
async function tabTo(page, test, what, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(test)) return;
  }
  assert.fail(`${what} is not reachable with Tab`);
}

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

  it("uploads a file, copies its link and shows its QR code with the keyboard alone", async () => {
    const page = await adminPage(ctx);
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: ctx.url });
    // Listening before the page loads turns the file chooser's interception on
    // in time (waiting only once the key is pressed can miss the chooser).
    const chooser = new Promise((resolve) => page.once("filechooser", resolve));
    await page.goto("/");
    await tabTo(page, () => document.activeElement?.id === "file-input", "the file picker");
    // The picker's focus shows on its visible label (the input itself is hidden).
    const outline = await page.evaluate(() => {
      const style = getComputedStyle(document.querySelector("label[for=file-input]"));
      return { width: parseFloat(style.outlineWidth), outline: style.outlineStyle };
    });
    assert.ok(outline.width >= 2 && outline.outline !== "none", `focus outline on Choose files: ${JSON.stringify(outline)}`);
    await page.keyboard.press("Space");
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("Space on the file picker opened no file chooser")), 15_000).unref());
    await (await Promise.race([chooser, timeout])).setFiles(await tempFile(ctx, "by-keyboard.txt", "typed with keys\n"));
    const { short } = await completedUpload(page, "by-keyboard.txt");
    await tabTo(page, () => document.activeElement?.getAttribute("aria-label") === "Copy short link", "Copy short link");
    await page.keyboard.press("Enter");
    await eventually(async () => (await page.evaluate(() => navigator.clipboard.readText())) === `${ctx.url}${short}`, { message: "the short link on the clipboard" });
    await visible(uploadItem(page, "by-keyboard.txt").getByRole("button", { name: "Copy short link" }).getByText("Copied"), "Copied on the button");
    await tabTo(page, () => document.activeElement?.textContent === "Show QR code", "Show QR code");
    await page.keyboard.press("Enter");
    await visible(uploadItem(page, "by-keyboard.txt").getByRole("img", { name: "QR code of the short link" }), "the QR code");
    // The options open from the keyboard too.
    await page.keyboard.press("Shift+Tab");
    await page.locator("#upload-options > summary").focus();
    await page.keyboard.press("Enter");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "expiration");
    ctx.checkPage(page);
    await page.context().close();
  });
});
