#!/usr/bin/env python3
"""What running Litestream beside the server costs an upload (stdlib only).

Each block runs every unit once, in a random order (seeded): a unit is a fresh
data directory, a fresh server (release build) and, for the Litestream units,
`litestream replicate` with a file replica in the same directory (so on the
same disk), then one upload of the test file with curl (multipart, as the web
page sends it). Units:

  plain       the server alone (the reference of its block)
  litestream  the server with Litestream beside it (Litestream's defaults)
  any --variant NAME|SERVER_ARGS|LITESTREAM[|BINARY[|REFERENCE]]
              LITESTREAM: `none`, `defaults`, or key=value,... settings of the
              database in litestream.yml; BINARY: another server build;
              REFERENCE: the unit its ratio is taken against (default plain)

and all of them once per server mode: `unset` (LITESTREAM_BUCKET unset: the
server checkpoints its WAL itself) and `set` (LITESTREAM_BUCKET set: it leaves
checkpoints to Litestream).

Per unit it records: upload time (curl's time_total) and throughput, the WAL
file's peak size (polled every 10 ms), CPU seconds of the server and of
Litestream during the upload, Litestream's CPU until it goes quiet after the
upload (and how long that took: roughly how far its replica lagged), disk bytes
each process wrote, the CPU time the rest of the machine used meanwhile, and
where the server's time went (its /metrics counters: waiting for the client's
bytes, for the writer, inserting, committing, checkpointing).

Prints, per mode and unit, the median throughput and the paired ratio against
`plain` of the same block (median, geometric mean with a bootstrap 95 % CI);
writes every raw sample to --out.

Example (the figures in docs/benchmarks.md):
  cargo build --release -p picoshare
  scripts/litestream-bench.py --size-mib 1024 --blocks 6 --out litestream-bench.json
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "litestream-bench-secret"
CLK = os.sysconf("SC_CLK_TCK")


def make_file(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def wal_size(db):
    try:
        return os.stat(db + "-wal").st_size
    except FileNotFoundError:
        return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU of a process (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def written_bytes(pid):
    try:
        vals = {}
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                vals[k.strip()] = int(v)
        return vals["write_bytes"] - vals["cancelled_write_bytes"]
    except (FileNotFoundError, ProcessLookupError):
        return 0


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / CLK, total / CLK


class Reader(threading.Thread):
    """Collects a process's output lines."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines = stream, []

    def run(self):
        for line in self.stream:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stop(proc, timeout=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


METRICS = (
    "picoshare_upload_receive_seconds_total", "picoshare_upload_store_wait_seconds_total",
    "picoshare_upload_finish_seconds_total", "picoshare_store_insert_seconds_total",
    "picoshare_store_commits_total", "picoshare_store_commit_seconds_total",
    "picoshare_store_checkpoints_total", "picoshare_store_checkpoint_seconds_total",
)


def server_metrics(base):
    """The server's time counters (GET /metrics, made public for the bench)."""
    text = subprocess.run(["curl", "-sS", "--fail", f"{base}/metrics"], check=True,
                          capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            out[name[len("picoshare_"):-len("_total")]] = float(value)
    return out


def litestream_yml(db, replica, opts):
    lines = ["dbs:", f"  - path: {db}"]
    lines += [f"    {k}: {v}" for k, v in opts.items()]
    lines += ["    replica:", "      type: file", f"      path: {replica}", ""]
    return "\n".join(lines)


def run_unit(args, mode, unit, file_path):
    name, server_args, ls_opts, binary, _ = unit
    work = tempfile.mkdtemp(prefix="ls-bench-", dir=args.data_dir)
    db = os.path.join(work, "store.db")
    port = free_port()
    env = dict(os.environ, PS_SHARED_SECRET=SECRET, PS_METRICS_PUBLIC="1")
    env.pop("LITESTREAM_BUCKET", None)
    if mode == "set":
        env["LITESTREAM_BUCKET"] = "bench-replica"
    server = subprocess.Popen(
        [binary or args.server, "-db", db, "--listen", f"127.0.0.1:{port}", *server_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Reader(server.stdout), Reader(server.stderr)
    out.start(), err.start()
    ls = None
    try:
        wait_for(lambda: "picoshare listening on" in out.text() or server.poll() is not None,
                 30, "the server")
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {err.text()}")
        if ls_opts is not None:
            cfg = os.path.join(work, "litestream.yml")
            with open(cfg, "w") as f:
                f.write(litestream_yml(db, os.path.join(work, "replica"), ls_opts))
            ls = subprocess.Popen([args.litestream, "replicate", "-config", cfg],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ls_out = Reader(ls.stdout)
            ls_out.start()
            wait_for(lambda: 'msg="initialized db"' in ls_out.text() or ls.poll() is not None,
                     30, "Litestream")
            if ls.poll() is not None:
                raise RuntimeError(f"litestream exited: {ls_out.text()}")
        # Same settling time with and without Litestream (its first snapshot).
        time.sleep(2)
        base = f"http://127.0.0.1:{port}"
        cookies = os.path.join(work, "cookies")
        subprocess.run(["curl", "-sS", "--fail", "-c", cookies, "-X", "POST",
                        "-d", json.dumps({"sharedSecretKey": SECRET}), f"{base}/api/auth"],
                       check=True, capture_output=True)

        peak = [0]
        done = threading.Event()

        def watch_wal():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], os.stat(db + "-wal").st_size)
                except FileNotFoundError:
                    pass
                time.sleep(0.01)

        watcher = threading.Thread(target=watch_wal, daemon=True)
        watcher.start()
        metrics0 = server_metrics(base)
        s_cpu0, s_io0 = cpu_seconds(server.pid), written_bytes(server.pid)
        l_cpu0 = cpu_seconds(ls.pid) if ls else 0.0
        l_io0 = written_bytes(ls.pid) if ls else 0
        m_busy0, m_total0 = machine_cpu()
        res = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-b", cookies, "-o", "/dev/null",
             "-w", "%{time_total}", "-F", f"file=@{file_path}",
             f"{base}/api/entry?expiration=2040-01-01T00:00:00Z"],
            check=True, capture_output=True, text=True)
        seconds = float(res.stdout)
        s_cpu1, s_io1 = cpu_seconds(server.pid), written_bytes(server.pid)
        m_busy1, m_total1 = machine_cpu()
        metrics1 = server_metrics(base)
        sample = {
            "mode": mode, "unit": name, "seconds": seconds,
            "mb_per_s": (args.size_mib << 20) / seconds / 1e6,
            "server_cpu_s": s_cpu1 - s_cpu0,
            "server_written_bytes": s_io1 - s_io0,
            "loadavg": os.getloadavg()[0],
            "server_metrics": {k: metrics1[k] - metrics0.get(k, 0.0) for k in metrics1},
        }
        if ls:
            l_cpu1 = cpu_seconds(ls.pid)
            sample["litestream_cpu_s"] = l_cpu1 - l_cpu0
            # After the reply: Litestream still ships what the upload wrote.
            # Quiet = no CPU used for half a second (at most 120 s).
            t_reply, last, quiet_since = time.monotonic(), l_cpu1, time.monotonic()
            while time.monotonic() - t_reply < 120:
                time.sleep(0.1)
                now = cpu_seconds(ls.pid)
                if now > last:
                    last, quiet_since = now, time.monotonic()
                elif time.monotonic() - quiet_since >= 0.5:
                    break
            sample["litestream_cpu_total_s"] = last - l_cpu0
            sample["litestream_busy_after_reply_s"] = max(0.0, quiet_since - t_reply)
            sample["litestream_written_bytes"] = written_bytes(ls.pid) - l_io0
        done.set()
        watcher.join()
        sample["wal_peak_bytes"] = peak[0]
        # The WAL file afterwards: once Litestream went quiet (or 2 s after
        # the reply without it), and 3 s later.
        time.sleep(0 if ls else 2)
        sample["wal_after_bytes"] = wal_size(db)
        time.sleep(3)
        sample["wal_after_3s_bytes"] = wal_size(db)
        ours = sample["server_cpu_s"] + sample.get("litestream_cpu_s", 0.0)
        # CPU seconds the rest of the machine (curl included) used during the upload.
        sample["other_cpu_s"] = max(0.0, (m_busy1 - m_busy0) - ours)
        sample["machine_cpu_s"] = m_total1 - m_total0
        return sample
    finally:
        if ls:
            stop(ls)
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


def parse_unit(spec):
    name, server_args, ls, *rest = spec.split("|")
    binary = rest[0] if rest and rest[0] else None
    reference = rest[1] if len(rest) > 1 and rest[1] else "plain"
    ls = ls.strip()
    if ls == "none":
        opts = None
    elif ls in ("", "defaults"):
        opts = {}
    else:
        opts = dict(kv.split("=", 1) for kv in ls.split(","))
    return name, server_args.split(), opts, binary, reference


def geo_ci(ratios, seed):
    logs = [math.log(r) for r in ratios]
    rnd = random.Random(seed)
    means = sorted(statistics.fmean(rnd.choices(logs, k=len(logs))) for _ in range(4000))
    return (math.exp(statistics.fmean(logs)), math.exp(means[100]), math.exp(means[3899]))


def summary(samples, units, modes, seed):
    rows = []
    for mode in modes:
        for name, _, _, _, reference in units:
            ref = {s["block"]: s for s in samples if s["mode"] == mode and s["unit"] == reference}
            mine = [s for s in samples if s["mode"] == mode and s["unit"] == name]
            if not mine:
                continue
            row = {
                "mode": mode, "unit": name, "n": len(mine),
                "median_mb_per_s": statistics.median(s["mb_per_s"] for s in mine),
                "median_wal_peak_mib": statistics.median(s["wal_peak_bytes"] for s in mine) / 2**20,
                "max_wal_peak_mib": max(s["wal_peak_bytes"] for s in mine) / 2**20,
                "median_wal_after_mib": statistics.median(
                    s.get("wal_after_3s_bytes", float("nan")) for s in mine) / 2**20,
                "median_server_cpu_s": statistics.median(s["server_cpu_s"] for s in mine),
                "median_other_cpu_s": statistics.median(s["other_cpu_s"] for s in mine),
                "median_server_metrics": {
                    k: statistics.median(s["server_metrics"].get(k, 0.0) for s in mine)
                    for k in mine[0].get("server_metrics", {})},
            }
            if "litestream_cpu_s" in mine[0]:
                row["median_litestream_cpu_s"] = statistics.median(s["litestream_cpu_s"] for s in mine)
                row["median_litestream_cpu_total_s"] = statistics.median(
                    s["litestream_cpu_total_s"] for s in mine)
                row["median_litestream_busy_after_reply_s"] = statistics.median(
                    s["litestream_busy_after_reply_s"] for s in mine)
            if name != reference:
                ratios = [s["mb_per_s"] / ref[s["block"]]["mb_per_s"]
                          for s in mine if s["block"] in ref]
                row["reference"] = reference
                row["ratios"] = ratios
                row["median_ratio"] = statistics.median(ratios)
                if len(ratios) >= 2:
                    row["geo_ratio"], row["ci_low"], row["ci_high"] = geo_ci(ratios, seed)
            rows.append(row)
    return rows


def print_metrics(rows):
    keys = sorted({k for r in rows for k in r["median_server_metrics"]})
    print()
    print("| mode | unit | " + " | ".join(k.replace("_seconds", " s") for k in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for r in rows:
        vals = " | ".join(f"{r['median_server_metrics'].get(k, 0.0):.2f}" for k in keys)
        print(f"| {r['mode']} | {r['unit']} | {vals} |")


def print_table(rows):
    print("| mode | unit | n | MB/s (median) | paired ratio: median (geo. mean [95 % CI]) "
          "| WAL peak MiB (median, max) | WAL file after, MiB | server CPU s "
          "| Litestream CPU s (upload / until quiet) "
          "| Litestream busy after reply s | others' CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = "reference"
        if "median_ratio" in r:
            ratio = f"{r['median_ratio']:.3f} vs {r['reference']}"
            if "geo_ratio" in r:
                ratio += f" ({r['geo_ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}])"
        ls = "—"
        busy = "—"
        if "median_litestream_cpu_s" in r:
            ls = f"{r['median_litestream_cpu_s']:.2f} / {r['median_litestream_cpu_total_s']:.2f}"
            busy = f"{r['median_litestream_busy_after_reply_s']:.1f}"
        print(f"| {r['mode']} | {r['unit']} | {r['n']} | {r['median_mb_per_s']:.0f} | {ratio} "
              f"| {r['median_wal_peak_mib']:.0f}, {r['max_wal_peak_mib']:.0f} "
              f"| {r['median_wal_after_mib']:.0f} "
              f"| {r['median_server_cpu_s']:.2f} | {ls} | {busy} | {r['median_other_cpu_s']:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="target/release/picoshare")
    p.add_argument("--litestream", default=shutil.which("litestream") or "litestream")
    p.add_argument("--data-dir", default=tempfile.gettempdir(),
                   help="where the test file and every unit's directory go")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1, help="blocks run first and discarded")
    p.add_argument("--modes", default="unset,set")
    p.add_argument("--seed", type=int, default=1205)
    p.add_argument("--no-defaults", action="store_true",
                   help="only plain and the --variant units")
    p.add_argument("--variant", action="append", default=[],
                   help="NAME|SERVER_ARGS|LITESTREAM (see above)")
    p.add_argument("--out", default=None, help="JSON file for every raw sample")
    args = p.parse_args()

    units = [("plain", [], None, None, "plain")]
    if not args.no_defaults:
        units.append(("litestream", [], {}, None, "plain"))
    units += [parse_unit(v) for v in args.variant]
    modes = args.modes.split(",")
    os.makedirs(args.data_dir, exist_ok=True)
    file_path = os.path.join(args.data_dir, f"ls-bench-{args.size_mib}MiB.bin")
    make_file(file_path, args.size_mib)
    version = subprocess.run([args.litestream, "version"], capture_output=True,
                             text=True).stdout.strip()
    rnd = random.Random(args.seed)
    samples = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_start = os.getloadavg()
    for block in range(args.warmup + args.blocks):
        order = [(m, u) for m in modes for u in units]
        rnd.shuffle(order)
        for mode, unit in order:
            s = run_unit(args, mode, unit, file_path)
            s["block"] = block - args.warmup
            print(f"block {s['block']:>2} {mode:>5} {unit[0]:<16} {s['mb_per_s']:7.1f} MB/s "
                  f"WAL peak {s['wal_peak_bytes'] / 2**20:7.1f} MiB  server CPU "
                  f"{s['server_cpu_s']:.2f} s  Litestream CPU "
                  f"{s.get('litestream_cpu_s', float('nan')):.2f} s  others "
                  f"{s['other_cpu_s']:.2f} s  load {s['loadavg']:.1f}",
                  file=sys.stderr, flush=True)
            if block >= args.warmup:
                samples.append(s)
    rows = summary(samples, units, modes, args.seed)
    print_table(rows)
    print_metrics(rows)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({
                "started": started,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "args": vars(args), "litestream_version": version,
                "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
                "units": [list(u) for u in units],
                "samples": samples, "summary": rows,
            }, f, indent=1)


if __name__ == "__main__":
    main()
