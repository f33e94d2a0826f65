//! Hostile input, swept across every route that takes it: malformed multipart
//! bodies and hostile filenames on admin and guest uploads, bad Range headers,
//! bad IDs on every ID-taking route, and oversized or pathological JSON on
//! every JSON route. Each gets a clean 4xx with a message a person can read
//! (or, for what is merely odd, a normal answer), never a 5xx or a crash, and
//! leaves nothing half-stored. The server answers normally afterwards.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, RANGE};
use reqwest::{Client, Response};
use serde_json::json;

use crate::helpers::*;

/// Asserts a refusal: a 4xx, plain text, a non-empty one-line-or-more message
/// ending with a newline. Returns the status and message.
async fn assert_clean_4xx(what: &str, resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status} {body:?}"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "{what}: {body:?}"
    );
    assert!(
        body.trim().len() >= 5 && body.ends_with('\n'),
        "{what}: no readable message: {body:?}"
    );
    (status, body)
}

/// Whether `resp` redirects a path with an empty segment (`/api/entry//x`)
/// to its clean form (`/api/entry/x`), as the original does: 301 for GET and
/// HEAD, 308 otherwise, to a path without `//`.
fn redirected_to_clean_path(resp: &Response) -> bool {
    let location = header_str(resp.headers(), "location");
    matches!(resp.status().as_u16(), 301 | 308)
        && location.starts_with('/')
        && !location.contains("//")
}

/// Asserts the server still stores and serves a file.
async fn assert_still_serving(s: &TestServer, c: &Client) {
    let id = s
        .upload(c, "after.txt", b"still here", "text/plain", None, None)
        .await;
    assert_eq!(s.download(&id).await, b"still here");
}

