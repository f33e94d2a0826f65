//! `GET /api/entry/{id}/downloads` (download history with browser and
//! platform) and `GET /api/entries` (the file list with sizes and download
//! counts).

use std::time::Duration;

use reqwest::Client;
use serde_json::{json, Value};

use crate::helpers::*;

const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// GETs a JSON route with a logged-in client; asserts 200 and JSON.
async fn get_json(s: &TestServer, c: &Client, path: &str) -> Value {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    assert_eq!(content_type, "application/json", "GET {path}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Downloads `id` as a client at `ip` with `ua`, then waits until the server
/// has recorded it (recording is asynchronous), so rows land in this order.
async fn download_as(s: &TestServer, id: &str, ip: &str, ua: &str) {
    let before = s.download_rows(id).len();
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .header("User-Agent", ua)
        // What a client wrote, then the address the proxy appended.
        .header("X-Forwarded-For", format!("10.0.0.1, {ip}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.bytes().await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || s.download_rows(id).len()
            > before)
        .await,
        "the download of {id} was not recorded"
    );
}

fn time_of(row: &Value) -> chrono::DateTime<chrono::Utc> {
    assert_stored_time(row["time"].as_str().expect("time is a string"))
}

/// Three downloads from two addresses: all three rows, newest first, with the
/// browser and platform read from each User-Agent; `unique=true` keeps the
/// most recent row of each address.
#[tokio::test]
async fn history_lists_downloads_newest_first() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "shared.txt", b"hello", "text/plain", None, None)
        .await;
    assert_eq!(
        get_json(&s, &c, &format!("/api/entry/{id}/downloads")).await,
        json!([])
    );

    download_as(&s, &id, "203.0.113.7", CHROME_WINDOWS).await;
    download_as(&s, &id, "198.51.100.2", FIREFOX_LINUX).await;
    download_as(&s, &id, "203.0.113.7", SAFARI_IPHONE).await;

    let rows = get_json(&s, &c, &format!("/api/entry/{id}/downloads")).await;
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let expected = [
        ("203.0.113.7", SAFARI_IPHONE, "Safari", "iOS"),
        ("198.51.100.2", FIREFOX_LINUX, "Firefox", "Linux"),
        ("203.0.113.7", CHROME_WINDOWS, "Chrome", "Windows"),
    ];
    for (row, (ip, ua, browser, platform)) in rows.iter().zip(expected) {
        assert_eq!(row["clientIp"], ip, "{row}");
        assert_eq!(row["userAgent"], ua, "{row}");
        assert_eq!(row["browser"], browser, "{row}");
        assert_eq!(row["platform"], platform, "{row}");
        let age = chrono::Utc::now() - time_of(row);
        assert!(age < chrono::Duration::minutes(5), "{row}");
    }
    assert!(time_of(&rows[0]) >= time_of(&rows[1]));
    assert!(time_of(&rows[1]) >= time_of(&rows[2]));

    let unique = get_json(&s, &c, &format!("/api/entry/{id}/downloads?unique=true")).await;
    assert_eq!(unique, json!([rows[0], rows[1]]));
    // Any other value lists everything.
    let all = get_json(&s, &c, &format!("/api/entry/{id}/downloads?unique=false")).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
}

/// The history the Go server recorded is listed with parsed User-Agents.
#[tokio::test]
async fn go_database_history_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let id = "UBeh8TYUGk";

    let mut expected: Vec<&Value> = manifest["download_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["entry_id"] == id)
        .collect();
    expected.sort_by(|a, b| {
        b["download_timestamp"]
            .as_str()
            .cmp(&a["download_timestamp"].as_str())
    });
    assert_eq!(expected.len(), 3);

    let rows = get_json(&s, &c, &format!("/api/entry/{id}/downloads")).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, want) in rows.iter().zip(&expected) {
        let ua = want["user_agent"].as_str().unwrap();
        let (browser, platform) = if ua.contains("Firefox/") {
            ("Firefox", "Linux")
        } else {
            ("Chrome", "Windows")
        };
        assert_eq!(
            row,
            &json!({
                "time": want["download_timestamp"],
                "clientIp": want["client_ip"],
                "userAgent": ua,
                "browser": browser,
                "platform": platform,
            })
        );
    }
    let browsers: Vec<&str> = rows
        .iter()
        .map(|r| r["browser"].as_str().unwrap())
        .collect();
    assert_eq!(browsers, ["Chrome", "Firefox", "Chrome"]);

    // All three came from 127.0.0.1: one row, the newest.
    let unique = get_json(&s, &c, &format!("/api/entry/{id}/downloads?unique=true")).await;
    assert_eq!(unique, json!([rows[0]]));

    // An entry nobody downloaded has an empty history.
    assert_eq!(
        get_json(&s, &c, "/api/entry/z9bcASFHGn/downloads").await,
        json!([])
    );
}

