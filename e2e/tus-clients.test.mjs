// Resumable uploads (tus 1.0.0) with the unmodified tus-js-client from the npm
// registry, against the real server binary: a large upload in several PATCH
// requests, resuming after the client gave up half-way, resuming on its own
// across a server restart (graceful and crash), guest-link limits, and a
// file's content replaced by an upload created with `replaces`.
//
// No browser: tus-js-client runs in Node here, with its Node HTTP stack. It sends
// an fs.ReadStream's slices with a Content-Length and a Buffer's slices with
// chunked transfer encoding, so both kinds of request body are exercised.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Upload } from "tus-js-client";
import { SECRET, bytes, spawnServer, startServer } from "./helpers.mjs";

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const CHUNK = 8 * MiB;
/**
 * The first progress event at or past this many bytes interrupts an upload.
 * tus-js-client reports progress when a PATCH starts and ends and at most every
 * 100 ms in between, so the interruption comes inside a PATCH past this point,
 * or right after one ended (and the next one meets the stopped server).
 */
const HALF_WAY = SIZE / 2 + 3 * MiB;
/** Bound on each test; every upload here takes a few seconds. */
const TEST_TIMEOUT = 90_000;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Logs in through the API; returns the `Cookie` header value of the session. */
async function login(url) {
  const resp = await fetch(`${url}/api/auth`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sharedSecretKey: SECRET }),
  });
  assert.equal(resp.status, 200, `login: ${await resp.text()}`);
  const m = /ps_session=[^;]+/.exec(resp.headers.get("set-cookie") ?? "");
  assert.ok(m, "the login reply sets the ps_session cookie");
  return m[0];
}

async function listEntries(url, cookie) {
  const resp = await fetch(`${url}/api/entries`, { headers: { Cookie: cookie } });
  const text = await resp.text();
  assert.equal(resp.status, 200, `list entries: ${text}`);
  return JSON.parse(text);
}

/** `GET /-{id}` without a session: the file's bytes and its Content-Type. */
async function download(url, id) {
  const resp = await fetch(`${url}/-${id}`);
  assert.equal(resp.status, 200, `download /-${id}`);
  return { body: Buffer.from(await resp.arrayBuffer()), type: resp.headers.get("content-type") };
}

/** `HEAD` of an upload URL: its status and Upload-Offset. */
async function headUpload(uploadUrl, cookie) {
  const headers = { "Tus-Resumable": "1.0.0" };
  if (cookie) headers.Cookie = cookie;
  const resp = await fetch(uploadUrl, { method: "HEAD", headers });
  const offset = resp.headers.get("upload-offset");
  return { status: resp.status, offset: offset === null ? null : Number(offset) };
}

/**
 * Runs a tus-js-client upload to its end. Resolves with the client, the last
 * response and the log of its requests (method, Upload-Offset sent, status got,
 * and `phase()` at the time it was sent); rejects with the client's error,
 * which carries the log as `err.log`. With `abortWhen(bytesSent)`, the client
 * is aborted (`upload.abort()`) at the first progress event for which it
 * returns true, and the promise resolves with `aborted: true`.
 */
function runUpload(input, options, { phase = () => 0, abortWhen } = {}) {
  const log = [];
  const entries = new WeakMap();
  return new Promise((resolve, reject) => {
    let aborting = false;
    const upload = new Upload(input, {
      ...options,
      onProgress(sent, total) {
        options.onProgress?.(sent, total);
        if (abortWhen && !aborting && abortWhen(sent)) {
          aborting = true;
          upload.abort().then(() => resolve({ upload, lastResponse: null, log, aborted: true }), reject);
        }
      },
      onBeforeRequest(req) {
        const offset = req.getHeader("Upload-Offset");
        const entry = { method: req.getMethod(), offset: offset === undefined ? null : Number(offset), status: null, phase: phase() };
        entries.set(req, entry);
        log.push(entry);
      },
      onAfterResponse(req, res) {
        const entry = entries.get(req);
        if (entry) entry.status = res.getStatus();
      },
      onSuccess({ lastResponse }) {
        resolve({ upload, lastResponse, log, aborted: false });
      },
      onError(err) {
        err.log = log;
        reject(err);
      },
    });
    upload.start();
  });
}

/** The entry id the completing PATCH named. */
function entryIdOf(result) {
  const id = result.lastResponse.getHeader("PicoShare-Entry-ID");
  assert.match(id ?? "", /^[A-Za-z0-9]+$/, "the completing reply has a PicoShare-Entry-ID header");
  return id;
}

/** The HTTP status of a tus-js-client error (null if there was no response). */
function statusOf(err) {
  return err?.originalResponse ? err.originalResponse.getStatus() : null;
}

