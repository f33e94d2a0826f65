//! Many clients at once, and a slow reader that must not hold up writers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Four parallel 8 MiB uploads and four parallel downloads of an existing
/// file all succeed, and every file round-trips byte-identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_and_downloads() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let c = s.admin_client().await;
    let existing = random_bytes(mib(2) + 5, 100);
    let existing_id = s
        .upload(
            &c,
            "existing.bin",
            &existing,
            "application/octet-stream",
            None,
            None,
        )
        .await;
    let existing_sha = sha256_hex(&existing);

    let mut uploads = Vec::new();
    for i in 0..4u64 {
        let (s, c) = (std::sync::Arc::clone(&s), c.clone());
        uploads.push(tokio::spawn(async move {
            let data = random_bytes(mib(8), 200 + i);
            let id = s
                .upload(
                    &c,
                    &format!("parallel-{i}.bin"),
                    &data,
                    "application/octet-stream",
                    None,
                    None,
                )
                .await;
            (id, sha256_hex(&data))
        }));
    }
    let mut downloads = Vec::new();
    for _ in 0..4 {
        let (s, id) = (std::sync::Arc::clone(&s), existing_id.clone());
        downloads.push(tokio::spawn(
            async move { sha256_hex(&s.download(&id).await) },
        ));
    }
    for d in downloads {
        assert_eq!(d.await.expect("download task"), existing_sha);
    }
    let mut ids = Vec::new();
    for u in uploads {
        let (id, sha) = u.await.expect("upload task");
        assert_eq!(
            sha256_hex(&s.download(&id).await),
            sha,
            "upload {id} changed"
        );
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(s.entry_count(), 5);
    assert_eq!(s.orphan_chunks(), 0);
}

/// A downloader that reads 64 KiB of a large file and then stalls does not
/// block an upload: the upload finishes within 20 s while the stalled
/// connection is still open, and the stalled download then completes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_downloader_does_not_block_uploads() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    // Larger than what loopback socket buffers can absorb, so the server is
    // really stuck mid-response while the reader stalls.
    let big = random_bytes(mib(32), 300);
    let big_id = s
        .upload(&c, "big.bin", &big, "application/octet-stream", None, None)
        .await;

    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        format!(
            "GET /-{big_id} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while received.len() < 64 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(30), slow.read(&mut buf))
            .await
            .expect("download did not start")
            .unwrap();
        assert!(n > 0, "server closed the download early");
        received.extend_from_slice(&buf[..n]);
    }
    // Now stall: read nothing while an upload runs.
    let small = random_bytes(mib(4), 301);
    let upload = tokio::time::timeout(
        Duration::from_secs(20),
        s.upload(
            &c,
            "during-stall.bin",
            &small,
            "application/octet-stream",
            None,
            None,
        ),
    )
    .await
    .expect("upload did not finish within 20 s while a download was stalled");
    assert_eq!(sha256_hex(&s.download(&upload).await), sha256_hex(&small));

    // The stalled download resumes and delivers the whole file.
    tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut received))
        .await
        .expect("stalled download did not finish")
        .unwrap();
    let raw = parse_raw_response(&received);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.rest.len(), big.len(), "stalled download lost bytes");
    assert!(raw.rest == big, "stalled download corrupted");
}

/// Small uploads that finish together share commits and their fsyncs
/// (group commit), and each is still answered only once it is stored:
/// 16 clients uploading 12 small files each in a loop need far fewer
/// commits than uploads, and every file reads back whole. Not a timing
/// assertion: on a slower machine more uploads wait together, never fewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_uploads_share_commits() {
    const CLIENTS: u64 = 16;
    const EACH: u64 = 12;
    let s = std::sync::Arc::new(
        TestServer::start_with(ServerOptions::new().sqlite().env("PS_METRICS_PUBLIC", "1")).await,
    );
    let c = s.admin_client().await;
    let commits_before = s.metric("picoshare_store_commits_total").await.unwrap();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (s, c) = (std::sync::Arc::clone(&s), c.clone());
        clients.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            for j in 0..EACH {
                let data = random_bytes(4096 + (j as usize) * 100, i * 1000 + j);
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
                stored.push((id, sha256_hex(&data)));
            }
            stored
        }));
    }
    let mut all = Vec::new();
    for t in clients {
        all.extend(t.await.expect("client task"));
    }
    let commits = s.metric("picoshare_store_commits_total").await.unwrap() - commits_before;
    let uploads = (CLIENTS * EACH) as f64;
    assert!(
        commits <= uploads * 0.75,
        "{commits} commits for {uploads} uploads: concurrent uploads should share commits"
    );
    for (id, sha) in all {
        assert_eq!(
            sha256_hex(&s.download(&id).await),
            sha,
            "upload {id} changed"
        );
    }
}
