//! Crashes: the server is killed with SIGKILL at 20 pseudo-random moments
//! while uploads run (some acknowledged, one in flight). After every restart
//! the database passes `PRAGMA integrity_check`, every acknowledged upload is
//! intact, nothing partial is visible, and the chunks of unfinished uploads
//! are reclaimed.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

/// Starts a raw upload of `data` and keeps sending it in the background.
fn send_in_background(s: &TestServer, cookie: &str, data: Vec<u8>) -> tokio::task::JoinHandle<()> {
    let boundary = "----crash-test";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"inflight.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let req = format!(
        "POST /api/entry?expiration={FAR_FUTURE} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{head}",
        s.addr,
        head.len() + data.len() + tail.len()
    );
    let addr = s.addr;
    tokio::spawn(async move {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return;
        };
        if stream.write_all(req.as_bytes()).await.is_err() {
            return;
        }
        for piece in data.chunks(64 * 1024) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
        }
        let _ = stream.write_all(tail.as_bytes()).await;
        // Keep the connection open until the server dies.
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
}

/// Twenty kills at pseudo-random points (fixed seed, printed) during uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_during_uploads() {
    let seed = 20261126u64;
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut last_inflight: Option<String> = None;
    for round in 0..20u64 {
        let mut s = TestServer::start_on_db(&db).await;
        // After the restart: intact, nothing partial, orphans reclaimed.
        let integrity: String = s
            .db()
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "round {round}");
        assert!(
            eventually(Duration::from_secs(10), || s.orphan_chunks() == 0).await,
            "round {round}: {} orphan chunks after restart",
            s.orphan_chunks()
        );
        // An in-flight upload may have completed just before the kill (its
        // reply never read): then it must be whole. Nothing partial is visible.
        let known: std::collections::HashSet<String> =
            acknowledged.iter().map(|(id, _)| id.clone()).collect();
        let ids: Vec<String> = s
            .db()
            .prepare("SELECT id FROM entries")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for id in ids.into_iter().filter(|id| !known.contains(id)) {
            let sum = sha256_hex(&s.download(&id).await);
            assert_eq!(
                Some(&sum),
                last_inflight.as_ref(),
                "round {round}: entry {id} is not the whole in-flight upload"
            );
            acknowledged.push((id, sum));
        }
        if round % 5 == 0 {
            for (id, sum) in &acknowledged {
                assert_eq!(
                    &sha256_hex(&s.download(id).await),
                    sum,
                    "round {round}: {id} intact"
                );
            }
        }

        let c = s.admin_client().await;
        let size = rng.gen_range(64 * 1024..2 * 1024 * 1024);
        let data = random_bytes(size, seed ^ round);
        let id = s
            .upload(
                &c,
                "done.bin",
                &data,
                "application/octet-stream",
                None,
                None,
            )
            .await;
        acknowledged.push((id, sha256_hex(&data)));

        let cookie = s.session_cookie().await;
        let inflight = random_bytes(rng.gen_range(1..24) * 1024 * 1024, seed ^ (round << 8));
        last_inflight = Some(sha256_hex(&inflight));
        let sender = send_in_background(&s, &cookie, inflight);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
        s.kill();
        sender.abort();
        drop(s);
    }
    let s = TestServer::start_on_db(&db).await;
    let integrity: String = s
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert!(eventually(Duration::from_secs(10), || s.orphan_chunks() == 0).await);
    for (id, sum) in &acknowledged {
        assert_eq!(&sha256_hex(&s.download(id).await), sum);
    }
}
