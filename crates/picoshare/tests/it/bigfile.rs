//! A large upload streamed in and out, with no temp files on the way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// A 64 MiB random file streamed up round-trips byte for byte (same SHA-256
/// and Content-Length), and no file ever appears in the server's TMPDIR
/// while it is received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_round_trips_without_temp_files() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let size = mib(64);
    let data = Bytes::from(random_bytes(size, 64));
    let expected_sha = sha256_hex(&data);

    // Watch TMPDIR for the whole upload.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let watcher = {
        let (stop, seen, tmp) = (Arc::clone(&stop), Arc::clone(&seen), s.tmp_dir.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(rd) = std::fs::read_dir(&tmp) {
                    for e in rd.flatten() {
                        seen.lock()
                            .unwrap()
                            .push(e.file_name().to_string_lossy().into_owned());
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Stream the file in 256 KiB pieces instead of handing over one buffer.
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..size)
        .step_by(256 * 1024)
        .map(|start| Ok(data.slice(start..(start + 256 * 1024).min(size))))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    let part = reqwest::multipart::Part::stream_with_length(body, size as u64)
        .file_name("big.bin")
        .mime_str("application/octet-stream")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = c
        .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
        .multipart(form)
        .send()
        .await
        .expect("upload request");
    let id = upload_id(resp).await;
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.is_empty(),
        "files appeared in TMPDIR during the upload: {seen:?}"
    );

    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header_str(resp.headers(), "content-length"),
        size.to_string()
    );
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    let mut stream = resp.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("download stream");
        received += piece.len();
        hasher.update(&piece);
    }
    assert_eq!(received, size);
    assert_eq!(
        hex(&hasher.finalize()),
        expected_sha,
        "downloaded bytes differ"
    );
    assert_eq!(s.orphan_chunks(), 0);
}
