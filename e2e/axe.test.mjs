// Accessibility: axe-core (from npm) checks every page and state, in the light
// and the dark theme, on a desktop (1280×800) and a phone (390×844, touch).
// Any violation of impact "serious" or "critical" fails the test, listed with
// the page, the rule and the elements. One server and one browser serve the
// whole matrix (a context per theme and size, one for the owner and one for a
// visitor), so the file stays quick.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { setup, teardown, loginViaApi, apiUpload, apiGuestLink, tempFile, bytes, TIMEOUT } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const NEVER = "2999-12-31T00:00:00Z";

const SIZES = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
};

/** Runs axe on the page as it is; returns the serious and critical violations as lines. */
async function axeProblems(page, where) {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1).join(" ").trim()}`) }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${where}: [${v.impact}] ${v.id} (${v.help})\n      ${v.nodes.slice(0, 5).join("\n      ")}`);
}

describe("accessibility (axe-core)", () => {
  let ctx;
  const ids = {};
  before(async () => {
    ctx = await setup();
    const seed = await ctx.browser.newContext({ baseURL: ctx.url });
    await loginViaApi(seed);
    const day = 86400_000;
    const iso = (ms) => new Date(Date.now() + ms).toISOString().replace(/\.\d+Z$/, "Z");
    ids.file = await apiUpload(seed, "holiday-notes.txt", "Remember the sun cream.\n", { expiration: iso(30 * day), note: "For the family" });
    await apiUpload(seed, "report.pdf", Buffer.alloc(20_000, 1), { expiration: NEVER });
    await seed.request.get(`/-${ids.file}`);
    // Its content replaced once: its downloads page lists the replacement.
    const replaced = await seed.request.put(`/api/entry/${ids.file}/content?keepName=true`, {
      headers: { "Content-Type": "text/plain" },
      data: "Remember the sun cream and the hats.\n",
    });
    assert.equal(replaced.status(), 200, await replaced.text());
    // A file with a password, and one whose single download is used up.
    let resp = await seed.request.post("/api/entry", {
      multipart: { file: { name: "secret.txt", mimeType: "text/plain", buffer: Buffer.from("secret\n") }, password: "open sesame" },
      headers: { Accept: "application/json" },
    });
    assert.equal(resp.status(), 200, await resp.text());
    ids.protected = (await resp.json()).id;
    resp = await seed.request.post("/api/entry", {
      multipart: { file: { name: "once.txt", mimeType: "text/plain", buffer: Buffer.from("once\n") }, maxDownloads: "1" },
      headers: { Accept: "application/json" },
    });
    assert.equal(resp.status(), 200, await resp.text());
    ids.usedUp = (await resp.json()).id;
    const visitor = await ctx.browser.newContext({ baseURL: ctx.url });
    assert.equal((await visitor.request.get(`/-${ids.usedUp}`)).status(), 200);
    await visitor.close();
    ids.guest = await apiGuestLink(seed, { label: "Photos from Alice", urlExpirationTime: iso(7 * day), fileLifetime: "720h0m0s", maxFileBytes: 1024 * 1024, maxFileUploads: 10 });
    ids.disabledGuest = await apiGuestLink(seed, { label: "old link", urlExpirationTime: NEVER, fileLifetime: "24h0m0s" });
    assert.equal((await seed.request.put(`/api/guest-links/${ids.disabledGuest}/disable`)).status(), 204);
    resp = await seed.request.post("/api/tokens", { data: { name: "backup script" } });
    assert.ok(resp.ok(), await resp.text());
    resp = await seed.request.post("/api/shares", { data: { entries: [ids.file, ids.usedUp] } });
    assert.ok(resp.ok(), await resp.text());
    ids.share = (await resp.json()).id;
    // A notification destination whose receiver is not there (its state
    // shows an error once the test event was tried).
    resp = await seed.request.post("/api/notifications", { data: { name: "phone", kind: "ntfy", url: "http://127.0.0.1:9/topic" } });
    assert.equal(resp.status(), 201, await resp.text());
    resp = await seed.request.post(`/api/notifications/${(await resp.json()).id}/test`);
    assert.equal(resp.status(), 202, await resp.text());
    // A paused one whose row shows its filters (first downloads, chosen files).
    resp = await seed.request.post("/api/notifications", {
      data: { name: "paused hook", kind: "webhook", url: "http://127.0.0.1:9/hook", events: ["download"], firstDownloadOnly: true, entryIds: [ids.file], enabled: false },
    });
    assert.equal(resp.status(), 201, await resp.text());
    await seed.close();
  });
  after(() => teardown(ctx));

  it("finds no serious or critical violation on any page, state, theme or size", { timeout: 300_000 }, async () => {
    assert.ok(ids.share, "a share to check");
    const small = await tempFile(ctx, "result.txt", "a file to show the upload result\n");
    const big = await tempFile(ctx, "too-big.bin", bytes(2 * 1024 * 1024, 3));
    // [name, path, owner?, optional action that brings the page into the state]
    const states = [
      ["landing", "/", false],
      ["login", "/login", false],
      ["login error", "/login", false, async (p) => {
        await p.getByLabel("Passphrase").fill("wrong");
        await p.getByRole("button", { name: "Authenticate" }).click();
        await p.getByRole("alert").filter({ hasText: /./ }).waitFor();
      }],
      ["upload", "/", true],
      ["upload options", "/", true, async (p) => {
        await p.locator("#upload-options > summary").click();
        await p.getByLabel("Expiration", { exact: true }).waitFor();
      }],
      ["upload result + QR", "/", true, async (p) => {
        await p.getByLabel("Choose files").setInputFiles(small);
        await p.getByText("Upload complete!").waitFor();
        await p.getByText("Show QR code").click();
        await p.getByRole("img", { name: /QR code/ }).waitFor();
      }],
      ["phone menu open", "/files", true, async (p) => {
        const menu = p.getByRole("button", { name: "Menu" });
        if (await menu.isVisible()) {
          await menu.click();
          await p.getByRole("link", { name: "Settings" }).waitFor();
        }
      }],
      ["files", "/files", true],
      ["files, no match", "/files?q=nothing-matches-this", true],
      ["file info", `/files/${ids.file}/info`, true],
      ["file edit", `/files/${ids.file}/edit`, true],
      ["file delete", `/files/${ids.file}/confirm-delete`, true],
      ["file downloads", `/files/${ids.file}/downloads`, true],
      ["shares", "/shares", true],
      ["share delete confirmation", "/shares", true, async (p) => {
        await p.getByRole("button", { name: /^Delete/ }).first().click();
        await p.getByRole("dialog").waitFor();
      }],
      ["guest links", "/guest-links", true],
      ["guest link delete confirmation", "/guest-links", true, async (p) => {
        await p.getByRole("button", { name: "Delete" }).first().click();
        await p.getByRole("dialog").waitFor();
      }],
      ["new guest link", "/guest-links/new", true],
      ["tokens", "/tokens", true],
      ["sessions", "/sessions", true],
      ["settings", "/settings", true],
      ["notifications", "/settings/notifications", true],
      ["notification secret shown", "/settings/notifications", true, async (p) => {
        await p.getByLabel("Name").fill("hook");
        await p.getByLabel("URL").fill("http://127.0.0.1:9/hook");
        await p.getByRole("button", { name: "Add destination" }).click();
        await p.getByLabel("Secret", { exact: true }).waitFor();
      }],
      ["notification edited", "/settings/notifications", true, async (p) => {
        await p.locator("tr[data-hook-id]").first().getByRole("button", { name: "Edit" }).click();
        await p.getByRole("heading", { name: /^Edit “/ }).waitFor();
      }],
      ["information", "/information", true],
      ["view", `/v/${ids.file}`, false],
      ["view, protected", `/v/${ids.protected}`, false],
      ["share", `/s/${ids.share}`, false],
      ["password", `/-${ids.protected}`, false],
      ["wrong password", `/-${ids.protected}`, false, async (p) => {
        await p.getByLabel("Password", { exact: true }).fill("wrong");
        await p.getByRole("button", { name: "Download" }).click();
        await p.getByText("Wrong password.").waitFor();
      }],
      ["missing file", "/-abcdefghij", false],
      ["malformed link", "/-doesnotexist", false],
      ["used up file", `/-${ids.usedUp}`, false],
      ["unknown page", "/no/such/page", false],
      ["guest upload", `/g/${ids.guest}`, false],
      ["guest file too large", `/g/${ids.guest}`, false, async (p) => {
        await p.getByLabel("Choose files").setInputFiles(big);
        await p.getByRole("alert").filter({ hasText: /too large/ }).waitFor();
      }],
      ["guest link inactive", `/g/${ids.disabledGuest}`, false],
      ["guest link not found", "/g/doesnotexist00", false],
    ];
    const problems = [];
    let checks = 0;
    for (const [size, options] of Object.entries(SIZES)) {
      for (const theme of ["light", "dark"]) {
        const owner = await ctx.browser.newContext({ baseURL: ctx.url, colorScheme: theme, ...options });
        owner.setDefaultTimeout(TIMEOUT);
        await loginViaApi(owner);
        const visitor = await ctx.browser.newContext({ baseURL: ctx.url, colorScheme: theme, ...options });
        visitor.setDefaultTimeout(TIMEOUT);
        const pages = { owner: await owner.newPage(), visitor: await visitor.newPage() };
        for (const [name, path, admin, act] of states) {
          const page = admin ? pages.owner : pages.visitor;
          const where = `${name} (${path}, ${theme}, ${size})`;
          await page.goto(path);
          if (act) await act(page);
          problems.push(...(await axeProblems(page, where)));
          checks++;
        }
        await owner.close();
        await visitor.close();
      }
    }
    assert.equal(checks, states.length * 4);
    assert.deepEqual(problems, [], `serious or critical accessibility violations:\n${problems.join("\n")}`);
  });
});
