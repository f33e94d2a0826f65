"""Resumable uploads (tus 1.0.0) with the unmodified tuspy client from the
Python package index, against the real server binary.

Each test starts its own server (``PICOSHARE_BIN``, default
``target/debug/picoshare``) on 127.0.0.1 with a database in a temporary folder,
and removes both when it ends, failed or not.

Run from the repository root::

    python3 -m unittest discover -s tests/clients -v
    python3 -m unittest discover -s tests/clients -k test_wrong_offset -v   # one test
"""

import ctypes
import email.utils
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tusclient import client as tus_client
from tusclient.exceptions import TusUploadFailed

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = os.environ.get("PICOSHARE_BIN") or str(ROOT / "target" / "debug" / "picoshare")
SECRET = "tuspy-passphrase-correct-horse"
MiB = 1024 * 1024
SIZE = 64 * MiB
CHUNK = 8 * MiB
START_TIMEOUT = 20  # seconds for the server to print that it listens
HTTP_TIMEOUT = 60  # seconds for one request made by the tests themselves

# Only the loopback is talked to: no proxy, whatever the environment says
# (requests, which tuspy uses, reads these variables too).
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# Loaded here, not in the forked child (where loading could wait on a lock).
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the server process: get SIGKILL if the test process dies (Linux)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """One `picoshare` process on `<folder>/store.db`."""

    def __init__(self, folder, listen="127.0.0.1:0", args=()):
        self.folder = Path(folder)
        self.stderr = open(self.folder / "server.log", "ab")
        env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--listen", listen, "--db", str(self.folder / "store.db"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            preexec_fn=_die_with_parent,
        )
        lines = queue.Queue()

        def drain():
            # Reads stdout to its end, so the server never blocks on a full pipe.
            for raw in self.proc.stdout:
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        self.drainer = threading.Thread(target=drain, daemon=True)
        self.drainer.start()
        try:
            while True:
                line = lines.get(timeout=START_TIMEOUT)
                if line is None:
                    raise RuntimeError(f"server exited ({self.proc.wait()}) before listening: {self.log()}")
                m = re.search(r"picoshare listening on (http://\S+)", line)
                if m:
                    self.url = m.group(1).rstrip("/")
                    break
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        self.port = int(self.url.rsplit(":", 1)[1])

    def log(self):
        self.stderr.flush()
        return (self.folder / "server.log").read_text(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM, kill_after=30):
        """Sends `sig`, SIGKILL after `kill_after` seconds; returns the exit status
        (negative: killed by that signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.drainer.join(timeout=10)
        if not self.drainer.is_alive():
            self.proc.stdout.close()
        self.stderr.close()
        return self.proc.returncode


def request(method, url, *, headers=None, body=None):
    """One HTTP request; returns (status, headers, body bytes), errors included."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _http.open(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def seeded_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class TusCase(unittest.TestCase):
    """A fresh server and folder per test."""

    server_args = ()

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="picoshare-tuspy-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.prepare()
        self.start_server()
        self.cookie = self.login()

    def prepare(self):
        """Runs before the server starts, with `self.dir` made."""

    def start_server(self, listen="127.0.0.1:0"):
        server = Server(self.dir, listen=listen, args=self.server_args)
        # Cleanups run last-in first-out, so the server stops before the folder goes.
        self.addCleanup(server.stop)
        self.server = server
        return server

    @property
    def url(self):
        return self.server.url

    def login(self):
        status, headers, body = request(
            "POST",
            f"{self.url}/api/auth",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"sharedSecretKey": SECRET}).encode(),
        )
        self.assertEqual(status, 200, body)
        m = re.search(r"ps_session=[^;]+", headers.get("Set-Cookie", ""))
        self.assertIsNotNone(m, "the login reply sets the ps_session cookie")
        return m.group(0)

    def client(self):
        return tus_client.TusClient(f"{self.url}/api/tus", headers={"Cookie": self.cookie})

    def file(self, name, data):
        """Writes `data` to a file and opens it for tuspy's `file_stream` (tuspy
        leaves the files it opens itself from `file_path` open)."""
        path = self.dir / name
        path.write_bytes(data)
        stream = open(path, "rb")
        self.addCleanup(stream.close)
        return stream

    def entries(self):
        status, _, body = request("GET", f"{self.url}/api/entries", headers={"Cookie": self.cookie})
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def download(self, entry_id):
        status, headers, body = request("GET", f"{self.url}/-{entry_id}")
        self.assertEqual(status, 200, f"download /-{entry_id}")
        return body, headers

    def head(self, upload_url):
        return request("HEAD", upload_url, headers={"Tus-Resumable": "1.0.0", "Cookie": self.cookie})

    def entry_id(self, uploader):
        """The entry the completing PATCH named."""
        entry_id = uploader.request.response_headers.get("picoshare-entry-id", "")
        self.assertRegex(entry_id, r"^[A-Za-z0-9]+$", "the completing reply has PicoShare-Entry-ID")
        return entry_id

    def assert_stored(self, entry_id, data, filename):
        """The download is byte-identical and the entry is listed once."""
        body, _ = self.download(entry_id)
        self.assertEqual(len(body), len(data))
        self.assertEqual(sha256(body), sha256(data), "the download is byte-identical")
        listed = [e for e in self.entries() if e["filename"] == filename]
        self.assertEqual([e["id"] for e in listed], [entry_id], "one entry for the upload")
        self.assertEqual(listed[0]["size"], len(data))
        return listed[0]


