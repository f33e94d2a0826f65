//! Graceful shutdown: SIGTERM lets an upload in flight finish within the grace
//! period, and cleanly abandons one that does not, leaving a consistent,
//! checkpointed database behind.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends the head of a one-file multipart upload; returns the stream and the
/// body bytes still to send (file data, then the closing boundary).
async fn start_upload(s: &TestServer, cookie: &str, data: &[u8]) -> (TcpStream, Vec<u8>) {
    let boundary = "----picoshare-it-shutdown";
    let part_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in-flight.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = part_head.len() + data.len() + tail.len();
    let head = format!(
        "POST /api/entry?expiration={FAR_FUTURE} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n{part_head}",
        s.addr
    );
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut rest = data.to_vec();
    rest.extend_from_slice(tail.as_bytes());
    (stream, rest)
}

/// An upload that is still arriving when SIGTERM comes, and completes within
/// the grace period, is stored and acknowledged; then the server exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .arg("--shutdown-grace")
            .arg("20"),
    )
    .await;
    let cookie = s.session_cookie().await;
    let data = random_bytes(mib(6), 21);
    let (mut stream, rest) = start_upload(&s, &cookie, &data).await;
    let (first, second) = rest.split_at(mib(3));
    stream.write_all(first).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || s.orphan_chunks() > 0).await,
        "the server should be storing chunks while the upload arrives"
    );

    let waiter = std::thread::spawn(move || {
        let status = s.terminate(Duration::from_secs(30));
        (s, status)
    });
    // Give the signal time to arrive before the rest of the body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(second)
        .await
        .expect("server stopped reading during the grace period");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "reply: {reply}");
    let id = reply
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("id in reply")
        .to_owned();

    let (s, status) = waiter.join().unwrap();
    drop(s);
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );

    let s = TestServer::start_on_db(&db).await;
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
}

/// An upload still unfinished when the grace period ends is abandoned: the
/// server exits 0, no entry and no chunks remain, the WAL is checkpointed
/// away, and the database passes `PRAGMA integrity_check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_abandons_an_upload_that_does_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .arg("--shutdown-grace")
            .arg("1"),
    )
    .await;
    let c = s.admin_client().await;
    let keep = s
        .upload(&c, "keep.txt", b"kept", "text/plain", None, None)
        .await;
    let cookie = s.session_cookie().await;
    let data = random_bytes(mib(8), 22);
    let (mut stream, rest) = start_upload(&s, &cookie, &data).await;
    stream.write_all(&rest[..mib(4)]).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || s.orphan_chunks() > 0).await);

    let status = s.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    drop(stream);
    let log = format!("{}{}", s.stdout_text(), s.stderr_text());
    drop(s);

    let conn = if remote_storage().is_some() {
        // The scale-out store's tables as the server left them.
        remote_snapshot(&remote_names(&db).0)
    } else {
        let wal = dir.path().join("store.db-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            wal_len, 0,
            "the WAL should be checkpointed and truncated at exit"
        );
        let conn = open_db_read_write(&db);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        conn
    };
    assert_eq!(
        count(&conn, "SELECT count(*) FROM entries", []),
        1,
        "server log:\n{log}"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM entries_data WHERE id <> ?1",
            [&keep]
        ),
        0,
        "server log:\n{log}"
    );
}

/// With `LITESTREAM_BUCKET` set (the original's Docker image under Litestream),
/// the server leaves WAL checkpoints to Litestream: after an upload and a clean
/// stop the uploaded bytes are still in the WAL file, not copied into the
/// database by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litestream_mode_leaves_checkpoints_to_litestream() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .env("LITESTREAM_BUCKET", "backups"),
    )
    .await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(2), 23);
    let id = s
        .upload(
            &c,
            "replicated.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
    let status = s.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    drop(s);
    let wal_len = std::fs::metadata(dir.path().join("store.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal_len >= data.len() as u64,
        "the WAL holds {wal_len} bytes; the upload's {} bytes should still be there for Litestream",
        data.len()
    );
}

/// With `LITESTREAM_BUCKET` set and no Litestream running, nothing would
/// checkpoint the WAL and it would grow without bound. Past four times the
/// WAL limit (here 4 × 8 MiB) the server checkpoints it itself and says
/// once, loudly, that nothing else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litestream_mode_without_litestream_bounds_the_wal() {
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("LITESTREAM_BUCKET", "backups")
            .env("PS_WAL_LIMIT_MIB", "8"),
    )
    .await;
    let c = s.admin_client().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let data = random_bytes(mib(40), 100 + i);
        ids.push((
            s.upload(&c, "f.bin", &data, "application/octet-stream", None, None)
                .await,
            sha256_hex(&data),
        ));
    }
    let wal = std::fs::metadata(s.db_path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal < mib(160) as u64,
        "after 240 MiB of uploads the WAL is {} MiB",
        wal >> 20
    );
    let log = s.stderr_text();
    assert!(
        log.contains("is Litestream running?"),
        "no warning in the log:\n{log}"
    );
    assert_eq!(log.matches("is Litestream running?").count(), 1, "{log}");
    for (id, sum) in &ids {
        assert_eq!(&sha256_hex(&s.download(id).await), sum);
    }
}

/// The same bound holds within one long upload: with `LITESTREAM_BUCKET` set,
/// no Litestream and the bound at 32 MiB (4 × 8 MiB), a single 240 MiB upload
/// leaves a WAL far smaller than itself (the server waits at the bound for its
/// checkpoint to copy everything, so the WAL restarts during the upload;
/// before, the WAL grew by the whole upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litestream_mode_without_litestream_bounds_the_wal_within_one_upload() {
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("LITESTREAM_BUCKET", "backups")
            .env("PS_WAL_LIMIT_MIB", "8"),
    )
    .await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(240), 140);
    let id = s
        .upload(&c, "big.bin", &data, "application/octet-stream", None, None)
        .await;
    let wal = std::fs::metadata(s.db_path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        wal < mib(120) as u64,
        "after one 240 MiB upload the WAL is {} MiB",
        wal >> 20
    );
    assert_eq!(
        s.stderr_text().matches("is Litestream running?").count(),
        1,
        "the warning, once"
    );
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
}

/// Litestream (or any other process) holding a read transaction on the
/// database: a clean stop waits only briefly for it, leaves the WAL for it,
/// says so, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_the_wal_to_a_reader_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let data = random_bytes(mib(2), 31);
    let id = s
        .upload(
            &c,
            "kept.bin",
            &data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    // The sqlite3 shell keeps a read transaction open until its input ends.
    let mut reader = std::process::Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the sqlite3 shell (scripts/test installs it)");
    {
        use std::io::{BufRead, Write};
        let stdin = reader.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN; SELECT count(*) FROM entries;").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(reader.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "1");
    }
    let more = random_bytes(mib(1), 32);
    let id2 = s
        .upload(
            &c,
            "more.bin",
            &more,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let started = std::time::Instant::now();
    let status = s.terminate(Duration::from_secs(20));
    let took = started.elapsed();
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "the stop waited {took:?} for the reader"
    );
    assert!(
        s.stderr_text()
            .contains("another process is reading the database"),
        "{}",
        s.stderr_text()
    );
    drop(reader.stdin.take());
    let _ = reader.wait();
    drop(s);
    let s = TestServer::start_on_db(&db).await;
    assert_eq!(sha256_hex(&s.download(&id).await), sha256_hex(&data));
    assert_eq!(sha256_hex(&s.download(&id2).await), sha256_hex(&more));
}
