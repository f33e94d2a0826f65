//! Guest links: the owner's routes (`/api/guest-links…`) and guest uploads
//! (`POST /api/guest/{id}`), with the original's replies and error texts, and
//! the two limits this server enforces more strictly: the file size while the
//! file streams in (413), and the upload count under concurrency.
//!
//! Time moves through `--clock-file`, never by sleeping.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Response};
use rusqlite::OptionalExtension;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const INACTIVE: &str = "Guest link is no longer active";
const LIFETIME_FORMAT: &str =
    "unrecognized format for file life time, must be in 1ns, 1us (or 1µs), 1ms, 1s, 1m, 1h format";
const EXPIRATION_FORMAT: &str =
    "unrecognized format for expiration time, must be in 2006-01-02T15:04:05Z07:00 format";
const TOO_SOON: &str = "expire time must be at least one hour in the future";
/// A well-formed guest-link ID that no test creates.
const UNKNOWN_LINK: &str = "aaaaaaaaaaaaaaaa";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A server whose "now" is read from a file the test controls.
struct ClockedServer {
    s: TestServer,
    clock: PathBuf,
    _dir: tempfile::TempDir,
}

impl ClockedServer {
    async fn start(now: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = dir.path().join("clock");
        set_clock(&clock, now);
        let s = TestServer::start_with(
            ServerOptions::new()
                .arg("--clock-file")
                .arg(clock.to_str().unwrap()),
        )
        .await;
        Self {
            s,
            clock,
            _dir: dir,
        }
    }

    fn set(&self, now: &str) {
        set_clock(&self.clock, now);
    }
}

/// Writes the clock file atomically, so the server never reads half a time.
fn set_clock(file: &Path, now: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, now).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

async fn post_link(s: &TestServer, c: &Client, body: impl Into<reqwest::Body>) -> Response {
    c.post(s.url("/api/guest-links"))
        .header(CONTENT_TYPE, "text/json")
        .body(body)
        .send()
        .await
        .expect("POST /api/guest-links")
}

/// Creates a link; asserts the original's reply and returns the new ID.
async fn create_link(s: &TestServer, c: &Client, body: Value) -> String {
    let resp = post_link(s, c, body.to_string()).await;
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "creating {body}: {text:?}");
    assert_eq!(content_type, "application/json");
    assert!(text.ends_with('\n'), "JSON reply without newline: {text:?}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 16, "guest link id {id:?}");
    assert!(id.chars().all(|c| ID_ALPHABET.contains(c)), "{id:?}");
    id
}

/// A link with the given limits that works until 2040 and keeps files a week.
fn link_body(max_bytes: Option<u64>, max_uploads: Option<u64>) -> Value {
    json!({
        "label": "test",
        "urlExpirationTime": FAR_FUTURE,
        "fileLifetime": "168h0m0s",
        "maxFileBytes": max_bytes,
        "maxFileUploads": max_uploads,
    })
}

fn file_form(data: &[u8]) -> Multipart {
    Multipart::new().file("file", "guest.bin", Some("application/x-guest"), data)
}

async fn post_guest(
    s: &TestServer,
    link: &str,
    query: &str,
    form: Multipart,
    accept: Option<&str>,
) -> Response {
    let mut req = plain_client()
        .post(s.url(&format!("/api/guest/{link}{query}")))
        .header(CONTENT_TYPE, form.content_type());
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    req.body(form.finish())
        .send()
        .await
        .expect("POST /api/guest")
}

/// Uploads through a link asking for JSON; returns the entry ID.
async fn guest_upload(s: &TestServer, link: &str, data: &[u8]) -> String {
    upload_id(post_guest(s, link, "", file_form(data), Some("application/json")).await).await
}

/// One `guest_links` row as stored.
#[derive(Debug, PartialEq)]
struct LinkRow {
    label: Option<String>,
    max_file_bytes: Option<i64>,
    max_file_uploads: Option<i64>,
    creation_time: String,
    url_expiration_time: Option<String>,
    file_expiration_time: Option<String>,
    is_disabled: i64,
}

fn link_row(s: &TestServer, id: &str) -> Option<LinkRow> {
    s.db()
        .query_row(
            "SELECT label, max_file_bytes, max_file_uploads, creation_time,
                    url_expiration_time, file_expiration_time, is_disabled
             FROM guest_links WHERE id = ?1",
            [id],
            |r| {
                Ok(LinkRow {
                    label: r.get(0)?,
                    max_file_bytes: r.get(1)?,
                    max_file_uploads: r.get(2)?,
                    creation_time: r.get(3)?,
                    url_expiration_time: r.get(4)?,
                    file_expiration_time: r.get(5)?,
                    is_disabled: r.get(6)?,
                })
            },
        )
        .optional()
        .unwrap()
}

