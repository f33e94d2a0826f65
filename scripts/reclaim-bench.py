#!/usr/bin/env python3
"""Measures how disk space comes back: upload a file, delete it, and watch the
database file shrink while the server keeps running.

Prints the database size (file + WAL) before the upload, after it, right after
the delete, and once it has stopped shrinking, with the time the reclaim took,
and what the server wrote from the delete to the end of the reclaim (bytes it
passed to write(2), `wchar` in /proc/PID/io: the WAL, the checkpoints into the
database file, the shared-memory index). While it waits, it times small
downloads of another file, to show that the background vacuum does not block
readers (`--no-reads` leaves them out, so that the bytes written are the
delete's and the reclaim's alone; each download writes a history row).

Example: scripts/reclaim-bench.py --size-mib 1024 [--db-from crates/picoshare/tests/fixtures/picoshare-v15/store.db] [--binary B] [--no-reads]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

SECRET = "reclaim-bench"


def db_bytes(db):
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


def written(pid):
    with open(f"/proc/{pid}/io") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("wchar:"))


def curl(*args):
    return subprocess.run(["curl", "-sS", "--fail-with-body", *args], check=True,
                          capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/picoshare")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--db-from", help="start from a copy of this database (e.g. one written by the original)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-reads", action="store_true", help="no small downloads during the reclaim")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="reclaim-", dir=a.data_dir)
    db = os.path.join(d, "store.db")
    if a.db_from:
        shutil.copyfile(a.db_from, db)
        os.chmod(db, 0o644)
    src = os.path.join(d, "file.bin")
    with open(src, "wb") as f:
        for _ in range(a.size_mib):
            f.write(os.urandom(1 << 20))
    env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG="picoshare=info")
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([a.binary, "--db", db, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=log, text=True, env=env)
    try:
        base = p.stdout.readline().strip().rsplit(" ", 1)[1]
        jar = os.path.join(d, "cookies")
        curl("-c", jar, "-X", "POST", "-d", json.dumps({"sharedSecretKey": SECRET}), base + "/api/auth")
        small = json.loads(curl("-b", jar, "-F", "file=@" + __file__, base + "/api/entry?expiration=2999-12-31T00:00:00Z"))["id"]
        time.sleep(1.5)
        before = db_bytes(db)
        up = json.loads(curl("-b", jar, "-F", f"file=@{src}", base + "/api/entry?expiration=2999-12-31T00:00:00Z"))["id"]
        time.sleep(1.5)
        full = db_bytes(db)
        w0 = written(p.pid)
        t0 = time.monotonic()
        curl("-b", jar, "-X", "DELETE", f"{base}/api/entry/{up}")
        delete_s = time.monotonic() - t0
        after_delete = db_bytes(db)
        last, stable_since, worst_read = after_delete, time.monotonic(), 0.0
        while time.monotonic() - stable_since < 5.0 and time.monotonic() - t0 < 600:
            if not a.no_reads:
                r0 = time.monotonic()
                curl("-o", "/dev/null", f"{base}/-{small}")
                worst_read = max(worst_read, time.monotonic() - r0)
            time.sleep(0.05)
            now = db_bytes(db)
            if now < last:
                last, stable_since = now, time.monotonic()
        reclaim_s = stable_since - t0
        wrote = written(p.pid) - w0
        mib = lambda b: b / 2**20
        sizes = {sfx or "db": os.path.getsize(db + sfx) for sfx in ("", "-wal") if os.path.exists(db + sfx)}
        print("final sizes:", sizes, file=sys.stderr)
        print(f"| {a.size_mib} MiB | {'copy of ' + os.path.basename(a.db_from) if a.db_from else 'new database'} "
              f"| {mib(before):.1f} | {mib(full):.1f} | {mib(after_delete):.1f} | {mib(last):.1f} "
              f"| {delete_s:.2f} | {reclaim_s:.1f} | {mib(wrote):.1f} "
              f"| {'-' if a.no_reads else f'{worst_read*1000:.0f}'} |")
    finally:
        p.terminate(); p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    print("| file | database | before upload MiB | after upload MiB | right after delete MiB | after reclaim MiB "
          "| DELETE reply s | reclaim s | server wrote MiB | slowest small download during reclaim ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    main()
