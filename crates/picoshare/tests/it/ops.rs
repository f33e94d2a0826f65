//! Operations: `GET /healthz`, the request and database series of `/metrics`,
//! and JSON log lines.

use std::time::Duration;

use crate::helpers::*;

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("series {series} missing in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

async fn scrape(s: &TestServer) -> String {
    let resp = plain_client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// `/healthz` answers `ok` without a session, sets no cookie, and is not cached.
#[tokio::test]
async fn healthz_is_ok_without_a_session() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(header_str(resp.headers(), "content-type").starts_with("text/plain"));
        assert_eq!(header_str(resp.headers(), "cache-control"), "no-store");
        assert!(resp.headers().get("set-cookie").is_none());
        assert_eq!(resp.text().await.unwrap(), "ok\n");
    }
    let resp = plain_client().head(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// When the database file is replaced by something that is not a database,
/// and when it is deleted, `/healthz` says 503 with the reason, although the
/// server's own open connections could still read the old file.
#[tokio::test]
async fn healthz_is_503_when_the_database_is_unusable() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    s.upload(&c, "a.txt", b"hello", "text/plain", None, None)
        .await;
    let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Replaced (atomically, as a careless restore or another program would).
    let garbage = s.tmp_dir.join("garbage");
    std::fs::write(&garbage, vec![0x5a_u8; 64 * 1024]).unwrap();
    std::fs::rename(&garbage, &s.db_path).unwrap();
    let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("database unavailable: ") && text.contains("was replaced"),
        "{text}"
    );

    // Deleted.
    std::fs::remove_file(&s.db_path).unwrap();
    let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("database unavailable: ") && text.contains("unable to open"),
        "{text}"
    );
}

/// Requests by method and status class, body bytes in and out, and the
/// database gauges are exported and move with uploads and downloads.
#[tokio::test]
async fn metrics_count_requests_bytes_and_database_size() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_METRICS_PUBLIC", "1")).await;
    let before = scrape(&s).await;
    for series in [
        "picoshare_uploads_in_progress",
        "picoshare_database_bytes",
        "picoshare_database_reclaimable_bytes",
        "picoshare_http_request_bytes_total",
        "picoshare_http_response_bytes_total",
    ] {
        value(&before, series);
    }
    let get_2xx = r#"picoshare_http_requests_total{method="GET",class="2xx"}"#;
    let get_4xx = r#"picoshare_http_requests_total{method="GET",class="4xx"}"#;
    let post_2xx = r#"picoshare_http_requests_total{method="POST",class="2xx"}"#;
    let delete_2xx = r#"picoshare_http_requests_total{method="DELETE",class="2xx"}"#;
    assert!(before.contains("# TYPE picoshare_http_requests_total counter"));
    assert!(before.contains("# TYPE picoshare_database_bytes gauge"));
    assert_eq!(value(&before, post_2xx), 0.0);

    let c = s.admin_client().await; // POST /api/auth
    let data = random_bytes(mib(1) + 123, 7);
    let id = s
        .upload(&c, "m.bin", &data, "application/octet-stream", None, None)
        .await;
    assert_eq!(s.download(&id).await, data);
    let resp = plain_client()
        .get(s.url(&format!("/-{UNKNOWN_ID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let after = scrape(&s).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved(post_2xx), 2.0, "login and upload");
    assert_eq!(moved(delete_2xx), 1.0);
    // The download, and the first scrape (counted once its reply is sent).
    assert!(moved(get_2xx) >= 2.0, "{}", moved(get_2xx));
    assert_eq!(moved(get_4xx), 1.0);
    assert!(moved("picoshare_http_request_bytes_total") >= data.len() as f64);
    assert!(moved("picoshare_http_response_bytes_total") >= data.len() as f64);
    assert!(value(&after, "picoshare_database_bytes") >= data.len() as f64);
    assert_eq!(value(&after, "picoshare_uploads_in_progress"), 0.0);
}

/// With `--log-format json` (or `PS_LOG_FORMAT=json`) every stderr line is a
/// JSON object with a level and a message; the default stays plain text.
#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let flag = TestServer::start_with(
        ServerOptions::new()
            .env("RUST_LOG", "picoshare=info,tower_http=info")
            .arg("--log-format")
            .arg("json"),
    )
    .await;
    let env = TestServer::start_with(
        ServerOptions::new()
            .env("RUST_LOG", "picoshare=info,tower_http=info")
            .env("PS_LOG_FORMAT", "json"),
    )
    .await;
    for s in [&flag, &env] {
        let resp = plain_client().get(s.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            eventually(Duration::from_secs(10), || s
                .stderr_text()
                .contains("/healthz"))
            .await,
            "no request line in:\n{}",
            s.stderr_text()
        );
        let text = s.stderr_text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 2, "{text}");
        for line in lines {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v["level"].is_string(), "{line}");
            assert!(v["message"].is_string(), "{line}");
            assert!(v["timestamp"].is_string(), "{line}");
        }
    }

    let text_server =
        TestServer::start_with(ServerOptions::new().env("RUST_LOG", "picoshare=info")).await;
    assert!(
        eventually(Duration::from_secs(10), || !text_server
            .stderr_text()
            .is_empty())
        .await
    );
    let first = text_server.stderr_text();
    let first = first.lines().next().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_err(),
        "{first}"
    );
}