fn files_uploaded(s: &TestServer, link: &str) -> i64 {
    count(
        &s.db(),
        "SELECT count(*) FROM entries WHERE guest_link_id = ?1",
        [link],
    )
}

fn link_count(s: &TestServer) -> i64 {
    count(&s.db(), "SELECT count(*) FROM guest_links", [])
}

/// No entry and no chunk rows left by refused uploads.
async fn assert_nothing_stored(s: &TestServer, entries_before: i64) {
    assert_eq!(
        s.entry_count(),
        entries_before,
        "a refused upload was stored"
    );
    let clean = eventually(Duration::from_secs(5), || s.orphan_chunks() == 0).await;
    assert!(clean, "{} orphan chunk rows left", s.orphan_chunks());
}

/// A response read while the request was still being sent.
struct EarlyReply {
    status: u16,
    body: String,
    /// Request bytes the client had handed to the socket when the reply was complete.
    sent_before_reply: u64,
}

/// Sends `head` then `body_len` bytes of `piece`s (after `prefix` and before
/// `suffix`) over a raw connection, while reading the reply at the same time,
/// as a browser does. Body sending starts once `gate` (if any) opens, and stops
/// when the server closes the connection.
async fn raw_upload(
    addr: std::net::SocketAddr,
    head: String,
    prefix: Vec<u8>,
    body_len: u64,
    suffix: Vec<u8>,
    gate: Option<tokio::sync::watch::Receiver<bool>>,
) -> EarlyReply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let sent_w = sent.clone();
    let writer = tokio::spawn(async move {
        let piece = random_bytes(64 * 1024, 99);
        if wr.write_all(head.as_bytes()).await.is_err() || wr.write_all(&prefix).await.is_err() {
            return;
        }
        if let Some(mut gate) = gate {
            if gate.wait_for(|open| *open).await.is_err() {
                return;
            }
        }
        let mut left = body_len;
        while left > 0 {
            let n = left.min(piece.len() as u64) as usize;
            if wr.write_all(&piece[..n]).await.is_err() {
                return; // the server closed the connection
            }
            left -= n as u64;
            sent_w.fetch_add(n as u64, Ordering::SeqCst);
        }
        let _ = wr.write_all(&suffix).await;
        // Keep the write side open until the reply is read: the server takes a
        // half-closed connection for a client that went away.
        std::future::pending::<()>().await;
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let reply = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n", 0) {
                let head = parse_raw_response(&buf);
                let len: usize = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return head;
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return parse_raw_response(&buf),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("no reply within 60 s");
    let sent_before_reply = sent.load(Ordering::SeqCst);
    writer.abort();
    EarlyReply {
        status: reply.status,
        body: String::from_utf8_lossy(&reply.rest).into_owned(),
        sent_before_reply,
    }
}

/// The pieces of a multipart guest upload of `len` bytes sent by hand.
fn raw_guest_request(s: &TestServer, link: &str, len: u64) -> (String, Vec<u8>, u64, Vec<u8>) {
    let boundary = "raw-guest-upload-boundary";
    let prefix = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    let suffix = format!("\r\n--{boundary}--\r\n").into_bytes();
    let total = prefix.len() as u64 + len + suffix.len() as u64;
    let head = format!(
        "POST /api/guest/{link} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n",
        s.addr
    );
    (head, prefix, len, suffix)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("metric {name} missing"))
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Creating links
// ---------------------------------------------------------------------------

/// A minimal and a full request both create a link, stored in the original's
/// columns and formats: empty label for none, the "never" sentinel, the file
/// lifetime as Go prints durations, and the creation time from the clock.
#[tokio::test]
async fn create_stores_the_original_columns() {
    let cs = ClockedServer::start("2031-05-06T07:08:09Z").await;
    let s = &cs.s;
    let c = s.admin_client().await;

    let minimal = create_link(
        s,
        &c,
        json!({
            "label": null,
            "urlExpirationTime": NEVER_EXPIRES,
            "fileLifetime": "876000h0m0s",
            "maxFileBytes": null,
            "maxFileUploads": null,
        }),
    )
    .await;
    assert_eq!(
        link_row(s, &minimal).unwrap(),
        LinkRow {
            label: Some(String::new()),
            max_file_bytes: None,
            max_file_uploads: None,
            creation_time: "2031-05-06T07:08:09Z".into(),
            url_expiration_time: Some(NEVER_EXPIRES.into()),
            file_expiration_time: Some("876000h0m0s".into()),
            is_disabled: 0,
        }
    );

    let full = create_link(
        s,
        &c,
        json!({
            "label": "For my good pal, Maurice",
            "urlExpirationTime": "2031-06-01T00:00:00+02:00",
            "fileLifetime": "36h30m",
            "maxFileBytes": 10_485_760,
            "maxFileUploads": 3,
            "unknownField": true,
        }),
    )
    .await;
    assert_eq!(
        link_row(s, &full).unwrap(),
        LinkRow {
            label: Some("For my good pal, Maurice".into()),
            max_file_bytes: Some(10_485_760),
            max_file_uploads: Some(3),
            creation_time: "2031-05-06T07:08:09Z".into(),
            url_expiration_time: Some("2031-05-31T22:00:00Z".into()),
            file_expiration_time: Some("36h30m0s".into()),
            is_disabled: 0,
        }
    );
    assert_ne!(minimal, full);

    // Other spellings of a duration are stored in Go's canonical form.
    for (given, stored) in [
        ("24h", "24h0m0s"),
        ("168h", "168h0m0s"),
        ("1440m", "24h0m0s"),
        ("8760h0m0s", "8760h0m0s"),
        ("876000h", "876000h0m0s"),
        ("30h0.5s", "30h0m0.5s"),
    ] {
        let mut body = link_body(None, None);
        body["fileLifetime"] = json!(given);
        let id = create_link(s, &c, body).await;
        assert_eq!(
            link_row(s, &id).unwrap().file_expiration_time.as_deref(),
            Some(stored),
            "{given}"
        );
    }
    // A 200-byte label is the longest accepted.
    let mut body = link_body(None, None);
    body["label"] = json!("é".repeat(100));
    create_link(s, &c, body).await;
}

/// Every invalid request is refused with `400 Invalid request: <reason>`, in
/// the original's words, and creates nothing.
#[tokio::test]
async fn create_rejects_invalid_requests() {
    let cs = ClockedServer::start("2031-01-01T00:00:00Z").await;
    let s = &cs.s;
    let c = s.admin_client().await;
    let valid = link_body(Some(mib(1) as u64), Some(1));
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body.to_string()
    };
    let exact: Vec<(String, &str)> = vec![
        (String::new(), "EOF"),
        ("{}".into(), EXPIRATION_FORMAT),
        (
            with("label", json!("a".repeat(201))),
            "label too long - limit 200 characters",
        ),
        (
            with("label", json!("Ö".repeat(101))),
            "label too long - limit 200 characters",
        ),
        (with("urlExpirationTime", json!("")), EXPIRATION_FORMAT),
        (
            with("urlExpirationTime", json!("tomorrow")),
            EXPIRATION_FORMAT,
        ),
        (
            with("urlExpirationTime", json!("2031-01-01T00:59:59Z")),
            TOO_SOON,
        ),
        (
            with("urlExpirationTime", json!("2030-01-01T00:00:00Z")),
            TOO_SOON,
        ),
        (with("fileLifetime", json!("")), LIFETIME_FORMAT),
        (with("fileLifetime", json!("1d")), LIFETIME_FORMAT),
        (with("fileLifetime", json!("24")), LIFETIME_FORMAT),
        (with("fileLifetime", json!("forever")), LIFETIME_FORMAT),
        (
            with("fileLifetime", json!("23h59m59s")),
            "file lifetime must be at least 1 day",
        ),
        (
            with("fileLifetime", json!("-876000h")),
            "file lifetime must be at least 1 day",
        ),
        (
            with("maxFileBytes", json!(1_048_575)),
            "guest upload size limit must be at at least 1048576 bytes",
        ),
        (
            with("maxFileBytes", json!(0)),
            "guest upload size limit must be at at least 1048576 bytes",
        ),
        (
            with("maxFileUploads", json!(0)),
            "guest upload count limit must be a positive number",
        ),
        (
            with("maxFileUploads", json!(-5)),
            "guest upload count limit must be a positive number",
        ),
    ];
    for (body, message) in exact {
        let resp = post_link(s, &c, body.clone()).await;
        assert_error(resp, 400, &format!("Invalid request: {message}")).await;
    }
    // Wrong JSON types: the decoder's own message follows the prefix.
    for body in [
        with("label", json!(5)),
        with("urlExpirationTime", json!(25)),
        with("maxFileBytes", json!(-5)),
        with("maxFileBytes", json!(1.5e6)),
        with("maxFileUploads", json!(2.5)),
        "{\"label\": ".into(),
        "[]".into(),
    ] {
        let resp = post_link(s, &c, body.clone()).await;
        assert_error_prefix(resp, 400, "Invalid request: ").await;
    }
    assert_eq!(link_count(s), 0, "a refused request created a link");
}

