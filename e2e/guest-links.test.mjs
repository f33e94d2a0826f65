// Guest links: create one, upload through it, size limit refused in the browser, disable.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, bytes, completedUpload, apiEntries, eventually, pathOf, visible } from "./helpers.mjs";

describe("guest links", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("creates a link, a guest uploads, an oversized file is refused, disabling ends it", async () => {
    const admin = await adminPage(ctx);
    await admin.goto("/guest-links");
    await admin.getByRole("link", { name: "Create new" }).click();
    await eventually(() => pathOf(admin) === "/guest-links/new", { message: "creation form" });
    await admin.getByLabel("Label").fill("for Alice");
    await admin.getByLabel("Max file size (MB)").fill("1");
    await admin.getByLabel("Upload limit").fill("5");
    await admin.getByRole("button", { name: "Create" }).click();
    await eventually(() => pathOf(admin) === "/guest-links", { message: "back to /guest-links" });
    const row = admin.locator("tr[data-guest-link-id]").filter({ hasText: "for Alice" });
    await visible(row, "the new link's row");
    const linkId = await row.getAttribute("data-guest-link-id");
    assert.ok(linkId);

    // The guest, in a browser without a session.
    const guest = await ctx.newPage();
    await guest.goto(`/g/${linkId}`);
    // The limits, read before choosing a file (the upload starts at once,
    // and the count changes as soon as it is done).
    await visible(guest.getByText("Maximum file size: 1.00 MB. You can upload 5 more files."), "the link's limits");
    await guest.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "from-guest.txt", "hello from a guest\n"));
    assert.equal(await guest.getByRole("link", { name: "Log In" }).count(), 0, "no Log In for a guest");
    await completedUpload(guest, "from-guest.txt");
    await visible(guest.getByText("Maximum file size: 1.00 MB. You can upload 4 more files."), "the count after the upload");
    assert.equal(await guest.getByLabel("Note (optional)").count(), 0, "no note on guest pages");
    const options = (await guest.getByLabel("Expiration", { exact: true }).locator("option").allTextContents()).map((s) => s.trim());
    assert.ok(!options.includes("Custom"), `no Custom on guest pages (${options})`);

    // Over the link's limit: refused before sending.
    let sent = false;
    guest.on("request", (r) => {
      if (r.method() === "POST" && r.url().includes("/api/guest/")) sent = true;
    });
    await guest.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "too-big.bin", bytes(2 * 1024 * 1024, 5)));
    await visible(guest.getByRole("alert").filter({ hasText: "too-big.bin is too large (2.00 MB): files sent through this link may be at most 1.00 MB." }), "the size alert, in MB");
    assert.equal(sent, false, "the oversized file was not sent");
    ctx.checkPage(guest);

    const entries = await apiEntries(admin.context());
    assert.equal(entries.length, 1);
    assert.equal(entries[0].filename, "from-guest.txt");
    assert.equal(entries[0].guestLinkId, linkId);

    // Uploads count shows on the list; then disable.
    await admin.goto("/guest-links");
    await visible(row.getByText(/1 \/ 5/), "uploads 1 / 5");
    await row.getByRole("button", { name: "Disable" }).click();
    await visible(row.getByRole("button", { name: "Enable" }), "the Enable button");
    await guest.goto(`/g/${linkId}`);
    await visible(guest.getByRole("heading", { name: "Guest Link Inactive" }));

    // Delete asks first.
    await admin.goto("/guest-links");
    await row.getByRole("button", { name: "Delete" }).click();
    const dialog = admin.getByRole("dialog");
    await visible(dialog.getByText(/^Delete the guest link “for Alice”\?/), "the confirmation");
    await admin.keyboard.press("Escape");
    assert.equal(await row.count(), 1, "Escape keeps the link");
    await row.getByRole("button", { name: "Delete" }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    await guest.goto(`/g/${linkId}`);
    await visible(guest.getByRole("heading", { name: "Guest Link Not Found" }));
    ctx.checkPage(admin);
    await admin.context().close();
    await guest.context().close();
  });
});
