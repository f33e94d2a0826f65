//! `run` with a `ref:` variant: the machine's reference (write + fsync, a
//! static file server) measured in the same blocks as the server, paired
//! like any variant, and in results.json and the report.

use crate::helpers::{bench_gates_off, busy_machine, json, server_binary};

/// A short real run (2 MiB, 3 blocks) with the reference as the baseline:
/// its samples are real transfers, the server's paired ratios to it are in
/// paired.csv and report.md, and the combinations a reference cannot run
/// are refused with a message.
#[test]
fn reference_is_measured_and_paired_in_the_same_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("out"));
    let _machine = busy_machine();
    let server = server_binary();
    let common = |out: &std::path::Path| {
        [
            "--variant",
            "disk=ref:",
            "--variant",
            "server=",
            "--sizes",
            "2M",
            "--workloads",
            "upload,download",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--seed",
            "25",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    let args = common(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bench_gates_off("run", &server, &args);

    let results = json(&out.join("results.json"));
    let variants = results["variants"].as_array().unwrap();
    assert_eq!(variants[0]["kind"], "reference");
    let samples = results["samples"].as_array().unwrap();
    // 2 variants × 2 workloads × (1 warm-up + 3 blocks).
    assert_eq!(samples.len(), 2 * 2 * 4, "{samples:?}");
    for s in samples {
        assert_eq!(s["ok"], true, "failed sample: {s}");
        assert_eq!(s["bytes"], 2 << 20);
        assert!(s["throughput_mbps"].as_f64().unwrap() > 0.0);
    }
    // The write + fsync reached the disk: at least the file's bytes written
    // by the bench itself (a count of 0 would mean nothing was measured).
    for s in samples
        .iter()
        .filter(|s| s["variant"] == "disk" && s["workload"] == "upload")
    {
        assert!(s["disk_written_bytes"].as_u64().unwrap() >= 2 << 20, "{s}");
    }
    // Each block holds one sample of each variant: the pairs exist.
    let paired = std::fs::read_to_string(out.join("paired.csv")).unwrap();
    let rows: Vec<&str> = paired.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{paired}");
    for row in &rows {
        assert!(row.contains(",disk,server,3,"), "{row}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| disk | reference |"), "{md}");

    // What a reference cannot do is refused before anything runs.
    for (extra, says) in [
        (
            &["--memory-limits", "256"][..],
            "outside memory and disk limits",
        ),
        (&["--workloads", "upload,range"][..], "no ranges"),
        (&["--concurrency", "2"][..], "one client"),
    ] {
        let refused = std::process::Command::new(env!("CARGO_BIN_EXE_picoshare-bench"))
            .arg("run")
            .args(&args)
            .args(["--force", "--binary", server.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && err.contains(says),
            "{extra:?}: {err}"
        );
    }
}
