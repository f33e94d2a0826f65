//! Crashes: the server is killed with SIGKILL at 20 pseudo-random moments
//! while uploads run (some acknowledged, one in flight), and at 12 more while
//! several large downloads run beside an upload. After every restart the
//! database passes `PRAGMA integrity_check`, every acknowledged upload is
//! intact, nothing partial is visible, the chunks of unfinished uploads are
//! reclaimed, and the download history reads back without error and loses
//! nothing it had already stored.
//!
//! On the scale-out store there is no SQLite file to check, and the data of
//! a killed instance's unfinished upload is only reclaimed once that
//! instance's lease has run out (other instances may still be running; the
//! servers here hold 5-second leases, [`LEASE_SECS`]): there the leftovers
//! are waited for once, after the last restart, with garbage collection
//! every second. Everything else is checked alike.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

/// `PRAGMA quick_check` (or `integrity_check`) passes; SQLite only.
fn check_sqlite_file(s: &TestServer, pragma: &str, round: usize) {
    if remote_storage().is_some() {
        return;
    }
    let result: String = s
        .db()
        .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok", "round {round}: {pragma}");
}

/// The lease of the servers here on the scale-out store
/// (`PS_INSTANCE_LEASE_SECS`): what a killed one held is taken back this
/// long after the kill.
pub const LEASE_SECS: &str = "5";

/// Options for a restart on `db`; `last` marks the one after the final kill
/// (on the scale-out store it collects garbage every second).
fn restart_options(db: &Path, last: bool) -> ServerOptions {
    let opts = ServerOptions::new()
        .db(db)
        .env("PS_INSTANCE_LEASE_SECS", LEASE_SECS);
    if last && remote_storage().is_some() {
        opts.env("PS_GC_INTERVAL", "1")
    } else {
        opts
    }
}

/// The data of uploads cut off by the kills is reclaimed: on SQLite at each
/// restart, on the scale-out store (see the module's comment) after the last.
async fn assert_leftovers_reclaimed(s: &TestServer, round: usize, last: bool) {
    let wait = match (remote_storage().is_some(), last) {
        (false, _) => 10,
        (true, false) => return,
        (true, true) => 60,
    };
    assert!(
        eventually(Duration::from_secs(wait), || s.orphan_chunks() == 0).await,
        "round {round}: {} orphan chunks {wait} s after restart",
        s.orphan_chunks()
    );
}

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
        let mut s = TestServer::start_with(restart_options(&db, false)).await;
        // After the restart: intact, nothing partial, orphans reclaimed.
        check_sqlite_file(&s, "quick_check", round as usize);
        assert_leftovers_reclaimed(&s, round as usize, false).await;
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
    let s = TestServer::start_with(restart_options(&db, true)).await;
    check_sqlite_file(&s, "integrity_check", 20);
    assert_leftovers_reclaimed(&s, 20, true).await;
    for (id, sum) in &acknowledged {
        assert_eq!(&sha256_hex(&s.download(id).await), sum);
    }
}

/// What the download crash test knows between restarts.
#[derive(Default)]
struct Known {
    /// Acknowledged (or found whole) entries and their exact bytes.
    entries: HashMap<String, Arc<Vec<u8>>>,
    /// Download requests sent per entry (an upper bound on its history).
    requested: HashMap<String, usize>,
    /// History rows per entry at the last check (a lower bound from then on).
    history: HashMap<String, usize>,
}

/// The checks after a restart: integrity, orphans reclaimed, no partial entry
/// (an unknown entry must be the whole in-flight upload), every entry intact,
/// and a download history that reads back, only grows, and holds no download
/// that was never requested.
async fn check_after_restart(
    s: &TestServer,
    round: usize,
    known: &mut Known,
    inflight: Option<Arc<Vec<u8>>>,
    last: bool,
) {
    check_sqlite_file(s, "integrity_check", round);
    assert_leftovers_reclaimed(s, round, last).await;
    let ids: Vec<String> = s
        .db()
        .prepare("SELECT id FROM entries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &ids {
        if !known.entries.contains_key(id) {
            let data = inflight
                .clone()
                .unwrap_or_else(|| panic!("round {round}: unexpected entry {id}"));
            known.entries.insert(id.clone(), data);
        }
    }
    assert_eq!(
        ids.len(),
        known.entries.len(),
        "round {round}: an acknowledged upload is missing"
    );
    let dangling = count(
        &s.db(),
        "SELECT count(*) FROM downloads WHERE entry_id NOT IN (SELECT id FROM entries)",
        [],
    );
    assert_eq!(dangling, 0, "round {round}: history of unknown entries");

    let admin = s.admin_client().await;
    let list: serde_json::Value = admin
        .get(s.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("the file list reads back");
    let listed: HashMap<String, u64> = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["downloads"].as_u64().unwrap(),
            )
        })
        .collect();
    for (id, data) in &known.entries {
        let resp = admin
            .get(s.url(&format!("/api/entry/{id}/downloads")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "round {round}: history of {id}"
        );
        let rows: Vec<serde_json::Value> = resp.json().await.expect("history is JSON");
        for row in &rows {
            assert_stored_time(row["time"].as_str().expect("a time"));
        }
        let (before, sent) = (
            known.history.get(id).copied().unwrap_or(0),
            known.requested.get(id).copied().unwrap_or(0),
        );
        assert!(
            (before..=sent).contains(&rows.len()),
            "round {round}: {id} has {} history rows; had {before}, {sent} downloads were requested",
            rows.len()
        );
        assert_eq!(
            listed.get(id).copied(),
            Some(rows.len() as u64),
            "round {round}: {id}"
        );
        known.history.insert(id.clone(), rows.len());

        *known.requested.entry(id.clone()).or_default() += 1;
        assert!(
            s.download(id).await == **data,
            "round {round}: {id} is not intact"
        );
    }
}

