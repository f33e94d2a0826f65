//! `picoshare backup DEST`: a consistent, checked copy of the live database,
//! taken while a large upload streams in and small uploads commit one after
//! another. The copy passes the `sqlite3` shell's integrity check, holds every
//! file acknowledged before the backup began, byte for byte, and nothing
//! partial; a server started on it serves them.
//!
//! SQLite only (`sqlite_only.txt`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn picoshare(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picoshare"));
    cmd.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run picoshare")
}

/// Sends a multipart upload of `data` slowly (1 MiB every 40 ms), counting
/// the bytes sent in `sent`; returns the entry ID from the reply.
async fn slow_upload(
    addr: std::net::SocketAddr,
    cookie: String,
    data: Vec<u8>,
    sent: Arc<Mutex<usize>>,
) -> String {
    let boundary = "----backup-test";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"large.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /api/entry?expiration={FAR_FUTURE} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
         Accept: application/json\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{head}",
        head.len() + data.len() + tail.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    for piece in data.chunks(1 << 20) {
        s.write_all(piece).await.unwrap();
        *sent.lock().unwrap() += piece.len();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    s.write_all(tail.as_bytes()).await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_uploads_is_consistent_and_complete() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..5u64 {
        let data = random_bytes(200_000 + i as usize * 1000, i);
        let id = s
            .upload(
                &c,
                "before.bin",
                &data,
                "application/octet-stream",
                None,
                None,
            )
            .await;
        files.push((id, data));
    }

    // A large upload, slowly, and small uploads committing one after another.
    let large = random_bytes(mib(48), 99);
    let sent = Arc::new(Mutex::new(0usize));
    let large_upload = tokio::spawn(slow_upload(
        s.addr,
        s.session_cookie().await,
        large.clone(),
        sent.clone(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let small_uploads = {
        let (stop, base, c) = (stop.clone(), s.base.clone(), c.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data = random_bytes(50_000, 1000 + i);
                let form = Multipart::new().file("file", "small.bin", None, &data);
                let resp = c
                    .post(format!("{base}/api/entry?expiration={FAR_FUTURE}"))
                    .header(reqwest::header::CONTENT_TYPE, form.content_type())
                    .body(form.finish())
                    .send()
                    .await
                    .unwrap();
                done.push((upload_id(resp).await, data));
                i += 1;
            }
            done
        })
    };
    while *sent.lock().unwrap() < mib(8) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backup.db");
    let db = s.db_path.clone();
    let out = {
        let (db, dest) = (db.clone(), dest.clone());
        tokio::task::spawn_blocking(move || {
            picoshare(
                &[
                    "backup",
                    "-db",
                    db.to_str().unwrap(),
                    dest.to_str().unwrap(),
                ],
                &[],
            )
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "backup failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("integrity check ok"), "{stdout}");
    assert!(
        *sent.lock().unwrap() < large.len(),
        "the large upload was still running during the backup"
    );
    let small = small_uploads.await.unwrap();
    assert!(!small.is_empty());
    let large_id = large_upload.await.unwrap();
    assert!(!dest.with_extension("db.partial").exists());

    // Checked with an outside tool, then served by a server of its own.
    let check = Command::new("sqlite3")
        .arg(&dest)
        .arg("PRAGMA integrity_check")
        .output()
        .expect("the sqlite3 shell (scripts/test installs it)");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("store.db");
    std::fs::copy(&dest, &copy).unwrap();
    let restored = TestServer::start_on_db(&copy).await;
    for (id, data) in &files {
        assert_eq!(
            sha256_hex(&restored.download(id).await),
            sha256_hex(data),
            "{id}, acknowledged before the backup"
        );
    }
    // Whatever else the copy holds is whole: small files acknowledged during
    // the backup, and the large one only if complete.
    let ids: Vec<String> = {
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let mut st = conn.prepare("SELECT id FROM entries").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    for id in &ids {
        let data = if *id == large_id {
            &large
        } else if let Some((_, d)) = files.iter().chain(small.iter()).find(|(i, _)| i == id) {
            d
        } else {
            panic!("the copy holds {id}, which no upload acknowledged");
        };
        assert_eq!(sha256_hex(&restored.download(id).await), sha256_hex(data));
    }
    assert_eq!(
        restored.orphan_chunks(),
        0,
        "no partial upload survives in the copy"
    );
}

#[test]
fn a_backup_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = picoshare(
        &[
            "backup",
            "-db",
            missing.to_str().unwrap(),
            dir.path().join("b.db").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!missing.exists(), "a backup never creates the database");

    // A database of our own, then the destinations that are refused.
    let db = dir.path().join("store.db");
    std::fs::write(&db, b"").unwrap();
    let out = picoshare(
        &["backup", "-db", db.to_str().unwrap(), db.to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is the database itself"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = picoshare(
        &[
            "backup",
            "-db",
            db.to_str().unwrap(),
            dir.path().join("no/such/folder/b.db").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let out = picoshare(
        &["backup", dir.path().join("b.db").to_str().unwrap()],
        &[
            ("PS_POSTGRES_URL", "postgres://u:p@127.0.0.1:1/x"),
            ("PS_S3_BUCKET", "b"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("copies the SQLite database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder as the destination gets a dated file; a second backup to the
/// same file replaces it.
#[tokio::test]
async fn a_backup_into_a_folder_is_dated_and_a_file_is_replaced() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    s.upload(&c, "a.txt", b"one", "text/plain", None, None)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let db = s.db_path.to_str().unwrap().to_owned();
    let out = picoshare(
        &["backup", "-q", "-db", &db, dir.path().to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("picoshare-") && names[0].ends_with(".db"),
        "{names:?}"
    );

    let file = dir.path().join("fixed.db");
    for expected in [1, 2] {
        if expected == 2 {
            s.upload(&c, "b.txt", b"two", "text/plain", None, None)
                .await;
        }
        let out = picoshare(&["backup", "-db", &db, file.to_str().unwrap()], &[]);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!(": {expected} files,")),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(count_entries(&file), expected);
    }
}

fn count_entries(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap()
}
