#!/usr/bin/env python3
"""Measures how long downloads stall while a large upload runs.

Uploads a file A, then starts uploading a large file B (curl, in the
background) and, while B is in flight, downloads A over and over, reading it
in 64 KiB pieces and timing the gap between consecutive pieces. Prints the
longest gap, the 99th percentile gap, and the same for a quiet server (A
downloaded with no upload running), measured in the same run.

Example: scripts/stall-bench.py --upload-mib 1024 --download-mib 64
"""
import argparse, shlex, http.client, json, os, shutil, statistics, subprocess, sys, tempfile, time

SECRET = "stall-bench"


def gaps_while(host, port, entry, predicate, limit_s):
    gaps, started = [], time.monotonic()
    while predicate() and time.monotonic() - started < limit_s:
        c = http.client.HTTPConnection(host, port)
        t0 = time.monotonic()
        c.request("GET", f"/-{entry}")
        r = c.getresponse()
        last = t0
        while True:
            piece = r.read(65536)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            if not piece:
                break
        c.close()
    return gaps


def summary(gaps):
    gaps = sorted(gaps)
    p99 = gaps[int(len(gaps) * 0.99) - 1] if gaps else 0
    return f"{len(gaps)} reads, longest gap {gaps[-1]*1000:.1f} ms, p99 {p99*1000:.2f} ms, median {statistics.median(gaps)*1000:.3f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/picoshare")
    ap.add_argument("--upload-mib", type=int, default=1024)
    ap.add_argument("--download-mib", type=int, default=64)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--server-args", default="", help="extra server arguments, e.g. '--journal-mode delete'")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="stall-", dir=a.data_dir)
    try:
        small, big = os.path.join(d, "a.bin"), os.path.join(d, "b.bin")
        for path, mib in ((small, a.download_mib), (big, a.upload_mib)):
            with open(path, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
        env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG="warn")
        p = subprocess.Popen([a.binary, "--db", os.path.join(d, "store.db"), "--listen", "127.0.0.1:0", *shlex.split(a.server_args)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            base = p.stdout.readline().strip().rsplit(" ", 1)[1]
            host, port = base[len("http://"):].split(":")
            jar = os.path.join(d, "cookies")
            curl = ["curl", "-sS", "--fail-with-body"]
            subprocess.run(curl + ["-c", jar, "-X", "POST", "-d", json.dumps({"sharedSecretKey": SECRET}), base + "/api/auth"], check=True, capture_output=True)
            entry = json.loads(subprocess.run(curl + ["-b", jar, "-F", f"file=@{small}", base + "/api/entry"], check=True, capture_output=True, text=True).stdout)["id"]
            quiet = gaps_while(host, int(port), entry, lambda: True, 3.0)
            up = subprocess.Popen(curl + ["-b", jar, "-o", os.devnull, "-F", f"file=@{big}", base + "/api/entry"])
            busy = gaps_while(host, int(port), entry, lambda: up.poll() is None, 600)
            up.wait()
            print(f"quiet server:        {summary(quiet)}")
            print(f"during a {a.upload_mib} MiB upload: {summary(busy)}")
        finally:
            p.terminate(); p.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
