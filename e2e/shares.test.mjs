// Shares: three files sent together from the upload page become one share;
// its page opens in a fresh (logged-out) context, its ZIP holds the three
// files byte for byte, and the owner deletes it from the Shares page.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, teardown, adminPage, tempFile, bytes, completedUpload, fetchBytesInPage, visible } from "./helpers.mjs";

/** The members of a ZIP read from its central directory: name, size, offset of the local header. */
function zipMembers(buf) {
  const end = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, "end of central directory record");
  let count = buf.readUInt16LE(end + 10);
  let offset = buf.readUInt32LE(end + 16);
  if (count === 0xffff || offset === 0xffffffff) {
    // ZIP64: the locator (20 bytes before) points at the ZIP64 end record.
    const rec = Number(buf.readBigUInt64LE(end - 20 + 8));
    count = Number(buf.readBigUInt64LE(rec + 32));
    offset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const out = [];
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(offset), 0x02014b50, "central directory header");
    const nameLen = buf.readUInt16LE(offset + 28);
    const extraLen = buf.readUInt16LE(offset + 30);
    const commentLen = buf.readUInt16LE(offset + 32);
    const name = buf.subarray(offset + 46, offset + 46 + nameLen).toString("utf8");
    let size = buf.readUInt32LE(offset + 24);
    let local = buf.readUInt32LE(offset + 42);
    if (size === 0xffffffff) {
      const extra = offset + 46 + nameLen;
      size = Number(buf.readBigUInt64LE(extra + 4));
      local = Number(buf.readBigUInt64LE(extra + 20));
    }
    out.push({ name, size, local, method: buf.readUInt16LE(offset + 10) });
    offset += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** The data of a STORED member (after its local header). */
function memberData(buf, m) {
  const nameLen = buf.readUInt16LE(m.local + 26);
  const extraLen = buf.readUInt16LE(m.local + 28);
  const start = m.local + 30 + nameLen + extraLen;
  return buf.subarray(start, start + m.size);
}

describe("shares", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("uploads three files as one share, zips them and deletes the share", async () => {
    const page = await adminPage(ctx);
    await page.goto("/");
    assert.ok(await page.getByLabel(/One share for all files/).isChecked(), "one share by default");
    const files = [
      ["first.bin", bytes(300_000, 31)],
      ["second.txt", Buffer.from("second file\n")],
      ["third.bin", bytes(5_000_000, 33)], // sent with tus
    ];
    const paths = [];
    for (const [name, data] of files) paths.push(await tempFile(ctx, name, data));
    await page.getByLabel("Choose files").setInputFiles(paths);
    for (const [name] of files) await completedUpload(page, name);

    const shareItem = page.locator(".share-item");
    await shareItem.getByText("Share created!").waitFor();
    const link = await shareItem.locator("a.share-link").getAttribute("href");
    assert.match(link, /\/s\/[a-km-zA-HJ-NP-Z2-9]{14}$/);
    // One QR code, of the share, on demand: none for each of its files.
    assert.equal(await page.getByText("Show QR code").count(), 1, "one QR code offered, the share's");
    await shareItem.getByText("Show QR code").click();
    await visible(shareItem.getByRole("img", { name: "QR code of the share link" }), "the share's QR code");
    ctx.checkPage(page);

    // A visitor without a session sees the files and downloads the ZIP.
    const visitor = await ctx.newPage();
    await visitor.goto(new URL(link).pathname);
    for (const [name] of files) await visitor.getByRole("link", { name }).waitFor();
    const zipHref = await visitor.getByRole("link", { name: /Download all/ }).getAttribute("href");
    const zip = await fetchBytesInPage(visitor, zipHref);
    const members = zipMembers(zip);
    assert.deepEqual(
      members.map((m) => [m.name, m.size, m.method]),
      files.map(([name, data]) => [name, data.length, 0]),
    );
    for (const [i, m] of members.entries()) {
      assert.ok(memberData(zip, m).equals(files[i][1]), `${m.name} byte for byte`);
    }
    ctx.checkPage(visitor);
    await visitor.context().close();

    // The owner deletes the share (not the files) from the Shares page.
    await page.getByRole("link", { name: "Shares" }).click();
    const row = page.locator("tr", { has: page.locator(`a[href="${new URL(link).pathname}"]`) });
    await row.waitFor();
    await row.getByRole("button", { name: "Delete share", exact: true }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    await page.getByText("Deleted the share").waitFor();
    const gone = await page.request.get(new URL(link).pathname);
    assert.equal(gone.status(), 404);
    const entries = await (await page.request.get("/api/entries")).json();
    assert.equal(entries.length, 3, "the files stay");
    ctx.checkPage(page);
    await page.context().close();
  });
});
