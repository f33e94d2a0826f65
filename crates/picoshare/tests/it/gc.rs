//! Expiry, garbage collection and giving disk space back, with an injected
//! clock (the server reads "now" from `--clock-file`), never by sleeping.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

fn set_clock(file: &Path, t: DateTime<Utc>) {
    std::fs::write(file, t.to_rfc3339()).unwrap();
}

fn db_file_len(db: &Path) -> u64 {
    std::fs::metadata(db).map(|m| m.len()).unwrap_or(0)
}

async fn start_with_clock(db: &Path, clock: &Path) -> TestServer {
    TestServer::start_with(
        ServerOptions::new()
            .db(db)
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await
}

async fn collect(s: &TestServer, c: &reqwest::Client) -> Value {
    let resp = c.post(s.url("/api/admin/gc")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// An entry past its expiration is refused (410) before garbage collection,
/// and collection deletes it with its chunks and download history, while an
/// entry that never expires stays.
#[tokio::test]
async fn expired_entries_are_refused_then_collected() {
    let dir = tempfile::tempdir().unwrap();
    let (db, clock) = (dir.path().join("store.db"), dir.path().join("clock"));
    let now = Utc::now();
    set_clock(&clock, now);
    let s = start_with_clock(&db, &clock).await;
    let c = s.admin_client().await;
    let soon =
        (now + chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
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
    let keep = s
        .upload(
            &c,
            "keep.txt",
            b"forever",
            "text/plain",
            None,
            Some("2999-12-31T00:00:00Z"),
        )
        .await;
    assert_eq!(s.download(&short).await, b"short-lived");
    // The history row is written in the background after the reply.
    assert!(
        eventually(Duration::from_secs(5), || s.download_rows(&short).len()
            == 1)
        .await
    );

    set_clock(&clock, now + chrono::Duration::hours(3));
    let resp = plain_client()
        .get(s.url(&format!("/-{short}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert_eq!(s.entry_count(), 2, "collection has not run yet");

    let outcome = collect(&s, &c).await;
    assert_eq!(outcome["expiredEntries"], 1);
    assert!(s.entry(&short).is_none());
    assert_eq!(s.chunk_rows(&short), 0);
    assert!(s.download_rows(&short).is_empty());
    let resp = plain_client()
        .get(s.url(&format!("/-{short}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(s.download(&keep).await, b"forever");
}

/// Collection also runs at start-up: an entry that expired while the server
/// was down is gone soon after it starts again.
#[tokio::test]
async fn collection_runs_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let (db, clock) = (dir.path().join("store.db"), dir.path().join("clock"));
    let now = Utc::now();
    set_clock(&clock, now);
    let mut s = start_with_clock(&db, &clock).await;
    let c = s.admin_client().await;
    let soon =
        (now + chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = s
        .upload(&c, "a.txt", b"a", "text/plain", None, Some(&soon))
        .await;
    s.stop();
    drop(s);
    set_clock(&clock, now + chrono::Duration::days(1));
    let s = start_with_clock(&db, &clock).await;
    assert!(
        eventually(Duration::from_secs(10), || s.entry(&id).is_none()).await,
        "the expired entry should be collected at start-up"
    );
}

/// Collection never touches the chunks of an upload in progress: an upload
/// half-sent while collection runs still completes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_spares_uploads_in_progress() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let cookie = s.session_cookie().await;
    let boundary = "----gc-in-progress";
    let data = random_bytes(mib(6), 41);
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + data.len() + tail.len();
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let req = format!(
        "POST /api/entry?expiration={FAR_FUTURE} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n{head}",
        s.addr
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(&data[..mib(3)]).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || s.orphan_chunks() > 0).await);
    let chunks_before = s.orphan_chunks();

    let outcome = collect(&s, &c).await;
    assert_eq!(outcome["orphanChunks"], 0, "{outcome}");
    assert!(s.orphan_chunks() >= chunks_before);

    stream.write_all(&data[mib(3)..]).await.unwrap();
    stream.write_all(tail.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut reply)
        .await
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let id = reply
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(sha256_hex(&s.download(id).await), sha256_hex(&data));
}

/// On a new database, deleting a file makes the database file shrink while
/// the server keeps running (incremental vacuum in the background).
#[tokio::test]
async fn database_file_shrinks_after_delete() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(24), 42);
    let id = s
        .upload(&c, "big.bin", &data, "application/octet-stream", None, None)
        .await;
    let full = eventually(Duration::from_secs(10), || {
        db_file_len(&s.db_path) > mib(20) as u64
    })
    .await;
    assert!(
        full,
        "after the upload the database holds the file: {}",
        db_file_len(&s.db_path)
    );
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let shrunk = eventually(Duration::from_secs(15), || {
        db_file_len(&s.db_path) < mib(4) as u64
    })
    .await;
    assert!(
        shrunk,
        "the database file is still {} bytes",
        db_file_len(&s.db_path)
    );
    // Still healthy and usable.
    let again = s
        .upload(&c, "small.txt", b"after", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&again).await, b"after");
}

/// After an upload the WAL holds up to its limit (256 MiB by default) of
/// frames; once the server is idle and a checkpoint has copied them, the WAL
/// file's space is given back too.
#[tokio::test]
async fn the_wal_is_given_back_when_the_server_is_idle() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(40), 8);
    let id = s
        .upload(&c, "f.bin", &data, "application/octet-stream", None, None)
        .await;
    let wal = s.db_path.with_extension("db-wal");
    let len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        eventually(Duration::from_secs(20), || len() < mib(4) as u64).await,
        "the WAL is still {} bytes",
        len()
    );
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
}

/// Bytes process `pid` has passed to `write` so far (`wchar` in /proc).
fn bytes_written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .expect("/proc/PID/io")
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar in /proc/PID/io")
}

/// Deleting a file and giving its space back writes in proportion to the
/// pages touched, not to the file's size: the freed pages a vacuum step
/// takes off the freelist stay in the writer's cache and are dropped with
/// the end of the file instead of being spilled to the WAL (which wrote
/// 98 MiB for a 100 MiB file). Everything the server writes counts: the WAL,
/// the checkpoints into the database file, the shared-memory index.
#[tokio::test]
async fn deleting_a_file_writes_little() {
    let s = TestServer::start().await;
    let pid = s.pid().unwrap();
    let c = s.admin_client().await;
    let size = mib(64);
    let id = s
        .upload(
            &c,
            "big.bin",
            &random_bytes(size, 7),
            "application/octet-stream",
            None,
            None,
        )
        .await;
    // The upload's own checkpoint and WAL truncation are done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = bytes_written(pid);
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        eventually(Duration::from_secs(15), || db_file_len(&s.db_path)
            < mib(4) as u64)
        .await,
        "the space came back: the file is {} bytes",
        db_file_len(&s.db_path)
    );
    // The checkpoint of the last vacuum step.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = bytes_written(pid) - before;
    assert!(
        written < size as u64 / 4,
        "deleting a {} MiB file wrote {} KiB",
        size >> 20,
        written >> 10
    );
}

/// A database written by the original (no auto-vacuum, free pages left by a
/// deleted entry) is converted at start-up: it then uses incremental vacuum,
/// keeps every entry, and shrinks after a delete.
#[tokio::test]
async fn fixture_database_is_converted_and_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _manifest) = copy_fixture(dir.path());

    let s = TestServer::start_on_db(&db).await;
    let auto: i64 = s
        .db()
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auto, 2, "converted to incremental auto-vacuum");
    assert_eq!(s.entry_count(), 8);
    assert_eq!(s.download("oXNqrJxiJv").await.len(), 1);

    let c = s.admin_client().await;
    let base = db_file_len(&db);
    let id = s
        .upload(
            &c,
            "big.bin",
            &random_bytes(mib(16), 43),
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert!(
        eventually(Duration::from_secs(10), || db_file_len(&db)
            > base + mib(12) as u64)
        .await
    );
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let shrunk = eventually(Duration::from_secs(15), || {
        db_file_len(&db) < base + mib(2) as u64
    })
    .await;
    assert!(
        shrunk,
        "still {} bytes (was {base} before the upload)",
        db_file_len(&db)
    );
}
