//! Crashes during resumable uploads: the server is killed with SIGKILL at
//! pseudo-random moments while a tus PATCH streams in (some with a checksum,
//! whose bytes only count once verified). After every restart the database
//! passes `PRAGMA quick_check`, the offset is at least the last acknowledged
//! one and at most what was sent, the stored bytes are exactly the file's
//! first `offset` bytes, and the upload resumes from there to a byte-identical
//! file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::{Rng, SeedableRng};
use sha1::Digest;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::*;

const V: &str = "1.0.0";

/// Starts a PATCH of `data` at `offset` and keeps sending in the background;
/// `sent` counts the body bytes handed to the socket.
fn patch_in_background(
    s: &TestServer,
    cookie: &str,
    url: &str,
    offset: u64,
    data: Vec<u8>,
    checksum: bool,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let digest = checksum.then(|| {
        let d = sha1::Sha1::digest(&data);
        format!(
            "Upload-Checksum: sha1 {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(d)
        )
    });
    let head = format!(
        "PATCH {url} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nTus-Resumable: {V}\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n{}\
         Content-Length: {}\r\n\r\n",
        s.addr,
        digest.unwrap_or_default(),
        data.len()
    );
    let addr = s.addr;
    tokio::spawn(async move {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return;
        };
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for piece in data.chunks(64 * 1024) {
            // Counted before the write: the server may read it before
            // `write_all` returns.
            sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
            if stream.write_all(piece).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
}

/// PATCHes, retrying while the upload is locked (423) by a killed server's
/// session on the scale-out store (its lease runs out after 2 s here).
async fn patch_when_free(
    s: &TestServer,
    c: &reqwest::Client,
    url: &str,
    offset: u64,
    body: Vec<u8>,
) -> reqwest::Response {
    for _ in 0..40 {
        let resp = c
            .patch(s.url(url))
            .header("Tus-Resumable", V)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() != 423 {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the upload stayed locked for 10 s");
}

struct Upload {
    url: String,
    data: Vec<u8>,
    /// Highest offset the server acknowledged with a reply.
    acked: u64,
    /// Highest offset ever sent.
    sent_max: u64,
}

async fn new_upload(s: &TestServer, c: &reqwest::Client, size: usize, seed: u64) -> Upload {
    let data = random_bytes(size, seed);
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(format!("crash-{seed}.bin"))
    );
    let resp = c
        .post(s.url("/api/tus"))
        .header("Tus-Resumable", V)
        .header("Upload-Length", data.len().to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    Upload {
        url: header_str(resp.headers(), "location"),
        data,
        acked: 0,
        sent_max: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_during_resumable_uploads() {
    let seed = 20261127u64;
    eprintln!("tus crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut current: Option<Upload> = None;
    let mut completed: Vec<(String, String)> = Vec::new();
    let rounds = 12u64;
    // On the scale-out store the killed server's session keeps its lease on
    // the upload until it runs out (423 meanwhile): a short one here.
    let remote = remote_storage().is_some();
    for round in 0..=rounds {
        let mut s =
            TestServer::start_with(ServerOptions::new().db(&db).env("PS_TUS_LEASE_SECS", "2"))
                .await;
        if !remote {
            let quick: String = s
                .db()
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(quick, "ok", "round {round}");
        }
        let c = s.admin_client().await;
        if let Some(u) = current.as_mut() {
            let resp = c
                .head(s.url(&u.url))
                .header("Tus-Resumable", V)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "round {round}: HEAD");
            let offset: u64 = header_str(resp.headers(), "upload-offset").parse().unwrap();
            let entry = header_str(resp.headers(), "picoshare-entry-id");
            assert!(
                offset >= u.acked && offset <= u.sent_max.max(u.acked),
                "round {round}: offset {offset} outside [{}, {}]",
                u.acked,
                u.sent_max
            );
            if entry.is_empty() && remote {
                // Parts of an unfinished multipart upload cannot be read
                // back; the bytes are compared once the upload completes.
                u.acked = offset;
            } else if entry.is_empty() {
                let id = u.url.rsplit('/').next().unwrap();
                let stored = s.tus_stored_bytes(id);
                assert_eq!(stored.len() as u64, offset, "round {round}: stored length");
                assert!(
                    stored == u.data[..offset as usize],
                    "round {round}: stored bytes differ from the file's first {offset}"
                );
                u.acked = offset;
            } else {
                // The last bytes arrived before the kill: it must be whole.
                assert_eq!(offset, u.data.len() as u64);
                assert_eq!(s.download(&entry).await, u.data, "round {round}");
                completed.push((entry, sha256_hex(&u.data)));
                current = None;
            }
        }
        if round == rounds {
            // The last round finishes the upload cleanly.
            if let Some(u) = current.take() {
                let resp =
                    patch_when_free(&s, &c, &u.url, u.acked, u.data[u.acked as usize..].to_vec())
                        .await;
                assert_eq!(resp.status().as_u16(), 204);
                let entry = header_str(resp.headers(), "picoshare-entry-id");
                completed.push((entry, sha256_hex(&u.data)));
            }
            for (id, sum) in &completed {
                assert_eq!(&sha256_hex(&s.download(id).await), sum, "{id} intact");
            }
            if !remote {
                let integrity: String = s
                    .db()
                    .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(integrity, "ok");
            }
            let stray = count(
                &s.db(),
                "SELECT count(*) FROM entries_data WHERE id NOT IN (SELECT id FROM entries)",
                [],
            );
            assert_eq!(stray, 0, "chunks left without an entry");
            assert!(
                completed.len() >= 2,
                "only {} uploads completed",
                completed.len()
            );
            break;
        }
        if current.is_none() {
            let size = rng.gen_range(4..20) * 1024 * 1024 + rng.gen_range(0..300_000);
            current = Some(new_upload(&s, &c, size, seed ^ round).await);
        }
        let u = current.as_mut().unwrap();
        // An acknowledged step first, ending anywhere in a chunk.
        let step = rng
            .gen_range(1..1_500_000)
            .min(u.data.len() - u.acked as usize - 1);
        let end = u.acked as usize + step;
        let resp = patch_when_free(
            &s,
            &c,
            &u.url,
            u.acked,
            u.data[u.acked as usize..end].to_vec(),
        )
        .await;
        assert_eq!(resp.status().as_u16(), 204, "round {round}: step");
        u.acked = end as u64;
        u.sent_max = u.sent_max.max(u.acked);
        // Then the rest, cut short by the kill.
        let sent = Arc::new(AtomicU64::new(0));
        let cookie = s.session_cookie().await;
        let checksum = rng.gen_bool(0.25);
        let sender = patch_in_background(
            &s,
            &cookie,
            &u.url,
            u.acked,
            u.data[end..].to_vec(),
            checksum,
            sent.clone(),
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..500))).await;
        s.kill();
        sender.abort();
        u.sent_max = u.sent_max.max(u.acked + sent.load(Ordering::SeqCst));
        if checksum {
            // Nothing of a checksummed request counts unless it all arrived.
            u.sent_max = if u.sent_max == u.data.len() as u64 {
                u.sent_max
            } else {
                u.acked
            };
        }
        drop(s);
    }
}
