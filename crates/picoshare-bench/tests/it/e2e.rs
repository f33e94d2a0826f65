//! End to end: the bench against the real server with tiny files, checking that
//! every output file is produced and agrees with the raw samples.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{bench, busy_machine, median, server_binary};

/// A tiny matrix (2 sizes × 2 memory limits × 2 variants, one of which
/// uploads with tus in several requests, × 3 workloads,
/// 1 warm-up + 3 iterations) against the real server writes every output,
/// and the summaries, CSV rows and charts agree with the raw samples.
#[test]
fn tiny_matrix_produces_consistent_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    let _machine = busy_machine();
    let server = server_binary();
    bench(&[
        "run",
        "--quiet",
        "--binary",
        server.to_str().unwrap(),
        "--variant",
        "base=",
        "--variant",
        // Also sends its uploads with tus, in PATCH requests of 1 MiB.
        "small-chunks=tus:1 --chunk-size 65536",
        "--sizes",
        "2M,3M",
        "--memory-limits",
        "none,256",
        "--workloads",
        "upload,download,range",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--range-count",
        "4",
        "--range-size",
        "1M",
        "--seed",
        "42",
        // The idle and steal gates off: they are unit-tested in run/gates.rs,
        // and a test must not wait for an idle machine.
        "--wait-idle",
        "0",
        "--steal-gap",
        "none",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    for f in [
        "results.json",
        "samples.csv",
        "summary.csv",
        "summary.json",
        "report.md",
        "memory.svg",
        "throughput-upload.svg",
        "throughput-download.svg",
        "throughput-range.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing; have {:?}", list(&out));
    }
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let samples = results["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2 * 2 * 4 * 2 * 3);
    for s in samples {
        assert_eq!(s["ok"], true, "failed sample: {s}");
        assert!(s["throughput_mbps"].as_f64().unwrap() > 0.0);
        assert!(s["peak_rss_bytes"].as_u64().unwrap() > 0);
        if s["workload"] == "upload" {
            assert!(s["disk_written_bytes"].as_u64().is_some());
            assert!(
                s["phases"]
                    .as_object()
                    .unwrap()
                    .contains_key("store_insert"),
                "{s}"
            );
        }
    }
    // Each block runs every variant once, its units one after the other.
    let uploads: Vec<&Value> = samples
        .iter()
        .filter(|s| s["workload"] == "upload")
        .collect();
    for block in uploads.chunks(2) {
        let key = |s: &Value| {
            (
                s["size_bytes"].clone(),
                s["memory_limit_mib"].clone(),
                s["iteration"].clone(),
            )
        };
        assert_eq!(key(block[0]), key(block[1]), "a block was split: {block:?}");
        assert_ne!(
            block[0]["variant"], block[1]["variant"],
            "a variant ran twice in a block"
        );
    }
    // The gates were off, and recorded so; no block was left out.
    assert_eq!(results["config"]["wait_idle_s"], 0.0);
    assert!(results["config"].get("steal_gap_pct").is_none());
    for s in samples {
        assert_ne!(s["disturbed"], true, "{s}");
        assert!(s["machine_busy_before"].is_null(), "{s}");
    }
    // Every configuration ran its fixed number of blocks.
    let outcomes = results["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 4);
    for o in outcomes {
        assert_eq!(
            (o["blocks"].as_u64(), o["reason"].as_str()),
            (Some(3), Some("fixed"))
        );
    }
    // Limits are enforced on this machine kind (cgroup v1 memory controller).
    let method = results["environment"]["memory_limit_method"]
        .as_str()
        .unwrap();
    for s in samples.iter().filter(|s| !s["memory_limit_mib"].is_null()) {
        assert_eq!(s["memory_limit_enforced"], method != "not enforced");
    }

    // samples.csv: a header and one row per sample.
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert_eq!(csv.lines().count(), samples.len() + 1);

    // summary.json medians are the medians of the measured raw samples.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2 * 2 * 2 * 3);
    for g in groups {
        let key = &g["key"];
        let xs: Vec<f64> = samples
            .iter()
            .filter(|s| {
                s["warmup"] == false
                    && s["variant"] == key["variant"]
                    && s["workload"] == key["workload"]
                    && s["size_bytes"] == key["size_bytes"]
                    && s["memory_limit_mib"] == key["memory_limit_mib"]
            })
            .map(|s| s["throughput_mbps"].as_f64().unwrap())
            .collect();
        assert_eq!(xs.len(), 3);
        let want = median(xs);
        let got = g["throughput"]["median"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-9 * want.max(1.0),
            "{key}: {got} vs {want}"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("base") && md.contains("small-chunks"));
    assert!(md.contains("## Sensitivity") && md.contains("## Comparisons"));
    assert!(md.contains("### Unpaired view (secondary)") && md.contains("### What pairing bought"));
    // Paired comparisons: one per workload, configuration and non-baseline variant.
    let paired = std::fs::read_to_string(out.join("paired.csv")).unwrap();
    assert_eq!(paired.lines().count(), 1 + 3 * 4);
    assert!(
        md.contains("| tus/1 MiB |"),
        "the variant's upload protocol is reported"
    );
    let svg = std::fs::read_to_string(out.join("throughput-upload.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(svg.contains("small-chunks"));

    // Rebuilding the report from results.json gives the same summary.
    let again = tmp.path().join("again");
    bench(&[
        "report",
        out.join("results.json").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read_to_string(again.join("summary.json")).unwrap()
            == std::fs::read_to_string(out.join("summary.json")).unwrap(),
        "summary.json differs after rebuilding the report from results.json"
    );

    // Comparing the run with itself: no detectable difference anywhere.
    let cmp = bench(&[
        "compare",
        out.join("results.json").to_str().unwrap(),
        out.join("results.json").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(text.contains("no detectable difference"), "{text}");
    assert!(
        !text.contains("| faster") && !text.contains("| slower"),
        "{text}"
    );

    // Test files are kept for reuse; server data directories are gone.
    assert!(data.join("files/random-2MiB.bin").exists());
    let leftovers: Vec<_> = list(&data)
        .into_iter()
        .filter(|n| n.starts_with("picoshare-bench-"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
