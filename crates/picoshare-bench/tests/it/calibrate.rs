//! End to end: `calibrate`, adaptive stopping, disk limits and counted runs
//! against the real server, with tiny files. Nothing here depends on how fast
//! the machine is: the checks are about what was run, recorded and reported,
//! and about counts (bytes, instructions) that do not move with load. The
//! idle and steal gates are off (`--wait-idle 0 --steal-gap none`): on a busy
//! machine they would stop a run as `machine_busy`; they are unit-tested in
//! `run/gates.rs`.

use crate::helpers::{bench_gates_off, busy_machine, json, server_binary};

/// `calibrate` runs the base, its A/A twin and its plant in blocks, writes its
/// summary, keeps a record in the data directory, and the next `run` on that
/// data directory reports it in its sensitivity header. The plant really
/// sends 1 / (1 − p) of the bytes while the samples count the nominal ones.
#[test]
fn calibration_is_recorded_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("cal");
    let _machine = busy_machine();
    let server = server_binary();
    let (data_s, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());
    bench_gates_off(
        "calibrate",
        &server,
        &[
            "--size",
            "2M",
            "--repeat",
            "2",
            "--min-iterations",
            "3",
            "--max-iterations",
            "3",
            "--target-mde",
            "0.01",
            "--warmup",
            "0",
            "--seed",
            "7",
            "--data-dir",
            data_s,
            "--out",
            out_s,
        ],
    );
    let cal = json(&out.join("calibration.json"));
    let runs = cal["runs"].as_array().unwrap();
    // 2 repeats × 2 workloads, 3 blocks each (a target of 0.01 % is never
    // reached; only a plant and an A/A both "decided" could stop it, at 3).
    assert_eq!(runs.len(), 4, "{cal}");
    for r in runs {
        assert_eq!(r["blocks"], 3, "{r}");
        assert!(
            r["stop"] == "max_iterations" || r["stop"] == "decided",
            "{r}"
        );
        assert!(r["aa"]["ratio"].as_f64().unwrap() > 0.0);
        assert!(r["plant"]["ratio"].as_f64().unwrap() > 0.0);
    }
    let lines = cal["record"]["workloads"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["runs"], 2);
    assert_eq!(cal["record"]["plant"], 0.05);
    assert!(out.join("calibration.md").exists());
    assert!(out.join("run-1/report.md").exists() && out.join("run-2/results.json").exists());
    let md = std::fs::read_to_string(out.join("calibration.md")).unwrap();
    assert!(md.contains("plant called \"slower\""), "{md}");
    assert!(md.contains("the server's disk unthrottled"), "{md}");
    assert!(md.contains("| left out, run again |"), "{md}");
    assert!(cal["record"].get("disk_limit_mbps").is_none(), "{cal}");

    // The plant's samples count 2 MiB, but its server stored 2 MiB / 0.95.
    let r1 = json(&out.join("run-1/results.json"));
    let names: Vec<&str> = r1["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "base-aa", "base-plant5"]);
    assert_eq!(r1["config"]["wait_idle_s"], 0.0);
    assert!(
        r1["config"].get("steal_gap_pct").is_none(),
        "{}",
        r1["config"]
    );
    for s in r1["samples"].as_array().unwrap() {
        assert_eq!(s["ok"], true, "{s}");
        assert_eq!(s["bytes"], 2 << 20, "{s}");
    }
    let written = |variant: &str| -> f64 {
        let xs: Vec<f64> = r1["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["variant"] == variant && s["workload"] == "upload")
            .map(|s| s["disk_written_bytes"].as_f64().unwrap())
            .collect();
        xs.iter().sum::<f64>() / xs.len() as f64
    };
    let ratio = written("base-plant5") / written("base");
    assert!(
        (1.03..1.09).contains(&ratio),
        "the plant wrote {ratio}× the base's bytes"
    );

    // A run on the same data directory reports the calibration in its header.
    let run_out = tmp.path().join("run");
    bench_gates_off(
        "run",
        &server,
        &[
            "--variant",
            "a=",
            "--variant",
            "b=",
            "--sizes",
            "2M",
            "--iterations",
            "2",
            "--warmup",
            "0",
            "--data-dir",
            data_s,
            "--out",
            run_out.to_str().unwrap(),
        ],
    );
    let md = std::fs::read_to_string(run_out.join("report.md")).unwrap();
    let head = &md[..md.find("## Machine").unwrap()];
    assert!(
        head.contains("Latest calibration of this machine"),
        "{head}"
    );
    assert!(head.contains("plant called \"slower\" in"), "{head}");
}

/// Adaptive stopping within a time budget, a disk limit, and counted runs:
/// the configuration stops on its budget after the fewest blocks, the disk
/// limit is recorded as enforced (where the machine has a blkio or io
/// controller), and counted runs give instructions and system calls per
/// MiB, with the A/A twin close to its base and the plant's extra bytes
/// visible in the instructions it took.
#[test]
fn adaptive_disk_limited_and_counted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    let _machine = busy_machine();
    let server = server_binary();
    bench_gates_off(
        "run",
        &server,
        &[
            "--variant",
            "base=",
            "--self-check",
            "--sizes",
            "2M",
            "--disk-limits",
            "50",
            "--workloads",
            "upload",
            "--target-mde",
            "0.01",
            "--min-iterations",
            "2",
            "--max-iterations",
            "50",
            "--max-time",
            "1s",
            "--warmup",
            "0",
            "--count-instructions",
            "--count-blocks",
            "2",
            "--count-size",
            "4M",
            "--seed",
            "3",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let r = json(&out.join("results.json"));
    let o = &r["outcomes"][0];
    assert_eq!(
        (o["blocks"].as_u64(), o["reason"].as_str()),
        (Some(2), Some("max_time")),
        "{o}"
    );
    assert_eq!(r["config"]["configs"][0]["disk_limit_mbps"], 50);
    let method = r["environment"]["disk_limit_method"].as_str().unwrap();
    let blkio =
        std::path::Path::new("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device").exists();
    if blkio {
        assert!(method.starts_with("cgroup-v1 blkio"), "{method}");
    }
    for s in r["samples"].as_array().unwrap() {
        assert_eq!(s["ok"], true, "{s}");
        assert_eq!(
            s["disk_limit_enforced"],
            !method.starts_with("not enforced"),
            "{s}"
        );
        assert!(s["cpu_seconds"].as_f64().is_some() && s["syscalls_read"].as_u64().is_some());
    }

    // 3 variants × 2 blocks × 2 tools × 6 lifetimes.
    let counts = r["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 72);
    for c in counts {
        assert_eq!(c["ok"], true, "{c}");
        match c["tool"].as_str().unwrap() {
            "instructions" => assert!(c["instructions"].as_u64().unwrap() > 1_000_000, "{c}"),
            _ => assert!(c["syscalls"].as_object().unwrap().len() > 5, "{c}"),
        }
    }
    let csv = std::fs::read_to_string(out.join("counted.csv")).unwrap();
    let row = |metric: &str, variant: &str| -> Vec<String> {
        csv.lines()
            .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
            .find(|f| f[0] == metric && f[1] == variant)
            .unwrap_or_else(|| panic!("no {metric} for {variant} in\n{csv}"))
    };
    let ratio = |metric: &str, variant: &str| -> f64 { row(metric, variant)[4].parse().unwrap() };
    // Instructions are counts, not times: the A/A twin is within 3 % of its
    // base even with 4 MiB files; the plant's 5.3 % more bytes cost more.
    let aa = ratio("instructions/MiB uploaded", "base-aa");
    assert!((0.97..1.03).contains(&aa), "A/A instructions ratio {aa}");
    let plant = ratio("instructions/MiB uploaded", "base-plant5");
    assert!(plant > 1.02, "plant instructions ratio {plant}");
    // (Disk bytes per byte depend on when the background checkpointer ran,
    // so with 4 MiB files they are only checked for being there.)
    let disk: f64 = row("disk bytes written per byte uploaded", "base")[2]
        .parse()
        .unwrap();
    assert!(disk > 0.9, "disk bytes per byte {disk}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Counted cost (valgrind and strace)"), "{md}");
    assert!(md.contains("Self-check in this run"), "{md}");
}