/// A malformed ID is 400 `bad entry ID: …`; an unknown or deleted one is 404
/// `entry not found`.
#[tokio::test]
async fn history_of_missing_entries() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .get(s.url(&format!("/api/entry/{UNKNOWN_ID}/downloads")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "entry not found").await;

    let resp = c
        .get(s.url("/api/entry/short/downloads"))
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        400,
        "bad entry ID: entry ID (short) has invalid length: got 5, want 10",
    )
    .await;
    let resp = c
        .get(s.url("/api/entry/aaaaaaaaa0/downloads"))
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "bad entry ID: ").await;

    let id = s
        .upload(&c, "gone.txt", b"x", "text/plain", None, None)
        .await;
    s.download(&id).await;
    assert!(eventually(Duration::from_secs(5), || s.download_rows(&id).len() == 1).await);
    let resp = c
        .delete(s.url(&format!("/api/entry/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = c
        .get(s.url(&format!("/api/entry/{id}/downloads")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "entry not found").await;
}

/// The file list of the Go server's database: all eight entries, newest
/// first, with the manifest's metadata, sizes and download counts.
#[tokio::test]
async fn go_database_entries_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;

    let mut expected: Vec<Value> = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let expiration = match e["expiration_time"].as_str() {
                Some(NEVER_EXPIRES) | None => Value::Null,
                Some(t) => json!(t),
            };
            json!({
                "id": e["id"],
                "filename": e["filename"],
                "contentType": e["content_type"],
                "size": e["size"],
                "uploadTime": e["upload_time"],
                "expiration": expiration,
                "note": e["note"],
                "guestLinkId": e["guest_link_id"],
                "downloads": e["downloads"],
                "maxDownloads": null,
                "downloadsUsed": 0,
                "passwordProtected": false,
            })
        })
        .collect();
    expected.sort_by(|a, b| b["uploadTime"].as_str().cmp(&a["uploadTime"].as_str()));
    assert_eq!(expected.len(), 8);

    let got = get_json(&s, &c, "/api/entries").await;
    assert_eq!(got, Value::Array(expected));
}

/// With thousands of history rows, the list still counts exactly; the
/// history of the busiest entry lists every row, newest first. The rows are
/// written straight into the store (SQLite file or PostgreSQL) while no
/// server runs.
#[tokio::test]
async fn entries_count_many_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let sizes = [10usize, 700_000, 5];
    let mut ids = Vec::new();
    {
        let mut s = TestServer::start_on_db(&db).await;
        let c = s.admin_client().await;
        for (i, size) in sizes.iter().enumerate() {
            let data = random_bytes(*size, i as u64);
            ids.push(
                s.upload(
                    &c,
                    &format!("f{i}.bin"),
                    &data,
                    "application/octet-stream",
                    None,
                    None,
                )
                .await,
            );
        }
        s.stop();
    }
    let counts = [3_000usize, 2_000, 0];
    let start = chrono::DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z").unwrap();
    let mut rows = Vec::new();
    for (id, n) in ids.iter().zip(counts) {
        for i in 0..n {
            let t = (start + chrono::Duration::seconds(i as i64))
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let ip = format!("10.0.{}.{}", i / 250, i % 250);
            rows.push(vec![id.clone(), t, ip, "curl/8.5.0".to_string()]);
        }
    }
    store_execute(
        &db,
        "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
         VALUES ($1, $2, $3, $4)",
        &rows,
    );

    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let list = get_json(&s, &c, "/api/entries").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    // Uploaded in this order, so listed in reverse.
    for (row, ((id, size), n)) in list.iter().rev().zip(ids.iter().zip(sizes).zip(counts)) {
        assert_eq!(row["id"], id.as_str());
        assert_eq!(row["size"], size as u64, "{row}");
        assert_eq!(row["downloads"], n as u64, "{row}");
        assert_eq!(row["expiration"], FAR_FUTURE);
        assert_eq!(row["note"], Value::Null);
        assert_eq!(row["guestLinkId"], Value::Null);
    }

    let history = get_json(&s, &c, &format!("/api/entry/{}/downloads", ids[0])).await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 3_000);
    assert_eq!(history[0]["time"], "2026-05-01T00:49:59Z");
    assert_eq!(history[2_999]["time"], "2026-05-01T00:00:00Z");
    assert!(history.windows(2).all(|w| time_of(&w[0]) > time_of(&w[1])));
    assert_eq!(history[0]["browser"], "curl");
    let unique = get_json(
        &s,
        &c,
        &format!("/api/entry/{}/downloads?unique=true", ids[0]),
    )
    .await;
    assert_eq!(unique.as_array().unwrap().len(), 3_000);

    // Deleting an entry takes it out of the list.
    let resp = c
        .delete(s.url(&format!("/api/entry/{}", ids[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let list = get_json(&s, &c, "/api/entries").await;
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[0].as_str()]);
}

/// A fresh server lists no entries.
#[tokio::test]
async fn empty_list() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    assert_eq!(get_json(&s, &c, "/api/entries").await, json!([]));
}

/// Both routes need a session.
#[tokio::test]
async fn history_routes_need_a_session() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s.upload(&c, "x.txt", b"x", "text/plain", None, None).await;
    for path in [
        "/api/entries".to_string(),
        format!("/api/entry/{id}/downloads"),
        format!("/api/entry/{id}/downloads?unique=true"),
        format!("/api/entry/{UNKNOWN_ID}/downloads"),
    ] {
        let resp = plain_client().get(s.url(&path)).send().await.unwrap();
        assert_error(resp, 401, "Authentication required").await;
    }
}
