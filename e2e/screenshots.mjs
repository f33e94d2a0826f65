// Takes screenshots of every page (and the upload result, a missing link, a
// guest's upload page) into docs/screenshots/: light and dark, desktop
// (1280×800) and phone (375×800). Run by hand (not part of the tests):
//
//   cargo build -p picoshare && node e2e/screenshots.mjs
//
// It starts its own server with a fresh database and fills it with sample data.
// Files are named PAGE-THEME-DEVICE.png, e.g. upload-dark-phone.png.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setup, teardown, loginViaApi, apiUpload, apiGuestLink, ROOT } from "./helpers.mjs";

// The API's "never expires" date (validate::NEVER_EXPIRE).
const NEVER = "2999-12-31T00:00:00Z";
const OUT = path.join(ROOT, "docs/screenshots");
const DEVICES = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 375, height: 800 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
};

const ctx = await setup();
let failed = 0;
try {
  await mkdir(OUT, { recursive: true });
  const seed = await ctx.browser.newContext({ baseURL: ctx.url });
  await loginViaApi(seed);
  const day = 86400_000;
  const iso = (ms) => new Date(Date.now() + ms).toISOString().replace(/\.\d+Z$/, "Z");
  const id = await apiUpload(seed, "holiday-photos.zip", Buffer.alloc(3_400_000, 7), { expiration: iso(30 * day), note: "For the family" });
  await apiUpload(seed, "quarterly-report.pdf", Buffer.alloc(820_000, 1), { expiration: iso(6 * day) });
  const notes = await apiUpload(seed, "notes.txt", "Shopping list\n", { expiration: NEVER });
  // Its content replaced once: its downloads page lists the replacement.
  const replaced = await seed.request.put(`/api/entry/${notes}/content?keepName=true`, {
    headers: { "Content-Type": "text/plain" },
    data: "Shopping list\n- bread\n- apples\n",
  });
  if (!replaced.ok()) throw new Error(`replace: HTTP ${replaced.status()}`);
  const guest = await apiGuestLink(seed, { label: "Photos from Alice", urlExpirationTime: iso(7 * day), fileLifetime: "720h0m0s", maxFileBytes: 50 * 1024 * 1024, maxFileUploads: 10 });
  await apiGuestLink(seed, { label: "", urlExpirationTime: NEVER, fileLifetime: "876000h0m0s" });
  await seed.request.get(`/-${id}`);
  const token = await seed.request.post("/api/tokens", { data: { name: "backup script" } });
  if (token.status() !== 200 && token.status() !== 201) throw new Error(`token: HTTP ${token.status()}`);
  const share = await seed.request.post("/api/shares", { data: { entries: [id] } });
  if (!share.ok()) throw new Error(`share: HTTP ${share.status()}`);
  // Three notification destinations, one paused (nothing listens at their
  // addresses; the page shows them as they are before any delivery).
  for (const data of [
    { name: "Home automation", kind: "webhook", url: "http://192.0.2.10:8123/api/webhook/picoshare", events: ["guest_upload", "download_limit_reached"], enabled: true },
    { name: "Phone", kind: "ntfy", url: "http://192.0.2.20/picoshare-alerts", events: ["download"], firstDownloadOnly: true, entryIds: [id], enabled: true },
    { name: "Old tablet", kind: "ntfy", url: "http://192.0.2.30/picoshare", enabled: false },
  ]) {
    const dest = await seed.request.post("/api/notifications", { data });
    if (dest.status() !== 201) throw new Error(`notification destination: HTTP ${dest.status()} ${await dest.text()}`);
  }
  await seed.close();
  const sample = path.join(ctx.server.dir, "beach.txt");
  await writeFile(sample, "Sand, sun and sea.\n");

  // The upload result: a file sent from the page, its QR code opened.
  const uploadResult = async (page) => {
    await page.getByLabel("Choose files").setInputFiles(sample);
    await page.getByText("Upload complete!").waitFor();
    await page.getByText("Show QR code").click();
    await page.getByRole("img", { name: /QR code/ }).waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
  };

  // [name, path, owner?, expected status, optional action]
  const pages = [
    ["landing", "/", false],
    ["login", "/login", false],
    ["upload", "/", true],
    ["upload-result", "/", true, 200, uploadResult],
    ["shares", "/shares", true],
    ["sessions", "/sessions", true],
    ["guest-upload", `/g/${guest}`, false],
    ["missing-link", "/-abcdefghij", false, 404],
    ["files", "/files", true],
    ["file-info", `/files/${id}/info`, true],
    ["file-downloads", `/files/${notes}/downloads`, true],
    ["guest-links", "/guest-links", true],
    ["view", `/v/${id}`, false],
    ["tokens", "/tokens", true],
    ["settings", "/settings", true],
    ["notifications", "/settings/notifications", true],
    ["information", "/information", true],
  ];
  for (const [device, options] of Object.entries(DEVICES)) {
    for (const theme of ["light", "dark"]) {
      const context = await ctx.browser.newContext({ baseURL: ctx.url, colorScheme: theme, ...options });
      await loginViaApi(context);
      const page = await context.newPage();
      for (const [name, url, admin, status = 200, act] of pages) {
        if (!admin) await context.clearCookies();
        const resp = await page.goto(url);
        if (act) await act(page);
        if (!resp || resp.status() !== status) {
          console.error(`skipped ${name} (${url}): HTTP ${resp?.status()}`);
          failed++;
        } else {
          const file = path.join(OUT, `${name}-${theme}-${device}.png`);
          await page.screenshot({ path: file, fullPage: true });
          console.log(`wrote ${path.relative(ROOT, file)}`);
        }
        if (!admin) await loginViaApi(context);
      }
      await context.close();
    }
  }
} finally {
  await teardown(ctx);
}
if (failed) {
  console.error(`${failed} screenshot(s) could not be taken`);
  process.exitCode = 1;
}