/// Every owner route needs a session: 401 without one, and nothing changes.
#[tokio::test]
async fn owner_routes_require_a_session() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = create_link(&s, &c, link_body(None, None)).await;
    let anon = plain_client();
    let attempts = [
        anon.post(s.url("/api/guest-links"))
            .body(link_body(None, None).to_string()),
        anon.delete(s.url(&format!("/api/guest-links/{id}"))),
        anon.put(s.url(&format!("/api/guest-links/{id}/disable"))),
        anon.put(s.url(&format!("/api/guest-links/{id}/enable"))),
        anon.delete(s.url("/api/guest-links/bad")),
    ];
    for req in attempts {
        let resp = req.send().await.unwrap();
        assert_error(resp, 401, "Authentication required").await;
    }
    assert_eq!(link_count(&s), 1);
    assert_eq!(link_row(&s, &id).unwrap().is_disabled, 0);
}

// ---------------------------------------------------------------------------
// Deleting, enabling, disabling
// ---------------------------------------------------------------------------

/// Deleting a link answers 200 (also when it is already gone); the files that
/// came through it stay downloadable and lose only their reference to it. A
/// malformed ID is a 400 with the original's wording.
#[tokio::test]
async fn delete_keeps_the_links_files() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, None)).await;
    let other = create_link(&s, &c, link_body(None, None)).await;
    let data = random_bytes(700_000, 5);
    let kept = guest_upload(&s, &link, &data).await;
    let unrelated = guest_upload(&s, &other, b"other").await;
    assert_eq!(
        s.entry(&kept).unwrap().guest_link_id.as_deref(),
        Some(link.as_str())
    );

    for _ in 0..2 {
        let resp = c
            .delete(s.url(&format!("/api/guest-links/{link}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.unwrap(), "");
    }
    assert_eq!(link_row(&s, &link), None);
    assert_eq!(s.entry(&kept).unwrap().guest_link_id, None);
    assert_eq!(s.download(&kept).await, data);
    assert_eq!(
        s.entry(&unrelated).unwrap().guest_link_id.as_deref(),
        Some(other.as_str()),
        "another link's files were touched"
    );
    // The deleted link is gone for guests too.
    let resp = post_guest(&s, &link, "", file_form(b"x"), None).await;
    assert_error(resp, 404, "Invalid guest link ID").await;

    let resp = c
        .delete(s.url(&format!("/api/guest-links/{UNKNOWN_LINK}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = c
        .delete(s.url("/api/guest-links/abc"))
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        400,
        "Invalid guest link ID: guest link ID (abc) has invalid length: got 3, want 16",
    )
    .await;
    let resp = c
        .delete(s.url("/api/guest-links/aaaaaaaaaaaaaaa0"))
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        400,
        "Invalid guest link ID: entry ID (aaaaaaaaaaaaaaa0) contains invalid character: 0",
    )
    .await;
    assert_eq!(link_row(&s, &other).map(|r| r.is_disabled), Some(0));
}

/// Enable and disable answer 204 whatever the current state, switch the stored
/// flag, and decide whether guests can upload; an unknown link is a 404 and a
/// malformed ID a 400.
#[tokio::test]
async fn enable_and_disable_are_idempotent() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, None)).await;
    let put = |action: &'static str, id: String| {
        let c = c.clone();
        let url = s.url(&format!("/api/guest-links/{id}/{action}"));
        async move { c.put(url).send().await.unwrap() }
    };

    for (action, disabled) in [
        ("disable", 1),
        ("disable", 1),
        ("enable", 0),
        ("enable", 0),
        ("disable", 1),
    ] {
        let resp = put(action, link.clone()).await;
        assert_eq!(resp.status().as_u16(), 204, "{action}");
        assert_eq!(resp.text().await.unwrap(), "");
        assert_eq!(link_row(&s, &link).unwrap().is_disabled, disabled);
    }
    let resp = post_guest(&s, &link, "", file_form(b"x"), None).await;
    assert_error(resp, 401, INACTIVE).await;
    assert_eq!(put("enable", link.clone()).await.status().as_u16(), 204);
    guest_upload(&s, &link, b"x").await;

    for action in ["enable", "disable"] {
        let resp = put(action, UNKNOWN_LINK.into()).await;
        assert_error(
            resp,
            404,
            &format!(
                "Guest link with ID {UNKNOWN_LINK} not found: \
                 Could not find guest link with ID {UNKNOWN_LINK}"
            ),
        )
        .await;
        let resp = put(action, "short".into()).await;
        assert_error(
            resp,
            400,
            "Invalid guest link ID: guest link ID (short) has invalid length: got 5, want 16",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------
// Guest uploads
// ---------------------------------------------------------------------------

/// A guest upload is stored with its link's ID; the reply is JSON only for an
/// `Accept` of exactly `application/json`, otherwise the file's URL as plain
/// text with CRLF, built from the `Host` the client used.
#[tokio::test]
async fn reply_format_follows_accept() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, None)).await;

    let data = random_bytes(1000, 1);
    let id = upload_id(post_guest(&s, &link, "", file_form(&data), Some("application/json")).await)
        .await;
    let row = s.entry(&id).unwrap();
    assert_eq!(row.guest_link_id.as_deref(), Some(link.as_str()));
    assert_eq!(row.filename, "guest.bin");
    assert_eq!(row.content_type, "application/x-guest");
    assert_eq!(row.note, None);
    assert_eq!(s.download(&id).await, data);

    for accept in [
        None,
        Some("*/*"),
        Some("text/html"),
        Some("application/json, text/plain"),
    ] {
        let resp = post_guest(&s, &link, "", file_form(&data), accept).await;
        assert_eq!(resp.status().as_u16(), 200, "{accept:?}");
        assert_eq!(header_str(resp.headers(), "content-type"), "text/plain");
        let body = resp.text().await.unwrap();
        let id = body
            .strip_prefix(&format!("http://{}/-", s.addr))
            .and_then(|rest| rest.strip_suffix("\r\n"))
            .unwrap_or_else(|| panic!("{accept:?}: unexpected body {body:?}"));
        assert_entry_id_shape(id);
        assert_eq!(s.download(id).await, data);
    }

    // The Host header is echoed as sent.
    let form = file_form(b"h");
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header("Host", "files.example.com")
        .header(CONTENT_TYPE, form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with("http://files.example.com/-"));
}