async fn create_link(s: &TestServer, c: &Client) -> String {
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(&json!({
            "label": "hostile", "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "168h0m0s",
            "maxFileBytes": null, "maxFileUploads": null
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The two upload routes: (name, path, cookie to send).
async fn upload_routes(s: &TestServer, c: &Client) -> Vec<(&'static str, String, Option<String>)> {
    let link = create_link(s, c).await;
    vec![
        (
            "admin",
            format!("/api/entry?expiration={FAR_FUTURE}"),
            Some(s.session_cookie().await),
        ),
        ("guest", format!("/api/guest/{link}"), None),
    ]
}

async fn post_raw(
    s: &TestServer,
    path: &str,
    cookie: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Response {
    let mut req = plain_client()
        .post(s.url(path))
        .header(CONTENT_TYPE, content_type)
        .header("Accept", "application/json")
        .body(body);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.unwrap()
}

/// Malformed multipart bodies, on admin and guest uploads: no boundary, an
/// empty one, the wrong one, no parts, a part without Content-Disposition,
/// part headers that never end or are huge (the parser holds those whole, so
/// they are bounded: 1 MiB), a huge preamble, a body cut in the middle,
/// random bytes, nested multiparts. Every one is a clean 4xx
/// and leaves no entry and no chunk behind.
#[tokio::test]
async fn malformed_multipart_bodies_are_refused_cleanly() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let b = "hostileboundary";
    let ct = format!("multipart/form-data; boundary={b}");
    let file_part = |disposition: &str| {
        format!("--{b}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
    };
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        ("no boundary", "multipart/form-data".into(), file_part("form-data; name=\"file\"; filename=\"a.txt\"").into_bytes()),
        ("empty boundary", "multipart/form-data; boundary=".into(), b"--\r\n\r\n".to_vec()),
        ("wrong boundary", ct.clone(), b"--other\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--other--\r\n".to_vec()),
        ("empty body", ct.clone(), Vec::new()),
        ("only the closing delimiter", ct.clone(), format!("--{b}--\r\n").into_bytes()),
        ("no Content-Disposition", ct.clone(), format!("--{b}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{b}--\r\n").into_bytes()),
        ("file part without filename", ct.clone(), format!("{}--{b}--\r\n", file_part("form-data; name=\"file\"")).into_bytes()),
        ("unterminated part headers", ct.clone(), format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nX-More: ").into_bytes()),
        (
            "a 2 MiB part header",
            ct.clone(),
            format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nX-Big: {}\r\n\r\nhello\r\n--{b}--\r\n", "y".repeat(2 << 20)).into_bytes(),
        ),
        (
            "a 2 MiB preamble",
            ct.clone(),
            format!("{}\r\n{}--{b}--\r\n", "p".repeat(2 << 20), file_part("form-data; name=\"file\"; filename=\"a.txt\"")).into_bytes(),
        ),
        (
            "an endless part header",
            ct.clone(),
            format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nX-Big: {}", "y".repeat(8 << 20)).into_bytes(),
        ),
        ("cut in the file", ct.clone(), format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello, this ends without a delimiter").into_bytes()),
        ("random bytes", ct.clone(), random_bytes(50_000, 90)),
        (
            "nested multipart without a file",
            ct.clone(),
            format!("--{b}\r\nContent-Disposition: form-data; name=\"files\"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Disposition: file; filename=\"a.txt\"\r\n\r\nhello\r\n--inner--\r\n--{b}--\r\n").into_bytes(),
        ),
        ("a non-form type", "multipart/mixed".into(), b"whatever".to_vec()),
        ("bad Content-Type syntax", "multipart/form-data; boundary=\"unterminated".into(), file_part("form-data; name=\"file\"; filename=\"a.txt\"").into_bytes()),
    ];
    for (route, path, cookie) in upload_routes(&s, &c).await {
        for (what, content_type, body) in &cases {
            let resp = post_raw(&s, &path, cookie.as_deref(), content_type, body.clone()).await;
            assert_clean_4xx(&format!("{route} upload, {what}"), resp).await;
        }
    }
    assert_eq!(s.entry_count(), 0);
    assert!(eventually(Duration::from_secs(5), || s.orphan_chunks() == 0).await);
    assert_still_serving(&s, &c).await;
}

/// Hostile filenames on admin and guest uploads: control characters, escape
/// sequences, 10 KB names, path separators and traversal, quotes, HTML,
/// bidirectional overrides, zero-width and look-alike characters, invalid
/// UTF-8. Each is either refused with a clean 4xx or stored as a name that
/// round-trips through the API, downloads with one well-formed
/// Content-Disposition, and appears escaped in the HTML file list.
#[tokio::test]
async fn hostile_filenames_are_refused_or_stored_harmlessly() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let long = "n".repeat(10 * 1024);
    let names: Vec<(&str, Vec<u8>)> = vec![
        ("control character", b"a\x01b.txt".to_vec()),
        ("DEL", b"a\x7fb.txt".to_vec()),
        ("terminal escape", b"\x1b[31mred\x1b[0m.txt".to_vec()),
        ("NUL", b"a\x00b.txt".to_vec()),
        ("newline", b"a\nb.txt".to_vec()),
        (
            "carriage return",
            b"a\rContent-Type: text/html\r.txt".to_vec(),
        ),
        ("tab", b"a\tb.txt".to_vec()),
        ("10 KB", long.as_bytes().to_vec()),
        ("traversal", b"../../../etc/passwd".to_vec()),
        ("absolute path", b"/etc/shadow".to_vec()),
        ("backslash traversal", b"..\\..\\windows\\win.ini".to_vec()),
        ("Windows path", b"C:\\Users\\me\\file.txt".to_vec()),
        ("only dots", b"..".to_vec()),
        ("only a slash", b"/".to_vec()),
        ("quotes", b"it's \\\"quoted\\\".txt".to_vec()),
        ("HTML", b"<img src=x onerror=alert(1)>&amp;.html".to_vec()),
        (
            "right-to-left override",
            "invoice\u{202e}fdp.exe".as_bytes().to_vec(),
        ),
        ("zero-width", "a\u{200b}\u{feff}b.txt".as_bytes().to_vec()),
        ("look-alike", "\u{0430}pple.txt".as_bytes().to_vec()),
        (
            "combining marks",
            "e\u{301}\u{301}\u{301}.txt".as_bytes().to_vec(),
        ),
        ("emoji", "\u{1f4a9}.txt".as_bytes().to_vec()),
        ("invalid UTF-8", b"bad\xff\xfe.txt".to_vec()),
        ("percent-encoding", b"%2e%2e%2fetc%2fpasswd".to_vec()),
    ];
    let mut stored = Vec::new();
    for (route, path, cookie) in upload_routes(&s, &c).await {
        for (what, name) in &names {
            let b = "hostilename";
            let mut body =
                format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"")
                    .into_bytes();
            body.extend_from_slice(name);
            body.extend_from_slice(
                format!("\"\r\nContent-Type: text/plain\r\n\r\nhostile\r\n--{b}--\r\n").as_bytes(),
            );
            let resp = post_raw(
                &s,
                &path,
                cookie.as_deref(),
                &format!("multipart/form-data; boundary={b}"),
                body,
            )
            .await;
            let what = format!("{route} upload, {what} name");
            if resp.status().as_u16() == 200 {
                stored.push((what, upload_id(resp).await));
            } else {
                assert_clean_4xx(&what, resp).await;
            }
        }
    }
    assert!(!stored.is_empty());
    let listed: Vec<serde_json::Value> = c
        .get(s.url("/api/entries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files_page = c
        .get(s.url("/files"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !files_page.contains("<img src=x"),
        "a filename was put into the page unescaped"
    );
    for (what, id) in &stored {
        let name = s.entry(id).unwrap().filename;
        assert!(
            !name.is_empty() && !name.contains(['/', '\\', '\n', '\r']),
            "{what}: stored {name:?}"
        );
        let api_name = listed
            .iter()
            .find(|e| e["id"] == id.as_str())
            .and_then(|e| e["filename"].as_str())
            .unwrap_or_else(|| panic!("{what}: not listed"));
        assert_eq!(api_name, name, "{what}");
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{what}");
        assert_eq!(
            resp.headers().get_all("content-disposition").iter().count(),
            1
        );
        let cd = header_str(resp.headers(), "content-disposition");
        parse_content_disposition(&cd).unwrap_or_else(|e| panic!("{what}: {cd:?}: {e}"));
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hostile", "{what}");
    }
    // Renaming through the API is held to the same rules.
    let (_, id) = &stored[0];
    for name in ["a/b.txt", "a\\b.txt", "a\nb.txt", long.as_str(), "..", ""] {
        let resp = c
            .put(s.url(&format!("/api/entry/{id}")))
            .json(&json!({ "filename": name, "note": null }))
            .send()
            .await
            .unwrap();
        assert_clean_4xx(&format!("rename to {:.20?}", name), resp).await;
    }
    assert_still_serving(&s, &c).await;
}

/// Bad and abusive Range headers get 200, 206 or 416 (never a 5xx), and a 206
/// body always has the length it announces.
#[tokio::test]
async fn bad_range_headers_never_break_a_download() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let data = random_bytes(700_000, 91);
    let id = s
        .upload(&c, "r.bin", &data, "application/octet-stream", None, None)
        .await;
    let many = vec!["0-0"; 5000].join(",");
    let overlapping = vec!["0-699999"; 50].join(",");
    let huge = "9".repeat(100);
    let ranges: Vec<String> = vec![
        format!("bytes={many}"),
        format!("bytes={overlapping}"),
        format!("bytes={huge}-"),
        format!("bytes=-{huge}"),
        format!("bytes=0-{huge}"),
        "bytes=5-2".into(),
        "bytes=--1".into(),
        "bytes=1-2-3".into(),
        "bytes=-0".into(),
        "bytes=700000-".into(),
        "bytes= 1 - 2 ".into(),
        "bytes=,,,".into(),
        "bytes=".into(),
        "bytes".into(),
        "items=0-1".into(),
        "bytes=0-1;q=1".into(),
        "bytes=\u{ff10}-1".into(),
        format!("bytes=0-1,{}", "x".repeat(8000)),
    ];
    for range in &ranges {
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .header(RANGE, range.as_bytes())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let shown: String = range.chars().take(40).collect();
        assert!(
            [200, 206, 416].contains(&status),
            "Range {shown:?}: status {status}"
        );
        let length: Option<usize> = header_str(resp.headers(), "content-length").parse().ok();
        let body = resp.bytes().await.unwrap();
        if let Some(length) = length {
            assert_eq!(body.len(), length, "Range {shown:?}");
        }
        if status == 200 {
            assert!(
                body == data,
                "Range {shown:?}: a full reply must be the file"
            );
        }
    }
    // Two Range headers at once.
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .header(RANGE, "bytes=0-1")
        .header("Range", "bytes=5-6")
        .send()
        .await
        .unwrap();
    assert!([200, 206, 416].contains(&resp.status().as_u16()));
    assert_still_serving(&s, &c).await;
}

/// Bad IDs on every route that takes one (entries, downloads, histories, guest
/// links, guest uploads, pages): empty, too long (10 KB), wrong alphabet,
/// encoded traversal and NUL, non-ASCII. Each is a 4xx (400 or 404, or 405
/// where the route does not exist), never a 5xx; API routes explain it in text.
#[tokio::test]
async fn bad_ids_are_refused_on_every_route() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let long = "a".repeat(10 * 1024);
    let ids = [
        "",
        long.as_str(),
        "aaaaaaaaa",
        "aaaaaaaaaaa",
        "aaaaaaaaa!",
        "aaaaaaaaa%00",
        "..%2F..%2Fetc%2Fpasswd",
        "...",
        "%C3%A4%C3%A4%C3%A4%C3%A4%C3%A4",
        "%FF%FE%FD",
        "0O1lI0O1lI",
    ];
    for id in ids {
        let shown: String = id.chars().take(30).collect();
        let mut api: Vec<(&str, reqwest::RequestBuilder)> = vec![
            ("PUT entry", c.put(s.url(&format!("/api/entry/{id}"))).json(&json!({"filename": "x.txt"}))),
            ("DELETE entry", c.delete(s.url(&format!("/api/entry/{id}")))),
            ("entry downloads", c.get(s.url(&format!("/api/entry/{id}/downloads")))),
            ("DELETE guest link", c.delete(s.url(&format!("/api/guest-links/{id}")))),
            ("enable guest link", c.put(s.url(&format!("/api/guest-links/{id}/enable")))),
            ("DELETE API token", c.delete(s.url(&format!("/api/tokens/{id}")))),
            (
                "guest upload",
                plain_client()
                    .post(s.url(&format!("/api/guest/{id}")))
                    .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
                    .body("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nx\r\n--x--\r\n"),
            ),
            ("download", plain_client().get(s.url(&format!("/-{id}")))),
            ("legacy download", plain_client().get(s.url(&format!("/!{id}/name.txt")))),
        ];
        {
            api.extend([
                (
                    "PUT notification",
                    c.put(s.url(&format!("/api/notifications/{id}")))
                        .json(&json!({"name": "a", "url": "http://127.0.0.1:9/"})),
                ),
                (
                    "DELETE notification",
                    c.delete(s.url(&format!("/api/notifications/{id}"))),
                ),
                (
                    "test notification",
                    c.post(s.url(&format!("/api/notifications/{id}/test"))),
                ),
            ]);
        }
        for (what, req) in api {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            if status == 405 || (id.is_empty() && status == 404) {
                // No such route at all (an empty segment): refused by the router.
                continue;
            }
            if id.is_empty() && redirected_to_clean_path(&resp) {
                continue;
            }
            assert_clean_4xx(&format!("{what} with ID {shown:?}"), resp).await;
        }
        for page in [format!("/files/{id}/info"), format!("/g/{id}")] {
            let resp = c.get(s.url(&page)).send().await.unwrap();
            let status = resp.status().as_u16();
            if id.is_empty() && redirected_to_clean_path(&resp) {
                continue;
            }
            assert!((400..500).contains(&status), "page {page:.40}: {status}");
        }
    }
    assert_still_serving(&s, &c).await;
}

/// Every JSON route refuses bodies over 64 KiB with 413 and a message, and
/// pathological JSON (10 000 nested arrays, invalid UTF-8, wrong types, huge
/// numbers, not JSON at all, empty) with a clean 4xx.
#[tokio::test]
async fn oversized_and_pathological_json_is_refused_on_every_route() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "j.txt", b"json", "text/plain", None, None)
        .await;
    let mut routes = vec![
        ("POST", "/api/auth".to_owned()),
        ("PUT", format!("/api/entry/{id}")),
        ("PUT", "/api/settings".to_owned()),
        ("POST", "/api/guest-links".to_owned()),
        ("POST", "/api/tokens".to_owned()),
    ];
    routes.push(("POST", "/api/notifications".to_owned()));
    let oversized = format!(
        "{{\"label\": \"{}\", \"filename\": \"a\", \"sharedSecretKey\": \"b\"}}",
        "z".repeat(70 * 1024)
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("nested arrays", "[".repeat(10_000).into_bytes()),
        ("nested objects", "{\"a\":".repeat(10_000).into_bytes()),
        ("invalid UTF-8", b"{\"filename\": \"\xff\xfe\", \"label\": \"\xff\"}".to_vec()),
        (
            "wrong types",
            br#"{"sharedSecretKey": 5, "filename": [], "defaultExpirationDays": "x", "label": {}, "urlExpirationTime": 1, "maxFileBytes": "big"}"#.to_vec(),
        ),
        (
            "huge numbers",
            {
                let n = format!("1{}", "0".repeat(400));
                format!(
                    "{{\"sharedSecretKey\": {n}, \"filename\": {n}, \"defaultExpirationDays\": {n}, \
                     \"urlExpirationTime\": {n}, \"fileLifetime\": {n}, \"maxFileBytes\": {n}}}"
                )
                .into_bytes()
            },
        ),
        ("not JSON", b"sharedSecretKey=x&filename=y".to_vec()),
        ("null", b"null".to_vec()),
        ("empty", Vec::new()),
    ];
    let cookie = s.session_cookie().await;
    for (method, path) in &routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let send = |body: Vec<u8>| {
            plain_client()
                .request(method.clone(), s.url(path))
                .header(COOKIE, &cookie)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
        };
        let resp = send(oversized.clone().into_bytes()).await.unwrap();
        let (status, body) = assert_clean_4xx(&format!("{method} {path}, 70 KiB"), resp).await;
        assert_eq!(status, 413, "{method} {path}: {body}");
        assert!(body.starts_with("Request body too large"), "{body}");
        for (what, body) in &bodies {
            let resp = send(body.clone()).await.unwrap();
            assert_clean_4xx(&format!("{method} {path}, {what}"), resp).await;
        }
    }
    assert_eq!(count(&s.db(), "SELECT count(*) FROM guest_links", []), 0);
    assert_eq!(s.entry(&id).unwrap().filename, "j.txt");
    assert_still_serving(&s, &c).await;
}

/// Requests the HTTP parser itself refuses (a 1 MiB header, a thousand
/// headers, a bad request line, a bad Content-Length) get a 4xx and close,
/// and the server keeps serving.
#[tokio::test]
async fn broken_http_gets_a_4xx_and_the_server_goes_on() {
    let s = TestServer::start().await;
    let host = s.addr;
    let big = "b".repeat(1024 * 1024);
    let many: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let requests = [
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {host}\r\n{many}Connection: close\r\n\r\n"),
        "GARBAGE\r\n\r\n".to_owned(),
        format!("GET /\x01 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        format!("POST /api/auth HTTP/1.1\r\nHost: {host}\r\nContent-Length: -5\r\nConnection: close\r\n\r\n"),
        format!("POST /api/auth HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello"),
        format!("POST /api/auth HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"),
    ];
    for req in &requests {
        let reply = raw_exchange(s.addr, req.as_bytes()).await;
        let shown: String = req.chars().take(40).collect();
        assert!(
            (400..500).contains(&reply.status),
            "{shown:?}: status {}",
            reply.status
        );
    }
    let c = s.admin_client().await;
    assert_still_serving(&s, &c).await;
}

/// A control character (NUL, ESC, DEL, C1) in a filename is refused on
/// every path a name comes in by: a multipart part's extended `filename*`,
/// a raw `PUT`'s path, resumable uploads' metadata (the owner's and a
/// guest's), and a rename. (Multipart's plain `filename` cannot carry them:
/// the HTTP parser refuses them in headers.) Nothing is stored.
#[tokio::test]
async fn control_characters_are_refused_in_filenames_on_every_path() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let bad_names = [
        "invoice.pdf\0.exe",
        "a\x1b[2Jb.txt",
        "del\x7f.txt",
        "c1\u{85}.txt",
    ];
    let refused = |what: String| {
        move |status: u16, body: String| {
            assert_eq!(status, 400, "{what}: {body}");
            assert!(
                body.contains("illegal characters in filename"),
                "{what}: {body}"
            );
        }
    };
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let link: serde_json::Value = admin
        .post(s.url("/api/guest-links"))
        .json(&serde_json::json!({
            "urlExpirationTime": FAR_FUTURE,
            "fileLifetime": "168h0m0s",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = link["id"].as_str().unwrap().to_owned();
    for name in bad_names {
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        // Multipart, with the name in `filename*`.
        let boundary = "XyZzYboundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"; \
             filename*=UTF-8''{encoded}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
        );
        let r = admin
            .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        refused(format!("multipart {name:?}"))(r.status().as_u16(), r.text().await.unwrap());
        // Raw PUT.
        let r = admin
            .put(s.url(&format!("/api/upload/{encoded}")))
            .body("hello")
            .send()
            .await
            .unwrap();
        refused(format!("PUT {name:?}"))(r.status().as_u16(), r.text().await.unwrap());
        // Resumable, the owner's and a guest's.
        for endpoint in ["/api/tus".to_owned(), format!("/api/guest/{link}/tus")] {
            let r = admin
                .post(s.url(&endpoint))
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", "5")
                .header("Upload-Metadata", format!("filename {}", b64(name)))
                .send()
                .await
                .unwrap();
            refused(format!("{endpoint} {name:?}"))(r.status().as_u16(), r.text().await.unwrap());
        }
    }
    assert_eq!(s.entry_count(), 0);
    // A rename.
    let id = s
        .upload(&admin, "fine.txt", b"hello", "text/plain", None, None)
        .await;
    for name in bad_names {
        let r = admin
            .put(s.url(&format!("/api/entry/{id}")))
            .json(&serde_json::json!({ "filename": name }))
            .send()
            .await
            .unwrap();
        refused(format!("rename {name:?}"))(r.status().as_u16(), r.text().await.unwrap());
    }
}
