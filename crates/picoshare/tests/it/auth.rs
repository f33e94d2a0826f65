//! Login, logout, session cookies and the admin-only routes.

use reqwest::header::{CONTENT_TYPE, COOKIE};

use crate::helpers::*;

/// A login body that is not JSON is rejected with 400 `malformed request`.
#[tokio::test]
async fn login_with_malformed_json_is_400() {
    let s = TestServer::start().await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .header(CONTENT_TYPE, "application/json")
        .body("{\"sharedSecretKey\": ")
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "malformed request").await;
}

/// An empty or missing `sharedSecretKey` is 400 `invalid shared secret`.
#[tokio::test]
async fn login_with_empty_or_missing_key_is_400() {
    let s = TestServer::start().await;
    for body in [r#"{"sharedSecretKey": ""}"#, "{}"] {
        let resp = plain_client()
            .post(s.url("/api/auth"))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            set_cookies(resp.headers())
                .iter()
                .all(|c| c.value.is_empty()),
            "no session for {body}"
        );
        assert_error(resp, 400, "invalid shared secret").await;
    }
}

/// A wrong passphrase is 401 `incorrect shared secret` and starts no session.
#[tokio::test]
async fn login_with_wrong_secret_is_401() {
    let s = TestServer::start().await;
    let c = client();
    let resp = c
        .post(s.url("/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": "not the secret" }))
        .send()
        .await
        .unwrap();
    assert!(
        set_cookies(resp.headers())
            .iter()
            .all(|c| c.value.is_empty()),
        "a failed login must not hand out a session cookie"
    );
    assert_error(resp, 401, "incorrect shared secret").await;
    let resp = c
        .delete(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "the failed login must not authenticate"
    );
}

/// The right passphrase gives 200 and a session cookie marked HttpOnly,
/// SameSite=Strict and Path=/, without Secure on plain HTTP.
#[tokio::test]
async fn login_sets_hardened_session_cookie() {
    let s = TestServer::start().await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = session_set_cookie(resp.headers());
    assert!(
        !cookie.value.is_empty(),
        "session cookie is empty: {cookie:?}"
    );
    assert!(cookie.has("HttpOnly"), "missing HttpOnly: {cookie:?}");
    assert!(
        cookie.has("SameSite=Strict"),
        "missing SameSite=Strict: {cookie:?}"
    );
    assert!(cookie.has("Path=/"), "missing Path=/: {cookie:?}");
    assert!(
        !cookie.has("Secure"),
        "Secure on plain HTTP without a proxy: {cookie:?}"
    );
}

