// Notifications: from Settings, add a webhook destination on the page (the
// receiver is a small HTTP server in this test, on loopback), press "Send
// test event", see the delivery state change on the page, and check that the
// receiver got the event signed with the secret shown once; a destination
// whose receiver is down shows the error. Each row shows the events and
// filters of its destination (also as a card on a phone); Pause stops its
// events (a real download sends it nothing) until Resume; Edit changes a
// destination in the form, an API's refusal shown there, and the next event
// goes to the new URL signed with the secret kept. On a server with an SMTP
// server (a real one on loopback: aiosmtpd, run by
// crates/picoshare/tests/smtp_sink.py), add an e-mail destination on the page
// and get its test e-mail.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT, setup, teardown, adminPage, apiUpload, visible, eventually } from "./helpers.mjs";

/** A receiver that records every request (answers 200). */
async function startReceiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { got, server, url: `http://127.0.0.1:${server.address().port}` };
}

/** The webhook signature of a received request, checked against `secret`. */
function assertSigned(request, secret) {
  const mac = crypto.createHmac("sha256", secret).update(request.body).digest("hex");
  assert.equal(request.headers["x-picoshare-signature"], `sha256=${mac}`, "signed with the secret");
}

/** Downloads file `id` whole as a visitor with User-Agent `agent` (a "download" event). */
async function download(ctx, id, agent) {
  const resp = await fetch(`${ctx.url}/-${id}`, { headers: { "User-Agent": agent } });
  assert.equal(resp.status, 200, `download of ${id}`);
  await resp.arrayBuffer();
}

/** Destination `name` as `GET /api/notifications` lists it. */
async function listed(page, name) {
  const resp = await page.context().request.get("/api/notifications");
  assert.equal(resp.status(), 200, await resp.text());
  return (await resp.json()).destinations.find((d) => d.name === name);
}

/** Whether `locator` (a button) has the keyboard focus. */
const focused = (locator) => locator.evaluate((el) => el === document.activeElement);

/** Controls of `page` matching `selector` that are visible and shorter than 44 px. */
function smallTargets(page, selector) {
  return page.locator(selector).evaluateAll((els) =>
    els
      .filter((el) => el.getClientRects().length > 0)
      .map((el) => ({ what: (el.textContent || "").trim().slice(0, 30), h: Math.round(el.getBoundingClientRect().height) }))
      .filter((t) => t.h > 0 && t.h < 44),
  );
}

