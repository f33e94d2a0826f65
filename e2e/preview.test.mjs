// Previews and QR codes: the public view page (/v/{id}) shows an image, text
// (HTML as text, never rendered), audio and a PDF from the file's download URL
// under the pages' CSP; the file information page shows the preview and QR codes.
// Every file is generated here, byte by byte.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { setup, teardown, adminPage, apiUpload, apiGuestLink, visible, eventually } from "./helpers.mjs";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A `width`×`height` RGB PNG, a red-to-blue gradient. */
function png(width, height) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = Math.round((255 * x) / width);
      raw[row + 3 + x * 3] = Math.round((255 * y) / height);
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Half a second of a 440 Hz tone: 8 kHz, mono, 16-bit PCM WAV. */
function wav() {
  const rate = 8000;
  const samples = rate / 2;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  const head = Buffer.alloc(44);
  head.write("RIFF", 0, "ascii");
  head.writeUInt32LE(36 + data.length, 4);
  head.write("WAVE", 8, "ascii");
  head.write("fmt ", 12, "ascii");
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write("data", 36, "ascii");
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

/** A one-page PDF saying "Hello preview", with a correct cross-reference table. */
function pdf() {
  const text = "BT /F1 24 Tf 72 720 Td (Hello preview) Tj ET";
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${text.length} >>\nstream\n${text}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

describe("previews and QR codes", () => {
  let ctx;
  let admin;
  before(async () => {
    ctx = await setup();
    admin = await adminPage(ctx);
  });
  after(() => teardown(ctx));

  /** A page without a session (a recipient of the link). */
  const visitor = () => ctx.newPage();

  it("shows an uploaded PNG on the view page", async () => {
    const id = await apiUpload(admin.context(), "gradient.png", png(40, 30));
    const page = await visitor();
    const resp = await page.goto(`/v/${id}`);
    assert.equal(resp.status(), 200);
    const img = page.getByRole("img", { name: "Preview of gradient.png" });
    await visible(img, "the image preview");
    const size = await eventually(
      () => img.evaluate((el) => el.complete && el.naturalWidth > 0 && [el.naturalWidth, el.naturalHeight]),
      { message: "the image to load" },
    );
    assert.deepEqual(size, [40, 30]);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows a text file's text, and an HTML file as text, not rendered", async () => {
    const text = "first line\nsecond line: ünïcödé ✓\n";
    const html = '<h2 id="injected">Rendered?</h2><script>document.title = "ran"</script>\n';
    const textId = await apiUpload(admin.context(), "notes.txt", text);
    const htmlId = await apiUpload(admin.context(), "page.html", html);
    const page = await visitor();
    await page.goto(`/v/${textId}`);
    const pre = page.locator("pre[data-preview-text]");
    await page.locator("pre[data-loaded=true]").waitFor();
    assert.equal(await pre.textContent(), text);

    await page.goto(`/v/${htmlId}`);
    await page.locator("pre[data-loaded=true]").waitFor();
    assert.equal(await pre.textContent(), html);
    assert.equal(await page.locator("#injected").count(), 0, "the HTML must not be rendered");
    assert.notEqual(await page.title(), "ran");
    assert.equal(await page.locator("iframe").count(), 0);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("loads the metadata of a generated WAV in an audio element", async () => {
    const id = await apiUpload(admin.context(), "tone.wav", wav());
    const page = await visitor();
    await page.goto(`/v/${id}`);
    const audio = page.locator("figure.preview audio");
    await audio.waitFor({ state: "attached" });
    const duration = await eventually(
      () => audio.evaluate((el) => el.readyState >= 1 && el.duration),
      { message: "the audio metadata" },
    );
    assert.ok(Math.abs(duration - 0.5) < 0.01, `duration ${duration}`);
    ctx.checkPage(page);
    await page.context().close();
  });

  it("embeds a generated PDF in a frame from the download URL", async () => {
    const id = await apiUpload(admin.context(), "hello.pdf", pdf());
    const page = await visitor();
    const pdfResponse = page.waitForResponse((r) => new URL(r.url()).pathname === `/-${id}`);
    await page.goto(`/v/${id}`);
    const frame = page.locator("figure.preview iframe");
    await frame.waitFor({ state: "attached" });
    assert.equal(await frame.getAttribute("title"), "Preview of hello.pdf");
    const resp = await pdfResponse;
    assert.equal(resp.status(), 200);
    const headers = await resp.allHeaders();
    assert.equal(headers["content-type"], "application/pdf");
    assert.equal(headers["content-security-policy"], "sandbox");
    assert.equal(headers["x-frame-options"], undefined, "downloads may be framed");
    const child = await eventually(() => page.frames().find((f) => f !== page.mainFrame() && f.url().endsWith(`/-${id}`)), {
      message: "the PDF frame",
    });
    assert.ok(child);
    // Chromium hands the framed document to its PDF viewer (an extension frame
    // inside ours): the sandbox CSP of the download does not keep it out.
    await eventually(() => page.frames().some((f) => /^chrome-extension:\/\/[^/]+\/index\.html/.test(f.url())), {
      message: "the PDF viewer",
    });
    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows the preview, whole links, Delete and QR codes on demand on the file information page", async () => {
    const id = await apiUpload(admin.context(), "info.png", png(8, 8));
    await admin.goto(`/files/${id}/info`);
    await visible(admin.getByRole("heading", { name: "info.png", level: 1 }), "the file's name as the heading");
    await visible(admin.getByRole("link", { name: "Delete" }), "Delete");
    const top = await admin.getByRole("img", { name: "Preview of info.png" }).evaluate((el) => el.getBoundingClientRect().top);
    assert.ok(top < 400, `the preview near the top (${top} px)`);
    await admin.getByText("Show QR codes").click();
    for (const name of ["QR code: Short link", "QR code: Preview page"]) {
      await visible(admin.getByRole("img", { name }), name);
    }
    const img = admin.getByRole("img", { name: "Preview of info.png" });
    await eventually(() => img.evaluate((el) => el.complete && el.naturalWidth === 8), { message: "the image preview" });
    const view = admin.getByRole("link", { name: `${ctx.url}/v/${id}` });
    await visible(view, "the preview page link");
    ctx.checkPage(admin);
  });

  it("shows a QR code for each guest link and opens the new one's", async () => {
    await apiGuestLink(admin.context(), {
      label: "older",
      urlExpirationTime: "2999-12-31T00:00:00Z",
      fileLifetime: "876000h0m0s",
      maxFileBytes: null,
      maxFileUploads: null,
    });
    await admin.goto("/guest-links/new");
    await admin.getByLabel("Label").fill("fresh link");
    await admin.getByRole("button", { name: "Create" }).click();
    await admin.waitForURL((u) => u.pathname === "/guest-links");
    const row = admin.locator("tr", { hasText: "fresh link" });
    await visible(row.getByRole("img", { name: "QR code: Guest link" }), "the new link's QR code");
    const older = admin.locator("tr", { hasText: "older" });
    assert.equal(await older.locator("details.qr-details").evaluate((d) => d.open), false);
    await older.getByText("QR code", { exact: true }).click();
    await visible(older.getByRole("img", { name: "QR code: Guest link" }), "the older link's QR code");
    ctx.checkPage(admin);
  });
});
