//! End to end: `picoshare-bench small` and `entries` against the real
//! server, tiny (fractions of a second per phase, 200 entries), with the
//! gates off (`--wait-idle 0 --steal-gap none`: the tests must not depend
//! on an idle machine): every phase recorded in results.json, the tables in report.md
//! computed from it, and the counts right.

use serde_json::Value;

use crate::helpers::{bench, busy_machine, json, server_binary};

fn results(dir: &std::path::Path) -> Value {
    json(&dir.join("results.json"))
}

/// Two variants (the same build twice, one with a setting), two sizes, two
/// connection counts, one warm-up and two measured blocks: every phase of
/// every unit is there without errors, downloads move the uploaded bytes,
/// and the report has a row per phase and variant with paired ratios.
#[test]
fn small_files_run_every_phase_in_paired_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let _machine = busy_machine();
    let server = server_binary();
    let stdout = String::from_utf8(
        bench(&[
            "small",
            "--binary",
            server.to_str().unwrap(),
            "--variant",
            "a=",
            "--variant",
            "b=args:--commit-mib 8",
            "--sizes",
            "4K,20000",
            "--connections",
            "1,3",
            "--seconds",
            "0.2",
            "--blocks",
            "2",
            "--warmup",
            "1",
            "--wait-idle",
            "0",
            "--steal-gap",
            "none",
            "--seed",
            "7",
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    let r = results(&out);
    let small = r["small"].as_array().unwrap();
    // 3 blocks × 2 variants × (2 sizes × 2 directions × 2 counts + 2 trivial).
    assert_eq!(small.len(), 3 * 2 * 10, "{stdout}");
    for s in small {
        assert_eq!(s["errors"], 0, "{s}");
        assert!(s["requests"].as_u64().unwrap() > 0, "{s}");
        assert!(s["p50_ms"].as_f64().unwrap() <= s["p99_ms"].as_f64().unwrap());
        assert!(s["p99_ms"].as_f64().unwrap() <= s["p999_ms"].as_f64().unwrap());
        if s["workload"] != "trivial" {
            // Servers the bench started: their CPU and disk are counted.
            assert!(s["server_cpu_s"].as_f64().is_some(), "{s}");
            assert!(s["disk_written_bytes"].as_u64().is_some(), "{s}");
        }
    }
    assert_eq!(small.iter().filter(|s| s["warmup"] == true).count(), 20);
    // Uploads of 20,000-byte files write at least their bytes to disk.
    let up = small
        .iter()
        .find(|s| s["workload"] == "upload" && s["size_bytes"] == 20000)
        .unwrap();
    assert!(up["disk_written_bytes"].as_u64().unwrap() >= 20000 * up["requests"].as_u64().unwrap());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Small files on keep-alive connections"));
    for row in [
        "| download | 4 KiB | 1 | a |",
        "| download | 20000 B | 3 | b |",
        "| upload | 4 KiB | 3 | a |",
        "| trivial | — | 1 | b |",
    ] {
        assert!(report.contains(row), "{row} missing:\n{report}");
    }
    // b's rows carry ratios to a over the two measured blocks.
    let b_row = report
        .lines()
        .find(|l| l.starts_with("| download | 4 KiB | 1 | b |"))
        .unwrap();
    assert!(b_row.contains("× ["), "{b_row}");
    assert!(
        std::fs::read_to_string(out.join("small.csv"))
            .unwrap()
            .lines()
            .count()
            == 61
    );
    assert_eq!(stdout.matches("## Small files").count(), 1);
}

/// 200 entries (20 expired) and a history of 300 downloads: the server
/// starts, collects the expired ones, and serves its list and history
/// pages; the report has the row.
#[test]
fn entries_fill_start_collect_and_list() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let _machine = busy_machine();
    let server = server_binary();
    bench(&[
        "entries",
        "--binary",
        server.to_str().unwrap(),
        "--variant",
        "a=",
        "--counts",
        "200",
        "--history",
        "300",
        "--blocks",
        "2",
        "--warmup",
        "0",
        "--wait-idle",
        "0",
        "--seed",
        "3",
        "--data-dir",
        tmp.path().join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = results(&out);
    let rows = r["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for s in rows {
        assert_eq!(s["ok"], true, "{s}");
        assert_eq!(s["entries"], 200);
        assert!(s["startup_s"].as_f64().unwrap() > 0.0);
        // This server collects at start-up and lists through the API.
        assert!(s["gc_s"].as_f64().is_some(), "{s}");
        assert!(s["list_api_s"].as_f64().is_some(), "{s}");
        // Gzipped pages: 100 rows of the list, 100 of the history.
        let list = s["list_page_bytes"].as_u64().unwrap();
        assert!(list > 1000 && list < 30_000, "{s}");
        assert!(s["history_page_bytes"].as_u64().unwrap() > 500, "{s}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Many entries"), "{report}");
    assert!(report.contains("| 200 | 300 | a |"), "{report}");
}
