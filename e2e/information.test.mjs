// System information shows the disk usage.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, apiUpload, visible } from "./helpers.mjs";

describe("system information", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("shows disk usage, data sizes and the version", async () => {
    const page = await adminPage(ctx);
    await apiUpload(page.context(), "some.txt", "some data\n");
    await page.goto("/information");
    const bar = page.getByRole("progressbar", { name: "Disk usage" });
    await visible(bar, "the Disk usage bar");
    const value = await bar.evaluate((p) => [p.value, p.max]);
    assert.ok(value[1] > 0 && value[0] > 0 && value[0] <= value[1], `progress value/max ${value}`);
    for (const text of ["Upload data", "Database files", "Reclaimable space", "Version:"]) {
      await visible(page.getByText(text).first(), text);
    }
    ctx.checkPage(page);
    await page.context().close();
  });
});
