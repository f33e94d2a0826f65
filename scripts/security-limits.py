#!/usr/bin/env python3
"""Measures the limits around the credentials that SECURITY.md states, on a
server binary started here on loopback with a fresh database:

1. the login limit's memory: 300 wrong passphrases each with a different
   256 KiB X-Forwarded-For that is no address, then 600 from as many
   addresses (PS_BEHIND_PROXY, direct): growth of the server's resident
   memory, and the keys the limit holds (from /metrics);
2. 150 wrong passwords of one protected file sent at once by one client:
   how many were checked (picoshare_password_checks_total) and refused (429);
3. 40 password checks at once (40 addresses, 4 files): growth of the peak
   resident memory (VmHWM);
4. a login body trickled a byte every 500 ms (body idle timeout 2 s): how long
   the server kept the connection.

Usage: python3 scripts/security-limits.py [target/debug/picoshare]
Only the standard library; everything is on 127.0.0.1 and stops by itself.
"""

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/debug/picoshare"
SECRET = "security-limits passphrase"


class Server:
    def __init__(self, env):
        self.dir = tempfile.TemporaryDirectory(prefix="picoshare-limits-")
        full_env = {"PATH": os.environ.get("PATH", ""), "PS_SHARED_SECRET": SECRET,
                    "PS_METRICS_PUBLIC": "1", "RUST_LOG": "warn", **env}
        self.proc = subprocess.Popen(
            [BIN, "--db", os.path.join(self.dir.name, "store.db"), "--listen", "127.0.0.1:0",
             "--body-idle-timeout", "2"],
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"the server did not start: {line!r}")
        self.port = int(m.group(1))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()

    def status_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
        raise KeyError(field)

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.getheader("set-cookie"), data

    def metric(self, series):
        _, _, text = self.request("GET", "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None

    def login_cookie(self):
        _, cookie, _ = self.request("POST", "/api/auth", json.dumps({"sharedSecretKey": SECRET}))
        return cookie.split(";")[0]

    def upload_protected(self, cookie, password):
        boundary = "limitsboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{password}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\nguarded\r\n--{boundary}--\r\n")
        _, _, data = self.request("POST", "/api/entry?expiration=2040-01-01T00:00:00Z", body,
                                  {"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        return json.loads(data)["id"]


def basic(password):
    return "Basic " + base64.b64encode(f"x:{password}".encode()).decode()


def at_once(server, jobs):
    """Runs the (path, headers) requests at once; their statuses."""
    statuses = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, path, headers):
        barrier.wait()
        statuses[i] = server.request("GET", path, headers=headers)[0]
    threads = [threading.Thread(target=run, args=(i, p, h)) for i, (p, h) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def login_limit_memory():
    s = Server({"PS_BEHIND_PROXY": "1"})
    try:
        wrong = json.dumps({"sharedSecretKey": "wrong"})
        s.request("POST", "/api/auth", wrong, {"X-Forwarded-For": "x" * 256 * 1024})
        before = s.status_kib("VmRSS:")
        for i in range(300):
            junk = f"{i}-" + "x" * (256 * 1024 - 8)
            s.request("POST", "/api/auth", wrong, {"X-Forwarded-For": junk})
        for i in range(600):
            s.request("POST", "/api/auth", wrong, {"X-Forwarded-For": f"10.0.{i // 256}.{i % 256}"})
        grown = s.status_kib("VmRSS:") - before
        keys = s.metric('picoshare_rate_limit_keys{limit="login"}')
        print(f"1. login limit: resident memory +{grown} KiB after 900 wrong passphrases; keys held: {keys}")
    finally:
        s.stop()


def simultaneous_passwords():
    s = Server({})
    try:
        pid = s.upload_protected(s.login_cookie(), "hunter2")
        before = s.metric("picoshare_password_checks_total") or 0
        statuses = at_once(s, [(f"/-{pid}", {"Authorization": basic(f"guess {i}")}) for i in range(150)])
        checked = (s.metric("picoshare_password_checks_total") or 0) - before
        print(f"2. 150 simultaneous wrong passwords: {int(checked)} checked, "
              f"{statuses.count(401)} answered 401, {statuses.count(429)} answered 429")
    finally:
        s.stop()


def hashing_memory():
    s = Server({"PS_BEHIND_PROXY": "1"})
    try:
        cookie = s.login_cookie()
        ids = [s.upload_protected(cookie, "hunter2") for _ in range(4)]
        before = s.status_kib("VmHWM:")
        jobs = [(f"/-{ids[i % 4]}", {"Authorization": basic(f"guess {i}"), "X-Forwarded-For": f"198.51.100.{i}"})
                for i in range(40)]
        statuses = at_once(s, jobs)
        grown = s.status_kib("VmHWM:") - before
        print(f"3. 40 simultaneous password checks ({statuses.count(401)} answered 401): "
              f"peak resident memory +{grown // 1024} MiB")
    finally:
        s.stop()


def trickled_body():
    s = Server({})
    try:
        sock = socket.create_connection(("127.0.0.1", s.port))
        sock.sendall(b"POST /api/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 65536\r\n\r\n{")
        start = time.monotonic()
        sock.settimeout(0.5)
        reply = b""
        while time.monotonic() - start < 60:
            try:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            except socket.timeout:
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
        status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
        print(f"4. a login body trickled a byte every 500 ms: closed after "
              f"{time.monotonic() - start:.1f} s ({status or 'no reply'})")
    finally:
        s.stop()


if __name__ == "__main__":
    login_limit_memory()
    simultaneous_passwords()
    hashing_memory()
    trickled_body()
