// Phones (390×844 and 375×800, touch): no horizontal scrolling; the upload
// flow keeps the picker, the progress and the result in view, with Cancel and
// one QR code on demand (decoded here with jsQR from npm); the navigation
// folds behind a Menu button; tables become cards; tap targets are at least
// 44 px tall.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import jsQR from "jsqr";
import { setup, teardown, adminPage, apiUpload, apiGuestLink, scrollWidth, tempFile, completedUpload, uploadItem, bytes, eventually, visible } from "./helpers.mjs";

const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

/** Whether the whole of `locator` is inside the viewport. */
async function inView(page, locator) {
  const box = await locator.boundingBox();
  const { height, width } = page.viewportSize();
  return box !== null && box.y >= 0 && box.y + box.height <= height && box.x >= 0 && box.x + box.width <= width;
}

/** The QR code drawn by `img` (a loaded same-origin image), decoded. */
async function decodeQr(img) {
  const { data, width, height } = await img.evaluate(async (el) => {
    await el.decode();
    const canvas = document.createElement("canvas");
    canvas.width = 400;
    canvas.height = 400;
    const g = canvas.getContext("2d");
    g.drawImage(el, 0, 0, 400, 400);
    const d = g.getImageData(0, 0, 400, 400);
    return { data: Array.from(d.data), width: d.width, height: d.height };
  });
  const code = jsQR(Uint8ClampedArray.from(data), width, height);
  assert.ok(code, "the QR code can be read");
  return code.data;
}

/** Controls of `page` matching `selector` that are visible and shorter than 44 px. */
function smallTargets(page, selector) {
  return page.locator(selector).evaluateAll((els) =>
    els
      .filter((el) => el.offsetParent !== null || el.getClientRects().length > 0)
      .map((el) => ({ what: `${el.tagName.toLowerCase()} "${(el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 30)}"`, h: Math.round(el.getBoundingClientRect().height) }))
      .filter((t) => t.h > 0 && t.h < 44),
  );
}

describe("phone viewport", () => {
  let ctx;
  before(async () => {
    ctx = await setup();
  });
  after(() => teardown(ctx));

  it("has no horizontal scroll on the upload and files pages at 375×800", async () => {
    const page = await adminPage(ctx, { viewport: { width: 375, height: 800 }, isMobile: true, hasTouch: true });
    await apiUpload(page.context(), "a-rather-long-file-name-that-could-push-the-table-wide.tar.gz", "x".repeat(5000), { note: "a note" });
    for (const path of ["/", "/files"]) {
      await page.goto(path);
      const w = await scrollWidth(page);
      assert.ok(w <= 375, `${path}: scrollWidth ${w} <= 375`);
    }
    // With a finished upload of a long-named file in the list, links and QR code included.
    await page.goto("/");
    const name = "a-rather-long-file-name-without-any-spaces-to-break-it-up-0123456789.txt";
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, name, "long\n"));
    await completedUpload(page, name);
    await uploadItem(page, name).getByText("Show QR code").click();
    await visible(uploadItem(page, name).getByRole("img"), "the QR code");
    const w = await scrollWidth(page);
    assert.ok(w <= 375, `/ after an upload: scrollWidth ${w} <= 375`);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("keeps the picker, the progress and the result in view, with Cancel and one QR code on demand", async () => {
    const page = await adminPage(ctx, PHONE);
    await page.goto("/");
    const picker = page.locator("label[for=file-input]");
    assert.ok(await inView(page, picker), "Choose files is in view on arrival");
    assert.equal(await page.locator("#upload-options").evaluate((d) => d.open), false, "the options are folded");
    // Slow enough that the progress can be seen.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_000_000 });
    // Scrolled down to the options, as a person who looked at them would be.
    await page.locator("#upload-options > summary").click();
    await page.getByLabel("Paste or type text").scrollIntoViewIfNeeded();
    await page.getByLabel("Choose files").setInputFiles(await tempFile(ctx, "from-my-phone.jpg", bytes(2_500_000, 51)));
    const item = uploadItem(page, "from-my-phone.jpg");
    await eventually(async () => /\d+ % · [\d.]+ [kM]?B of 2\.38 MB/.test(await item.innerText()), { message: "percent and bytes sent of the size" });
    await eventually(() => inView(page, item.locator("progress")), { message: "the progress bar scrolled into view" });
    await eventually(() => inView(page, item.getByRole("button", { name: /^Cancel/ })), { message: "Cancel in view" });
    const { short } = await completedUpload(page, "from-my-phone.jpg");
    const copy = item.getByRole("button", { name: "Copy short link" });
    await eventually(() => inView(page, copy), { message: "the result's links in view" });
    assert.equal(await page.getByRole("img").count(), 0, "no QR code until asked for");
    await item.getByText("Show QR code").click();
    const qr = item.getByRole("img", { name: "QR code of the short link" });
    await eventually(() => inView(page, qr), { message: "the QR code in view" });
    assert.equal(await page.getByRole("img").count(), 1, "one QR code");
    assert.equal(await decodeQr(qr), `${ctx.url}${short}`);
    assert.deepEqual(await smallTargets(page, "main button, main .button, main summary, main select, main input[type=text], main input[type=number], main input[type=password]"), [], "tap targets of at least 44 px");
    ctx.checkPage(page);
    await page.context().close();
  });

  it("folds the navigation behind Menu, shows tables as cards, with 44 px targets", async () => {
    const page = await adminPage(ctx, PHONE);
    await apiUpload(page.context(), "card.txt", "card\n");
    await apiGuestLink(page.context(), { label: "Photos from Alice", urlExpirationTime: "2999-12-31T00:00:00Z", fileLifetime: "24h0m0s" });
    await page.goto("/files");
    const menu = page.getByRole("button", { name: "Menu" });
    const settings = page.getByRole("link", { name: "Settings" });
    assert.equal(await settings.isVisible(), false, "the links are folded");
    assert.equal(await menu.getAttribute("aria-expanded"), "false");
    await menu.click();
    await visible(settings, "Settings after Menu");
    assert.equal(await menu.getAttribute("aria-expanded"), "true");
    assert.equal(await page.getByRole("link", { name: "Files" }).getAttribute("aria-current"), "page", "the current page is marked");
    assert.deepEqual(await smallTargets(page, "header a, header button"), [], "navigation targets of at least 44 px");
    await menu.click();
    for (const [path, table] of [["/files", ".files-table"], ["/guest-links", ".guest-links-table"]]) {
      await page.goto(path);
      const row = page.locator(`${table} tbody tr`).first();
      assert.equal(await row.evaluate((tr) => getComputedStyle(tr).display), "block", `${path}: rows are cards`);
      const right = await row.locator("button, a").evaluateAll((els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)));
      assert.ok(right <= 390, `${path}: every action inside the screen (right edge ${right})`);
      assert.ok((await scrollWidth(page)) <= 390, `${path}: no horizontal scroll`);
      assert.deepEqual(await smallTargets(page, "main button, main .button, main summary, main a.sort"), [], `${path}: tap targets of at least 44 px`);
      if (path === "/files") await visible(page.locator("a.sort").first(), "the sort links, above the cards");
    }
    ctx.checkPage(page);
    await page.context().close();
  });
});
