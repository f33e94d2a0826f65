//! Shares: the owner's API (create, read, list, delete, validation), the
//! public share page, and the streamed ZIP, checked by third-party readers
//! (Python's `zipfile`, and Info-ZIP's `unzip -t` when installed), with and
//! without ZIP64 records, for protected and expired files, after garbage
//! collection, and for its memory use.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

async fn create(s: &TestServer, c: &reqwest::Client, body: Value) -> reqwest::Response {
    c.post(s.url("/api/shares"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/shares")
}

pub(crate) async fn create_ok(s: &TestServer, c: &reqwest::Client, body: Value) -> Value {
    let resp = create(s, c, body).await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

async fn up(s: &TestServer, c: &reqwest::Client, name: &str, data: &[u8]) -> String {
    s.upload(c, name, data, "application/octet-stream", None, None)
        .await
}

/// Downloads `/s/{id}/zip`, checks its Content-Length against the body, and
/// returns the bytes.
async fn get_zip(s: &TestServer, id: &str) -> Vec<u8> {
    let resp = plain_client()
        .get(s.url(&format!("/s/{id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header_str(resp.headers(), "content-type"),
        "application/zip"
    );
    let length: usize = header_str(resp.headers(), "content-length")
        .parse()
        .unwrap();
    let body = resp.bytes().await.unwrap().to_vec();
    assert_eq!(body.len(), length, "Content-Length is exact");
    body
}

/// What Python's `zipfile` reads from `path`: `testzip()` must find no bad
/// member; returns `(name, size, sha256)` per member, in order.
pub(crate) fn python_members(path: &Path) -> Vec<(String, u64, String)> {
    let script = r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    assert bad is None, f"bad member {bad}"
    out = []
    for info in z.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        out.append([info.filename, info.file_size, hashlib.sha256(z.read(info)).hexdigest()])
    print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python zipfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, u64, String)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

/// `unzip -t` (Info-ZIP) tests every member's CRC, when the binary exists.
fn unzip_test(path: &Path) {
    let Ok(out) = Command::new("unzip").arg("-t").arg(path).output() else {
        eprintln!("unzip not installed: skipping its check");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "unzip -t failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("No errors detected"), "{text}");
}

pub(crate) fn write_temp(data: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, data).unwrap();
    f
}

fn share_rows(s: &TestServer) -> (i64, i64) {
    let db = s.db();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT count(*) FROM picoshare_shares"),
        count("SELECT count(*) FROM picoshare_share_entries"),
    )
}

#[tokio::test]
async fn a_share_is_created_read_listed_and_deleted() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let a = up(&s, &c, "a.txt", b"alpha").await;
    let b = up(&s, &c, "b.txt", b"bravo!").await;
    let share = create_ok(
        &s,
        &c,
        json!({"title": " Holiday ", "entries": [a, b], "paths": ["pics/a.txt", null]}),
    )
    .await;
    let id = share["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 14);
    assert!(id.chars().all(|ch| ID_ALPHABET.contains(ch)));
    assert_eq!(share["title"], "Holiday");
    assert_eq!(share["url"], format!("/s/{id}"));
    let files = share["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["id"], a.as_str());
    assert_eq!(files[0]["path"], "pics/a.txt");
    assert_eq!(files[1]["path"], Value::Null);
    assert_eq!(files[1]["size"], 6);

    let got: Value = c
        .get(s.url(&format!("/api/shares/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, share);
    let list: Value = c
        .get(s.url("/api/shares"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The public page lists the files with their direct links.
    let page = plain_client()
        .get(s.url(&format!("/s/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        "Holiday",
        "pics/a.txt",
        "b.txt",
        &format!("/-{a}/a.txt"),
        &format!("/s/{id}/zip"),
    ] {
        assert!(html.contains(needle), "{needle} on the share page");
    }
    // The owner's list page shows it.
    let page = c
        .get(s.url("/shares"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/s/{id}")));

    // Deleting the share keeps its files.
    let resp = c
        .delete(s.url(&format!("/api/shares/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let resp = c
        .get(s.url(&format!("/api/shares/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = c
        .delete(s.url(&format!("/api/shares/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(s.download(&a).await, b"alpha");
    assert_eq!(share_rows(&s), (0, 0));

    // With files=true, the files go too.
    let share = create_ok(&s, &c, json!({"entries": [a, b]})).await;
    let id = share["id"].as_str().unwrap();
    let resp = c
        .delete(s.url(&format!("/api/shares/{id}?files=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(s.entry(&a).is_none() && s.entry(&b).is_none());
    assert_eq!(s.orphan_chunks(), 0);
    assert_eq!(share_rows(&s), (0, 0));
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let a = up(&s, &c, "a.txt", b"alpha").await;
    let b = up(&s, &c, "b.txt", b"bravo").await;

    let resp = plain_client()
        .post(s.url("/api/shares"))
        .json(&json!({"entries": [a]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = plain_client()
        .get(s.url("/api/shares"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let cases = [
        (json!({"entries": []}), "at least one file"),
        (json!({}), "malformed JSON"),
        (json!({"entries": ["short"]}), "bad entry ID"),
        (json!({"entries": [UNKNOWN_ID]}), "no file with ID"),
        (json!({"entries": [a, a]}), "listed twice"),
        (
            json!({"entries": [a, b], "paths": ["x"]}),
            "one item per entry",
        ),
        (
            json!({"entries": [a, b], "paths": ["d/x", "d/x"]}),
            "two files have the path",
        ),
        (json!({"entries": [a], "paths": ["../etc/passwd"]}), "`..`"),
        (
            json!({"entries": [a], "paths": ["/etc/passwd"]}),
            "relative",
        ),
        (json!({"entries": [a], "paths": ["C:/x"]}), "relative"),
        (json!({"entries": [a], "paths": ["a\\b"]}), "never"),
        (
            json!({"entries": [a], "paths": ["a\u{1}b"]}),
            "control characters",
        ),
        (
            json!({"entries": [a], "title": "x".repeat(201)}),
            "too long",
        ),
    ];
    for (body, message) in cases {
        let resp = create(&s, &c, body.clone()).await;
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    assert_eq!(share_rows(&s), (0, 0), "nothing half-created");

    for path in ["/api/shares/short", "/s/short", "/s/short/zip"] {
        let resp = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path}");
    }
    for path in [
        "/api/shares/aaaaaaaaaaaaaa",
        "/s/aaaaaaaaaaaaaa",
        "/s/aaaaaaaaaaaaaa/zip",
    ] {
        let resp = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
}

/// Files of several sizes (across chunk boundaries), in folders and with a
/// repeated name: the ZIP reads back in Python and Info-ZIP byte for byte.
#[tokio::test]
async fn the_zip_is_read_by_python_and_unzip() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("one.bin", random_bytes(1, 1)),
        ("chunk.bin", random_bytes(GO_CHUNK_SIZE, 2)),
        ("big.bin", random_bytes(mib(2) + 5, 3)),
        ("same.txt", b"first".to_vec()),
        ("same.txt", b"second".to_vec()),
        ("ünïcode €.txt", b"utf-8 names".to_vec()),
    ];
    let mut ids = Vec::new();
    for (name, data) in &files {
        ids.push(up(&s, &c, name, data).await);
    }
    let paths = json!([
        null,
        "folder/sub/chunk.bin",
        "folder/big.bin",
        null,
        null,
        null
    ]);
    let share = create_ok(&s, &c, json!({"entries": ids, "paths": paths})).await;
    let id = share["id"].as_str().unwrap();
    // HEAD announces the length and counts no download.
    let head = plain_client()
        .head(s.url(&format!("/s/{id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let announced = header_str(head.headers(), "content-length");
    assert!(s.download_rows(&ids[0]).is_empty());
    let zip = get_zip(&s, id).await;
    assert_eq!(announced, zip.len().to_string());
    let file = write_temp(&zip);
    let members = python_members(file.path());
    let want_names = [
        "one.bin",
        "folder/sub/chunk.bin",
        "folder/big.bin",
        "same.txt",
        "same (2).txt",
        "ünïcode €.txt",
    ];
    assert_eq!(members.len(), files.len());
    for ((m, (_, data)), name) in members.iter().zip(&files).zip(want_names) {
        assert_eq!(m.0, name);
        assert_eq!(m.1, data.len() as u64);
        assert_eq!(m.2, sha256_hex(data), "{name}");
    }
    unzip_test(file.path());
    // Without ZIP64 records on a small archive.
    assert_ne!(
        &zip[zip.len() - 42..zip.len() - 38],
        &[0x50, 0x4b, 0x06, 0x07]
    );
}

/// The threshold lowered to 0 puts ZIP64 records on every member and the
/// end: readers still get every byte back.
#[tokio::test]
async fn a_forced_zip64_archive_is_read_back() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_ZIP64_THRESHOLD", "0")).await;
    let c = s.admin_client().await;
    let data = [random_bytes(700_000, 7), b"tiny".to_vec()];
    let ids = vec![
        up(&s, &c, "a.bin", &data[0]).await,
        up(&s, &c, "b.txt", &data[1]).await,
    ];
    let share = create_ok(&s, &c, json!({"entries": ids})).await;
    let zip = get_zip(&s, share["id"].as_str().unwrap()).await;
    // The ZIP64 end of central directory locator sits before the end record.
    assert_eq!(
        &zip[zip.len() - 42..zip.len() - 38],
        &[0x50, 0x4b, 0x06, 0x07]
    );
    let file = write_temp(&zip);
    let members = python_members(file.path());
    assert_eq!(
        members,
        vec![
            ("a.bin".to_owned(), 700_000, sha256_hex(&data[0])),
            ("b.txt".to_owned(), 4, sha256_hex(&data[1])),
        ]
    );
    unzip_test(file.path());
}

fn set_clock(file: &Path, t: DateTime<Utc>) {
    std::fs::write(file, t.to_rfc3339()).unwrap();
}

/// Files with a password or a download limit stay out of the ZIP (and their
/// downloads are not counted); expired files are left out; a share whose
/// files are all protected has no ZIP (409), one whose files all expired is
/// gone (410); garbage collection removes expired files' rows and shares
/// left empty.
#[tokio::test]
async fn protected_and_expired_files_stay_out_of_the_zip() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    let now: DateTime<Utc> = "2030-06-01T12:00:00Z".parse().unwrap();
    set_clock(&clock, now);
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await;
    let c = s.admin_client().await;
    let open = up(&s, &c, "open.txt", b"for everyone").await;
    let locked =
        crate::limits::upload_with(&s, &[("password", "hunter2hunter2")], "", b"secret").await;
    let limited = crate::limits::upload_with(&s, &[("maxDownloads", "1")], "", b"once").await;
    let soon = (now + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let short = s
        .upload(
            &c,
            "short.txt",
            b"short-lived",
            "text/plain",
            None,
            Some(&soon),
        )
        .await;
    let share = create_ok(&s, &c, json!({"entries": [open, locked, limited, short]})).await;
    let id = share["id"].as_str().unwrap().to_owned();
    let flags: Vec<bool> = share["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["protected"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [false, true, true, false]);

    let names = |zip: &[u8]| -> Vec<String> {
        let f = write_temp(zip);
        python_members(f.path()).into_iter().map(|m| m.0).collect()
    };
    assert_eq!(names(&get_zip(&s, &id).await), ["open.txt", "short.txt"]);
    let page = plain_client()
        .get(s.url(&format!("/s/{id}")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("2 files are protected"), "{html}");
    assert_eq!(
        crate::limits::limits_row(&s, &limited),
        Some((Some(1), 0, 0)),
        "the ZIP did not use the limited file's download"
    );

    // An hour later, short.txt has expired: out of the page and the ZIP.
    set_clock(&clock, now + Duration::hours(2));
    assert_eq!(names(&get_zip(&s, &id).await), ["open.txt"]);
    let html = plain_client()
        .get(s.url(&format!("/s/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("short.txt"));

    // Only protected files left: no ZIP.
    c.delete(s.url(&format!("/api/entry/{open}")))
        .send()
        .await
        .unwrap();
    let resp = plain_client()
        .get(s.url(&format!("/s/{id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    assert!(resp.text().await.unwrap().contains("protected"));

    // Garbage collection drops the expired file's row.
    assert_eq!(share_rows(&s), (1, 3));
    let resp = c.post(s.url("/api/admin/gc")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(share_rows(&s), (1, 2));

    // A share whose files all expired is gone (410), then collected.
    let soon = (now + Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let x = s
        .upload(&c, "x.txt", b"x", "text/plain", None, Some(&soon))
        .await;
    let y = s
        .upload(&c, "y.txt", b"y", "text/plain", None, Some(&soon))
        .await;
    let other = create_ok(&s, &c, json!({"entries": [x, y]})).await;
    let other = other["id"].as_str().unwrap();
    set_clock(&clock, now + Duration::hours(4));
    for path in [format!("/s/{other}"), format!("/s/{other}/zip")] {
        let resp = plain_client().get(s.url(&path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 410, "{path}");
    }
    c.post(s.url("/api/admin/gc")).send().await.unwrap();
    assert_eq!(share_rows(&s), (1, 2), "only the first share is left");
    let resp = c
        .get(s.url(&format!("/api/shares/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // Deleting its last files deletes the first share too.
    c.delete(s.url(&format!("/api/entry/{locked}")))
        .send()
        .await
        .unwrap();
    c.delete(s.url(&format!("/api/entry/{limited}")))
        .send()
        .await
        .unwrap();
    assert_eq!(share_rows(&s), (0, 0));
}

/// VmHWM (peak resident memory) of the server, in KiB.
fn peak_kib(s: &TestServer) -> u64 {
    let pid = s.pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 256 MiB share streams as a ZIP while the server's peak memory stays far
/// below the archive's size: nothing is buffered whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipping_256_mib_keeps_memory_bounded() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let mut ids = Vec::new();
    let mut expected = Vec::new();
    for i in 0..4u64 {
        let data = random_bytes(mib(64), 100 + i);
        expected.push(sha256_hex(&data));
        ids.push(up(&s, &c, &format!("part{i}.bin"), &data).await);
    }
    let share = create_ok(&s, &c, json!({"entries": ids})).await;
    let id = share["id"].as_str().unwrap();
    let before = peak_kib(&s);

    let resp = plain_client()
        .get(s.url(&format!("/s/{id}/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let length: u64 = header_str(resp.headers(), "content-length")
        .parse()
        .unwrap();
    assert!(length > 256 << 20);
    // Read it slowly-ish in pieces, hashing member data as it passes: every
    // member's bytes sit at a known offset (header 30 + name, no extras).
    let mut stream = resp.bytes_stream();
    let mut received: u64 = 0;
    let mut hashers: Vec<Sha256> = (0..4).map(|_| Sha256::new()).collect();
    let member_span = |i: u64| {
        let header = 30 + "partN.bin".len() as u64;
        let start = i * (header + (64 << 20) + 16) + header;
        (start, start + (64 << 20))
    };
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        let (from, to) = (received, received + piece.len() as u64);
        for (i, h) in hashers.iter_mut().enumerate() {
            let (start, end) = member_span(i as u64);
            let (a, b) = (from.max(start), to.min(end));
            if a < b {
                h.update(&piece[(a - from) as usize..(b - from) as usize]);
            }
        }
        received = to;
    }
    assert_eq!(received, length);
    let got: Vec<String> = hashers.into_iter().map(|h| hex(&h.finalize())).collect();
    assert_eq!(got, expected);

    let after = peak_kib(&s);
    eprintln!("peak RSS before the ZIP {before} KiB, after {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "zipping 256 MiB raised the peak from {before} to {after} KiB"
    );
    assert!(after < 200 * 1024, "peak {after} KiB");
}
