// A password-protected one-shot file: uploaded with both options from the
// upload page, opened in a fresh browser, unlocked through the password form,
// downloaded once; the second attempt says the download limit is used up.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, completedUpload, eventually, visible , openOptions } from "./helpers.mjs";

describe("protected one-shot file", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("asks for the password, downloads once, then refuses", async () => {
    const admin = await adminPage(ctx);
    await admin.goto("/");
    await openOptions(admin);
    await admin.getByLabel("Password (optional)").fill("open sesame");
    await admin.getByLabel("One-shot (1 download)").check();
    await admin.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "secret.txt", "the secret contents\n"));
    const { short } = await completedUpload(admin, "secret.txt");

    // The owner's file list shows the badges.
    await admin.goto("/files");
    const row = admin.getByRole("row").filter({ hasText: "secret.txt" });
    await visible(row.getByText("locked"), "the locked badge");
    await visible(row.getByText("one-shot"), "the one-shot badge");
    ctx.checkPage(admin);
    await admin.context().close();

    // A visitor in a fresh context gets the form, not the file.
    const page = await ctx.newPage();
    const first = await page.goto(short);
    assert.equal(first.status(), 401);
    await visible(page.getByRole("heading", { name: "Password required" }));
    assert.ok(!(await page.content()).includes("the secret contents"));

    // A wrong password keeps the form.
    await page.getByLabel("Password", { exact: true }).fill("wrong");
    await page.getByRole("button", { name: "Download" }).click();
    await visible(page.getByText("Wrong password."));

    await page.getByLabel("Password", { exact: true }).fill("open sesame");
    const [download] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "GET" && new URL(r.url()).pathname === short),
      page.getByRole("button", { name: "Download" }).click(),
    ]);
    assert.equal(download.status(), 200);
    assert.equal(await download.text(), "the secret contents\n");

    // Used up: the next attempt says so (once the first download is recorded).
    const text = await eventually(
      async () => {
        const resp = await page.goto(short);
        return resp.status() === 410 && (await page.textContent("body"));
      },
      { message: "the used-up reply" },
    );
    assert.match(text, /reached its download limit/);
    // Besides the refusals: the sandboxed download (an opaque origin) may not
    // load the site's favicon, and asks for /favicon.ico, which does not exist.
    ctx.checkPage(page, { allow: [/status of 40[149]/, /status of 410/, /ERR_BLOCKED_BY_RESPONSE\.NotSameOrigin/] });
    await page.context().close();
  });
});