describe("tus-js-client against one server", () => {
  let server;
  let cookie;
  let dir;

  before(async () => {
    server = await startServer();
    dir = await mkdtemp(path.join(tmpdir(), "picoshare-tus-js-"));
    cookie = await login(server.url);
  });

  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a 64 MiB file from an fs.ReadStream in 8 MiB PATCH requests, with metadata", { timeout: TEST_TIMEOUT }, async () => {
    const data = bytes(SIZE, 11);
    const file = path.join(dir, "big.bin");
    await writeFile(file, data);
    const metadata = {
      filename: "tus-js-big.bin",
      filetype: "application/x-picoshare-test",
      note: "sent by tus-js-client — résumé ✓",
    };
    // A stream needs chunkSize and uploadSize (tus-js-client's Node docs).
    const result = await runUpload(createReadStream(file), {
      endpoint: `${server.url}/api/tus`,
      chunkSize: CHUNK,
      uploadSize: SIZE,
      metadata,
      headers: { Cookie: cookie },
      retryDelays: null,
    });

    const posts = result.log.filter((r) => r.method === "POST");
    const patches = result.log.filter((r) => r.method === "PATCH");
    assert.equal(posts.length, 1, "one creation request");
    assert.equal(posts[0].status, 201);
    assert.deepEqual(
      patches.map((r) => [r.offset, r.status]),
      Array.from({ length: SIZE / CHUNK }, (_, i) => [i * CHUNK, 204]),
      "8 PATCH requests of 8 MiB each, every one accepted",
    );

    const id = entryIdOf(result);
    const got = await download(server.url, id);
    assert.equal(got.body.length, SIZE);
    assert.equal(sha256(got.body), sha256(data), "the download is byte-identical");
    assert.equal(got.type.split(";")[0], metadata.filetype, "the download has the filetype given as metadata");

    const entry = (await listEntries(server.url, cookie)).find((e) => e.id === id);
    assert.ok(entry, "the entry is listed");
    assert.equal(entry.filename, metadata.filename);
    assert.equal(entry.contentType, metadata.filetype);
    assert.equal(entry.note, metadata.note);
    assert.equal(entry.size, SIZE);
    assert.equal(entry.guestLinkId, null);
  });

  test("aborted half-way, a new client given the upload URL resumes where the server is", { timeout: TEST_TIMEOUT }, async () => {
    const data = bytes(SIZE, 22);
    const filename = "tus-js-resumed.bin";
    const options = {
      endpoint: `${server.url}/api/tus`,
      chunkSize: CHUNK,
      metadata: { filename, filetype: "application/octet-stream" },
      headers: { Cookie: cookie },
      retryDelays: null,
    };
    const firstResult = await runUpload(data, options, { abortWhen: (sent) => sent >= HALF_WAY });
    assert.equal(firstResult.aborted, true, "the first client was aborted before it finished");
    const uploadUrl = firstResult.upload.url;
    assert.match(uploadUrl ?? "", /\/api\/tus\/[A-Za-z0-9]+$/, "the first client has its upload URL");
    const accepted = firstResult.log.filter((r) => r.method === "PATCH" && r.status === 204).length;
    assert.ok(accepted >= 1 && accepted < SIZE / CHUNK, `some but not all PATCH requests completed (${accepted})`);

    const head = await headUpload(uploadUrl, cookie);
    assert.equal(head.status, 200);
    assert.ok(head.offset >= accepted * CHUNK, `the server kept what it acknowledged (offset ${head.offset})`);
    assert.ok(head.offset < SIZE, `the upload is unfinished (offset ${head.offset})`);
    assert.ok(
      !(await listEntries(server.url, cookie)).some((e) => e.filename === filename),
      "an unfinished upload is not an entry yet",
    );

    // A brand-new client that only knows the URL (as after a page reload).
    const progress = [];
    const second = await runUpload(data, {
      uploadUrl,
      chunkSize: CHUNK,
      headers: { Cookie: cookie },
      retryDelays: [0, 500, 1000],
      onProgress: (sent) => progress.push(sent),
    });
    assert.equal(second.log[0].method, "HEAD", "the new client first asks for the offset");
    assert.ok(!second.log.some((r) => r.method === "POST"), "the new client did not create another upload");
    const patches = second.log.filter((r) => r.method === "PATCH");
    assert.ok(patches.length >= 1);
    assert.ok(patches[0].offset >= accepted * CHUNK, `the new client resumed at ${patches[0].offset}, not 0`);
    assert.ok(progress.length > 0 && progress[0] > 0, `the new client's progress started above 0 (${progress[0]})`);

    const id = entryIdOf(second);
    assert.equal(sha256((await download(server.url, id)).body), sha256(data), "the download is byte-identical");
    const entries = (await listEntries(server.url, cookie)).filter((e) => e.filename === filename);
    assert.equal(entries.length, 1, "one entry for the resumed upload");
    assert.equal(entries[0].id, id);
    assert.equal(entries[0].size, SIZE);
  });

  test("metadata `replaces`: the file's content is replaced when the resumed upload completes", { timeout: TEST_TIMEOUT }, async () => {
    const form = new FormData();
    form.append("file", new Blob([bytes(100_000, 31)], { type: "text/plain" }), "tus-js-old.txt");
    const created = await fetch(`${server.url}/api/entry`, { method: "POST", headers: { Cookie: cookie }, body: form });
    assert.equal(created.status, 200, `upload the original: ${await created.clone().text()}`);
    const { id } = await created.json();
    const old = await download(server.url, id);
    const before = (await listEntries(server.url, cookie)).length;

    const size = 16 * MiB;
    const data = bytes(size, 32);
    const options = {
      endpoint: `${server.url}/api/tus`,
      chunkSize: 4 * MiB,
      metadata: { replaces: id, filename: "tus-js-new.bin", filetype: "application/x-replaced" },
      headers: { Cookie: cookie },
      retryDelays: null,
    };
    const first = await runUpload(data, options, { abortWhen: (sent) => sent >= size / 2 });
    assert.equal(first.aborted, true, "stopped half-way");
    const halfway = await download(server.url, id);
    assert.equal(sha256(halfway.body), sha256(old.body), "the old content is served until the upload completes");

    const second = await runUpload(data, { uploadUrl: first.upload.url, chunkSize: 4 * MiB, headers: { Cookie: cookie }, retryDelays: null });
    assert.equal(entryIdOf(second), id, "the completing reply names the replaced file");
    const got = await download(server.url, id);
    assert.equal(sha256(got.body), sha256(data), "the same link serves the new bytes");
    assert.equal(got.type.split(";")[0], "application/x-replaced");
    const entries = await listEntries(server.url, cookie);
    assert.equal(entries.length, before, "no file was added");
    const entry = entries.find((e) => e.id === id);
    assert.equal(entry.filename, "tus-js-new.bin");
    assert.equal(entry.size, size);
  });

  test("guest link limits hold for tus-js-client", { timeout: TEST_TIMEOUT }, async () => {
    const maxFileBytes = 1 * MiB;
    const resp = await fetch(`${server.url}/api/guest-links`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Cookie: cookie },
      body: JSON.stringify({
        label: "tus-js-client guest",
        urlExpirationTime: "2030-01-01T00:00:00Z",
        fileLifetime: "876000h0m0s",
        maxFileBytes,
        maxFileUploads: 2,
      }),
    });
    const text = await resp.text();
    assert.equal(resp.status, 200, `create guest link: ${text}`);
    const linkId = JSON.parse(text).id;
    const endpoint = `${server.url}/api/guest/${linkId}/tus`;
    // Guests have no session: no Cookie header.
    const guestChunk = 256 * 1024;
    const guestOptions = (filename) => ({ endpoint, chunkSize: guestChunk, metadata: { filename }, retryDelays: null });

    // Over the size limit: refused at creation, before any byte is sent.
    const tooBig = await runUpload(bytes(maxFileBytes + 1, 31), guestOptions("too-big.bin")).then(
      () => assert.fail("an upload over maxFileBytes succeeded"),
      (e) => e,
    );
    assert.equal(statusOf(tooBig), 413, `over maxFileBytes: ${tooBig.message}`);
    assert.deepEqual(tooBig.log.map((r) => r.method), ["POST"], "nothing but the creation request was sent");

    // Two files fit (one exactly at the limit, in several PATCH requests); the
    // refused one did not use up a slot.
    const files = [
      { name: "guest-at-limit.bin", data: bytes(maxFileBytes, 32) },
      { name: "guest-small.bin", data: bytes(100_000, 33) },
    ];
    for (const f of files) {
      const result = await runUpload(f.data, guestOptions(f.name));
      assert.equal(
        result.log.filter((r) => r.method === "PATCH" && r.status === 204).length,
        Math.ceil(f.data.length / guestChunk),
        `${f.name} went up in ${guestChunk}-byte PATCH requests`,
      );
      f.id = entryIdOf(result);
      assert.equal(sha256((await download(server.url, f.id)).body), sha256(f.data), `${f.name} is byte-identical`);
    }
    const entries = await listEntries(server.url, cookie);
    for (const f of files) {
      const e = entries.find((x) => x.id === f.id);
      assert.ok(e, `${f.name} is listed`);
      assert.equal(e.guestLinkId, linkId, `${f.name} belongs to the guest link`);
      assert.equal(e.size, f.data.length);
    }

    // maxFileUploads reached: a third creation is refused (as the multipart
    // guest upload is: the link is no longer active).
    const third = await runUpload(bytes(1000, 34), guestOptions("third.bin")).then(
      () => assert.fail("a third upload succeeded on a link limited to 2"),
      (e) => e,
    );
    assert.equal(statusOf(third), 401, `third upload: ${third.message}`);
    assert.deepEqual(third.log.map((r) => r.method), ["POST"]);
    const linkFiles = (await listEntries(server.url, cookie)).filter((e) => e.guestLinkId === linkId);
    assert.equal(linkFiles.length, 2, "the link has exactly its 2 files");
  });
});

