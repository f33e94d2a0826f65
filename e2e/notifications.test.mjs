// Notifications: from Settings, add a webhook destination on the page (the
// receiver is a small HTTP server in this test, on loopback), press "Send
// test event", see the delivery state change on the page, and check that the
// receiver got the event signed with the secret shown once; a destination
// whose receiver is down shows the error. On a server with an SMTP server (a
// real one on loopback: aiosmtpd, run by crates/picoshare/tests/smtp_sink.py),
// add an e-mail destination on the page and get its test e-mail.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT, setup, teardown, adminPage, visible, eventually } from "./helpers.mjs";

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
