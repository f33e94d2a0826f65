#!/usr/bin/env python3
"""Times the ways of backing up a live database while uploads keep committing.

Fills a fresh server's database with large files (--fill-mib in all), then
keeps --uploaders clients uploading small files (64 KiB, each acknowledged
after its durable commit) and, meanwhile, backs the database up with each
method in turn, --rounds times, in alternating order:

- `picoshare backup` (the server binary's own command),
- `sqlite3 DB ".backup COPY"` (SQLite's online backup from the shell),
- `sqlite3 DB "VACUUM INTO 'COPY'"`.

For each: the time it took (or "> --timeout" if it had not finished), whether
the copy passes `PRAGMA integrity_check`, and how many of the files
acknowledged before it started are in the copy (all must be). Prints a
Markdown table of every run and the medians.

Example: scripts/backup-bench.py --binary target/release/picoshare --fill-mib 1024 --rounds 3
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time

SECRET = "backup-bench"


def curl(*args):
    return subprocess.run(["curl", "-sS", "--fail-with-body", *args], check=True,
                          capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/picoshare")
    ap.add_argument("--fill-mib", type=int, default=1024)
    ap.add_argument("--uploaders", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds each uploader waits between uploads")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=300, help="seconds before a method is stopped")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="backup-bench-", dir=a.data_dir)
    db = os.path.join(d, "store.db")
    env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG="picoshare=warn")
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([a.binary, "--db", db, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=log, text=True, env=env)
    stop = threading.Event()
    acked = []  # (time acknowledged, id)
    lock = threading.Lock()
    try:
        base = p.stdout.readline().strip().rsplit(" ", 1)[1]
        jar = os.path.join(d, "cookies")
        curl("-c", jar, "-X", "POST", "-d", json.dumps({"sharedSecretKey": SECRET}), base + "/api/auth")
        big = os.path.join(d, "big.bin")
        with open(big, "wb") as f:
            for _ in range(256):
                f.write(os.urandom(1 << 20))
        for _ in range(max(1, a.fill_mib // 256)):
            curl("-b", jar, "-F", f"file=@{big}", base + "/api/entry?expiration=2999-12-31T00:00:00Z")
        small = os.path.join(d, "small.bin")
        with open(small, "wb") as f:
            f.write(os.urandom(64 << 10))

        def uploader():
            while not stop.is_set():
                r = json.loads(curl("-b", jar, "-F", f"file=@{small}",
                                    base + "/api/entry?expiration=2999-12-31T00:00:00Z"))
                with lock:
                    acked.append((time.monotonic(), r["id"]))
                time.sleep(a.pause)

        threads = [threading.Thread(target=uploader, daemon=True) for _ in range(a.uploaders)]
        for t in threads:
            t.start()
        time.sleep(2)
        methods = {
            "picoshare backup": lambda out: [a.binary, "backup", "-q", "--db", db, out],
            "sqlite3 .backup": lambda out: ["sqlite3", db, f".backup '{out}'"],
            "sqlite3 VACUUM INTO": lambda out: ["sqlite3", db, f"VACUUM INTO '{out}'"],
        }
        results = {m: [] for m in methods}
        print("| round | method | database MiB | seconds | integrity | acknowledged before it, in the copy | uploads acknowledged during it |")
        print("|---|---|---|---|---|---|---|")
        for r in range(a.rounds):
            order = list(methods) if r % 2 == 0 else list(reversed(methods))
            for m in order:
                out = os.path.join(d, "copy.db")
                # A killed `.backup` leaves a hot journal beside its copy.
                for sfx in ("", "-journal", "-wal", "-shm", ".partial"):
                    if os.path.exists(out + sfx):
                        os.remove(out + sfx)
                with lock:
                    before = [i for _, i in acked]
                size_mib = os.path.getsize(db) / 2**20
                t0 = time.monotonic()
                try:
                    subprocess.run(methods[m](out), check=True, capture_output=True, timeout=a.timeout)
                    secs = time.monotonic() - t0
                    timed_out = False
                except subprocess.TimeoutExpired:
                    secs, timed_out = float(a.timeout), True
                with lock:
                    during = sum(1 for t, _ in acked if t >= t0)
                if timed_out:
                    print(f"| {r + 1} | {m} | {size_mib:.0f} | > {a.timeout} | - | - | {during} |", flush=True)
                    results[m].append(secs)
                    continue
                check = subprocess.run(["sqlite3", out, "PRAGMA integrity_check"], capture_output=True, text=True).stdout.strip()
                ids = set(subprocess.run(["sqlite3", out, "SELECT id FROM entries"], capture_output=True,
                                         text=True).stdout.split())
                present = sum(1 for i in before if i in ids)
                print(f"| {r + 1} | {m} | {size_mib:.0f} | {secs:.1f} | {check} | {present}/{len(before)} | {during} |", flush=True)
                results[m].append(secs)
        print()
        print(f"{a.uploaders} clients uploading 64 KiB files throughout, pausing {a.pause} s between uploads.")
        print()
        print("| method | median seconds | runs |")
        print("|---|---|---|")
        for m, v in results.items():
            print(f"| {m} | {statistics.median(v):.1f} | {', '.join(f'{x:.1f}' for x in v)} |")
    finally:
        stop.set()
        time.sleep(0.5)
        p.terminate(); p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
