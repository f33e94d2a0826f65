//! The load test, scaled down: 8 uploaders and 16 downloaders for 10 s
//! against the real server on loopback, small files. Every request must
//! succeed, every downloaded byte must equal the uploaded one, the server's
//! peak memory must be recorded, and the run must end by itself. No timing is
//! asserted: the figures are for the benchmark runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use picoshare_bench::results::LoadResult;

use crate::helpers::{busy_machine, server_binary};

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn parallel_uploads_and_downloads_without_errors() {
    let _machine = busy_machine();
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("out"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_picoshare-bench"))
        .args(["load", "--quiet", "--force", "--need", "64M", "--seed", "7"])
        .args([
            "--uploaders",
            "8",
            "--downloaders",
            "16",
            "--duration",
            "10s",
        ])
        .args(["--mix", "small=4K-256K:20,larger=1M-2M:1", "--preload", "4"])
        .arg("--binary")
        .arg(server_binary())
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start picoshare-bench load");
    // A watchdog, not a timing check: a run that never ends is a failure.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the load run did not stop by itself");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    if !status.success() {
        // The run's own report says which requests failed and how.
        let report = std::fs::read_to_string(out.join("load.md")).unwrap_or_default();
        panic!("load run failed ({status}):\n{stderr}\n{report}");
    }

    let r: LoadResult =
        serde_json::from_slice(&std::fs::read(out.join("load.json")).unwrap()).unwrap();
    assert!(r.completed && r.server_alive_at_end, "{r:#?}");
    assert_eq!(r.error_count, 0, "errors: {:#?}", r.errors);
    assert_eq!((r.uploads.errors, r.downloads.errors), (0, 0));
    assert!(r.uploads.ok > u64::from(r.preload), "{:?}", r.uploads);
    assert!(r.downloads.ok > 0, "{:?}", r.downloads);
    assert_eq!(
        r.verified_bytes, r.downloads.bytes,
        "every downloaded byte is compared with the upload"
    );
    let rss = r.peak_rss_bytes.expect("the server's peak RSS is recorded");
    assert!(rss > 1 << 20, "implausible peak RSS {rss}");
    assert_eq!((r.uploaders, r.downloaders), (8, 16));
    let small = r
        .latency
        .iter()
        .find(|l| l.label == "download small")
        .expect("latency of small downloads");
    assert!(small.count > 0 && small.p50_ms <= small.max_ms);

    let md = std::fs::read_to_string(out.join("load.md")).unwrap();
    assert!(md.contains("Errors: **0**"), "{md}");
    // The server's data directory is gone; at most the reusable test files remain.
    let left = entries(&data);
    assert!(left.iter().all(|e| e == "files"), "left behind: {left:?}");
}
