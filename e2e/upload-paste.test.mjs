// Pasting text into "Paste or type text" uploads it as pasted-<timestamp>.txt;
// typed text goes with the Upload text button.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, pasteText, fetchBytesInPage, apiEntries } from "./helpers.mjs";

describe("upload by paste", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads pasted text", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const text = "Hello from the clipboard ✓\nsecond line\n";
    await pasteText(page, "Paste or type text", text);
    const item = page.getByRole("list", { name: "Uploads" }).getByRole("listitem").filter({ hasText: /pasted-.*\.txt/ });
    await item.getByText("Upload complete!").waitFor();
    const short = await item.locator("a").evaluateAll((as) => as.map((a) => new URL(a.href).pathname).find((p) => /^\/-[^/]+$/.test(p)));
    assert.ok(short, "short link");
    assert.equal((await fetchBytesInPage(page, short)).toString("utf8"), text);
    const entries = await apiEntries(page.context());
    assert.equal(entries.length, 1);
    assert.match(entries[0].filename, /^pasted-.+\.txt$/);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("uploads typed text with the Upload text button", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    const box = page.getByLabel("Paste or type text");
    await box.fill("typed by hand\n");
    assert.equal(await box.inputValue(), "typed by hand\n", "typing stays in the box");
    await page.getByRole("button", { name: "Upload text" }).click();
    const item = page.getByRole("list", { name: "Uploads" }).getByRole("listitem").filter({ hasText: /pasted-.*\.txt/ });
    await item.getByText("Upload complete!").waitFor();
    assert.equal(await box.inputValue(), "", "the box is emptied once sent");
    const short = await item.locator("a").evaluateAll((as) => as.map((a) => new URL(a.href).pathname).find((p) => /^\/-[^/]+$/.test(p)));
    assert.equal((await fetchBytesInPage(page, short)).toString("utf8"), "typed by hand\n");
    ctx.checkPage(page);
    await page.context().close();
  });
});