/// Downloads `id` whole at a slow reader's pace, counting itself in
/// `receiving` once the first bytes arrived; returns whether it arrived
/// complete and equal to `data` (`None` if the connection broke first, as
/// when the server dies).
async fn download_and_compare(
    base: String,
    id: String,
    data: Arc<Vec<u8>>,
    receiving: Arc<AtomicUsize>,
) -> Option<bool> {
    let mut resp = plain_client()
        .get(format!("{base}/-{id}"))
        .send()
        .await
        .ok()?;
    if resp.status().as_u16() != 200 {
        return Some(false);
    }
    let mut offset = 0;
    while let Some(chunk) = resp.chunk().await.ok()? {
        if offset == 0 {
            receiving.fetch_add(1, Ordering::SeqCst);
        }
        if data.get(offset..offset + chunk.len()) != Some(&chunk[..]) {
            return Some(false);
        }
        offset += chunk.len();
        // About 16 MB/s: more than the socket buffers can hold stays on the
        // server's side, in its streaming code, when the kill comes.
        tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / 16e6)).await;
    }
    Some(offset == data.len())
}

/// Twelve kills at pseudo-random points (fixed seed, printed) while four
/// downloads of 16-24 MiB entries, read slowly, and an upload run; every
/// download that completes is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_during_downloads() {
    let seed = 20261127u64;
    eprintln!("download crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut known = Known::default();
    let mut large = Vec::new();
    {
        let s = TestServer::start_with(restart_options(&db, false)).await;
        let c = s.admin_client().await;
        for i in 0..3u64 {
            let data = random_bytes(rng.gen_range(16..24) * 1024 * 1024, seed ^ (i << 40));
            let id = s
                .upload(
                    &c,
                    "large.bin",
                    &data,
                    "application/octet-stream",
                    None,
                    None,
                )
                .await;
            known.entries.insert(id.clone(), Arc::new(data));
            large.push(id);
        }
    }
    let mut inflight: Option<Arc<Vec<u8>>> = None;
    let mut complete_downloads = 0;
    for round in 0..12usize {
        let mut s = TestServer::start_with(restart_options(&db, false)).await;
        check_after_restart(&s, round, &mut known, inflight.take(), false).await;

        let c = s.admin_client().await;
        let data = random_bytes(rng.gen_range(16 * 1024..512 * 1024), seed ^ round as u64);
        let id = s
            .upload(
                &c,
                "small.bin",
                &data,
                "application/octet-stream",
                None,
                None,
            )
            .await;
        known.entries.insert(id, Arc::new(data));

        let mut downloads = Vec::new();
        let receiving = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let id = large[rng.gen_range(0..large.len())].clone();
            *known.requested.entry(id.clone()).or_default() += 1;
            let data = known.entries[&id].clone();
            downloads.push(tokio::spawn(download_and_compare(
                s.base.clone(),
                id,
                data,
                receiving.clone(),
            )));
        }
        let cookie = s.session_cookie().await;
        let upload = Arc::new(random_bytes(
            rng.gen_range(1..6) * 1024 * 1024,
            seed ^ ((round as u64) << 20),
        ));
        inflight = Some(upload.clone());
        let sender = send_in_background(&s, &cookie, upload.to_vec());
        // The kill lands while the downloads stream (they read slowly).
        assert!(
            eventually(Duration::from_secs(20), || receiving.load(Ordering::SeqCst)
                == 4)
            .await,
            "round {round}: the downloads did not start"
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        s.kill();
        sender.abort();
        for d in downloads {
            match tokio::time::timeout(Duration::from_secs(30), d).await {
                Ok(Ok(Some(intact))) => {
                    assert!(
                        intact,
                        "round {round}: a completed download differs from the upload"
                    );
                    complete_downloads += 1;
                }
                Ok(Ok(None)) => {}
                other => panic!("round {round}: download task ended with {other:?}"),
            }
        }
        drop(s);
    }
    let s = TestServer::start_with(restart_options(&db, true)).await;
    check_after_restart(&s, 12, &mut known, inflight.take(), true).await;
    eprintln!("{complete_downloads} of 48 downloads completed before their kill");
    assert!(
        complete_downloads < 48,
        "no kill landed during a download: the test did not test anything"
    );
}
