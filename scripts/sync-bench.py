#!/usr/bin/env python3
"""fsync against fdatasync on this disk, the way the WAL is synced (stdlib only).

Each round writes PAGES pages of PAGE bytes and syncs, as a commit of a few
64 KiB pages does: appended to a growing file (a WAL before its first
checkpoint) or over a file of that size already (a WAL restarted from its
beginning). Both ways are measured alternately, round after round, in a file
in DIR (default: /tmp); prints the median time of each and their ratio.
It tells whether building SQLite with HAVE_FDATASYNC (xSync = fdatasync)
would make durable commits cheaper here (docs/benchmarks.md, issue 21).

Example:
  scripts/sync-bench.py --dir /var/lib/picoshare --rounds 300
"""
import argparse, os, statistics, time


def rounds(sync, grow, n, pages, page, path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = os.urandom(page)
    try:
        if not grow:
            for i in range(n * pages):
                os.pwrite(fd, buf, i * page)
            os.fsync(fd)
        times, off = [], 0
        for _ in range(n):
            t = time.perf_counter()
            for _ in range(pages):
                os.pwrite(fd, buf, off)
                off += page
            sync(fd)
            times.append(time.perf_counter() - t)
        return times
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--page", type=int, default=65536)
    a = ap.parse_args()
    path = os.path.join(a.dir, f"sync-bench-{os.getpid()}.dat")
    for grow in (True, False):
        res = {"fsync": [], "fdatasync": []}
        for _ in range(a.repeat):
            for name, fn in (("fsync", os.fsync), ("fdatasync", os.fdatasync)):
                res[name] += rounds(fn, grow, a.rounds, a.pages, a.page, path)
        f, d = statistics.median(res["fsync"]), statistics.median(res["fdatasync"])
        kind = "appending" if grow else "overwriting"
        print(f"{kind}: {a.pages} x {a.page} B then sync: fsync {f*1000:.3f} ms, "
              f"fdatasync {d*1000:.3f} ms, fdatasync/fsync {d/f:.2f}")


if __name__ == "__main__":
    main()