/** The SMTP sink of the Rust tests, on a free loopback port. */
async function startSmtpSink() {
  const dir = await mkdtemp(path.join(tmpdir(), "picoshare-e2e-smtp-"));
  const proc = spawn("python3", [path.join(ROOT, "crates/picoshare/tests/smtp_sink.py"), "--dir", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d;
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.on("exit", (code) =>
      reject(new Error(`the SMTP sink exited (${code}); it needs aiosmtpd (scripts/test installs it): ${stderr}`)),
    );
  });
  return {
    port,
    /** The messages it accepted, in order. */
    async messages() {
      const names = (await readdir(dir)).filter((n) => n.endsWith(".json")).sort();
      return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), "utf8"))));
    },
    async stop() {
      proc.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("notifications", () => {
  let ctx;
  let receiver;
  before(async () => {
    ctx = await setup();
    receiver = await startReceiver();
  });
  after(async () => {
    receiver?.server.close();
    await teardown(ctx);
  });

  it("adds a webhook, sends a test event and shows its delivery", async () => {
    const page = await adminPage(ctx);
    await page.goto("/settings");
    await page.getByRole("link", { name: "notification settings" }).click();
    await visible(page.getByRole("heading", { name: "Notifications", level: 1 }));
    await visible(page.getByText("No destinations yet."));

    await page.getByLabel("Name").fill("CI hook");
    await page.getByLabel("Format").selectOption("webhook");
    await page.getByLabel("URL").fill(`${receiver.url}/hook`);
    await page.getByRole("button", { name: "Add destination" }).click();
    const secretField = page.getByLabel("Secret", { exact: true });
    await visible(secretField, "the new secret");
    const secret = await secretField.inputValue();
    assert.match(secret, /^[0-9a-f]{64}$/);
    await page.getByRole("button", { name: "Done" }).click();

    const row = page.locator("tr[data-hook-id]").filter({ hasText: "CI hook" });
    await visible(row.getByText("Last delivered: never"));
    await row.getByRole("button", { name: "Send test event" }).click();
    await visible(page.getByRole("status").filter({ hasText: "Test event delivered" }));
    await visible(row.getByText(/^Last delivered: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/));
    await visible(row.getByText("Waiting: 0"));

    assert.equal(receiver.got.length, 1);
    const r = receiver.got[0];
    assert.equal(r.url, "/hook");
    assert.equal(r.headers["x-picoshare-event"], "test");
    const mac = crypto.createHmac("sha256", secret).update(r.body).digest("hex");
    assert.equal(r.headers["x-picoshare-signature"], `sha256=${mac}`);
    assert.equal(JSON.parse(r.body.toString()).id, r.headers["x-picoshare-event-id"]);

    // A reload shows the same state from the server, never the secret.
    await page.reload();
    await visible(row.getByText(/^Last delivered: \d{4}/));
    assert.ok(!(await page.content()).includes(secret), "the page shows the secret after a reload");
    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows why a destination whose receiver is down was not reached", async () => {
    const page = await adminPage(ctx);
    // A port with nothing listening.
    const closed = http.createServer();
    await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = closed.address().port;
    await new Promise((resolve) => closed.close(resolve));
    await page.goto("/settings/notifications");
    await page.getByLabel("Name").fill("phone");
    await page.getByLabel("Format").selectOption("ntfy");
    await page.getByLabel("URL").fill(`http://127.0.0.1:${port}/topic`);
    await page.getByRole("button", { name: "Add destination" }).click();
    const row = page.locator("tr[data-hook-id]").filter({ hasText: "phone" });
    await visible(row);
    await row.getByRole("button", { name: "Send test event" }).click();
    await visible(page.getByRole("status").filter({ hasText: /Test event not delivered yet: could not connect/ }));
    await visible(row.getByText(/^Last error: could not connect/));
    await visible(row.getByText("Waiting: 1"));
    await eventually(async () => receiver.got.length === 1, { message: "nothing else reached the first receiver" });
    ctx.checkPage(page);
    await page.context().close();
  });

  it("fits a destination with a long URL on a desktop screen, its buttons in view", async () => {
    const page = await adminPage(ctx, { viewport: { width: 1280, height: 800 } });
    const url = `http://192.0.2.10:8123/api/webhook/picoshare-${"0123456789".repeat(6)}`;
    const made = await page.context().request.post("/api/notifications", {
      data: { name: "Home automation", kind: "webhook", url, events: ["guest_upload"], enabled: true },
    });
    assert.equal(made.status(), 201, await made.text());
    await page.goto("/settings/notifications");
    const row = page.locator("tr[data-hook-id]").filter({ hasText: "Home automation" });
    await visible(row);
    const [scrollWidth, clientWidth] = await page
      .locator(".table-scroll")
      .evaluate((el) => [el.scrollWidth, el.clientWidth]);
    assert.ok(scrollWidth <= clientWidth, `the table needs scrolling: ${scrollWidth} > ${clientWidth}`);
    const box = await page.locator(".table-scroll").boundingBox();
    const del = await row.getByRole("button", { name: "Delete" }).boundingBox();
    assert.ok(del.x + del.width <= box.x + box.width, "the Delete button is cut off");
    ctx.checkPage(page);
    await page.context().close();
  });

  it("shows each destination's events and filters, on a desktop and as a card on a phone", async () => {
    const page = await adminPage(ctx);
    const a = await apiUpload(page.context(), "a.txt", "a\n");
    const b = await apiUpload(page.context(), "b.txt", "b\n");
    for (const data of [
      { name: "Two files", kind: "ntfy", url: `${receiver.url}/two`, events: ["expiring_soon", "download"], firstDownloadOnly: true, entryIds: [a, b] },
      { name: "Everything", kind: "ntfy", url: `${receiver.url}/all` },
      { name: "Test only", kind: "ntfy", url: `${receiver.url}/none`, events: [], firstDownloadOnly: true },
    ]) {
      const made = await page.context().request.post("/api/notifications", { data });
      assert.equal(made.status(), 201, await made.text());
    }
    await page.goto("/settings/notifications");
    await visible(page.getByRole("columnheader", { name: "Events" }));
    const rows = page.locator("tr[data-hook-id]");
    const two = rows.filter({ hasText: "Two files" });
    const events = two.locator("td.hook-events");
    await visible(events.getByText("File downloaded, File expiring soon", { exact: true }));
    await visible(events.getByText("Only a file's first download", { exact: true }));
    await visible(events.getByText(`Only 2 files: ${a}, ${b}`, { exact: true }));
    await visible(rows.filter({ hasText: "Everything" }).getByText("All events", { exact: true }));
    const none = rows.filter({ hasText: "Test only" }).locator("td.hook-events");
    await visible(none.getByText("No events (test events only)", { exact: true }));
    assert.equal(await none.getByText("first download").count(), 0, "no download filter without downloads");
    // The page's script writes a row (after Pause, Resume) as the server does.
    const serverRow = await events.innerHTML();
    await two.getByRole("button", { name: "Pause" }).click();
    await visible(two.getByRole("button", { name: "Resume" }));
    assert.equal(await events.innerHTML(), serverRow, "the script's events cell is the server's");
    await two.getByRole("button", { name: "Resume" }).click();
    await visible(two.getByRole("button", { name: "Pause" }));
    ctx.checkPage(page);
    await page.context().close();

    const phone = await adminPage(ctx, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.goto("/settings/notifications");
    const card = phone.locator("tr[data-hook-id]").filter({ hasText: "Two files" });
    assert.equal(await card.evaluate((tr) => getComputedStyle(tr).display), "block", "rows are cards");
    assert.equal(await card.locator("td.hook-events").getAttribute("data-label"), "Events");
    await visible(card.getByText(`Only 2 files: ${a}, ${b}`, { exact: true }));
    const right = await card.getByRole("button").evaluateAll((els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)));
    assert.ok(right <= 390, `every action inside the screen (right edge ${right})`);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scroll (${width})`);
    assert.deepEqual(await smallTargets(phone, "main button, main .button, main select, main input[type=text], main input[type=url]"), [], "tap targets of at least 44 px");
    ctx.checkPage(phone);
    await phone.context().close();
  });

  it("pauses a destination: a download sends it nothing until Resume", async () => {
    const hook = await startReceiver();
    // A destination that is not paused sees the same downloads.
    const witness = await startReceiver();
    try {
      const page = await adminPage(ctx);
      const file = await apiUpload(page.context(), "paused.txt", "pause me\n");
      const made = await page.context().request.post("/api/notifications", {
        data: { name: "Pausable", kind: "webhook", url: `${hook.url}/p`, events: ["download"] },
      });
      assert.equal(made.status(), 201, await made.text());
      const { secret } = await made.json();
      const other = await page.context().request.post("/api/notifications", {
        data: { name: "Witness", kind: "webhook", url: `${witness.url}/w`, events: ["download"], entryIds: [file] },
      });
      assert.equal(other.status(), 201, await other.text());
      await page.goto("/settings/notifications");
      const row = page.locator("tr[data-hook-id]").filter({ hasText: "Pausable" });
      await row.getByRole("button", { name: "Pause" }).click();
      await visible(page.getByRole("status").filter({ hasText: "Destination “Pausable” paused: it gets no events until it is resumed" }));
      await visible(row.getByText("paused", { exact: true }));
      assert.ok(await focused(row.getByRole("button", { name: "Resume" })), "the focus stays on the button");
      const paused = await listed(page, "Pausable");
      assert.equal(paused.enabled, false);
      assert.deepEqual(paused.events, ["download"], "the rest is unchanged");

      await download(ctx, file, "e2e-while-paused");
      // The download's event reached the other destination: it was written,
      // in one transaction for every destination that wants it.
      await eventually(
        async () => witness.got.some((r) => JSON.parse(r.body.toString()).data.userAgent === "e2e-while-paused"),
        { message: "the download's event at the destination that is not paused" },
      );
      assert.equal((await listed(page, "Pausable")).state.queued, 0, "no event waits for the paused destination");
      assert.equal(hook.got.length, 0, "nothing was sent to the paused destination");

      // Saved from the form, it stays paused; a reload shows it so.
      await row.getByRole("button", { name: "Edit" }).click();
      await page.getByRole("button", { name: "Save changes" }).click();
      await visible(page.getByRole("status").filter({ hasText: "Destination “Pausable” saved" }));
      await page.reload();
      await visible(row.getByText("paused", { exact: true }));
      assert.equal((await listed(page, "Pausable")).enabled, false);

      await row.getByRole("button", { name: "Resume" }).click();
      await visible(page.getByRole("status").filter({ hasText: "Destination “Pausable” resumed" }));
      await visible(row.getByRole("button", { name: "Pause" }));
      assert.equal(await row.getByText("paused", { exact: true }).count(), 0, "no longer marked paused");
      await download(ctx, file, "e2e-after-resume");
      await eventually(async () => hook.got.length >= 1, { message: "the download's event after Resume" });
      await eventually(async () => (await listed(page, "Pausable")).state.queued === 0, { message: "nothing more waiting" });
      assert.equal(hook.got.length, 1, "one event: the download after Resume");
      const event = JSON.parse(hook.got[0].body.toString());
      assert.equal(event.type, "download");
      assert.equal(event.data.userAgent, "e2e-after-resume");
      assertSigned(hook.got[0], secret);
      const gone = await page.context().request.delete(`/api/notifications/${(await other.json()).id}`);
      assert.equal(gone.status(), 204);
      ctx.checkPage(page);
      await page.context().close();
    } finally {
      hook.server.close();
      witness.server.close();
    }
  });

  it("edits a destination: its name, URL and events, the next event to the new URL", async () => {
    const before = await startReceiver();
    const after = await startReceiver();
    try {
      const page = await adminPage(ctx);
      const file = await apiUpload(page.context(), "edited.txt", "edit me\n");
      await page.goto("/settings/notifications");
      await page.getByLabel("Name").fill("Old name");
      await page.getByLabel("URL").fill(`${before.url}/old`);
      for (const title of ["File downloaded", "Download limit used up", "Guest link used up", "File expiring soon"]) {
        await page.getByLabel(title, { exact: true }).uncheck();
      }
      await page.getByRole("button", { name: "Add destination" }).click();
      const secretField = page.getByLabel("Secret", { exact: true });
      await visible(secretField, "the new secret");
      const secret = await secretField.inputValue();
      await page.getByRole("button", { name: "Done" }).click();
      const rows = page.locator("tr[data-hook-id]");
      const row = rows.filter({ hasText: "Old name" });
      await visible(row.getByText("Guest upload", { exact: true }));

      await row.getByRole("button", { name: "Edit" }).click();
      await visible(page.getByRole("heading", { name: "Edit “Old name”" }));
      const name = page.getByLabel("Name", { exact: true });
      assert.ok(await focused(name), "the focus goes to the form");
      assert.equal(await name.inputValue(), "Old name");
      assert.equal(await page.getByLabel("URL").inputValue(), `${before.url}/old`);
      assert.equal(await page.getByLabel("Format").inputValue(), "webhook");
      assert.ok(await page.getByLabel("Guest upload", { exact: true }).isChecked());
      assert.ok(!(await page.getByLabel("File downloaded", { exact: true }).isChecked()));
      assert.equal(await page.getByLabel("Secret (optional)").inputValue(), "", "the secret is never shown again");
      await visible(page.getByText("Leave it empty to keep the current secret (it is not shown again), or type a new one."));
      assert.ok(!(await page.content()).includes(secret), "the page shows the secret");

      // Refused by the API: its message, in the form, and nothing changed.
      await page.getByLabel("URL").fill("ftp://127.0.0.1/x");
      await page.getByRole("button", { name: "Save changes" }).click();
      await visible(page.getByRole("alert").filter({ hasText: "Invalid request: the URL must start with http:// or https:// and name a host" }));
      await visible(row.getByText(`${before.url}/old`));

      await name.fill("New name");
      await page.getByLabel("URL").fill(`${after.url}/new`);
      await page.getByLabel("Guest upload", { exact: true }).uncheck();
      await page.getByLabel("File downloaded", { exact: true }).check();
      await page.getByRole("button", { name: "Save changes" }).click();
      await visible(page.getByRole("status").filter({ hasText: "Destination “New name” saved" }));
      const edited = rows.filter({ hasText: "New name" });
      await visible(edited.getByText(`${after.url}/new`));
      await visible(edited.getByText("File downloaded", { exact: true }));
      assert.equal(await rows.filter({ hasText: "Old name" }).count(), 0, "the old row is gone");
      assert.ok(await page.getByRole("alert").filter({ hasText: /./ }).isHidden(), "the refusal is cleared");
      await visible(page.getByRole("heading", { name: "Add a destination" }));
      assert.equal(await name.inputValue(), "", "the form is back to adding");
      assert.ok(await focused(edited.getByRole("button", { name: "Edit" })), "the focus is back on the row");

      // The next event goes to the new URL, signed with the secret kept.
      await download(ctx, file, "e2e-after-edit");
      await eventually(async () => after.got.length >= 1, { message: "the download's event at the new URL" });
      assert.equal(after.got[0].url, "/new");
      assert.equal(after.got[0].headers["x-picoshare-event"], "download");
      assertSigned(after.got[0], secret);
      assert.equal(before.got.length, 0, "nothing went to the old URL");

      // Escape leaves the form without saving, the focus back on the row.
      await edited.getByRole("button", { name: "Edit" }).click();
      await name.fill("Not saved");
      await name.press("Escape");
      await visible(page.getByRole("heading", { name: "Add a destination" }));
      assert.ok(await focused(edited.getByRole("button", { name: "Edit" })), "the focus is back on the row");
      assert.equal((await listed(page, "New name"))?.url, `${after.url}/new`, "nothing saved");
      // (The browser logs the refused PUT.)
      ctx.checkPage(page, { allow: [/status of 400 \(Bad Request\)/] });
      await page.context().close();
    } finally {
      before.server.close();
      after.server.close();
    }
  });
});

describe("e-mail notifications", () => {
  let ctx;
  let sink;
  before(async () => {
    sink = await startSmtpSink();
    ctx = await setup({
      env: {
        PS_SMTP_HOST: "127.0.0.1",
        PS_SMTP_PORT: String(sink.port),
        PS_SMTP_TLS: "none",
        PS_SMTP_FROM: "PicoShare <picoshare@example.com>",
      },
    });
  });
  after(async () => {
    await teardown(ctx);
    await sink?.stop();
  });

  it("adds an e-mail destination and delivers its test e-mail", async () => {
    const page = await adminPage(ctx);
    await page.goto("/settings/notifications");
    const url = page.getByLabel("URL");
    const addresses = page.getByLabel("E-mail addresses");
    await visible(url);
    assert.ok(await addresses.isHidden(), "no address field for a webhook");

    await page.getByLabel("Name").fill("my inbox");
    await page.getByLabel("Format").selectOption("email");
    await visible(addresses);
    assert.ok(await url.isHidden(), "no URL for e-mail");
    assert.ok(await page.getByLabel("Secret (optional)").isHidden(), "no secret for e-mail");
    await visible(page.getByText(/Sent from picoshare@example\.com through 127\.0\.0\.1:\d+\./));
    await addresses.fill("owner@example.com, partner@example.org");
    await page.getByRole("button", { name: "Add destination" }).click();
    const row = page.locator("tr[data-hook-id]").filter({ hasText: "my inbox" });
    await visible(row.getByText("owner@example.com, partner@example.org"));
    assert.ok(await page.getByRole("heading", { name: "Destination added" }).isHidden(), "no secret to show");
    // The form is back to a webhook's fields.
    await visible(url);

    await row.getByRole("button", { name: "Send test event" }).click();
    await visible(page.getByRole("status").filter({ hasText: "Test event delivered" }));
    await visible(row.getByText(/^Last delivered: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/));
    const mails = await sink.messages();
    assert.equal(mails.length, 1);
    assert.equal(mails[0].subject, "PicoShare: test e-mail");
    assert.deepEqual(mails[0].rcpt_tos, ["owner@example.com", "partner@example.org"]);
    assert.match(mails[0].body, /^A test event from PicoShare: this destination works\./);

    await page.reload();
    await visible(row.getByText("owner@example.com, partner@example.org"));
    ctx.checkPage(page);
    await page.context().close();
  });
});
