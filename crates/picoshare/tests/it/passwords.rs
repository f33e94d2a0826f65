//! Password-protected files: 401 without the password (a form for browsers),
//! the form's per-file cookie, HTTP Basic auth, the owner's bypass, rate
//! limiting, and what the database holds (an argon2id hash, never the password).

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, COOKIE, RANGE};

use crate::helpers::*;
use crate::limits::{limits_row, upload_with};

const PASSWORD: &str = "correct horse battery staple";

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("anyone:{password}"))
    )
}

fn password_hash(server: &TestServer, id: &str) -> Option<String> {
    server
        .db()
        .query_row(
            "SELECT password_hash FROM picoshare_entry_limits WHERE entry_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

/// Every byte of the database files (main file and WAL).
fn database_bytes(server: &TestServer) -> Vec<u8> {
    server.metadata_bytes()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Submits the password form; returns the reply.
async fn submit(server: &TestServer, id: &str, password: &str) -> reqwest::Response {
    let body = format!(
        "password={}",
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
    );
    plain_client()
        .post(server.url(&format!("/-{id}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(ACCEPT, "text/html")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_protected_file_needs_its_password() {
    let server = TestServer::start().await;
    let data = random_bytes(1024 * 1024 + 3, 7);
    let id = upload_with(&server, &[("password", PASSWORD)], "", &data).await;
    let url = server.url(&format!("/-{id}"));
    let info = server
        .admin_client()
        .await
        .get(server.url(&format!("/files/{id}/info")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(info.contains("required to download"), "{info}");
    assert!(!info.contains(PASSWORD));

    // Without the password: 401, never the bytes.
    let r = plain_client().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(header_str(r.headers(), "www-authenticate").starts_with("Basic "));
    assert!(header_str(r.headers(), "content-type").starts_with("text/plain"));
    assert!(r.text().await.unwrap().contains("protected by a password"));
    let r = plain_client()
        .get(&url)
        .header(RANGE, "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = plain_client().head(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Browsers get a form that posts back to the download's URL.
    let r = plain_client()
        .get(&url)
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(header_str(r.headers(), "content-type").starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"method="post""#), "{page}");
    assert!(page.contains(&format!(r#"action="/-{id}""#)), "{page}");
    assert!(page.contains(r#"type="password""#), "{page}");

    // A wrong password: 401 again.
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = submit(&server, &id, "nope").await;
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("Wrong password."));

    // Basic auth with any user name.
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        header_str(r.headers(), "content-security-policy"),
        "sandbox"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    // The form: 303 back to the download with a cookie for this file.
    let r = submit(&server, &id, PASSWORD).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(header_str(r.headers(), "location"), format!("/-{id}"));
    let cookies = set_cookies(r.headers());
    let cookie = cookies
        .iter()
        .find(|c| c.name == format!("ps_file_{id}"))
        .expect("the file's cookie");
    assert!(cookie.has("HttpOnly"));
    assert!(!cookie.value.contains(PASSWORD));
    let jar = format!("{}={}", cookie.name, cookie.value);
    let r = plain_client()
        .get(&url)
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    let r = plain_client()
        .get(&url)
        .header(COOKIE, &jar)
        .header(RANGE, "bytes=500000-500099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[500_000..500_100]);
    // A forged or another file's cookie opens nothing.
    let other = upload_with(&server, &[("password", PASSWORD)], "", b"other").await;
    let forged = format!("ps_file_{other}={}", cookie.value);
    let r = plain_client()
        .get(server.url(&format!("/-{other}")))
        .header(COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The owner never needs it.
    let admin = server.admin_client().await;
    let r = admin.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    // The database holds an argon2id PHC string, never the password.
    let hash = password_hash(&server, &id).expect("a hash");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!contains(&database_bytes(&server), PASSWORD.as_bytes()));
}

#[tokio::test]
async fn wrong_passwords_are_rate_limited() {
    let server = TestServer::start().await;
    let id = upload_with(&server, &[("password", PASSWORD)], "", b"secret data").await;
    let url = server.url(&format!("/-{id}"));
    for i in 0..10 {
        let r = plain_client()
            .get(&url)
            .header(AUTHORIZATION, basic(&format!("guess{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "attempt {i}");
    }
    // Now even the right password waits, by Basic auth or by the form.
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = header_str(r.headers(), "retry-after").parse().unwrap();
    assert!(wait >= 1);
    assert!(r.text().await.unwrap().contains("Too many wrong passwords"));
    let r = submit(&server, &id, PASSWORD).await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Another file is limited by the same address's count.
    let other = upload_with(&server, &[("password", "other")], "", b"x").await;
    let r = plain_client()
        .get(server.url(&format!("/-{other}")))
        .header(AUTHORIZATION, basic("other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // The owner is not affected.
    let admin = server.admin_client().await;
    assert_eq!(admin.get(&url).send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn a_password_sent_as_tus_metadata_is_hashed_and_never_stored() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let data = random_bytes(40_000, 8);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let resp = admin
        .post(server.url("/api/tus"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len().to_string())
        .header(
            "upload-metadata",
            format!(
                "filename {},password {},maxDownloads {},note {}",
                b64("p.bin"),
                b64(PASSWORD),
                b64("4"),
                b64("a note")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let location = header_str(resp.headers(), "location");
    let metadata: String = server
        .db()
        .query_row("SELECT metadata FROM picoshare_tus_uploads", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!metadata.contains("password"), "{metadata}");
    assert!(metadata.contains("note"), "{metadata}");
    let resp = admin
        .patch(server.url(&location))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let id = header_str(resp.headers(), "picoshare-entry-id");
    assert_eq!(limits_row(&server, &id).map(|r| r.0), Some(Some(4)));
    assert!(password_hash(&server, &id)
        .unwrap()
        .starts_with("$argon2id$"));
    assert!(!contains(&database_bytes(&server), PASSWORD.as_bytes()));
    let url = server.url(&format!("/-{id}"));
    assert_eq!(
        plain_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
}

#[tokio::test]
async fn the_owner_sets_changes_and_removes_a_password_by_edit() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let id = upload_with(&server, &[], "", b"plain file").await;
    let url = server.url(&format!("/-{id}"));
    let put = |body: serde_json::Value| {
        let admin = admin.clone();
        let url = server.url(&format!("/api/entry/{id}"));
        async move { admin.put(url).json(&body).send().await.unwrap() }
    };
    assert_eq!(
        plain_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let r = put(serde_json::json!({"filename": "f.txt", "password": "first"})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        plain_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let r = submit(&server, &id, "first").await;
    let cookie = set_cookies(r.headers()).into_iter().next().expect("cookie");
    let jar = format!("{}={}", cookie.name, cookie.value);
    assert_eq!(
        plain_client()
            .get(&url)
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // A new password voids the cookies of the old one.
    let r = put(serde_json::json!({"filename": "f.txt", "password": "second"})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        plain_client()
            .get(&url)
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic("second"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = put(serde_json::json!({"filename": "f.txt", "password": ""})).await;
    assert_error_prefix(r, 400, "Bad request: the password must not be empty").await;
    let r = put(serde_json::json!({"filename": "f.txt", "password": null})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        plain_client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(limits_row(&server, &id), None);
}

/// 150 wrong passwords sent at once from one client: each attempt is
/// counted before its (slow) check, so at most 10 are checked (the server's
/// count of argon2id checks says so) and the other 140 get 429; then the
/// right password is refused too, until the window ends.
#[tokio::test]
async fn simultaneous_wrong_passwords_are_counted_before_they_are_checked() {
    let server = TestServer::start_with(ServerOptions::new().env("PS_METRICS_PUBLIC", "1")).await;
    let id = upload_with(&server, &[("password", PASSWORD)], "", b"guarded").await;
    let url = server.url(&format!("/-{id}"));
    let checks = || server.metric("picoshare_password_checks_total");
    let before = checks().await.unwrap_or(0.0);
    let guesses = (0..150).map(|i| {
        plain_client()
            .get(&url)
            .header(AUTHORIZATION, basic(&format!("guess {i}")))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 150, "{statuses:?}");
    assert!(
        checked <= 10,
        "{checked} of 150 simultaneous guesses were checked"
    );
    let hashed = checks().await.expect("password checks in /metrics") - before;
    assert!(hashed <= 10.0, "{hashed} passwords hashed");
    let r = plain_client()
        .get(&url)
        .header(AUTHORIZATION, basic(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
}

/// The right password sent on 30 connections at once (a download manager, a
/// page with many previews) is accepted on every one of them: the limit's
/// places are held only while checks are in flight, and right ones give
/// theirs back.
#[tokio::test]
async fn simultaneous_right_passwords_are_all_accepted() {
    let server = TestServer::start().await;
    let id = upload_with(&server, &[("password", PASSWORD)], "", b"guarded").await;
    let url = server.url(&format!("/-{id}"));
    let tries = (0..30).map(|_| {
        plain_client()
            .get(&url)
            .header(AUTHORIZATION, basic(PASSWORD))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// Password checks (argon2id, 19 MiB each) run a few at a time whoever
/// sends them, in memory that is reused: 40 guesses at once, from 40
/// addresses at 4 files (10 each, within every limit), all get their
/// answer, and the server's peak memory (VmHWM from /proc) grows by a few
/// checks' worth (one per core, at most 4), not forty; 20 more checks one
/// after the other add nothing.
#[tokio::test]
async fn password_checks_run_a_few_at_a_time() {
    let server = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(upload_with(&server, &[("password", PASSWORD)], "", b"guarded").await);
    }
    let before = server.peak_rss_kib();
    let guesses = (0..40).map(|i| {
        plain_client()
            .get(server.url(&format!("/-{}", ids[i % 4])))
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .header(AUTHORIZATION, basic(&format!("guess {i}")))
            .send()
    });
    for r in futures_util::future::join_all(guesses).await {
        assert_eq!(r.unwrap().status().as_u16(), 401);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let allowed = (cores.clamp(1, 4) as u64 + 1) * 20 * 1024;
    let grown = server.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < allowed,
        "peak memory grew by {} MiB for 40 simultaneous password checks",
        grown / 1024
    );
    let settled = server.rss_kib();
    for i in 0..20 {
        let r = plain_client()
            .get(server.url(&format!("/-{}", ids[4])))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .header(AUTHORIZATION, basic(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.unwrap();
    }
    let grown = server.rss_kib().saturating_sub(settled);
    assert!(
        grown < 10 * 1024,
        "20 password checks one after the other kept {} MiB",
        grown / 1024
    );
}
