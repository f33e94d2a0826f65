// API tokens: create one on the page, see it once, download the ShareX
// configuration and upload with what it says, reload (the token is gone from
// the page), revoke it (uploads with it are then refused).
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setup, teardown, adminPage, visible } from "./helpers.mjs";

describe("API tokens", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("creates a token shown once, offers a ShareX configuration, revokes it", async () => {
    const page = await adminPage(ctx);
    await page.goto("/files");
    await page.getByRole("link", { name: "API Tokens" }).click();
    await visible(page.getByRole("heading", { name: "API Tokens", level: 1 }));
    await visible(page.getByText("No API tokens yet."));

    await page.getByLabel("Token name").fill("ShareX laptop");
    await page.getByRole("button", { name: "Create token" }).click();
    const tokenField = page.getByLabel("Token", { exact: true });
    await visible(tokenField, "the new token");
    const token = await tokenField.inputValue();
    assert.match(token, /^pst_[0-9a-f]{64}$/);
    await visible(page.getByText("it is shown only this once"));
    const curl = await page.getByLabel("Upload with curl").inputValue();
    assert.ok(curl.includes(`curl -H "Authorization: Bearer ${token}" -T FILE ${ctx.url}/api/upload/`), curl);
    assert.ok(curl.includes(`-F file=@FILE ${ctx.url}/api/entry`), curl);

    // The row appears at once, with the prefix only.
    const row = page.locator("tr[data-token-id]").filter({ hasText: "ShareX laptop" });
    await visible(row, "the new token's row");
    await visible(row.getByText(`${token.slice(0, 12)}…`));
    assert.ok(!(await row.textContent()).includes(token.slice(12)), "the row shows the secret");

    // The ShareX configuration, built in the browser.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download ShareX configuration" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "picoshare-ShareX-laptop.sxcu");
    const sxcu = JSON.parse(await readFile(await download.path(), "utf8"));
    assert.equal(sxcu.RequestMethod, "POST");
    assert.equal(sxcu.RequestURL, `${ctx.url}/api/entry`);
    assert.equal(sxcu.Body, "MultipartFormData");
    assert.equal(sxcu.FileFormName, "file");
    assert.equal(sxcu.DestinationType, "ImageUploader, TextUploader, FileUploader");
    assert.equal(sxcu.Headers.Authorization, `Bearer ${token}`);
    assert.equal(sxcu.URL, "{json:url}");

    // Do what ShareX would do with it, from outside the browser.
    const form = new FormData();
    form.append(sxcu.FileFormName, new Blob(["from sharex\n"]), "shot.png");
    const resp = await fetch(sxcu.RequestURL, { method: sxcu.RequestMethod, headers: sxcu.Headers, body: form });
    assert.equal(resp.status, 200);
    const { id, url } = await resp.json();
    assert.equal(url, `${ctx.url}/-${id}`);
    assert.equal(await (await fetch(url)).text(), "from sharex\n");

    // Done hides the token; a reload never shows it again, but shows its use.
    await page.getByRole("button", { name: "Done" }).click();
    assert.equal(await tokenField.isVisible(), false);
    await page.reload();
    assert.ok(!(await page.content()).includes(token.slice(12)), "the page shows the token after a reload");
    await visible(row.getByText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/).nth(1), "the last use");

    // Revoke asks first; Cancel keeps the token.
    await row.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.getByRole("dialog");
    await visible(dialog.getByText(/^Revoke the token “ShareX laptop”\?/), "the confirmation");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await dialog.count(), 0, "the dialog is gone");
    assert.equal(await row.count(), 1, "the token stays after Cancel");
    // Revoke: the row goes, and the token no longer uploads.
    await row.getByRole("button", { name: "Revoke" }).click();
    await dialog.getByRole("button", { name: "Revoke" }).click();
    await visible(page.getByRole("status").filter({ hasText: "Token revoked" }));
    assert.equal(await row.count(), 0);
    await visible(page.getByText("No API tokens yet."));
    const again = await fetch(`${ctx.url}/api/upload/x.txt`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${token}` },
      body: "x",
    });
    assert.equal(again.status, 401);
    const list = await (await page.request.get("/api/tokens")).json();
    assert.deepEqual(list, []);

    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows the server's message for a name it refuses", async () => {
    const page = await adminPage(ctx);
    await page.goto("/tokens");
    await page.getByLabel("Token name").fill("x".repeat(100));
    // Bypass the field's own limit to see the server's answer.
    await page.getByLabel("Token name").evaluate((el) => {
      el.removeAttribute("maxlength");
      el.value = "y".repeat(101);
    });
    await page.getByRole("button", { name: "Create token" }).click();
    await visible(page.getByRole("alert").filter({ hasText: "at most 100 characters" }));
    ctx.checkPage(page, { allow: [/status of 400/] });
    await page.context().close();
  });
});
