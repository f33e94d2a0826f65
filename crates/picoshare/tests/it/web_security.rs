//! Web security: cross-site request forgery is refused beyond SameSite
//! cookies, every response carries the security headers, uploaded documents
//! never run script on the site's origin, and sessions end after 30 days.

use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::json;

use crate::helpers::*;

const EVIL: &str = "https://evil.example";

/// The state-changing admin requests a forger would try, each as a fresh
/// request builder with the session cookie set.
fn admin_requests(s: &TestServer, cookie: &str, id: &str) -> Vec<(&'static str, RequestBuilder)> {
    let c = plain_client();
    let form = Multipart::new().file("file", "x.txt", Some("text/plain"), b"forged");
    vec![
        (
            "POST /api/entry",
            c.post(s.url("/api/entry"))
                .header(CONTENT_TYPE, form.content_type())
                .body(form.finish()),
        ),
        (
            "PUT /api/entry/{id}",
            c.put(s.url(&format!("/api/entry/{id}")))
                .json(&json!({ "filename": "renamed.txt", "note": null })),
        ),
        (
            "DELETE /api/entry/{id}",
            c.delete(s.url(&format!("/api/entry/{id}"))),
        ),
        (
            "PUT /api/settings",
            c.put(s.url("/api/settings"))
                .json(&json!({ "defaultExpirationDays": 1, "defaultNeverExpire": false })),
        ),
        (
            "POST /api/guest-links",
            c.post(s.url("/api/guest-links")).json(&json!({
                "label": "forged", "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "168h0m0s",
                "maxFileBytes": null, "maxFileUploads": null
            })),
        ),
        ("POST /api/admin/gc", c.post(s.url("/api/admin/gc"))),
        ("DELETE /api/auth", c.delete(s.url("/api/auth"))),
        // Methods and routes that do not exist (yet) are covered too.
        (
            "PATCH /api/entry/{id}",
            c.patch(s.url(&format!("/api/entry/{id}"))),
        ),
        (
            "PATCH /api/tus/x",
            c.request(Method::PATCH, s.url("/api/tus/x")),
        ),
    ]
    .into_iter()
    .map(|(name, r)| (name, r.header(COOKIE, cookie)))
    .collect()
}

async fn status_and_body(resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// What the database looks like to a forger: the entry and its name, the
/// settings, the guest links, whether the session still works.
async fn snapshot(s: &TestServer, cookie: &str, id: &str) -> (Option<String>, String, i64, u16) {
    let name = s.entry(id).map(|e| e.filename);
    let settings = plain_client()
        .get(s.url("/api/settings"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let links = count(&s.db(), "SELECT count(*) FROM guest_links", []);
    let session = plain_client()
        .get(s.url("/api/entries"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (name, settings, links, session)
}

/// State-changing requests that carry the session cookie but come from
/// another origin (by `Sec-Fetch-Site`, `Origin`, `Origin: null` or
/// `Referer`) get 403 with a message, and change nothing.
#[tokio::test]
async fn cross_origin_requests_with_a_session_are_refused() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "keep.txt", b"keep", "text/plain", None, None)
        .await;
    let cookie = s.session_cookie().await;
    let before = snapshot(&s, &cookie, &id).await;
    assert_eq!(before.3, 200);
    let forgeries: [&[(&str, &str)]; 5] = [
        &[("Origin", EVIL)],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site"), ("Origin", EVIL)],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Referer", "https://evil.example/page.html")],
    ];
    for headers in forgeries {
        for (name, mut req) in admin_requests(&s, &cookie, &id) {
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let (status, body) = status_and_body(req.send().await.unwrap()).await;
            assert_eq!(status, 403, "{name} with {headers:?}: {body}");
            assert!(
                body.starts_with("Cross-origin request refused: ") && body.ends_with('\n'),
                "{name} with {headers:?}: {body:?}"
            );
        }
    }
    assert_eq!(
        snapshot(&s, &cookie, &id).await,
        before,
        "a forged request changed something"
    );
    assert_eq!(s.entry_count(), 1);
}

/// The same requests from the site's own pages (same `Origin`, or
/// `Sec-Fetch-Site: same-origin`, or a same-origin `Referer`) and from clients
/// that send none of these headers (curl, scripts, tus clients) work.
#[tokio::test]
async fn same_origin_and_header_less_requests_work() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let own = s.base.clone();
    let referer = format!("{own}/files");
    let ways: [&[(&str, &str)]; 5] = [
        &[],
        &[("Origin", own.as_str())],
        &[("Sec-Fetch-Site", "same-origin"), ("Origin", own.as_str())],
        &[("Sec-Fetch-Site", "same-origin")],
        &[("Referer", referer.as_str())],
    ];
    for headers in ways {
        let id = s.upload(&c, "a.txt", b"a", "text/plain", None, None).await;
        let cookie = s.session_cookie().await;
        for (name, mut req) in admin_requests(&s, &cookie, &id) {
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let (status, body) = status_and_body(req.send().await.unwrap()).await;
            assert_ne!(status, 403, "{name} with {headers:?}: {body}");
            assert!(status < 500, "{name} with {headers:?}: {status} {body}");
            if !name.starts_with("PATCH") && name != "POST /api/entry" {
                assert_eq!(status, 200, "{name} with {headers:?}: {body}");
            }
        }
    }
}