class TestTuspy(TusCase):
    def test_large_upload_in_chunks_with_metadata(self):
        data = seeded_bytes(SIZE, 1)
        metadata = {
            "filename": "tuspy-big.bin",
            "filetype": "application/x-picoshare-test",
            "note": "sent by tuspy — résumé ✓",
        }
        uploader = self.client().uploader(
            file_stream=self.file("big.bin", data), chunk_size=CHUNK, metadata=metadata
        )
        offsets = []
        while uploader.offset < SIZE:
            uploader.upload_chunk()
            self.assertEqual(uploader.request.status_code, 204)
            offsets.append(uploader.offset)
        self.assertEqual(offsets, [CHUNK * (i + 1) for i in range(SIZE // CHUNK)], "8 PATCH requests of 8 MiB")
        self.assertRegex(uploader.url, r"/api/tus/[A-Za-z0-9]+$")

        entry_id = self.entry_id(uploader)
        entry = self.assert_stored(entry_id, data, metadata["filename"])
        self.assertEqual(entry["contentType"], metadata["filetype"])
        self.assertEqual(entry["note"], metadata["note"])
        self.assertIsNone(entry["guestLinkId"])
        _, headers = self.download(entry_id)
        self.assertEqual(headers.get_content_type(), metadata["filetype"])

        # HEAD of the finished upload still answers, with the full offset.
        status, headers, _ = self.head(uploader.url)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Upload-Offset"]), SIZE)
        self.assertEqual(headers["PicoShare-Entry-ID"], entry_id)

    def test_interrupted_then_resumed_by_a_new_uploader(self):
        data = seeded_bytes(SIZE, 2)
        stream = self.file("resume.bin", data)
        filename = "tuspy-resumed.bin"
        first = self.client().uploader(file_stream=stream, chunk_size=CHUNK, metadata={"filename": filename})
        for _ in range(3):
            first.upload_chunk()
        self.assertEqual(first.offset, 3 * CHUNK)
        upload_url = first.url
        del first
        self.assertFalse(
            any(e["filename"] == filename for e in self.entries()), "an unfinished upload is not an entry yet"
        )

        # A new uploader that knows only the URL asks the server for the offset.
        second = self.client().uploader(file_stream=stream, chunk_size=CHUNK, url=upload_url)
        self.assertGreater(second.offset, 0, "the new uploader did not start over")
        self.assertEqual(second.offset, 3 * CHUNK, "it resumes at the server's offset")
        second.upload()
        self.assertEqual(second.offset, SIZE)
        self.assert_stored(self.entry_id(second), data, filename)

    def _restart_between_chunks(self, sig, expected_exit):
        data = seeded_bytes(SIZE, 3 if sig == signal.SIGTERM else 4)
        stream = self.file("restart.bin", data)
        filename = f"tuspy-restart-{sig.name}.bin"
        uploader = self.client().uploader(file_stream=stream, chunk_size=CHUNK, metadata={"filename": filename})
        for _ in range(4):
            uploader.upload_chunk()
        self.assertEqual(uploader.offset, SIZE // 2)

        port = self.server.port
        self.assertEqual(self.server.stop(sig), expected_exit)
        self.start_server(listen=f"127.0.0.1:{port}")
        self.assertEqual(self.url, f"http://127.0.0.1:{port}")

        # The acknowledged bytes survived, and the session too.
        self.assertEqual(uploader.get_offset(), SIZE // 2)
        uploader.upload()
        self.assertEqual(uploader.offset, SIZE)
        self.assert_stored(self.entry_id(uploader), data, filename)

    def test_server_restart_between_chunks_sigterm(self):
        self._restart_between_chunks(signal.SIGTERM, 0)

    def test_server_restart_between_chunks_sigkill(self):
        self._restart_between_chunks(signal.SIGKILL, -signal.SIGKILL)

    def test_wrong_offset_gets_409(self):
        size, chunk = 1 * MiB, 256 * 1024
        data = seeded_bytes(size, 5)
        filename = "tuspy-409.bin"
        uploader = self.client().uploader(
            file_stream=self.file("conflict.bin", data), chunk_size=chunk, metadata={"filename": filename}
        )
        uploader.upload_chunk()
        self.assertEqual(uploader.offset, chunk)

        for wrong in (0, chunk - 1, chunk + 1, 2 * chunk):
            status, headers, body = request(
                "PATCH",
                uploader.url,
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Cookie": self.cookie,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(wrong),
                },
                body=data[wrong : wrong + chunk],
            )
            self.assertEqual(status, 409, f"Upload-Offset {wrong} while the upload has {chunk} bytes: {body!r}")
            self.assertEqual(headers["Tus-Resumable"], "1.0.0")

        status, headers, _ = self.head(uploader.url)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Upload-Offset"]), chunk, "the refused requests stored nothing")
        uploader.upload()
        self.assert_stored(self.entry_id(uploader), data, filename)


class TestExpiry(TusCase):
    """Unfinished uploads expire (410) and garbage collection removes them and
    their bytes. The server reads "now" from a file (`--clock-file`)."""

    def prepare(self):
        self.clock = self.dir / "now"
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.set_clock(self.now)
        self.server_args = ("--tus-expiry-hours", "1", "--clock-file", str(self.clock))

    def set_clock(self, t):
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(t.strftime("%Y-%m-%dT%H:%M:%SZ") + "\n")
        os.replace(tmp, self.clock)

    def query(self, sql, *params):
        """One value from the database file, opened read-only."""
        db = sqlite3.connect(f"file:{self.dir / 'store.db'}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchone()
        finally:
            db.close()

    def test_expired_upload_is_gone_then_collected(self):
        size, chunk = 4 * MiB, 1 * MiB
        data = seeded_bytes(size, 6)
        uploader = self.client().uploader(
            file_stream=self.file("expire.bin", data), chunk_size=chunk, metadata={"filename": "tuspy-expire.bin"}
        )
        uploader.upload_chunk()
        uploader.upload_chunk()
        self.assertEqual(uploader.offset, 2 * chunk)
        upload_id = uploader.url.rsplit("/", 1)[1]

        status, headers, _ = self.head(uploader.url)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["Upload-Offset"]), 2 * chunk)
        expires = email.utils.parsedate_to_datetime(headers["Upload-Expires"])
        self.assertEqual(expires, self.now + timedelta(hours=1), "Upload-Expires is an hour after the last bytes")

        row = self.query("SELECT entry_id FROM picoshare_tus_uploads WHERE id = ?", upload_id)
        self.assertIsNotNone(row, "the upload is in the database")
        entry_id = row[0]
        (stored,) = self.query("SELECT count(*) FROM entries_data WHERE id = ?", entry_id)
        self.assertGreater(stored, 0, "the bytes sent so far are in the chunk table")

        self.set_clock(self.now + timedelta(hours=2))
        status, _, _ = self.head(uploader.url)
        self.assertEqual(status, 410, "HEAD of an expired upload")
        with self.assertRaises(TusUploadFailed) as cm:
            uploader.upload_chunk()
        self.assertEqual(cm.exception.status_code, 410, "PATCH of an expired upload")

        status, _, body = request("POST", f"{self.url}/api/admin/gc", headers={"Cookie": self.cookie})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["expiredUploads"], 1)

        status, _, _ = self.head(uploader.url)
        self.assertEqual(status, 404, "HEAD after the collection")
        self.assertIsNone(self.query("SELECT 1 FROM picoshare_tus_uploads WHERE id = ?", upload_id))
        self.assertEqual(self.query("SELECT count(*) FROM entries_data WHERE id = ?", entry_id), (0,))
        self.assertEqual(self.query("SELECT count(*) FROM entries_data"), (0,), "no chunks are left at all")
        self.assertEqual(self.entries(), [], "no entry came of it")


if __name__ == "__main__":
    unittest.main()
