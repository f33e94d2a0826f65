//! Drop-in compatibility: a database written by the original Go server
//! (`crates/picoshare/tests/fixtures/picoshare-v15`) opens and serves every file exactly.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// What the server should send as Content-Type for a stored type: as stored,
/// except `application/octet-stream`, which is inferred from the extension.
fn served_type(stored: &str, filename: &str) -> String {
    if stored.is_empty() || stored == "application/octet-stream" {
        if filename.to_ascii_lowercase().ends_with(".mp4") {
            return "video/mp4".to_string();
        }
        return "application/octet-stream".to_string();
    }
    stored.to_string()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Every file in the Go server's database downloads byte-identically with
/// its size, name and type; deleted IDs are 404; metadata, notes, guest
/// links and the download history survive (each download adds a row); and
/// after shutdown the file is still schema version ≥ 15 and passes
/// `integrity_check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_database_is_served_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let mut s = TestServer::start_on_db(&db).await;
    let entries = manifest["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 8);

    // History as written by the Go server, before we add to it.
    let conn = s.db();
    let mut history: Vec<DownloadRow> = Vec::new();
    for e in entries {
        history.extend(download_rows(&conn, e["id"].as_str().unwrap()));
    }
    history.sort();
    let mut expected_history: Vec<DownloadRow> = manifest["download_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| DownloadRow {
            entry_id: d["entry_id"].as_str().unwrap().to_string(),
            download_timestamp: d["download_timestamp"].as_str().unwrap().to_string(),
            client_ip: opt_str(&d["client_ip"]),
            user_agent: opt_str(&d["user_agent"]),
        })
        .collect();
    expected_history.sort();
    assert_eq!(history, expected_history, "download history changed");

    // Stored metadata, notes included.
    for e in entries {
        let id = e["id"].as_str().unwrap();
        let row = entry_row(&conn, id).unwrap_or_else(|| panic!("entry {id} is gone"));
        assert_eq!(
            row.filename,
            e["filename"].as_str().unwrap(),
            "{id} filename"
        );
        assert_eq!(
            row.content_type,
            e["content_type"].as_str().unwrap(),
            "{id} content_type"
        );
        assert_eq!(row.note, opt_str(&e["note"]), "{id} note");
        assert_eq!(
            row.upload_time,
            e["upload_time"].as_str().unwrap(),
            "{id} upload_time"
        );
        assert_eq!(
            row.expiration_time,
            opt_str(&e["expiration_time"]),
            "{id} expiration_time"
        );
        assert_eq!(
            row.guest_link_id,
            opt_str(&e["guest_link_id"]),
            "{id} guest_link_id"
        );
    }
    let mut link_ids: Vec<String> = conn
        .prepare("SELECT id FROM guest_links ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut expected_links: Vec<String> = manifest["guest_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect();
    link_ids.sort();
    expected_links.sort();
    assert_eq!(link_ids, expected_links, "guest links changed");
    drop(conn);

    // Every file, byte for byte.
    for e in entries {
        let id = e["id"].as_str().unwrap();
        let filename = e["filename"].as_str().unwrap();
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "download {id}");
        let headers = resp.headers().clone();
        assert_eq!(
            header_str(&headers, "content-length"),
            e["size"].as_u64().unwrap().to_string(),
            "{id} Content-Length"
        );
        assert_eq!(
            header_str(&headers, "content-type"),
            served_type(e["content_type"].as_str().unwrap(), filename),
            "{id} Content-Type"
        );
        assert_disposition_names(&headers, filename);
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len() as u64, e["size"].as_u64().unwrap(), "{id} size");
        assert_eq!(
            sha256_hex(&body),
            e["sha256"].as_str().unwrap(),
            "{id} sha256"
        );
    }

    for id in manifest["deleted_entry_ids"].as_array().unwrap() {
        let resp = plain_client()
            .get(s.url(&format!("/-{}", id.as_str().unwrap())))
            .send()
            .await
            .unwrap();
        assert_error(resp, 404, "entry not found").await;
    }

    // Each of our downloads was added to the old history.
    for e in entries {
        let id = e["id"].as_str().unwrap();
        let want = e["downloads"].as_u64().unwrap() as usize + 1;
        let ok = eventually(Duration::from_secs(5), || s.download_rows(id).len() >= want).await;
        assert!(
            ok,
            "{id}: {} download rows, want {want}",
            s.download_rows(id).len()
        );
    }

    s.stop();
    drop(s);
    let conn = open_db_read_write(&db);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 15, "user_version went down to {version}");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

/// A range request on a multi-chunk file from the Go database returns the
/// same bytes as the corresponding slice of the full download.
#[tokio::test]
async fn go_database_ranges_match_full_download() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let id = "nZHEdiw7cm"; // 1,500,000 bytes in 5 chunks
    let full = s.download(id).await;
    assert_eq!(full.len(), 1_500_000);
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .header("Range", "bytes=327000-983100")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(
        header_str(resp.headers(), "content-range"),
        "bytes 327000-983100/1500000"
    );
    assert!(resp.bytes().await.unwrap().as_ref() == &full[327_000..=983_100]);
}