/// Every login gets a fresh random session: two logins never share a cookie
/// value, and the value does not reveal the secret.
#[tokio::test]
async fn sessions_are_random_and_do_not_contain_the_secret() {
    let s = TestServer::start().await;
    let mut values = Vec::new();
    for _ in 0..2 {
        let resp = plain_client()
            .post(s.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        values.push(session_set_cookie(resp.headers()).value);
    }
    assert_ne!(
        values[0], values[1],
        "two logins got the same session cookie"
    );
    for v in &values {
        assert!(
            !v.contains(SECRET) && !v.contains("horse"),
            "cookie {v:?} contains the secret"
        );
        assert!(
            v.len() >= 16,
            "session cookie {v:?} is too short to be unguessable"
        );
    }
}

/// A logged-in client reaches admin routes; both sessions work side by side.
#[tokio::test]
async fn logged_in_client_reaches_admin_routes() {
    let s = TestServer::start().await;
    let a = s.admin_client().await;
    let b = s.admin_client().await;
    for c in [&a, &b] {
        let resp = c
            .delete(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
}

/// Logout answers 200, clears the cookie, and revokes the session on the
/// server: replaying the old cookie by hand no longer authenticates.
#[tokio::test]
async fn logout_revokes_the_session_server_side() {
    let s = TestServer::start().await;
    let cookie = s.session_cookie().await;
    let other = s.session_cookie().await;
    let probe = |cookie: String| {
        let url = s.url(&format!("/api/entry/{UNKNOWN_ID}"));
        async move {
            plain_client()
                .delete(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        probe(cookie.clone()).await.status().as_u16(),
        200,
        "fresh session should work"
    );

    let resp = plain_client()
        .delete(s.url("/api/auth"))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cleared = session_set_cookie(resp.headers());
    assert!(
        cleared.value.is_empty() || cleared.attr("Max-Age").as_deref() == Some("0"),
        "logout should clear the cookie, got {cleared:?}"
    );

    let resp = probe(cookie).await;
    assert_error(resp, 401, "Authentication required").await;
    assert_eq!(
        probe(other).await.status().as_u16(),
        200,
        "logging one session out must not end another"
    );
}

/// Without a session, POST /api/entry, PUT and DELETE /api/entry/{id} are
/// 401 `Authentication required`, and nothing is stored.
#[tokio::test]
async fn admin_routes_require_a_session() {
    let s = TestServer::start().await;
    let c = plain_client();
    let form = Multipart::new().file("file", "a.txt", Some("text/plain"), b"hello");
    let resp = s
        .post_entry(&c, &format!("?expiration={FAR_FUTURE}"), form)
        .await;
    assert_error(resp, 401, "Authentication required").await;

    let resp = c
        .put(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
        .json(&serde_json::json!({ "filename": "x.txt", "note": null }))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;

    let resp = c
        .delete(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;

    let resp = c
        .delete(s.url(&format!("/api/entry/{UNKNOWN_ID}")))
        .header(COOKIE, "sharedSecret=Zm9yZ2VkIGNvb2tpZSB2YWx1ZQ==")
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Authentication required").await;

    assert_eq!(s.entry_count(), 0);
    assert_eq!(s.orphan_chunks(), 0);
}

/// Behind a proxy (`PS_BEHIND_PROXY=1`) that says the client used HTTPS,
/// the session cookie is marked Secure.
#[tokio::test]
async fn cookie_is_secure_behind_https_proxy() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .header("X-Forwarded-Proto", "https")
        .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = session_set_cookie(resp.headers());
    assert!(
        cookie.has("Secure"),
        "expected Secure behind an HTTPS proxy: {cookie:?}"
    );
    assert!(
        cookie.has("HttpOnly") && cookie.has("SameSite=Strict"),
        "{cookie:?}"
    );
}

/// Without `PS_BEHIND_PROXY`, a client-supplied `X-Forwarded-Proto: https`
/// is not trusted: the cookie has no Secure flag.
#[tokio::test]
async fn forwarded_proto_is_ignored_without_proxy_setting() {
    let s = TestServer::start().await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .header("X-Forwarded-Proto", "https")
        .json(&serde_json::json!({ "sharedSecretKey": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = session_set_cookie(resp.headers());
    assert!(
        !cookie.has("Secure"),
        "Secure set from an untrusted header: {cookie:?}"
    );
}

/// After 10 wrong passphrases from one address, logins from it are refused
/// with 429 and `Retry-After`, even with the right passphrase; another address
/// (behind a proxy, by `X-Forwarded-For`) can still log in.
#[tokio::test]
async fn repeated_wrong_passphrases_are_rate_limited() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let c = plain_client();
    let attempt = |secret: &str, ip: &str| {
        c.post(s.url("/api/auth"))
            .header("X-Forwarded-For", ip)
            .json(&serde_json::json!({ "sharedSecretKey": secret }))
            .send()
    };
    for _ in 0..10 {
        let resp = attempt("wrong", "203.0.113.7").await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = attempt(&s.secret, "203.0.113.7").await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = header_str(resp.headers(), "retry-after").parse().unwrap();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("Too many wrong passphrases"), "{body}");
    let resp = attempt(&s.secret, "198.51.100.9").await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "another address is not affected"
    );
}

/// A script that logs in on many connections at once with the right
/// passphrase is never told it guessed wrong: 40 simultaneous logins from one
/// address all succeed (attempts in flight hold the limit's places, and the
/// ones that find them all held wait instead of getting 429).
#[tokio::test]
async fn simultaneous_right_logins_from_one_address_all_succeed() {
    let s = TestServer::start().await;
    let logins = (0..40).map(|_| {
        plain_client()
            .post(s.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": s.secret }))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// The login limit counts clients by address, never by the text of a
/// header: behind a proxy, 300 wrong passphrases each with a different
/// 256 KiB `X-Forwarded-For` that is no address, then 600 from as many
/// addresses, leave the server's memory (from /proc) nearly where it was,
/// and the limit holds no more keys than its capacity (set to 100 here).
#[tokio::test]
async fn the_login_limit_holds_bounded_memory_whatever_the_headers() {
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_BEHIND_PROXY", "1")
            .env("PS_METRICS_PUBLIC", "1")
            .env("PS_LIMITER_CAPACITY", "100"),
    )
    .await;
    let c = plain_client();
    let attempt = |xff: String| {
        c.post(s.url("/api/auth"))
            .header("X-Forwarded-For", xff)
            .json(&serde_json::json!({ "sharedSecretKey": "wrong" }))
            .send()
    };
    // Warm up the allocator with one request of each kind.
    attempt("x".repeat(256 * 1024)).await.unwrap();
    attempt("192.0.2.1".into()).await.unwrap();
    let before = s.rss_kib();
    for i in 0..300 {
        let junk = format!("{i}-{}", "x".repeat(256 * 1024 - 8));
        let status = attempt(junk).await.unwrap().status().as_u16();
        assert!(status == 401 || status == 429, "{status}");
    }
    for i in 0..600u32 {
        let status = attempt(format!("10.0.{}.{}", i / 256, i % 256))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 401);
    }
    let grown = s.rss_kib().saturating_sub(before);
    assert!(
        grown < 24 * 1024,
        "the server's memory grew by {grown} KiB after 900 wrong passphrases"
    );
    let keys = s
        .metric("picoshare_rate_limit_keys{limit=\"login\"}")
        .await
        .expect("the limit's size in /metrics");
    assert!(keys <= 100.0, "{keys} keys held");
}

/// An IPv6 client is limited by its /64, where one host can take a new
/// address for every guess: 10 wrong passphrases from ten addresses of one
/// /64 block the next from an eleventh; another /64 is not affected.
#[tokio::test]
async fn an_ipv6_client_is_limited_by_its_slash_64() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let c = plain_client();
    let attempt = |secret: &str, ip: String| {
        c.post(s.url("/api/auth"))
            .header("X-Forwarded-For", ip)
            .json(&serde_json::json!({ "sharedSecretKey": secret }))
            .send()
    };
    for i in 1..=10u32 {
        let ip = format!("2001:db8:1:2:{:x}::{i:x}", i * 4099);
        assert_eq!(attempt("wrong", ip).await.unwrap().status().as_u16(), 401);
    }
    let resp = attempt(&s.secret, "2001:db8:1:2:ffff:ffff:ffff:fffe".into())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429, "same /64");
    let resp = attempt(&s.secret, "2001:db8:1:3::1".into()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "another /64");
}

/// The login form posts (`method="post"`), so a passphrase never travels in
/// a URL; posted without its script, to `POST /login`, it logs in and goes
/// on to `next`, or shows the form again with the reason.
#[tokio::test]
async fn the_login_form_posts_and_works_without_its_script() {
    let s = TestServer::start().await;
    let page = plain_client()
        .get(s.url("/login?next=/files"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = page
        .split("<form")
        .nth(1)
        .and_then(|f| f.split('>').next())
        .unwrap_or_else(|| panic!("no form: {page}"))
        .to_owned();
    assert!(form.contains(r#"method="post""#), "{form}");
    assert!(form.contains(r#"action="/login""#), "{form}");
    assert!(page.contains(r#"name="next" value="/files""#), "{page}");

    let post = |body: String| {
        plain_client()
            .post(s.url("/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let wrong = post("next=%2Ffiles&passphrase=nope".into()).await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(set_cookies(wrong.headers()).is_empty());
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("incorrect shared secret"));

    let encoded: String =
        percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let right = post(format!("next=%2Ffiles&passphrase={encoded}"))
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 303);
    assert_eq!(header_str(right.headers(), "location"), "/files");
    let cookie = session_set_cookie(right.headers());
    assert!(cookie.has("HttpOnly") && cookie.has("SameSite=Strict"));
    let resp = plain_client()
        .get(s.url("/api/settings"))
        .header(COOKIE, format!("{}={}", cookie.name, cookie.value))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the session works");
    // A `next` elsewhere is not followed.
    let away = post(format!(
        "next=https%3A%2F%2Fevil.example%2F&passphrase={encoded}"
    ))
    .await
    .unwrap();
    assert_eq!(header_str(away.headers(), "location"), "/");
}
