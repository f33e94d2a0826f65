// Login sessions: the login form without its script (it posts, so the
// passphrase never goes into a URL), and the Sessions page ending another
// browser's session and then this one's.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, visible, eventually, pathOf, SECRET } from "./helpers.mjs";

describe("sessions", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("logs in without JavaScript, by a POST", async () => {
    const page = await ctx.newPage({ javaScriptEnabled: false });
    const urls = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto("/login?next=/files");
    await page.getByLabel("Passphrase").fill("wrong one");
    await page.getByRole("button", { name: "Authenticate" }).click();
    await visible(page.getByRole("alert").filter({ hasText: "incorrect shared secret" }), "the error");
    await page.getByLabel("Passphrase").fill(SECRET);
    await page.getByRole("button", { name: "Authenticate" }).click();
    await eventually(() => pathOf(page) === "/files", { message: "on to /files" });
    await visible(page.getByRole("heading", { name: "Files", level: 1 }));
    for (const u of urls) {
      assert.ok(!u.includes("passphrase") && !u.includes(encodeURIComponent(SECRET)), `passphrase in ${u}`);
    }
    await page.context().close();
  });

  it("ends another session, then this one", async () => {
    const other = await adminPage(ctx);
    await other.goto("/");
    const page = await adminPage(ctx);
    await page.goto("/files");
    await page.getByRole("link", { name: "Sessions" }).click();
    await visible(page.getByRole("heading", { name: "Sessions", level: 1 }));
    const otherId = await other.evaluate(async () => {
      const list = await (await fetch("/api/sessions")).json();
      return list.find((s) => s.current).id;
    });
    const rows = page.locator("tbody tr");
    await visible(page.locator(`tr[data-session-id="${otherId}"]`), "the other browser's session");
    const before = await rows.count();
    await page
      .locator(`tr[data-session-id="${otherId}"]`)
      .getByRole("button", { name: "End", exact: true })
      .click();
    await visible(page.getByText("Session ended"), "the status");
    await eventually(async () => (await rows.count()) === before - 1, { message: "one session fewer" });
    const status = await other.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(status, 401, "the other browser is logged out");
    await rows.filter({ hasText: "this session" }).getByRole("button", { name: "Log out", exact: true }).click();
    await eventually(() => pathOf(page) === "/", { message: "back to /" });
    const mine = await page.evaluate(async () => (await fetch("/api/settings")).status);
    assert.equal(mine, 401, "this browser is logged out too");
    ctx.checkPage(page, { allow: [/status of 401/] });
    await page.context().close();
    await other.context().close();
  });
});
