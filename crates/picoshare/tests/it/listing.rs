//! The long lists in pages: `GET /api/entries` and a download history with
//! `limit`/`offset` (the number in all in `X-Total-Count`), sorted and
//! filtered; the `/files` page 100 files at a time with its links; and
//! gzip of pages and JSON, never of downloads, ranges or a share's ZIP.

use std::io::Read;

use reqwest::Client;
use serde_json::{json, Value};

use crate::helpers::*;

fn assert_contains(body: &str, needle: &str, what: &str) {
    assert!(
        body.contains(needle),
        "{what}: {needle:?} not found in:\n{body}"
    );
}

/// GETs `path` and returns the JSON and `X-Total-Count`.
async fn list(s: &TestServer, c: &Client, path: &str) -> (Vec<Value>, u64) {
    let resp = c.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let total = header_str(resp.headers(), "x-total-count");
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    (rows, total.parse().expect("X-Total-Count"))
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Windows of the list are the whole list cut in pieces, in every order,
/// filtered or not; the count is that of the matching files.
#[tokio::test]
async fn the_file_list_comes_in_windows_sorted_and_filtered() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    // 12 files: sizes and names out of upload order, two expirations.
    let mut uploaded = Vec::new();
    for i in 0..12u64 {
        let name = format!("{}-{i:02}.txt", if i % 3 == 0 { "Cat" } else { "dog" });
        let size = ((i * 7) % 12 + 1) as usize * 100;
        let expiration = (i % 2 == 0).then_some(NEVER_EXPIRES);
        let id = s
            .upload(
                &c,
                &name,
                &random_bytes(size, i),
                "text/plain",
                None,
                expiration,
            )
            .await;
        uploaded.push((id, name, size));
    }
    let (all, total) = list(&s, &c, "/api/entries").await;
    assert_eq!((all.len(), total), (12, 12));
    // Without parameters: the whole list, newest first, as before.
    let newest_first: Vec<String> = uploaded.iter().rev().map(|u| u.0.clone()).collect();
    assert_eq!(ids(&all), newest_first);

    // Windows of 5 cover the list exactly once.
    let mut paged = Vec::new();
    for offset in [0, 5, 10, 15] {
        let (rows, total) = list(&s, &c, &format!("/api/entries?limit=5&offset={offset}")).await;
        assert_eq!(total, 12);
        paged.extend(ids(&rows));
    }
    assert_eq!(paged, newest_first);

    // Sorted by size (ascending by default), largest first, by name
    // ignoring case, and oldest first.
    let (rows, _) = list(&s, &c, "/api/entries?sort=size").await;
    let sizes: Vec<u64> = rows.iter().map(|r| r["size"].as_u64().unwrap()).collect();
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    assert_eq!(sizes, sorted);
    let (rows, _) = list(&s, &c, "/api/entries?sort=size&order=desc&limit=3").await;
    assert_eq!(rows[0]["size"], 1200);
    let (rows, _) = list(&s, &c, "/api/entries?sort=filename").await;
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["filename"].as_str().unwrap())
        .collect();
    let mut by_name = names.clone();
    by_name.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(names, by_name);
    assert_eq!(names[0], "Cat-00.txt");
    let (rows, _) = list(&s, &c, "/api/entries?order=asc&limit=2").await;
    assert_eq!(ids(&rows), [uploaded[0].0.clone(), uploaded[1].0.clone()]);
    // Files that never expire come last in expiration order.
    let (rows, _) = list(&s, &c, "/api/entries?sort=expires").await;
    let never = rows.iter().position(|r| r["expiration"].is_null()).unwrap();
    assert_eq!(never, 6);
    assert!(rows[..6].iter().all(|r| r["expiration"] == FAR_FUTURE));
    assert!(rows[6..].iter().all(|r| r["expiration"].is_null()));

    // The filter ignores case; the count is that of the matches.
    let (rows, total) = list(&s, &c, "/api/entries?q=cAT&limit=2").await;
    assert_eq!((rows.len(), total), (2, 4));
    assert!(rows
        .iter()
        .all(|r| r["filename"].as_str().unwrap().starts_with("Cat")));
    // `%` and `_` are plain characters.
    let (rows, total) = list(&s, &c, "/api/entries?q=%25").await;
    assert_eq!((rows.len(), total), (0, 0));
    let (_, total) = list(&s, &c, "/api/entries?q=_").await;
    assert_eq!(total, 0);
    // A window past the end is empty, with the count.
    let (rows, total) = list(&s, &c, "/api/entries?limit=5&offset=100").await;
    assert_eq!((rows.len(), total), (0, 12));

    // Refusals say what is wrong.
    for (query, message) in [
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=5000", "limit must be a whole number from 1 to 1000"),
        ("offset=-3", "offset must be a whole number"),
        (
            "sort=colour",
            "sort must be uploaded, filename, size or expires",
        ),
        ("order=sideways", "order must be asc or desc"),
    ] {
        let resp = c
            .get(s.url(&format!("/api/entries?{query}")))
            .send()
            .await
            .unwrap();
        assert_error_prefix(resp, 400, message).await;
    }
}

