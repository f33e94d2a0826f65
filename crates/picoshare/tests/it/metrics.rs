//! `GET /metrics`: Prometheus counters of where upload and download time goes.

use crate::helpers::*;

fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Metrics need a session (401 without), and count an upload's bytes, its
/// stored chunks and a download, with non-zero phase timings.
#[tokio::test]
async fn metrics_count_uploads_and_downloads() {
    let s = TestServer::start().await;
    let anonymous = plain_client();
    let resp = anonymous.get(s.url("/metrics")).send().await.unwrap();
    assert_error(resp, 401, "Authentication required").await;

    let c = s.admin_client().await;
    let data = random_bytes(mib(1) + 5, 31);
    let id = s
        .upload(&c, "m.bin", &data, "application/octet-stream", None, None)
        .await;
    assert_eq!(s.download(&id).await.len(), data.len());

    let resp = c.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(header_str(resp.headers(), "content-type").starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert_eq!(value(&text, "picoshare_uploads_total"), 1.0);
    assert_eq!(
        value(&text, "picoshare_upload_bytes_total"),
        data.len() as f64
    );
    assert_eq!(
        value(&text, "picoshare_store_bytes_written_total"),
        data.len() as f64
    );
    // 320 KiB chunk rows in SQLite; one object (smaller than a part) in S3.
    let pieces = if remote_storage().is_some() { 1.0 } else { 4.0 };
    assert_eq!(value(&text, "picoshare_store_chunks_total"), pieces);
    assert_eq!(value(&text, "picoshare_downloads_total"), 1.0);
    assert_eq!(
        value(&text, "picoshare_download_bytes_total"),
        data.len() as f64
    );
    assert!(value(&text, "picoshare_store_insert_seconds_total") > 0.0);
    assert!(value(&text, "picoshare_store_commit_seconds_total") > 0.0);
    assert!(value(&text, "picoshare_store_read_seconds_total") > 0.0);
    assert!(value(&text, "picoshare_process_peak_resident_memory_bytes") > 0.0);
}

/// With `PS_METRICS_PUBLIC` set, `/metrics` needs no session.
#[tokio::test]
async fn metrics_can_be_public() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_METRICS_PUBLIC", "1")).await;
    let resp = plain_client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(value(&text, "picoshare_uploads_total"), 0.0);
}
