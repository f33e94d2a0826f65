// Pasting text into "Paste here" uploads it as pasted-<timestamp>.txt.
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
    await pasteText(page, "Paste here", text);
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
});