// Server processes and folders of the restart tests, for the last word if a test
// is cut short by its timeout (its own `finally` may then never run).
const leftovers = { servers: new Set(), dirs: new Set() };
async function spawnTracked(options) {
  const proc = await spawnServer(options);
  leftovers.servers.add(proc);
  return proc;
}
after(async () => {
  for (const proc of leftovers.servers) await proc.stop("SIGKILL");
  for (const dir of leftovers.dirs) await rm(dir, { recursive: true, force: true });
});

for (const signal of ["SIGTERM", "SIGKILL"]) {
  test(`server stopped with ${signal} half-way and restarted: the client resumes on its own`, { timeout: TEST_TIMEOUT }, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "picoshare-tus-restart-"));
    leftovers.dirs.add(dir);
    let server;
    try {
      server = await spawnTracked({ dir });
      const port = server.port;
      const cookie = await login(server.url);
      const data = bytes(SIZE, signal === "SIGTERM" ? 41 : 42);
      const filename = `tus-js-restart-${signal}.bin`;

      let restarted = 0; // 0 before the stop, 1 while it is down, 2 once the new server listens
      let restart;
      let exit;
      const uploading = runUpload(
        data,
        {
          endpoint: `${server.url}/api/tus`,
          chunkSize: CHUNK,
          metadata: { filename },
          headers: { Cookie: cookie },
          // Long enough to span a restart; it starts over after each success.
          retryDelays: [0, 200, 500, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000],
          onProgress(sent) {
            if (sent >= HALF_WAY && restart === undefined) {
              restarted = 1;
              restart = (async () => {
                exit = await server.stop(signal, { killAfterMs: 30_000 });
                server = await spawnTracked({ dir, listen: `127.0.0.1:${port}` });
                restarted = 2;
              })();
              restart.catch(() => {}); // awaited below
            }
          },
        },
        { phase: () => restarted },
      );
      let result;
      try {
        result = await uploading;
      } catch (e) {
        await restart; // a failed restart explains a failed upload best
        throw e;
      }
      assert.ok(restart, "the server was stopped during the upload");
      await restart;

      if (signal === "SIGTERM") {
        assert.deepEqual(exit, { code: 0, signal: null }, "SIGTERM stopped the server gracefully during a PATCH");
      } else {
        assert.deepEqual(exit, { code: null, signal: "SIGKILL" });
      }
      const { log } = result;
      const failed = (r) => r.status === null || r.status >= 500;
      const acked = log.filter((r) => r.phase === 0 && r.method === "PATCH" && r.status === 204).length;
      assert.ok(acked >= 1 && acked < SIZE / CHUNK, `some PATCH requests completed before the stop (${acked})`);
      assert.ok(log.some((r) => r.phase > 0 && failed(r)), "a request failed after the stop (the client saw the outage)");
      assert.equal(log.filter((r) => r.method === "POST").length, 1, "the client did not create another upload");
      // After its last failed request, the client asked the new server for the
      // offset, and every request from there on succeeded.
      const last = log.findLastIndex(failed);
      const resumed = log.slice(last + 1);
      assert.deepEqual(
        resumed.map((r) => [r.method, r.status]).slice(0, 2),
        [["HEAD", 200], ["PATCH", 204]],
        "after the outage the client asked for the offset, then continued",
      );
      assert.ok(resumed.every((r) => r.status >= 200 && r.status < 300), "no request failed after the client resumed");
      const resumedAt = resumed[1].offset;
      assert.ok(
        resumedAt >= acked * CHUNK,
        `the client resumed at ${resumedAt}, at least the ${acked * CHUNK} bytes the old server acknowledged`,
      );
      t.diagnostic(`${signal}: ${acked} PATCH requests acknowledged before the stop; resumed at byte ${resumedAt}`);

      const id = entryIdOf(result);
      assert.equal(sha256((await download(server.url, id)).body), sha256(data), "the download is byte-identical");
      const entries = (await listEntries(server.url, cookie)).filter((e) => e.filename === filename);
      assert.equal(entries.length, 1, "one entry, on the restarted server");
      assert.equal(entries[0].size, SIZE);
    } finally {
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
