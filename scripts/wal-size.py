#!/usr/bin/env python3
"""How large the SQLite store's WAL gets: uploads one file of --size-mib to a
fresh server while sampling the size of `store.db-wal` every 10 ms, and
prints the largest size seen during the upload, the size once the server has
been idle for --idle seconds, and the same after a clean stop.

--reader SECONDS keeps a read transaction open in an outside `sqlite3` shell
for that long, starting with the upload (what Litestream or a backup does):
checkpoints cannot pass its snapshot, so the WAL grows meanwhile.
Extra arguments after `--` go to the server (e.g. `-- --wal-limit-mib 64`).

Example: scripts/wal-size.py --binary target/release/picoshare --size-mib 2048 [--reader 10]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time

SECRET = "wal-size"


def curl(*args):
    return subprocess.run(["curl", "-sS", "--fail-with-body", *args], check=True,
                          capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/picoshare")
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--reader", type=float, default=0, help="seconds an outside read transaction stays open")
    ap.add_argument("--idle", type=float, default=3)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("server_args", nargs="*")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="wal-size-", dir=a.data_dir)
    db = os.path.join(d, "store.db")
    wal = db + "-wal"
    src = os.path.join(d, "file.bin")
    with open(src, "wb") as f:
        for _ in range(a.size_mib):
            f.write(os.urandom(1 << 20))
    env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG="picoshare=warn")
    p = subprocess.Popen([a.binary, "--db", db, "--listen", "127.0.0.1:0", *a.server_args],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(d, "server.log"), "w"),
                         text=True, env=env)
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], os.path.getsize(wal))
            except FileNotFoundError:
                pass
            time.sleep(0.01)

    try:
        base = p.stdout.readline().strip().rsplit(" ", 1)[1]
        jar = os.path.join(d, "cookies")
        curl("-c", jar, "-X", "POST", "-d", json.dumps({"sharedSecretKey": SECRET}), base + "/api/auth")
        reader = None
        if a.reader > 0:
            reader = subprocess.Popen(["sqlite3", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            reader.stdin.write("BEGIN; SELECT count(*) FROM entries;\n")
            reader.stdin.flush()
            reader.stdout.readline()
            threading.Timer(a.reader, lambda: reader.stdin.close()).start()
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.monotonic()
        curl("-b", jar, "-F", f"file=@{src}", base + "/api/entry?expiration=2999-12-31T00:00:00Z")
        upload_s = time.monotonic() - t0
        during = peak[0]
        if reader:
            reader.wait()
        time.sleep(a.idle)
        stop.set()
        t.join()
        idle = os.path.getsize(wal) if os.path.exists(wal) else 0
        p.terminate()
        p.wait()
        stopped = os.path.getsize(wal) if os.path.exists(wal) else 0
        mib = lambda b: b / 2**20
        print(f"| {a.size_mib} MiB | {'read transaction ' + str(a.reader) + ' s' if a.reader else 'none'} "
              f"| {' '.join(a.server_args) or 'defaults'} | {upload_s:.1f} | {mib(during):.0f} | {mib(peak[0]):.0f} "
              f"| {mib(idle):.1f} | {mib(stopped):.1f} |")
    finally:
        stop.set()
        if p.poll() is None:
            p.terminate(); p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    print("| file | outside reader | server settings | upload s | WAL peak during upload MiB "
          "| WAL peak overall MiB | WAL after idle MiB | WAL after stop MiB |")
    print("|---|---|---|---|---|---|---|---|")
    main()