/// The page shows 100 files at a time with links to the others, and sorts
/// and filters through its query (without any script).
#[tokio::test]
async fn the_files_page_shows_a_hundred_files_at_a_time() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    for i in 0..105u64 {
        s.upload(&c, &format!("n{i:03}.txt"), b"x", "text/plain", None, None)
            .await;
    }
    let get = |path: &'static str| {
        let (c, s) = (c.clone(), &s);
        async move {
            let resp = c.get(s.url(path)).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            resp.text().await.unwrap()
        }
    };
    let rows = |body: &str| body.matches("<tr data-filename=").count();
    let first = get("/files").await;
    assert_eq!(rows(&first), 100);
    assert_contains(&first, "Showing 1–100 of 105 files", "summary");
    assert_contains(&first, "Page 1 of 2", "position");
    assert_contains(
        &first,
        "rel=\"next\" href=\"/files?sort=uploaded&amp;order=desc&amp;page=2\"",
        "next link",
    );
    // Newest first: the last upload leads.
    assert!(first.find("n104.txt").unwrap() < first.find("n010.txt").unwrap());
    let second = get("/files?sort=uploaded&order=desc&page=2").await;
    assert_eq!(rows(&second), 5);
    assert_contains(&second, "Showing 101–105 of 105 files", "summary");
    assert_contains(&second, "n000.txt", "oldest on the last page");
    assert_contains(&second, "rel=\"prev\"", "previous link");
    // The heading of the current order links to the other direction.
    assert_contains(
        &first,
        "aria-sort=\"descending\"><a class=\"sort\" href=\"/files?sort=uploaded&amp;order=asc\"",
        "uploaded heading",
    );
    let filtered = get("/files?q=N10&sort=filename&order=desc").await;
    assert_eq!(rows(&filtered), 5);
    assert_contains(
        &filtered,
        "Showing 1–5 of 5 matching files",
        "filtered summary",
    );
    assert!(filtered.find("n104.txt").unwrap() < filtered.find("n100.txt").unwrap());
    assert_contains(&filtered, "value=\"N10\"", "the filter is kept");
    let none = get("/files?q=nothing-like-this").await;
    assert_contains(&none, "No file name contains", "no match");
    let past = get("/files?page=9").await;
    assert_contains(&past, "There is no page 9.", "past the end");
    let resp = c.get(s.url("/files?page=0")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_contains(&resp.text().await.unwrap(), "page must be", "bad page");
}