/// Behind a reverse proxy (`PS_BEHIND_PROXY`), the origin the browser used is
/// the one the proxy reports (`X-Forwarded-Host` and `X-Forwarded-Proto`, or
/// `Forwarded`), so same-origin requests through the proxy work and others
/// are refused; without `PS_BEHIND_PROXY` those headers are not trusted.
#[tokio::test]
async fn behind_a_proxy_the_forwarded_origin_counts() {
    let proxied = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let direct = TestServer::start().await;
    let x_forwarded: &[(&str, &str)] = &[
        ("X-Forwarded-Host", "files.example"),
        ("X-Forwarded-Proto", "https"),
    ];
    let forwarded: &[(&str, &str)] =
        &[("Forwarded", "for=192.0.2.7;host=files.example;proto=https")];
    for proxy_headers in [x_forwarded, forwarded] {
        for (s, origin, expect) in [
            (&proxied, "https://files.example", 200),
            (&proxied, "http://files.example", 403),
            (&proxied, EVIL, 403),
            (&direct, "https://files.example", 403),
        ] {
            let cookie = s.session_cookie().await;
            let mut req = plain_client()
                .post(s.url("/api/admin/gc"))
                .header(COOKIE, &cookie)
                .header("Origin", origin);
            for (k, v) in proxy_headers {
                req = req.header(*k, *v);
            }
            let (status, body) = status_and_body(req.send().await.unwrap()).await;
            assert_eq!(status, expect, "{origin} via {proxy_headers:?}: {body}");
        }
    }
    // A proxy that passes the original Host needs no forwarding headers.
    let cookie = proxied.session_cookie().await;
    let resp = plain_client()
        .post(proxied.url("/api/admin/gc"))
        .header(COOKIE, &cookie)
        .header("Host", "files.example")
        .header("Origin", "https://files.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Requests without a session cookie carry nothing to forge and are not
/// checked: guest uploads work from any page (a guest link is a public
/// capability), and so does logging in.
#[tokio::test]
async fn requests_without_a_session_are_not_checked() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(&json!({
            "label": "x", "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "168h0m0s",
            "maxFileBytes": null, "maxFileUploads": null
        }))
        .send()
        .await
        .unwrap();
    let link: serde_json::Value = resp.json().await.unwrap();
    let link = link["id"].as_str().unwrap();
    let form = Multipart::new().file("file", "g.txt", Some("text/plain"), b"guest");
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header("Origin", EVIL)
        .header("Sec-Fetch-Site", "cross-site")
        .header("Accept", "application/json")
        .header(CONTENT_TYPE, form.content_type())
        .body(form.finish())
        .send()
        .await
        .unwrap();
    upload_id(resp).await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .header("Origin", EVIL)
        .json(&json!({ "sharedSecretKey": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// Checks the headers every non-download response must carry.
fn assert_security_headers(what: &str, headers: &reqwest::header::HeaderMap) {
    assert_eq!(
        header_str(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header_str(headers, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header_str(headers, "referrer-policy"),
        "same-origin",
        "{what}"
    );
    assert_eq!(
        header_str(headers, "cross-origin-resource-policy"),
        "same-origin",
        "{what}"
    );
    let csp = header_str(headers, "content-security-policy");
    if what.contains("asset") && csp.is_empty() {
        // Our own static files carry no CSP (they are not pages).
        return;
    }
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(
        csp.contains("default-src 'none'") || csp.contains("default-src 'self'"),
        "{what}: CSP {csp:?}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp:?}"
    );
    if header_str(headers, "content-type").starts_with("text/html") {
        assert_eq!(
            header_str(headers, "cross-origin-opener-policy"),
            "same-origin",
            "{what}"
        );
    }
}

/// Every response but downloads (pages, error pages, 404s, redirects, API
/// replies and errors, static assets, refusals by the CSRF check) carries
/// nosniff, `X-Frame-Options: DENY`, a Referrer-Policy, a CSP that forbids
/// framing (except our own static files), and HTML also
/// `Cross-Origin-Opener-Policy`.
#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let id = s
        .upload(&admin, "a.txt", b"a", "text/plain", None, None)
        .await;
    let anon = plain_client();
    let cookie = s.session_cookie().await;
    let requests: Vec<(&str, RequestBuilder, u16)> = vec![
        ("landing page", anon.get(s.url("/")), 200),
        ("login page", anon.get(s.url("/login")), 200),
        ("upload page", admin.get(s.url("/")), 200),
        ("files page", admin.get(s.url("/files")), 200),
        (
            "file info page",
            admin.get(s.url(&format!("/files/{id}/info"))),
            200,
        ),
        (
            "unknown file page",
            admin.get(s.url(&format!("/files/{UNKNOWN_ID}/info"))),
            404,
        ),
        (
            "malformed file page",
            admin.get(s.url("/files/short/info")),
            400,
        ),
        (
            "unknown guest page",
            anon.get(s.url("/g/aaaaaaaaaaaaaaaa")),
            404,
        ),
        ("login redirect", anon.get(s.url("/files")), 303),
        ("404", anon.get(s.url("/no/such/page")), 404),
        ("405", anon.patch(s.url("/api/settings")), 405),
        ("static asset", anon.get(s.url("/static/app.js")), 200),
        ("unknown asset", anon.get(s.url("/static/nope.js")), 404),
        ("JSON", admin.get(s.url("/api/entries")), 200),
        ("401", anon.get(s.url("/api/entries")), 401),
        ("400", anon.post(s.url("/api/auth")).body("{"), 400),
        (
            "413",
            anon.post(s.url("/api/auth")).body(vec![b' '; 100 * 1024]),
            413,
        ),
        ("metrics 401", anon.get(s.url("/metrics")), 401),
        (
            "CSRF refusal",
            anon.post(s.url("/api/admin/gc"))
                .header(COOKIE, &cookie)
                .header("Origin", EVIL),
            403,
        ),
    ];
    for (what, req, status) in requests {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        assert_security_headers(what, resp.headers());
    }
}

/// Pages and JSON replies are never cached (`Cache-Control: no-store`):
/// they show the owner's files and settings as they are now. Downloads are
/// cacheable (their validators are `ETag` and `Last-Modified`).
#[tokio::test]
async fn pages_and_api_replies_are_not_cached_and_downloads_may_be() {
    let s = TestServer::start().await;
    let admin = s.admin_client().await;
    let id = s
        .upload(&admin, "a.txt", b"a", "text/plain", None, None)
        .await;
    let anon = plain_client();
    let form = Multipart::new().file("file", "b.txt", Some("text/plain"), b"b");
    let requests: Vec<(&str, RequestBuilder)> = vec![
        ("landing page", anon.get(s.url("/"))),
        ("login page", anon.get(s.url("/login"))),
        ("upload page", admin.get(s.url("/"))),
        ("files page", admin.get(s.url("/files"))),
        ("settings page", admin.get(s.url("/settings"))),
        ("view page", anon.get(s.url(&format!("/v/{id}")))),
        ("file list", admin.get(s.url("/api/entries"))),
        ("settings", admin.get(s.url("/api/settings"))),
        ("system", admin.get(s.url("/api/system"))),
        ("tokens", admin.get(s.url("/api/tokens"))),
        (
            "history",
            admin.get(s.url(&format!("/api/entry/{id}/downloads"))),
        ),
        (
            "upload reply",
            admin
                .post(s.url(&format!("/api/entry?expiration={FAR_FUTURE}")))
                .header(CONTENT_TYPE, form.content_type())
                .body(form.finish()),
        ),
    ];
    for (what, req) in requests {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{what}");
        assert_eq!(
            header_str(resp.headers(), "cache-control"),
            "no-store",
            "{what}"
        );
    }
    // A public download may be kept, but must be checked with the server
    // before each use (a 304 with its ETag), so that a deleted or newly
    // protected file is never served from a cache.
    let resp = anon.get(s.url(&format!("/-{id}"))).send().await.unwrap();
    assert_eq!(header_str(resp.headers(), "cache-control"), "no-cache");
    assert!(resp.headers().get("etag").is_some());
}

/// An uploaded HTML or SVG document is served with `Content-Security-Policy:
/// sandbox` (no `allow-scripts`, no `allow-same-origin`) on every download
/// route and form (GET, HEAD, ranges, 304), so its script can never run on
/// the site's origin; with nosniff, and no Referer leaking the link.
#[tokio::test]
async fn uploaded_documents_are_sandboxed() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let html =
        b"<!doctype html><script>fetch('/api/entries').then(r=>r.text()).then(alert)</script>";
    let svg =
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(document.domain)</script></svg>";
    let html_id = s
        .upload(&c, "evil.html", html, "text/html", None, None)
        .await;
    let svg_id = s
        .upload(&c, "evil.svg", svg, "image/svg+xml", None, None)
        .await;
    // Also stored as octet-stream, where the type is inferred from the name.
    let inferred_id = s
        .upload(&c, "evil.htm", html, "application/octet-stream", None, None)
        .await;
    for id in [&html_id, &svg_id, &inferred_id] {
        let etag = header_str(
            plain_client()
                .get(s.url(&format!("/-{id}")))
                .send()
                .await
                .unwrap()
                .headers(),
            "etag",
        );
        let anon = plain_client();
        let requests: Vec<(&str, RequestBuilder)> = vec![
            ("GET /-id", anon.get(s.url(&format!("/-{id}")))),
            (
                "GET /-id/name",
                anon.get(s.url(&format!("/-{id}/evil.html"))),
            ),
            ("GET /!id", anon.get(s.url(&format!("/!{id}")))),
            ("HEAD", anon.head(s.url(&format!("/-{id}")))),
            (
                "range",
                anon.get(s.url(&format!("/-{id}")))
                    .header("Range", "bytes=0-9"),
            ),
            (
                "ranges",
                anon.get(s.url(&format!("/-{id}")))
                    .header("Range", "bytes=0-1,4-5"),
            ),
            (
                "304",
                anon.get(s.url(&format!("/-{id}")))
                    .header("If-None-Match", etag.as_str()),
            ),
        ];
        for (what, req) in requests {
            let resp = req.send().await.unwrap();
            assert!(resp.status().as_u16() < 400, "{what} {id}");
            let h = resp.headers();
            let csp = header_str(h, "content-security-policy");
            assert!(
                csp.split(';').any(|d| d.trim() == "sandbox"),
                "{what} {id}: CSP {csp:?}"
            );
            assert!(
                !csp.contains("allow-scripts") && !csp.contains("allow-same-origin"),
                "{what} {id}: CSP {csp:?}"
            );
            assert_eq!(header_str(h, "x-content-type-options"), "nosniff", "{what}");
            assert_eq!(header_str(h, "referrer-policy"), "no-referrer", "{what}");
        }
    }
}

/// A session lasts 30 days: the cookie says so (`Max-Age`), and the server
/// itself stops accepting the session after that, by its own clock.
#[tokio::test]
async fn sessions_expire_after_30_days() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock");
    let start = chrono::Utc::now();
    std::fs::write(&clock, start.to_rfc3339()).unwrap();
    let s = TestServer::start_with(
        ServerOptions::new()
            .arg("--clock-file")
            .arg(clock.to_str().unwrap()),
    )
    .await;
    let resp = plain_client()
        .post(s.url("/api/auth"))
        .json(&json!({ "sharedSecretKey": SECRET }))
        .send()
        .await
        .unwrap();
    let cookie = session_set_cookie(resp.headers());
    assert_eq!(cookie.attr("Max-Age").as_deref(), Some("2592000"));
    let header = format!("{}={}", cookie.name, cookie.value);
    let probe = || {
        plain_client()
            .get(s.url("/api/entries"))
            .header(COOKIE, &header)
            .send()
    };
    std::fs::write(&clock, (start + chrono::Duration::days(29)).to_rfc3339()).unwrap();
    assert_eq!(probe().await.unwrap().status().as_u16(), 200);
    std::fs::write(
        &clock,
        (start + chrono::Duration::days(30) + chrono::Duration::minutes(1)).to_rfc3339(),
    )
    .unwrap();
    let resp = probe().await.unwrap();
    assert_error(resp, 401, "Authentication required").await;
}

/// Behind a proxy that reports HTTPS with the standard `Forwarded` header
/// (rather than `X-Forwarded-Proto`), the session cookie is also `Secure`.
#[tokio::test]
async fn cookie_is_secure_behind_a_forwarded_https_proxy() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    for (header, value, secure) in [
        (
            "Forwarded",
            "for=192.0.2.7;proto=https;host=files.example",
            true,
        ),
        ("Forwarded", "for=192.0.2.7;proto=http", false),
        ("X-Forwarded-Proto", "https", true),
    ] {
        let resp = plain_client()
            .post(s.url("/api/auth"))
            .header(header, value)
            .json(&json!({ "sharedSecretKey": SECRET }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let cookie = session_set_cookie(resp.headers());
        assert_eq!(
            cookie.has("Secure"),
            secure,
            "{header}: {value}: {cookie:?}"
        );
    }
}