/// Behind a TLS-terminating proxy, which says the client used HTTPS
/// (`X-Forwarded-Proto: https`, as the README asks of it), the plain-text URL
/// says `https`.
#[tokio::test]
async fn reply_url_is_https_behind_a_proxy() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "true")).await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, None)).await;
    let resp = post_guest_via(&s, &link, &[("X-Forwarded-Proto", "https")]).await;
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(&format!("https://{}/-", s.addr)) && body.ends_with("\r\n"),
        "{body:?}"
    );
}

/// Behind a plain-HTTP proxy, which says `http` or nothing about the scheme,
/// the URL says `http` (an `https` link would not open), as the session
/// cookie is not `Secure`; `Forwarded: proto=https` counts as
/// `X-Forwarded-Proto` does, and the host the proxy reports is the link's.
#[tokio::test]
async fn reply_url_follows_what_the_proxy_says() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "true")).await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, None)).await;
    let host = s.addr.to_string();
    let cases: [(&[(&str, &str)], String); 4] = [
        (&[], format!("http://{host}/-")),
        (&[("X-Forwarded-Proto", "http")], format!("http://{host}/-")),
        (
            &[("Forwarded", "for=192.0.2.7;proto=https")],
            format!("https://{host}/-"),
        ),
        (
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "files.example"),
            ],
            "https://files.example/-".to_owned(),
        ),
    ];
    for (headers, prefix) in cases {
        let resp = post_guest_via(&s, &link, headers).await;
        assert_eq!(resp.status().as_u16(), 200, "{headers:?}");
        let body = resp.text().await.unwrap();
        assert!(body.starts_with(&prefix), "{headers:?}: {body:?}");
    }
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": s.secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = session_set_cookie(resp.headers());
    assert!(!cookie.has("Secure"), "{cookie:?}");
}

