#!/usr/bin/env python3
"""Quick throughput check of PicoShare storage settings (stdlib only).

For each iteration it runs, interleaved (A B C ... A B C ...):
  - the physical references: write + fsync of the file's bytes into the data
    directory, and a download of the same file from a plain static file server
    (python3 -m http.server) over loopback;
  - for each server variant: a fresh data directory and a fresh server process,
    one upload (curl multipart) and one full download, recording server peak RSS
    (VmHWM) and bytes the server wrote to storage (/proc/PID/io).
The first iteration is a warm-up and is discarded. Prints medians and ratios.

This is the quick command used to choose the storage design; the full
benchmark suite is picoshare-bench.

Example:
  scripts/quick-bench.py --sizes 100,1024 --iterations 4 \
      --variant 'default=' --variant 'wal-4k=--page-size 4096'
"""
import argparse, json, os, shlex, shutil, statistics, subprocess, sys, tempfile, time

SECRET = "quick-bench-secret"


def make_file(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def write_fsync(src, dst_dir):
    dst = os.path.join(dst_dir, "ref.bin")
    buf = bytearray(4 << 20)
    t0 = time.perf_counter()
    with open(src, "rb", buffering=0) as s, open(dst, "wb", buffering=0) as d:
        while True:
            n = s.readinto(buf)
            if not n:
                break
            d.write(memoryview(buf)[:n])
        os.fsync(d.fileno())
    dt = time.perf_counter() - t0
    os.unlink(dst)
    return dt


def curl(args):
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *args], check=True,
                         capture_output=True, text=True).stdout
    return out


def static_download(path):
    d = os.path.dirname(path)
    p = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", d],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = p.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        url = f"http://127.0.0.1:{port}/{os.path.basename(path)}"
        t = float(curl(["-o", "/dev/null", "-w", "%{time_total}", url]))
        return t
    finally:
        p.terminate(); p.wait()


def proc_io(pid):
    vals = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            vals[k.strip()] = int(v)
    return vals["write_bytes"] - vals["cancelled_write_bytes"]


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def run_variant(binary, extra, data_root, path):
    d = tempfile.mkdtemp(prefix="qb-", dir=data_root)
    env = dict(os.environ, PS_SHARED_SECRET=SECRET, RUST_LOG="warn")
    p = subprocess.Popen([binary, "--db", os.path.join(d, "store.db"), "--listen", "127.0.0.1:0", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        base = p.stdout.readline().strip().rsplit(" ", 1)[1]
        jar = os.path.join(d, "cookies")
        curl(["-c", jar, "-X", "POST", "-d", json.dumps({"sharedSecretKey": SECRET}), base + "/api/auth"])
        io0 = proc_io(p.pid)
        out = curl(["-b", jar, "-F", f"file=@{path}", "-w", "\n%{time_total} %{time_pretransfer} %{time_starttransfer}",
                    base + "/api/entry?expiration=2999-12-31T00:00:00Z"])
        body, timing = out.rsplit("\n", 1)
        up_total, _, _ = map(float, timing.split())
        written = proc_io(p.pid) - io0
        entry = json.loads(body)["id"]
        down = float(curl(["-o", "/dev/null", "-w", "%{time_total}", f"{base}/-{entry}"]))
        # Stop the server and keep reading its I/O counters until it exits, so the
        # bytes of its final WAL checkpoint are counted too.
        rss = peak_rss(p.pid)
        p.terminate()
        while p.poll() is None:
            try:
                written = proc_io(p.pid) - io0
                rss = max(rss, peak_rss(p.pid))
            except (OSError, ValueError):
                break
            time.sleep(0.005)
        return up_total, down, rss, written
    finally:
        if p.poll() is None:
            p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/picoshare")
    ap.add_argument("--sizes", default="100,1024", help="file sizes in MiB, comma separated")
    ap.add_argument("--iterations", type=int, default=4, help="measured iterations (plus one warm-up)")
    ap.add_argument("--variant", action="append", default=[], help="NAME=server args (repeatable)")
    ap.add_argument("--data-dir", default=None, help="where data and test files go (default: a temp dir)")
    ap.add_argument("--json", default=None, help="write raw samples here")
    a = ap.parse_args()
    variants = [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1])) for v in (a.variant or ["default="])]
    root = a.data_dir or tempfile.mkdtemp(prefix="quick-bench-")
    os.makedirs(root, exist_ok=True)
    samples = []
    for mib in map(int, a.sizes.split(",")):
        src = os.path.join(root, f"file-{mib}M.bin")
        make_file(src, mib)
        nbytes = mib << 20
        for it in range(a.iterations + 1):
            row = {"size_mib": mib, "iteration": it, "warmup": it == 0}
            row["write_fsync_s"] = write_fsync(src, root)
            row["static_download_s"] = static_download(src)
            for name, extra in variants:
                up, down, rss, written = run_variant(a.binary, extra, root, src)
                row[name] = {"upload_s": up, "download_s": down, "peak_rss": rss, "written": written}
            samples.append(row)
            print(f"  {mib} MiB iteration {it}{' (warm-up)' if it == 0 else ''}: "
                  + ", ".join(f"{n} up {nbytes/row[n]['upload_s']/1e6:.0f} MB/s" for n, _ in variants), file=sys.stderr)
        os.unlink(src)
        ms = [r for r in samples if r["size_mib"] == mib and not r["warmup"]]
        med = lambda xs: statistics.median(xs)
        ref_w = med([nbytes / r["write_fsync_s"] / 1e6 for r in ms])
        ref_d = med([nbytes / r["static_download_s"] / 1e6 for r in ms])
        print(f"\n### {mib} MiB ({len(ms)} measured iterations, medians; MB/s = 10^6 bytes/s)\n")
        print(f"reference: write+fsync {ref_w:.0f} MB/s, static-file download {ref_d:.0f} MB/s\n")
        print("| variant | upload MB/s | × write+fsync | download MB/s | × static | peak RSS MiB | disk bytes / byte |")
        print("|---|---|---|---|---|---|---|")
        for name, _ in variants:
            up = med([nbytes / r[name]["upload_s"] / 1e6 for r in ms])
            dn = med([nbytes / r[name]["download_s"] / 1e6 for r in ms])
            rss = med([r[name]["peak_rss"] for r in ms]) / 2**20
            wr = med([r[name]["written"] / nbytes for r in ms])
            # Ratios are medians of per-iteration ratios (reference measured in the same iteration).
            rw = med([r["write_fsync_s"] / r[name]["upload_s"] for r in ms])
            rd = med([r["static_download_s"] / r[name]["download_s"] for r in ms])
            print(f"| {name} | {up:.0f} | {rw:.2f} | {dn:.0f} | {rd:.2f} | {rss:.1f} | {wr:.2f} |")
        sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(samples, f, indent=1)
    if not a.data_dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
