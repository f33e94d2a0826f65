//! End to end: `picoshare-bench stall` against the real server, small
//! (a 16 MiB upload beside downloads of a 1 MiB file): both phases are
//! recorded in results.json with their gaps, and the report shows them.
//! No timing is asserted: the figures are for the benchmark runs.

use crate::helpers::{bench, busy_machine, json, server_binary};

#[test]
fn stalls_are_recorded_for_a_quiet_server_and_during_an_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let _machine = busy_machine();
    let server = server_binary();
    let stdout = String::from_utf8(
        bench(&[
            "stall",
            "--quiet",
            "--force",
            "--binary",
            server.to_str().unwrap(),
            "--upload-size",
            "16M",
            "--download-size",
            "1M",
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    let r = json(&out.join("results.json"));
    let phases = r["stall"].as_array().expect("stall samples");
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quiet", "upload"]);
    for p in phases {
        // A 1 MiB download is 16 pieces of 64 KiB and the end of the body
        // (17 reads); the quiet phase downloads for three seconds, the
        // upload phase at least once.
        let reads = p["reads"].as_u64().unwrap();
        assert!(reads >= 17 && reads % 17 == 0, "{p}");
        assert_eq!(p["download_bytes"], 1 << 20);
        let (median, p99, longest) = (
            p["median_gap_s"].as_f64().unwrap(),
            p["p99_gap_s"].as_f64().unwrap(),
            p["longest_gap_s"].as_f64().unwrap(),
        );
        assert!(
            median >= 0.0 && median <= p99 && p99 <= longest && longest > 0.0,
            "{p}"
        );
    }
    assert_eq!(phases[0]["upload_bytes"], 0);
    assert_eq!(phases[1]["upload_bytes"], 16 << 20);
    assert!(
        phases[0]["reads"].as_u64().unwrap() > 16,
        "three seconds of downloads"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for text in [&report, &stdout] {
        assert!(
            text.contains("## Download stalls during an upload"),
            "{text}"
        );
        assert!(text.contains("| upload | 16 | 1 | "), "{text}");
    }
}
