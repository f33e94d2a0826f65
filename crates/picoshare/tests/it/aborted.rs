//! Uploads that never finish: the client vanishes halfway, or the server is
//! killed halfway. Neither may leave a visible entry, orphan chunks or a
//! damaged database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

/// Opens a raw connection and sends the head of an upload request that
/// promises `declared_len` body bytes, plus the file part's own head.
async fn begin_raw_upload(s: &TestServer, cookie: &str, declared_len: usize) -> TcpStream {
    let boundary = "----picoshare-it-aborted";
    let head = format!(
        "POST /api/entry?expiration={FAR_FUTURE} HTTP/1.1\r\n\
         Host: {}\r\n\
         Cookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {declared_len}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"never-finished.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\
         \r\n",
        s.addr
    );
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send request head");
    stream
}

/// A client that sends 5 MiB of a promised 20 MiB upload and then drops the
/// connection leaves no entry and no orphan chunks (checked for up to 10 s),
/// no temp files, and a server that keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_abort_leaves_nothing_behind() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let keep = s
        .upload(&c, "keep.txt", b"still here", "text/plain", None, None)
        .await;
    let cookie = s.session_cookie().await;

    let mut stream = begin_raw_upload(&s, &cookie, mib(20)).await;
    let data = random_bytes(mib(5), 7);
    tokio::time::timeout(Duration::from_secs(30), async {
        for piece in data.chunks(64 * 1024) {
            stream
                .write_all(piece)
                .await
                .expect("server stopped reading the upload");
        }
        stream.flush().await.unwrap();
    })
    .await
    .expect("server did not take 5 MiB within 30 s");
    // Give a server that stores chunks as they arrive the chance to do so,
    // so that the cleanup below is really exercised.
    let partial = eventually(Duration::from_millis(1500), || s.orphan_chunks() > 0).await;
    eprintln!("partial chunks visible before the abort: {partial}");
    drop(stream);

    let clean = eventually(Duration::from_secs(10), || {
        s.entry_count() == 1 && s.orphan_chunks() == 0
    })
    .await;
    assert!(
        clean,
        "10 s after the abort: {} entries (want 1), {} orphan chunks (want 0)",
        s.entry_count(),
        s.orphan_chunks()
    );
    assert!(
        s.tmp_files().is_empty(),
        "temp files left: {:?}",
        s.tmp_files()
    );
    assert_eq!(s.download(&keep).await, b"still here");
    let id = s
        .upload(
            &c,
            "after.txt",
            b"after the abort",
            "text/plain",
            None,
            None,
        )
        .await;
    assert_eq!(s.download(&id).await, b"after the abort");
}

/// A server killed with SIGKILL in the middle of a large upload comes back
/// on the same database with the partial upload's chunks gone, earlier
/// entries intact, and `PRAGMA integrity_check` = `ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_upload_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let lease = ("PS_INSTANCE_LEASE_SECS", crate::crash::LEASE_SECS);
    let mut s = TestServer::start_with(ServerOptions::new().db(&db).env(lease.0, lease.1)).await;
    let c = s.admin_client().await;
    let keep_data = random_bytes(400_000, 8);
    let keep = s
        .upload(
            &c,
            "keep.bin",
            &keep_data,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let cookie = s.session_cookie().await;

    let total = mib(24);
    let sent = Arc::new(AtomicUsize::new(0));
    let mut stream = begin_raw_upload(&s, &cookie, mib(64)).await;
    let writer = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let data = random_bytes(total, 9);
            for piece in data.chunks(256 * 1024) {
                if stream.write_all(piece).await.is_err() {
                    return None; // the server is gone
                }
                sent.fetch_add(piece.len(), Ordering::Relaxed);
            }
            // Hand the connection back open: closing it would abort the
            // upload cleanly, and this test is about the server dying.
            Some(stream)
        })
    };
    // Kill once the server is visibly storing chunks (so there is something
    // to reclaim after the restart). A server that commits nothing before
    // an upload ends shows none; then kill after 24 MiB are sent and a grace
    // period, and the test checks only that nothing shows afterwards.
    let _ = eventually(Duration::from_secs(20), || {
        s.orphan_chunks() > 0 || sent.load(Ordering::Relaxed) >= total
    })
    .await;
    let _ = eventually(Duration::from_secs(3), || s.orphan_chunks() > 0).await;
    eprintln!(
        "killing with {} orphan chunks visible after {} bytes sent",
        s.orphan_chunks(),
        sent.load(Ordering::Relaxed)
    );
    s.kill();
    let open_connection = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("writer did not notice the dead server")
        .unwrap();
    drop(open_connection);
    drop(s);

    // On the scale-out store other instances may be running, so an upload is
    // only collected once its instance's lease has run out (5 s here), by the
    // next garbage collection (here every second) or upkeep.
    let remote = remote_storage().is_some();
    let (opts, wait) = if remote {
        let opts = ServerOptions::new()
            .db(&db)
            .env(lease.0, lease.1)
            .env("PS_GC_INTERVAL", "1");
        (opts, 30)
    } else {
        (ServerOptions::new().db(&db), 10)
    };
    let s = TestServer::start_with(opts).await;
    let clean = eventually(Duration::from_secs(wait), || {
        s.entry_count() == 1 && s.orphan_chunks() == 0
    })
    .await;
    assert!(
        clean,
        "{wait} s after restart: {} entries (want 1), {} orphan chunks (want 0)",
        s.entry_count(),
        s.orphan_chunks()
    );
    assert_eq!(sha256_hex(&s.download(&keep).await), sha256_hex(&keep_data));
    let c = s.admin_client().await;
    let id = s
        .upload(
            &c,
            "after.txt",
            b"after the crash",
            "text/plain",
            None,
            None,
        )
        .await;
    assert_eq!(s.download(&id).await, b"after the crash");
    let mut s = s;
    s.stop();
    drop(s);
    if remote {
        // What follows inspects the SQLite file itself.
        return;
    }

    let conn = open_db_read_write(&db);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM entries_data WHERE id NOT IN (SELECT id FROM entries)",
            []
        ),
        0
    );
}