/// The file list counts without looking up each file's data once the
/// server has seen at start-up that every entry row has some (it never
/// writes one without); an entry row without data, left by another program,
/// is neither listed nor counted, in the page and the API, filtered or not.
#[tokio::test]
async fn an_entry_row_without_data_is_neither_listed_nor_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    for i in 0..3u64 {
        s.upload(&c, &format!("kept-{i}.txt"), b"x", "text/plain", None, None)
            .await;
    }
    let (rows, total) = list(&s, &c, "/api/entries?limit=10").await;
    assert_eq!((rows.len(), total), (3, 3));
    s.stop();
    drop(s);
    open_db_read_write(&db)
        .execute(
            "INSERT INTO entries (id, filename, content_type, upload_time, expiration_time)
             VALUES ('nodata0001', 'kept-hollow.txt', 'text/plain', '2030-01-01T00:00:00Z', NULL)",
            [],
        )
        .unwrap();
    let mut s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    for path in ["/api/entries?limit=10", "/api/entries?limit=10&q=kept"] {
        let (rows, total) = list(&s, &c, path).await;
        assert_eq!((rows.len(), total), (3, 3), "{path}");
        assert!(!ids(&rows).contains(&"nodata0001".to_owned()), "{path}");
    }
    let page = c
        .get(s.url("/files"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_contains(&page, "Showing 1–3 of 3 files", "summary");
    assert!(!page.contains("kept-hollow.txt"), "{page}");
    // The same database without that row counts the fast way, and still 3.
    s.stop();
    drop(s);
    open_db_read_write(&db)
        .execute("DELETE FROM entries WHERE id = 'nodata0001'", [])
        .unwrap();
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let (rows, total) = list(&s, &c, "/api/entries?limit=2").await;
    assert_eq!((rows.len(), total), (2, 3));
}

/// A download history in windows: every row once, newest first; unique
/// addresses counted as addresses; the page 100 rows at a time.
#[tokio::test]
async fn a_download_history_comes_in_windows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let id = {
        let mut s = TestServer::start_on_db(&db).await;
        let c = s.admin_client().await;
        let id = s
            .upload(&c, "h.txt", b"hello", "text/plain", None, None)
            .await;
        s.stop();
        id
    };
    let start = chrono::DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z").unwrap();
    let rows: Vec<Vec<String>> = (0..250)
        .map(|i| {
            let t = (start + chrono::Duration::seconds(i))
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            vec![
                id.clone(),
                t,
                format!("10.0.0.{}", i % 7),
                "curl/8.5.0".to_owned(),
            ]
        })
        .collect();
    store_execute(
        &db,
        "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
         VALUES ($1, $2, $3, $4)",
        &rows,
    );
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let path = format!("/api/entry/{id}/downloads");
    let (all, total) = list(&s, &c, &path).await;
    assert_eq!((all.len(), total), (250, 250));
    let mut paged = Vec::new();
    for offset in (0..250).step_by(100) {
        let (rows, total) = list(&s, &c, &format!("{path}?limit=100&offset={offset}")).await;
        assert_eq!(total, 250);
        paged.extend(rows);
    }
    assert_eq!(paged, all);
    assert_eq!(all[0]["time"], "2026-05-01T00:04:09Z");
    // Seven addresses, each at its latest download.
    let (unique, total) = list(&s, &c, &format!("{path}?unique=true&limit=3")).await;
    assert_eq!((unique.len(), total), (3, 7));
    assert_eq!(unique[0]["time"], "2026-05-01T00:04:09Z");
    assert_eq!(unique[0]["clientIp"], format!("10.0.0.{}", 249 % 7));
    assert_eq!(unique[1]["time"], "2026-05-01T00:04:08Z");

    // The page: 100 rows, numbered from the oldest, and the information
    // page's count.
    let page = |p: String| {
        let (c, s) = (c.clone(), &s);
        async move { c.get(s.url(&p)).send().await.unwrap().text().await.unwrap() }
    };
    let first = page(format!("/files/{id}/downloads")).await;
    assert_eq!(first.matches("<td class=\"num\">").count(), 100);
    assert_contains(&first, "<td class=\"num\">250</td>", "newest is #250");
    assert_contains(&first, "Page 1 of 3", "position");
    let last = page(format!("/files/{id}/downloads?page=3")).await;
    assert_eq!(last.matches("<td class=\"num\">").count(), 50);
    assert_contains(&last, "<td class=\"num\">1</td>", "oldest is #1");
    let info = page(format!("/files/{id}/info")).await;
    assert_contains(&info, "250 (<a href", "download count");
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

/// Pages and JSON are gzipped for clients that accept it; downloads of
/// any type, ranges and a share's ZIP are sent byte for byte.
#[tokio::test]
async fn pages_and_json_are_compressed_and_downloads_never() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let html = b"<!doctype html><title>mine</title>".repeat(200);
    let json_file = json!({"k": "v".repeat(5000)}).to_string().into_bytes();
    let page_id = s
        .upload(&c, "page.html", &html, "text/html", None, None)
        .await;
    let json_id = s
        .upload(&c, "data.json", &json_file, "application/json", None, None)
        .await;
    let gz = |path: String| {
        let (c, s) = (c.clone(), &s);
        async move {
            c.get(s.url(&path))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap()
        }
    };
    for path in ["/files".to_owned(), "/api/entries".to_owned()] {
        let resp = gz(path.clone()).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            header_str(resp.headers(), "content-encoding"),
            "gzip",
            "{path}"
        );
        let body = gunzip(&resp.bytes().await.unwrap());
        assert!(
            String::from_utf8(body).unwrap().contains("page.html"),
            "{path}"
        );
    }
    // Without Accept-Encoding, plain.
    let resp = c.get(s.url("/files")).send().await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());

    for (id, bytes) in [(&page_id, &html), (&json_id, &json_file)] {
        let resp = gz(format!("/-{id}")).await;
        assert!(
            resp.headers().get("content-encoding").is_none(),
            "download {id}"
        );
        assert_eq!(
            header_str(resp.headers(), "content-length"),
            bytes.len().to_string()
        );
        assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[..]);
        let resp = c
            .get(s.url(&format!("/-{id}")))
            .header("accept-encoding", "gzip")
            .header("range", "bytes=10-4009")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 206);
        assert!(resp.headers().get("content-encoding").is_none());
        assert_eq!(&resp.bytes().await.unwrap()[..], &bytes[10..4010]);
    }
    let share: Value = c
        .post(s.url("/api/shares"))
        .json(&json!({"entries": [page_id, json_id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = gz(format!("/s/{}/zip", share["id"].as_str().unwrap())).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("content-encoding").is_none());
    let length: usize = header_str(resp.headers(), "content-length")
        .parse()
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), length);
}
