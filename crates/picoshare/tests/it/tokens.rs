//! API tokens: created, listed and revoked by the owner (`/api/tokens…`), and
//! used as `Authorization: Bearer` to upload from scripts: multipart
//! `POST /api/entry`, raw-body `PUT /api/upload/{filename}` (what `curl -T`
//! sends), and tus. A token may upload and do nothing else; only its SHA-256
//! is stored.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::helpers::*;

const INVALID_TOKEN: &str = "Invalid API token: it is unknown or has been revoked. Create a new one on the Tokens page (/tokens).";
const UPLOAD_ONLY: &str = "API tokens can only upload files (POST /api/entry, PUT /api/upload/{filename}, /api/tus). Log in with the passphrase for everything else.";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Creates a token named `name` through the API; returns the creation reply.
async fn create_token(s: &TestServer, admin: &Client, name: &str) -> Value {
    let resp = admin
        .post(s.url("/api/tokens"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "token creation failed: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A new token's secret.
async fn new_token(s: &TestServer, admin: &Client) -> String {
    create_token(s, admin, "script").await["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn list_tokens(s: &TestServer, admin: &Client) -> Vec<Value> {
    let resp = admin.get(s.url("/api/tokens")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Vec<Value>>().await.unwrap()
}

fn bearer(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header(AUTHORIZATION, format!("Bearer {token}"))
}

/// `PUT /api/upload/{name}{query}` with `token` and `data` as the body.
async fn put_raw(s: &TestServer, token: &str, name_and_query: &str, data: Vec<u8>) -> Response {
    bearer(
        plain_client().put(s.url(&format!("/api/upload/{name_and_query}"))),
        token,
    )
    .body(data)
    .send()
    .await
    .unwrap()
}

/// A multipart `POST /api/entry` with `token`.
async fn post_multipart(
    s: &TestServer,
    token: &str,
    accept: Option<&str>,
    data: &[u8],
) -> Response {
    let form = Multipart::new().file("file", "note.txt", Some("text/plain"), data);
    let mut req = bearer(plain_client().post(s.url("/api/entry")), token)
        .header(CONTENT_TYPE, form.content_type());
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    req.body(form.finish()).send().await.unwrap()
}

/// Checks a plain-text link reply (`http://HOST/-ID` and a newline) and
/// returns the entry ID.
async fn link_reply(s: &TestServer, resp: Response) -> String {
    let status = resp.status().as_u16();
    let ctype = header_str(resp.headers(), "content-type");
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "upload failed: {body}");
    assert!(ctype.starts_with("text/plain"), "Content-Type {ctype:?}");
    let prefix = format!("{}/-", s.base);
    let id = body
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("reply {body:?} is not {prefix}ID and a newline"));
    assert_entry_id_shape(id);
    id.to_owned()
}

/// Asserts a refused token: status, message and the Bearer challenge.
async fn assert_token_refused(what: &str, resp: Response, status: u16, message: &str) {
    let challenge = header_str(resp.headers(), "www-authenticate");
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: WWW-Authenticate {challenge:?}"
    );
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "{what}: a refused token must not touch cookies"
    );
    assert_eq!(resp.status().as_u16(), status, "{what}");
    assert_eq!(resp.text().await.unwrap(), format!("{message}\n"), "{what}");
}

// ---------------------------------------------------------------------------
// Managing tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_through_the_api() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    assert!(list_tokens(&s, &admin).await.is_empty());

    let created = create_token(&s, &admin, "  laptop  ").await;
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("pst_"), "{token}");
    assert_eq!(token.len(), 68, "pst_ and 256 bits in hex: {token}");
    assert!(token[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created["name"], "laptop");
    assert_eq!(created["prefix"], token[..12]);
    assert_eq!(created["lastUsed"], Value::Null);
    assert_stored_time(created["created"].as_str().unwrap());
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);

    let second = create_token(&s, &admin, "ShareX").await;
    assert_ne!(second["token"], created["token"]);

    // The list never shows a token again.
    let resp = admin.get(s.url("/api/tokens")).send().await.unwrap();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(token), "the list shows the token: {text}");
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "ShareX", "newest first");
    assert_eq!(list[1]["id"], id.as_str());
    assert_eq!(list[1]["prefix"], token[..12]);
    assert!(list.iter().all(|t| t.get("token").is_none()));

    // Revoking: 204, then gone; a second time 404; a malformed ID 400.
    let resp = admin
        .delete(s.url(&format!("/api/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let list = list_tokens(&s, &admin).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "ShareX");
    let resp = admin
        .delete(s.url(&format!("/api/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, &format!("No API token with ID {id}")).await;
    let resp = admin
        .delete(s.url("/api/tokens/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn token_names_are_checked() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    for (body, message) in [
        (
            json!({ "name": "   " }),
            "Invalid request: a token needs a name (what will use it, e.g. \"laptop\" or \"ShareX\")",
        ),
        (
            json!({}),
            "Invalid request: a token needs a name (what will use it, e.g. \"laptop\" or \"ShareX\")",
        ),
        (
            json!({ "name": "x".repeat(101) }),
            "Invalid request: the name is too long: at most 100 characters",
        ),
        (
            json!({ "name": "a\nb" }),
            "Invalid request: the name cannot contain control characters",
        ),
    ] {
        let resp = admin
            .post(s.url("/api/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(resp, 400, message).await;
    }
    let resp = admin
        .post(s.url("/api/tokens"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 400, "Invalid request: malformed JSON").await;
    // 100 characters (not bytes) are fine.
    let created = create_token(&s, &admin, &"é".repeat(100)).await;
    assert_eq!(created["name"], "é".repeat(100));
    assert_eq!(list_tokens(&s, &admin).await.len(), 1);
}

#[tokio::test]
async fn managing_tokens_needs_a_session() {
    let s = TestServer::start().await;
    let c = plain_client();
    let resp = c.get(s.url("/api/tokens")).send().await.unwrap();
    assert_error(resp, 401, "Authentication required").await;
    let resp = c
        .post(s.url("/api/tokens"))
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;
    let resp = c
        .delete(s.url("/api/tokens/abcdefghijkm"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;
    // The page sends visitors to the login page.
    let resp = c.get(s.url("/tokens")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        header_str(resp.headers(), "location"),
        "/login?next=/tokens"
    );
}

#[tokio::test]
async fn tokens_are_stored_only_as_a_hash() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    // Used once, so its row has been written again.
    let id = link_reply(&s, put_raw(&s, &token, "a.txt", b"hello".to_vec()).await).await;
    assert_eq!(s.download(&id).await, b"hello");

    let db = s.db();
    let (hash, prefix): (String, String) = db
        .query_row(
            "SELECT token_sha256, prefix FROM picoshare_api_tokens",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(hash, sha256_hex(token.as_bytes()));
    assert_eq!(prefix, token[..12]);
    if remote_storage().is_none() {
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM picoshare_rs_migrations WHERE version = 4",
                []
            ),
            1
        );
    }
    drop(db);
    // Not anywhere in the database (file and write-ahead log, or PostgreSQL
    // tables), in any column.
    let secret = &token[12..];
    assert!(
        find(&s.metadata_bytes(), secret.as_bytes(), 0).is_none(),
        "the token is stored in plain text"
    );
}

// ---------------------------------------------------------------------------
// Uploading with a token
// ---------------------------------------------------------------------------

#[tokio::test]
async fn multipart_upload_with_a_token_answers_with_the_link() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;

    let id = link_reply(&s, post_multipart(&s, &token, None, b"one").await).await;
    assert_eq!(s.download(&id).await, b"one");
    let row = s.entry(&id).unwrap();
    assert_eq!(row.filename, "note.txt");
    assert_eq!(row.content_type, "text/plain");
    // Without ?expiration=, the settings' default lifetime (30 days) applies.
    let expires = assert_stored_time(row.expiration_time.as_deref().unwrap());
    let uploaded = assert_stored_time(&row.upload_time);
    assert_eq!(expires - uploaded, chrono::Duration::days(30));

    // JSON for a client that asks for it.
    let resp = post_multipart(&s, &token, Some("application/json"), b"two").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(header_str(resp.headers(), "content-type").starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert_entry_id_shape(id);
    assert_eq!(v["url"], format!("{}/-{id}", s.base));
    assert_eq!(s.download(id).await, b"two");

    // The browser's (session) reply is the original's `{"id"}`, unchanged.
    let resp = s
        .post_entry(
            &admin,
            "",
            Multipart::new().file("file", "b.txt", Some("text/plain"), b"three"),
        )
        .await;
    let body = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{body}");
    assert_entry_id_shape(v["id"].as_str().unwrap());
}

#[tokio::test]
async fn raw_put_stores_the_body_with_the_query_options() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;

    let resp = bearer(
        plain_client().put(s.url(&format!(
            "/api/upload/report%20final.pdf?expiration={FAR_FUTURE}&note=from%20cron"
        ))),
        &token,
    )
    .header(CONTENT_TYPE, "application/pdf")
    .body("%PDF-1.7 fake")
    .send()
    .await
    .unwrap();
    let id = link_reply(&s, resp).await;
    let row = s.entry(&id).unwrap();
    assert_eq!(row.filename, "report final.pdf");
    assert_eq!(row.content_type, "application/pdf");
    assert_eq!(row.note.as_deref(), Some("from cron"));
    assert_eq!(row.expiration_time.as_deref(), Some(FAR_FUTURE));
    assert_eq!(s.download(&id).await, b"%PDF-1.7 fake");

    // No Content-Type (curl -T sends none): the download's type comes from the name.
    let id = link_reply(
        &s,
        put_raw(&s, &token, "pic.png", b"\x89PNG".to_vec()).await,
    )
    .await;
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(header_str(resp.headers(), "content-type"), "image/png");

    // JSON on request.
    let resp = bearer(plain_client().put(s.url("/api/upload/x.txt")), &token)
        .header(ACCEPT, "application/json")
        .body("x")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["url"],
        format!("{}/-{}", s.base, v["id"].as_str().unwrap())
    );

    // The logged-in owner may use the route too.
    let resp = admin
        .put(s.url("/api/upload/y.txt"))
        .body("y")
        .send()
        .await
        .unwrap();
    let id = link_reply(&s, resp).await;
    assert_eq!(s.download(&id).await, b"y");
}

#[tokio::test]
async fn raw_put_refusals() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let before = s.entry_count();
    let resp = put_raw(&s, &token, "empty.txt", Vec::new()).await;
    assert_error(resp, 400, "invalid request: file must be non-empty").await;
    let resp = put_raw(&s, &token, "a.txt?expiration=tomorrow", b"x".to_vec()).await;
    assert_error_prefix(resp, 400, "Invalid expiration URL parameter: ").await;
    let resp = put_raw(
        &s,
        &token,
        &format!("a.txt?note={}", "n".repeat(501)),
        b"x".to_vec(),
    )
    .await;
    assert_error_prefix(resp, 400, "invalid request: ").await;
    // No name in the URL (curl -T to a URL without the final slash).
    for url in ["/api/upload", "/api/upload/"] {
        let resp = bearer(plain_client().put(s.url(url)), &token)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error_prefix(resp, 400, "invalid request: put the file's name in the URL").await;
    }
    // Without any credentials.
    let resp = plain_client()
        .put(s.url("/api/upload/a.txt"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;
    assert_eq!(s.entry_count(), before);
    assert_eq!(s.orphan_chunks(), 0);
}

/// 64 MiB sent as a stream of 256 KiB pieces round-trips byte for byte, with
/// nothing written to the server's TMPDIR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_put_streams_64_mib() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let size = mib(64);
    let data = Bytes::from(random_bytes(size, 4));
    let expected = sha256_hex(&data);
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..size)
        .step_by(256 * 1024)
        .map(|start| Ok(data.slice(start..(start + 256 * 1024).min(size))))
        .collect();
    let resp = bearer(plain_client().put(s.url("/api/upload/big.bin")), &token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    let id = link_reply(&s, resp).await;
    assert!(s.tmp_files().is_empty(), "TMPDIR: {:?}", s.tmp_files());
    let got = s.download(&id).await;
    assert_eq!(got.len(), size);
    assert_eq!(sha256_hex(&got), expected);
    assert_eq!(s.entry(&id).unwrap().filename, "big.bin");
}

#[tokio::test]
async fn tus_uploads_accept_a_token() {
    use base64::Engine as _;
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let c = plain_client();
    let name = base64::engine::general_purpose::STANDARD.encode("resumed.txt");
    let resp = bearer(c.post(s.url("/api/tus")), &token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "11")
        .header("Upload-Metadata", format!("filename {name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    for (offset, part) in [(0, "hello "), (6, "world")] {
        let resp = bearer(c.patch(s.url(&location)), &token)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(part)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "PATCH at {offset}");
        if offset == 6 {
            let id = header_str(resp.headers(), "picoshare-entry-id");
            assert_eq!(s.download(&id).await, b"hello world");
        }
    }
    // Without the token, the upload's URL is not enough.
    let resp = c
        .head(s.url(&location))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

// ---------------------------------------------------------------------------
// What a token may not do
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_and_revoked_tokens_are_refused() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let created = create_token(&s, &admin, "old").await;
    let token = created["token"].as_str().unwrap().to_owned();
    link_reply(&s, put_raw(&s, &token, "a.txt", b"a".to_vec()).await).await;
    let resp = admin
        .delete(s.url(&format!("/api/tokens/{}", created["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let before = s.entry_count();

    let mut almost = token.clone();
    almost.pop();
    almost.push(if token.ends_with('0') { '1' } else { '0' });
    for (what, t) in [
        ("revoked", token.as_str()),
        ("one digit off", almost.as_str()),
        ("garbage", "not-a-token"),
        ("empty", ""),
        ("huge", &"x".repeat(4000)),
    ] {
        let resp = put_raw(&s, t, "b.txt", b"b".to_vec()).await;
        assert_token_refused(what, resp, 401, INVALID_TOKEN).await;
        let resp = post_multipart(&s, t, None, b"b").await;
        assert_token_refused(what, resp, 401, INVALID_TOKEN).await;
    }
    // A bad token is refused even when a valid session comes along.
    let resp = bearer(admin.put(s.url("/api/upload/c.txt")), "nope")
        .body("c")
        .send()
        .await
        .unwrap();
    assert_token_refused("with a session", resp, 401, INVALID_TOKEN).await;
    assert_eq!(s.entry_count(), before);
}

#[tokio::test]
async fn tokens_can_only_upload() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let id = link_reply(&s, put_raw(&s, &token, "keep.txt", b"keep".to_vec()).await).await;
    let token_id = list_tokens(&s, &admin).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = plain_client();
    let refused: Vec<(&str, RequestBuilder)> = vec![
        ("list files", c.get(s.url("/api/entries"))),
        (
            "edit a file",
            c.put(s.url(&format!("/api/entry/{id}")))
                .json(&json!({ "filename": "x.txt" })),
        ),
        (
            "delete a file",
            c.delete(s.url(&format!("/api/entry/{id}"))),
        ),
        (
            "download history",
            c.get(s.url(&format!("/api/entry/{id}/downloads"))),
        ),
        ("list tokens", c.get(s.url("/api/tokens"))),
        (
            "create a token",
            c.post(s.url("/api/tokens"))
                .json(&json!({ "name": "more" })),
        ),
        (
            "revoke a token",
            c.delete(s.url(&format!("/api/tokens/{token_id}"))),
        ),
        ("read settings", c.get(s.url("/api/settings"))),
        (
            "change settings",
            c.put(s.url("/api/settings"))
                .json(&json!({ "defaultNeverExpire": true })),
        ),
        ("system", c.get(s.url("/api/system"))),
        (
            "create a guest link",
            c.post(s.url("/api/guest-links")).json(&json!({})),
        ),
        ("collect garbage", c.post(s.url("/api/admin/gc"))),
        // Notifications: a token could otherwise send file names and
        // visitors' addresses anywhere (README, Notifications).
        (
            "list notification destinations",
            c.get(s.url("/api/notifications")),
        ),
        (
            "add a notification destination",
            c.post(s.url("/api/notifications"))
                .json(&json!({ "name": "x", "url": "http://127.0.0.1:9/" })),
        ),
    ];
    for (what, req) in refused {
        let resp = bearer(req, &token).send().await.unwrap();
        assert_token_refused(what, resp, 403, UPLOAD_ONLY).await;
    }
    // Pages ignore tokens: they need a login.
    for page in ["/files", "/tokens", "/settings"] {
        let resp = bearer(c.get(s.url(page)), &token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 303, "{page}");
    }
    // Nothing changed.
    assert_eq!(s.download(&id).await, b"keep");
    assert_eq!(s.entry(&id).unwrap().filename, "keep.txt");
    assert_eq!(list_tokens(&s, &admin).await.len(), 1);
}

#[tokio::test]
async fn last_use_is_recorded() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    assert_eq!(list_tokens(&s, &admin).await[0]["lastUsed"], Value::Null);
    link_reply(&s, put_raw(&s, &token, "a.txt", b"a".to_vec()).await).await;
    let used = |db: &rusqlite::Connection| -> Option<String> {
        db.query_row("SELECT last_used_time FROM picoshare_api_tokens", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    // The write is not waited for by the upload's reply.
    assert!(
        eventually(Duration::from_secs(10), || used(&s.db()).is_some()).await,
        "last use never recorded"
    );
    let stamp = used(&s.db()).unwrap();
    assert_stored_time(&stamp);
    let list = list_tokens(&s, &admin).await;
    assert_eq!(list[0]["lastUsed"], stamp.as_str());
    // The page shows it too.
    let html = admin
        .get(s.url("/tokens"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&stamp.replace('T', " ").replace('Z', " UTC")),
        "{html}"
    );
    assert!(!html.contains(&token[12..]), "the page shows the token");
}

/// Scripts send no browser headers, but a token request is not subject to the
/// cross-origin check even if it does: it carries no cookie a forger could
/// borrow. With a session cookie, the check applies as before.
#[tokio::test]
async fn bearer_requests_are_not_subject_to_the_csrf_check() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let resp = bearer(plain_client().put(s.url("/api/upload/x.txt")), &token)
        .header("Origin", "https://elsewhere.example")
        .header("Sec-Fetch-Site", "cross-site")
        .body("x")
        .send()
        .await
        .unwrap();
    link_reply(&s, resp).await;
    let form = Multipart::new().file("file", "a.txt", None, b"a");
    let resp = bearer(plain_client().post(s.url("/api/entry")), &token)
        .header("Origin", "https://elsewhere.example")
        .header("Referer", "https://elsewhere.example/page")
        .header(CONTENT_TYPE, form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap();
    link_reply(&s, resp).await;

    let cookie = s.session_cookie().await;
    let resp = bearer(plain_client().put(s.url("/api/upload/y.txt")), &token)
        .header("Cookie", cookie)
        .header("Sec-Fetch-Site", "cross-site")
        .body("y")
        .send()
        .await
        .unwrap();
    assert_error_prefix(resp, 403, "Cross-origin request refused").await;
}

// ---------------------------------------------------------------------------
// The real curl
// ---------------------------------------------------------------------------

/// Runs `curl` with `args`; returns its stdout, asserting success.
async fn curl(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .expect("run curl (is it installed?)");
        assert!(
            out.status.success(),
            "curl {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_uploads_with_a_token() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let dir = tempfile::tempdir().unwrap();
    // Over 1 MiB, so curl asks `Expect: 100-continue` first.
    let data = random_bytes(mib(3), 9);
    let file = dir.path().join("holiday photo.jpg");
    std::fs::write(&file, &data).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let auth = format!("Authorization: Bearer {token}");

    // curl -T FILE URL/ puts to URL/FILENAME.
    let out = curl(vec![
        "-sS".into(),
        "--fail-with-body".into(),
        "-H".into(),
        auth.clone(),
        "-T".into(),
        file.clone(),
        s.url("/api/upload/"),
    ])
    .await;
    let id = out
        .strip_prefix(&format!("{}/-", s.base))
        .and_then(|r| r.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("curl -T printed {out:?}"))
        .to_owned();
    assert_eq!(s.download(&id).await, data);
    assert_eq!(s.entry(&id).unwrap().filename, "holiday photo.jpg");

    // curl -F file=@FILE URL/api/entry.
    let out = curl(vec![
        "-sS".into(),
        "--fail-with-body".into(),
        "-H".into(),
        auth.clone(),
        "-F".into(),
        format!("file=@{file}"),
        s.url("/api/entry?note=via%20curl"),
    ])
    .await;
    let id = out
        .strip_prefix(&format!("{}/-", s.base))
        .and_then(|r| r.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("curl -F printed {out:?}"))
        .to_owned();
    assert_eq!(s.download(&id).await, data);
    let row = s.entry(&id).unwrap();
    assert_eq!(row.filename, "holiday photo.jpg");
    assert_eq!(row.note.as_deref(), Some("via curl"));

    // A wrong token: curl fails and prints the server's message.
    let out = tokio::task::spawn_blocking({
        let url = s.url("/api/upload/");
        move || {
            std::process::Command::new("curl")
                .args([
                    "-sS",
                    "-H",
                    "Authorization: Bearer wrong",
                    "-T",
                    &file,
                    &url,
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{INVALID_TOKEN}\n")
    );
}

/// A bad token is refused whatever else the request carries: on the
/// session-only API routes too, a revoked or mistyped token beside a valid
/// session cookie gets 401 and changes nothing; a valid token beside one
/// gets the 403 of a token.
#[tokio::test]
async fn a_bad_token_is_refused_even_with_a_session_on_session_routes() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let token = new_token(&s, &admin).await;
    let id = s
        .upload(&admin, "kept.txt", b"kept", "text/plain", None, None)
        .await;
    let routes = |c: &Client| -> Vec<(&'static str, RequestBuilder)> {
        vec![
            ("list files", c.get(s.url("/api/entries"))),
            ("settings", c.get(s.url("/api/settings"))),
            ("tokens", c.get(s.url("/api/tokens"))),
            (
                "new token",
                c.post(s.url("/api/tokens"))
                    .json(&json!({ "name": "more" })),
            ),
            (
                "delete a file",
                c.delete(s.url(&format!("/api/entry/{id}"))),
            ),
        ]
    };
    for (what, req) in routes(&admin) {
        let resp = bearer(req, "pst_not-a-real-token").send().await.unwrap();
        assert_token_refused(what, resp, 401, INVALID_TOKEN).await;
    }
    for (what, req) in routes(&admin) {
        let resp = bearer(req, &token).send().await.unwrap();
        assert_token_refused(what, resp, 403, UPLOAD_ONLY).await;
    }
    assert_eq!(s.download(&id).await, b"kept");
    assert_eq!(list_tokens(&s, &admin).await.len(), 1);
}
