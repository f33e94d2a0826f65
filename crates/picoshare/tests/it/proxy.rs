//! Behind a real reverse proxy (Debian's nginx on loopback, see
//! `helpers::nginx`): the client's address is the one the proxy saw, whatever
//! the client writes in `X-Forwarded-For` or `X-Real-IP` (for the login
//! limit and the download history), through a chain of proxies too; and a
//! caching proxy (`proxy_cache`) never keeps a protected file, a limited
//! one, or a public one for longer than it stays public.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, COOKIE};
use reqwest::Client;

use crate::helpers::*;
use crate::limits::upload_with;

/// nginx's usual forwarding: the `Host` as the browser sent it, the address
/// it saw appended to `X-Forwarded-For` (`$proxy_add_x_forwarded_for`: the
/// client's own header, if any, comes first), the scheme.
const APPEND_XFF: &str = "proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;";

/// A site served over plain HTTP only (the proxies here say
/// `X-Forwarded-Proto: http`): no redirect to https.
fn plain_http_site() -> ServerOptions {
    ServerOptions::new().env("PS_HTTPS_REDIRECT", "0")
}

/// A cookie-less client whose connections come from `ip` (any 127.x address
/// works on the loopback interface).
fn client_from(ip: &str) -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Tries a passphrase through `url` (the proxy's or the server's `/api/auth`).
async fn login_status(c: &Client, url: &str, secret: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = c
        .post(url)
        .json(&serde_json::json!({ "sharedSecretKey": secret }));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The addresses of `id`'s download history, once it holds `n` rows.
async fn history_ips(s: &TestServer, admin: &Client, id: &str, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let rows: Vec<serde_json::Value> = admin
            .get(s.url(&format!("/api/entry/{id}/downloads")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if rows.len() >= n {
            return rows
                .iter()
                .map(|r| r["clientIp"].as_str().unwrap().to_owned())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the download history of {id} never reached {n} rows");
}

/// Through nginx with `$proxy_add_x_forwarded_for`, a client that writes
/// its own `X-Forwarded-For` (a new address for every attempt) or
/// `X-Real-IP` is still the address nginx saw: its download is recorded
/// under it, and its 11th wrong passphrase is refused with 429, the right
/// one too.
#[tokio::test]
async fn behind_nginx_the_client_cannot_choose_its_address() {
    let s = TestServer::start_with(plain_http_site().env("PS_BEHIND_PROXY", "1")).await;
    let proxy = Nginx::start(
        s.addr,
        &NginxSite {
            location: APPEND_XFF.into(),
            ..NginxSite::default()
        },
    );
    let admin = s.admin_client().await;
    let id = upload_with(&s, &[], "", b"through the proxy").await;
    let c = client_from("127.0.0.7");
    for forged in [
        ("X-Forwarded-For", "203.0.113.66"),
        ("X-Real-IP", "198.51.100.66"),
    ] {
        let resp = c
            .get(proxy.url(&format!("/-{id}")))
            .header(forged.0, forged.1)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", proxy.error_log());
    }
    assert_eq!(
        history_ips(&s, &admin, &id, 2).await,
        ["127.0.0.7", "127.0.0.7"],
        "the history records the address nginx saw"
    );

    let auth = proxy.url("/api/auth");
    for i in 0..10 {
        let xff = format!("203.0.113.{i}, 198.51.100.{i}");
        let status = login_status(&c, &auth, "wrong", &[("X-Forwarded-For", &xff)]).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    for i in 10..20 {
        let xff = format!("203.0.113.{i}");
        let status = login_status(&c, &auth, "wrong", &[("X-Forwarded-For", &xff)]).await;
        assert_eq!(
            status, 429,
            "attempt {i}: a new X-Forwarded-For is no new client"
        );
    }
    assert_eq!(
        login_status(&c, &auth, &s.secret, &[("X-Forwarded-For", "192.0.2.1")]).await,
        429,
        "blocked, even with the right passphrase"
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(
        login_status(&client_from("127.0.0.8"), &auth, &s.secret, &[]).await,
        200
    );
}

/// Two proxies in a row (an outer one, as a CDN would be, connecting from
/// 127.0.0.2, then nginx next to the server on 127.0.0.1), both appending:
/// with both listed in `PS_TRUSTED_PROXIES` the client is the address the
/// outer one saw. A client that reaches the server directly, from an address
/// that is not listed, is not believed at all.
#[tokio::test]
async fn trusted_proxies_are_skipped_and_others_are_not_believed() {
    let s = TestServer::start_with(
        plain_http_site().env("PS_TRUSTED_PROXIES", "127.0.0.1, 127.0.0.2/32"),
    )
    .await;
    let admin = s.admin_client().await;
    let inner = Nginx::start(
        s.addr,
        &NginxSite {
            location: APPEND_XFF.into(),
            ..NginxSite::default()
        },
    );
    let outer = Nginx::start(
        inner.addr,
        &NginxSite {
            location: format!("{APPEND_XFF}\n            proxy_bind 127.0.0.2;"),
            listen_ip: "127.0.0.3".into(),
            ..NginxSite::default()
        },
    );
    let id = upload_with(&s, &[], "", b"two proxies").await;
    let resp = client_from("127.0.0.4")
        .get(outer.url(&format!("/-{id}")))
        .header("X-Forwarded-For", "203.0.113.66")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", outer.error_log());
    assert_eq!(history_ips(&s, &admin, &id, 1).await, ["127.0.0.4"]);

    // Straight to the server from an address no proxy has.
    let direct = client_from("127.0.0.5");
    let resp = direct
        .get(s.url(&format!("/-{id}")))
        .header("X-Forwarded-For", "203.0.113.67")
        .header("X-Real-IP", "203.0.113.68")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ips = history_ips(&s, &admin, &id, 2).await;
    assert_eq!(ips[0], "127.0.0.5", "{ips:?}");
    // Nor its scheme: no Secure cookie for a plain-HTTP client that says https.
    let resp = direct
        .post(s.url("/api/auth"))
        .header("X-Forwarded-Proto", "https")
        .json(&serde_json::json!({ "sharedSecretKey": s.secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(!session_set_cookie(resp.headers()).has("Secure"));
}

/// A proxy that sets only `X-Real-IP` (a common nginx snippet) passes a
/// client's own `X-Forwarded-For` on untouched: with
/// `PS_CLIENT_IP_HEADER=X-Real-IP` that header is not read at all.
#[tokio::test]
async fn a_named_header_is_the_only_one_read() {
    let s = TestServer::start_with(
        ServerOptions::new()
            .env("PS_BEHIND_PROXY", "1")
            .env("PS_CLIENT_IP_HEADER", "X-Real-IP"),
    )
    .await;
    let proxy = Nginx::start(
        s.addr,
        &NginxSite {
            location: "proxy_set_header X-Real-IP $remote_addr;".into(),
            ..NginxSite::default()
        },
    );
    let admin = s.admin_client().await;
    let id = upload_with(&s, &[], "", b"x-real-ip").await;
    let resp = client_from("127.0.0.9")
        .get(proxy.url(&format!("/-{id}")))
        .header("X-Forwarded-For", "203.0.113.66")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(history_ips(&s, &admin, &id, 1).await, ["127.0.0.9"]);
}

/// nginx with a cache that keeps every reply for 10 minutes unless the
/// server's `Cache-Control` says otherwise, and that says whether a reply
/// came from it (`X-Cache`).
fn caching_proxy(upstream: SocketAddr) -> Nginx {
    Nginx::start(
        upstream,
        &NginxSite {
            http: "proxy_cache_path {dir}/cache keys_zone=files:1m;".into(),
            location: "proxy_set_header Host $http_host;
            proxy_cache files;
            proxy_cache_valid any 10m;
            add_header X-Cache $upstream_cache_status always;"
                .into(),
            ..NginxSite::default()
        },
    )
}

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x:{password}"))
    )
}

/// Through a caching nginx: a password-protected file fetched with its
/// password (Basic auth, the form's cookie) or by the owner is never handed
/// to an anonymous visitor from the cache; a one-shot file is served once,
/// then 410 (never again from the cache); a public file is not served from
/// the cache once it has a password.
#[tokio::test]
async fn a_caching_proxy_never_keeps_protected_or_limited_files() {
    let s = TestServer::start().await;
    let proxy = caching_proxy(s.addr);
    let anonymous = |path: String| {
        let url = proxy.url(&path);
        async move { plain_client().get(url).send().await.unwrap() }
    };
    let secret_bytes = b"%PDF-1.7 the contract".to_vec();
    let protected = upload_with(&s, &[("password", "hunter2")], "", &secret_bytes).await;
    let path = format!("/-{protected}");
    let owner_cookie = s.session_cookie().await;
    for (how, header) in [
        ("Basic auth", (AUTHORIZATION.as_str(), basic("hunter2"))),
        (
            "the owner's session",
            (COOKIE.as_str(), owner_cookie.clone()),
        ),
    ] {
        let resp = plain_client()
            .get(proxy.url(&path))
            .header(header.0, &header.1)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{how}");
        assert_eq!(
            header_str(resp.headers(), "cache-control"),
            "private, no-store",
            "{how}"
        );
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &secret_bytes[..]);
        let resp = anonymous(path.clone()).await;
        let cached = header_str(resp.headers(), "x-cache");
        assert_eq!(resp.status().as_u16(), 401, "after {how} (cache: {cached})");
        assert_ne!(cached, "HIT", "after {how}");
        assert!(!resp.bytes().await.unwrap().starts_with(b"%PDF"));
    }

    // One download allowed: the second request reaches the server (410).
    let one_shot = upload_with(&s, &[("maxDownloads", "1")], "", b"once only").await;
    let first = anonymous(format!("/-{one_shot}")).await;
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.bytes().await.unwrap().as_ref(), b"once only");
    for _ in 0..3 {
        let again = anonymous(format!("/-{one_shot}")).await;
        let cached = header_str(again.headers(), "x-cache");
        assert_eq!(again.status().as_u16(), 410, "cache: {cached}");
    }

    // A public file: kept by no cache either, so a password given later
    // holds at once.
    let public = upload_with(&s, &[], "", b"public for now").await;
    for _ in 0..2 {
        let resp = anonymous(format!("/-{public}")).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(header_str(resp.headers(), "cache-control"), "no-cache");
        assert_ne!(header_str(resp.headers(), "x-cache"), "HIT");
    }
    let admin = s.admin_client().await;
    let r = admin
        .put(s.url(&format!("/api/entry/{public}")))
        .json(&serde_json::json!({"filename": "limited.bin", "password": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let resp = anonymous(format!("/-{public}")).await;
    assert_eq!(resp.status().as_u16(), 401);
}