/// A guest upload of a small file with extra request headers (a proxy's).
async fn post_guest_via(s: &TestServer, link: &str, headers: &[(&str, &str)]) -> Response {
    let form = file_form(b"data");
    let mut req = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header(CONTENT_TYPE, form.content_type());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(form.finish()).send().await.unwrap()
}

/// Refusals come in the original's order and words: malformed ID, unknown
/// link, inactive link (before the expiration is even looked at), bad
/// expiration, then the body (notes are refused, also in the URL). None of
/// them stores anything.
#[tokio::test]
async fn refusals_in_the_original_order() {
    let cs = ClockedServer::start("2031-01-01T00:00:00Z").await;
    let s = &cs.s;
    let c = s.admin_client().await;
    let link = create_link(s, &c, link_body(None, None)).await;
    let disabled = create_link(s, &c, link_body(None, None)).await;
    let resp = c
        .put(s.url(&format!("/api/guest-links/{disabled}/disable")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    let cases: Vec<(String, &str, Multipart, u16, String)> = vec![
        (
            "abc".into(),
            "",
            file_form(b"x"),
            400,
            "Invalid guest link ID: guest link ID (abc) has invalid length: got 3, want 16".into(),
        ),
        (
            "aaaaaaaaaaaaaaaI".into(),
            "",
            file_form(b"x"),
            400,
            "Invalid guest link ID: entry ID (aaaaaaaaaaaaaaaI) contains invalid character: I"
                .into(),
        ),
        (
            UNKNOWN_LINK.into(),
            "?expiration=nonsense",
            file_form(b"x"),
            404,
            "Invalid guest link ID".into(),
        ),
        (
            disabled.clone(),
            "?expiration=nonsense",
            file_form(b"x"),
            401,
            INACTIVE.into(),
        ),
        (
            link.clone(),
            "?expiration=nonsense",
            file_form(b"x"),
            400,
            format!("Invalid expiration: {EXPIRATION_FORMAT}"),
        ),
        (
            link.clone(),
            "?expiration=2031-01-01T00:30:00Z",
            file_form(b"x"),
            400,
            format!("Invalid expiration: {TOO_SOON}"),
        ),
        (
            link.clone(),
            "",
            Multipart::new()
                .text("note", "hello")
                .file("file", "a.txt", Some("text/plain"), b"x"),
            400,
            "invalid request: guest uploads cannot have file notes".into(),
        ),
        (
            link.clone(),
            "",
            file_form(b"x").text("note", "after the file"),
            400,
            "invalid request: guest uploads cannot have file notes".into(),
        ),
        (
            link.clone(),
            "?note=in-the-url",
            file_form(b"x"),
            400,
            "invalid request: guest uploads cannot have file notes".into(),
        ),
        (
            link.clone(),
            "",
            file_form(b"x").text("note", "null"),
            400,
            "invalid request: value of 'null' is not allowed".into(),
        ),
        (
            link.clone(),
            "",
            file_form(b""),
            400,
            "invalid request: file must be non-empty".into(),
        ),
        (
            link.clone(),
            "",
            Multipart::new().text("other", "x"),
            400,
            "invalid request: http: no such file".into(),
        ),
        (
            link.clone(),
            "",
            Multipart::new().file("file", "..", None, b"x"),
            400,
            "invalid request: filename cannot begin with dots".into(),
        ),
    ];
    for (id, query, form, status, message) in cases {
        let resp = post_guest(s, &id, query, form, Some("application/json")).await;
        assert_error(resp, status, &message).await;
    }
    assert_nothing_stored(s, 0).await;

    // An empty note is no note.
    let form = file_form(b"x").text("note", "");
    upload_id(post_guest(s, &link, "", form, Some("application/json")).await).await;
}

/// Without an expiration (or with an empty one) a guest's file gets the
/// link's full lifetime, "never" for an infinite one; a requested time is
/// kept if it is within that lifetime and refused with the original's message
/// if it is beyond.
#[tokio::test]
async fn expiration_defaults_to_and_is_bounded_by_the_lifetime() {
    let cs = ClockedServer::start("2031-01-01T00:00:00Z").await;
    let s = &cs.s;
    let c = s.admin_client().await;
    let week = create_link(s, &c, link_body(None, None)).await;
    let mut forever = link_body(None, None);
    forever["fileLifetime"] = json!("876000h");
    let forever = create_link(s, &c, forever).await;

    // Uploads and returns the stored expiration.
    let upload = |link: String, query: &'static str| async move {
        let resp = post_guest(
            s,
            &link,
            query,
            file_form(b"data"),
            Some("application/json"),
        )
        .await;
        let id = upload_id(resp).await;
        s.entry(&id).unwrap().expiration_time.unwrap()
    };
    assert_eq!(upload(week.clone(), "").await, "2031-01-08T00:00:00Z");
    let row_times: Vec<String> = s
        .db()
        .prepare("SELECT upload_time FROM entries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        row_times,
        ["2031-01-01T00:00:00Z"],
        "upload time is the clock's"
    );
    assert_eq!(
        upload(week.clone(), "?expiration=").await,
        "2031-01-08T00:00:00Z"
    );
    assert_eq!(
        upload(week.clone(), "?expiration=2031-01-03T12:00:00Z").await,
        "2031-01-03T12:00:00Z"
    );
    assert_eq!(
        upload(week.clone(), "?expiration=2031-01-08T00:00:00Z").await,
        "2031-01-08T00:00:00Z"
    );
    assert_eq!(upload(forever.clone(), "").await, NEVER_EXPIRES);
    assert_eq!(
        upload(forever.clone(), "?expiration=2999-12-31T00:00:00Z").await,
        NEVER_EXPIRES
    );
    assert_eq!(
        upload(forever.clone(), "?expiration=2035-01-01T00:00:00Z").await,
        "2035-01-01T00:00:00Z"
    );

    let before = s.entry_count();
    let resp = post_guest(
        s,
        &week,
        "?expiration=2031-01-08T00:00:01Z",
        file_form(b"data"),
        None,
    )
    .await;
    assert_error(
        resp,
        400,
        "Invalid expiration: requested expiration time of 2031-01-08 00:00:01 +0000 UTC \
         is beyond guest link's limit: 2031-01-08 00:00:00 +0000 UTC",
    )
    .await;
    assert_nothing_stored(s, before).await;

    // The limit moves with the clock.
    cs.set("2031-01-02T00:00:00Z");
    assert_eq!(
        upload(week.clone(), "?expiration=2031-01-08T00:00:01Z").await,
        "2031-01-08T00:00:01Z"
    );
}

/// A link works up to and including its expiration time, and refuses uploads
/// (401) once the server's clock has passed it.
#[tokio::test]
async fn expired_link_refuses_uploads() {
    let cs = ClockedServer::start("2031-01-01T00:00:00Z").await;
    let s = &cs.s;
    let c = s.admin_client().await;
    let mut body = link_body(None, None);
    body["urlExpirationTime"] = json!("2031-01-01T02:00:00Z");
    let link = create_link(s, &c, body).await;

    guest_upload(s, &link, b"early").await;
    cs.set("2031-01-01T02:00:00Z");
    guest_upload(s, &link, b"just in time").await;
    cs.set("2031-01-01T02:00:01Z");
    let before = s.entry_count();
    let resp = post_guest(s, &link, "", file_form(b"late"), None).await;
    assert_error(resp, 401, INACTIVE).await;
    assert_nothing_stored(s, before).await;
}

/// A link takes `maxFileUploads` files, then refuses (401); deleting one of its
/// files gives the slot back, as in the original.
#[tokio::test]
async fn used_up_link_refuses_until_a_file_is_deleted() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, Some(2))).await;
    let first = guest_upload(&s, &link, b"one").await;
    guest_upload(&s, &link, b"two").await;
    let resp = post_guest(&s, &link, "", file_form(b"three"), None).await;
    assert_error(resp, 401, INACTIVE).await;
    assert_eq!(files_uploaded(&s, &link), 2);

    let resp = c
        .delete(s.url(&format!("/api/entry/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    guest_upload(&s, &link, b"three").await;
    let resp = post_guest(&s, &link, "", file_form(b"four"), None).await;
    assert_error(resp, 401, INACTIVE).await;
    assert_eq!(files_uploaded(&s, &link), 2);
}

/// Ten uploads at once to a link with three slots left: exactly three are
/// stored, the other seven are refused with 401, and the database holds
/// exactly the link's limit. Each upload sends its headers and then waits
/// until the refusals are in (or 10 s have passed), so all admitted uploads are
/// in progress together: a check-then-upload race would admit all ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_never_exceed_the_count_limit() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(None, Some(5))).await;
    guest_upload(&s, &link, b"one").await;
    guest_upload(&s, &link, b"two").await;

    let (open, gate) = tokio::sync::watch::channel(false);
    let refused = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (head, prefix, len, suffix) = raw_guest_request(&s, &link, 200_000);
        let (addr, gate, refused, notify) = (s.addr, gate.clone(), refused.clone(), notify.clone());
        tasks.push(tokio::spawn(async move {
            let reply = raw_upload(addr, head, prefix, len, suffix, Some(gate)).await;
            if reply.status != 200 {
                refused.fetch_add(1, Ordering::SeqCst);
                notify.notify_one();
            }
            reply
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while refused.load(Ordering::SeqCst) < 7 {
        if tokio::time::timeout_at(deadline, notify.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = open.send(true);

    let mut statuses = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status == 401 {
            assert_eq!(reply.body, format!("{INACTIVE}\n"));
        }
        statuses.push(reply.status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 401, 401, 401, 401, 401, 401, 401]);
    assert_eq!(files_uploaded(&s, &link), 5);
    assert_nothing_stored(&s, 5).await;
    // All slots are used: the next one is refused too.
    let resp = post_guest(&s, &link, "", file_form(b"x"), None).await;
    assert_error(resp, 401, INACTIVE).await;
}

/// A file of exactly `maxFileBytes` is accepted, even with a small extra
/// field; one byte more is refused with 413 and nothing is kept. Extra fields
/// cannot smuggle unbounded data either: a small file behind a field larger
/// than the limit is refused too.
#[tokio::test]
async fn size_limit_is_the_file_size() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(Some(mib(1) as u64), None)).await;
    let data = random_bytes(mib(1), 7);
    let form =
        Multipart::new()
            .text("extra", &"x".repeat(10_000))
            .file("file", "limit.bin", None, &data);
    let id = upload_id(post_guest(&s, &link, "", form, Some("application/json")).await).await;
    assert_eq!(s.download(&id).await, data);

    let boundary = "junk-boundary";
    let head = format!(
        "POST /api/guest/{link} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        mib(2) + 1000
    );
    let prefix = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"junk\"\r\n\r\n");
    let reply = raw_upload(
        s.addr,
        head,
        prefix.into_bytes(),
        mib(2) as u64,
        Vec::new(),
        None,
    )
    .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_nothing_stored(&s, 1).await;

    let (head, prefix, len, suffix) = raw_guest_request(&s, &link, mib(1) as u64 + 1);
    let reply = raw_upload(s.addr, head, prefix, len, suffix, None).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(
        reply.body,
        "File is too large: this guest link accepts files up to 1.00 MB (1048576 bytes).\n"
    );
    assert_nothing_stored(&s, 1).await;
}

/// A 50 MiB upload to a link that takes 1 MiB is refused with 413 as soon as
/// the limit is passed: the server reads little more than 1 MiB of it, the
/// reply arrives long before the client could send the rest, no chunk stays
/// behind, and the link still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_upload_is_cut_off_while_streaming() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = create_link(&s, &c, link_body(Some(mib(1) as u64), Some(1))).await;

    // A 200 MiB body: the reply must come long before it is all sent. What
    // the client may have handed to the kernel by then: the 1 MiB the link
    // allows, up to 8 MiB the server reads and drops before replying, and
    // the two sockets' buffers, which Linux grows on demand (up to
    // `tcp_rmem`'s maximum, 32 MiB on some machines, plus `tcp_wmem`'s).
    let (head, prefix, len, suffix) = raw_guest_request(&s, &link, mib(200) as u64);
    let reply = raw_upload(s.addr, head, prefix, len, suffix, None).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(
        reply.body,
        "File is too large: this guest link accepts files up to 1.00 MB (1048576 bytes).\n"
    );
    assert!(
        reply.sent_before_reply < mib(64) as u64,
        "the reply came only after {} bytes were sent",
        reply.sent_before_reply
    );

    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let read = metric(&metrics, "picoshare_upload_bytes_total");
    assert!(
        read < (mib(1) + mib(1) / 4) as f64,
        "the server took {read} bytes of the file"
    );
    assert_nothing_stored(&s, 0).await;
    assert_eq!(count(&s.db(), "SELECT count(*) FROM entries_data", []), 0);

    // The refused upload gave its slot back.
    guest_upload(&s, &link, b"small enough").await;
    assert_eq!(files_uploaded(&s, &link), 1);
}

// ---------------------------------------------------------------------------
// A database written by the original
// ---------------------------------------------------------------------------

/// The Go server's active guest link takes an upload (its count goes from 1
/// to 2, and the file gets the link's 7-day lifetime), and its disabled link
/// refuses one.
#[tokio::test]
async fn links_of_an_original_database_work() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _manifest) = copy_fixture(dir.path());
    // A fixed clock, before the link's own expiration (mid-2030).
    let clock = dir.path().join("clock");
    set_clock(&clock, "2028-01-01T00:00:00Z");
    let s = TestServer::start_with(
        ServerOptions::new()
            .db(&db)
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await;

    let active = "NGNqHW3bVZpuLHpJ";
    assert_eq!(files_uploaded(&s, active), 1);
    let data = random_bytes(300_000, 3);
    let id = guest_upload(&s, active, &data).await;
    assert_eq!(files_uploaded(&s, active), 2);
    assert_eq!(s.download(&id).await, data);
    let row = s.entry(&id).unwrap();
    assert_eq!(row.upload_time, "2028-01-01T00:00:00Z");
    assert_eq!(row.expiration_time.as_deref(), Some("2028-01-08T00:00:00Z"));
    assert_eq!(row.guest_link_id.as_deref(), Some(active));

    let resp = post_guest(&s, "FgBKxPGtVLdwvMFE", "", file_form(b"x"), None).await;
    assert_error(resp, 401, INACTIVE).await;
    assert_eq!(files_uploaded(&s, "FgBKxPGtVLdwvMFE"), 0);
}
