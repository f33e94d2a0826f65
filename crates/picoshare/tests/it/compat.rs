//! What a client of the original meets and must keep meeting here: extended
//! file names in multipart uploads (C1), IPv4 clients recorded as IPv4 (C2),
//! plain HTTP behind a proxy sent to HTTPS (C3), the icons at fixed paths
//! (C4), the guest page with anything after the link's ID (C5), and unclean
//! paths redirected to their clean form (C6). Each was compared by hand with
//! the original Go server; these tests pin the behaviour down without it.

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::helpers::*;

async fn guest_link(s: &TestServer, c: &reqwest::Client) -> String {
    let resp = c
        .post(s.url("/api/guest-links"))
        .header(CONTENT_TYPE, "application/json")
        .body(
            json!({
                "label": "compat",
                "urlExpirationTime": FAR_FUTURE,
                "fileLifetime": "168h0m0s",
                "maxFileBytes": null,
                "maxFileUploads": null,
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A raw `GET` (or another method) of `target` exactly as written: the HTTP
/// client would resolve dot segments before sending.
async fn raw(s: &TestServer, method: &str, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", s.addr);
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    raw_exchange(s.addr, req.as_bytes()).await
}

/// C1: the name in `filename*` (RFC 7578 / RFC 5987, and RFC 2231
/// continuations) is the file's name, as the original stores it: .NET's
/// `HttpClient` and PowerShell's `-Form` send it beside an RFC 2047
/// `filename`, some clients alone. An extended name that does not decode
/// leaves the plain one in charge.
#[tokio::test]
async fn extended_filenames_are_the_files_names() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let cases = [
        // .NET HttpClient, PowerShell -Form.
        (
            "form-data; name=\"file\"; filename=\"=?utf-8?B?UsOpc3Vtw6kucGRm?=\"; filename*=utf-8''R%C3%A9sum%C3%A9.pdf",
            "Résumé.pdf",
        ),
        // `filename*` alone: a 400 "no such file" before.
        (
            "form-data; name=\"file\"; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf",
            "Résumé.pdf",
        ),
        (
            "form-data; name=\"file\"; filename*0*=utf-8''R%C3%A9; filename*1=\"sume.pdf\"",
            "Résume.pdf",
        ),
        // Reduced to its base name like any name.
        (
            "form-data; name=\"file\"; filename*=utf-8''dir%2Fb.pdf",
            "b.pdf",
        ),
        // ISO-8859-1 (the original reads UTF-8 and US-ASCII only).
        (
            "form-data; name=\"file\"; filename*=iso-8859-1'fr'R%E9sum%E9.pdf",
            "Résumé.pdf",
        ),
        // Not decodable: the plain name.
        (
            "form-data; name=\"file\"; filename=\"plain.pdf\"; filename*=utf-8''bad%ZZ.pdf",
            "plain.pdf",
        ),
        (
            "form-data; name=\"file\"; filename=\"f.pdf\"; filename*=utf-16''abc.pdf",
            "f.pdf",
        ),
    ];
    for (disposition, want) in cases {
        let form = Multipart::new().text("note", "n").file_with_disposition(
            disposition,
            Some("application/pdf"),
            b"%PDF-1.4 hello",
        );
        let id = upload_id(s.post_entry(&c, "", form).await).await;
        assert_eq!(
            s.entry(&id).expect("stored").filename,
            want,
            "{disposition}"
        );
        let resp = plain_client()
            .get(s.url(&format!("/-{id}")))
            .send()
            .await
            .unwrap();
        assert_disposition_names(resp.headers(), want);
    }
    // A guest upload reads the part the same way.
    let link = guest_link(&s, &c).await;
    let form = Multipart::new().file_with_disposition(
        "form-data; name=\"file\"; filename*=utf-8''%E2%82%AC-invoice.csv",
        Some("text/csv"),
        b"a,b\n",
    );
    let resp = plain_client()
        .post(s.url(&format!("/api/guest/{link}")))
        .header(CONTENT_TYPE, form.content_type())
        .header("Accept", "application/json")
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let id = upload_id(resp).await;
    assert_eq!(s.entry(&id).unwrap().filename, "€-invoice.csv");
}

/// C2: an IPv4 client of the dual-stack listener (the default, `[::]`) is
/// recorded as `127.0.0.1`, not `::ffff:127.0.0.1`, so the history and its
/// unique-address filter see one client as one address, here and after going
/// back to the original.
#[tokio::test]
async fn ipv4_clients_are_recorded_as_ipv4() {
    let s = TestServer::start_with(ServerOptions::new().listen("[::]:0")).await;
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "a.txt", b"hello", "text/plain", None, None)
        .await;
    let v4 = format!("http://127.0.0.1:{}/-{id}", s.addr.port());
    for _ in 0..2 {
        let resp = plain_client().get(&v4).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello");
    }
    let history = |unique: bool| {
        let c = c.clone();
        let url = s.url(&format!(
            "/api/entry/{id}/downloads{}",
            if unique { "?unique=true" } else { "" }
        ));
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    // A download is recorded just after its last byte leaves: wait for both.
    let mut all = history(false).await;
    for _ in 0..200 {
        if all.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        all = history(false).await;
    }
    assert_eq!(all.len(), 2, "{all:?}");
    for row in &all {
        assert_eq!(row["clientIp"], "127.0.0.1", "{row}");
    }
    assert_eq!(history(true).await.len(), 1);
    // An IPv6 client stays IPv6.
    let resp = plain_client()
        .get(s.url(&format!("/-{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello");
    for _ in 0..200 {
        if history(false).await.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ips: Vec<Value> = history(true)
        .await
        .iter()
        .map(|r| r["clientIp"].clone())
        .collect();
    assert_eq!(ips, [json!("::1"), json!("127.0.0.1")]);
}

/// C2 for rows an earlier version wrote: `::ffff:a.b.c.d` in a database's
/// history is rewritten once to `a.b.c.d` (what the original would read after
/// going back), and the unique filter counts that client once.
#[tokio::test]
async fn ipv4_mapped_rows_of_earlier_versions_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (db, manifest) = copy_fixture(dir.path());
    let id = manifest["entries"][0]["id"].as_str().unwrap().to_owned();
    {
        let conn = open_db_read_write(&db);
        conn.execute(
            "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
             VALUES (?1, '2026-12-01T10:00:00Z', '::ffff:192.0.2.7', 'curl/8.0'),
                    (?1, '2026-12-01T10:00:01Z', '192.0.2.7', 'curl/8.0'),
                    (?1, '2026-12-01T10:00:02Z', '::ffff:2001:db8::1', 'curl/8.0')",
            [&id],
        )
        .unwrap();
    }
    let s = TestServer::start_on_db(&db).await;
    let c = s.admin_client().await;
    let unique: Vec<Value> = c
        .get(s.url(&format!("/api/entry/{id}/downloads?unique=true")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mapped = unique
        .iter()
        .filter(|r| r["clientIp"] == "192.0.2.7")
        .count();
    assert_eq!(mapped, 1, "{unique:?}");
    assert!(
        unique.iter().all(|r| r["clientIp"] != "::ffff:192.0.2.7"),
        "{unique:?}"
    );
    let conn = s.db();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM downloads WHERE client_ip = '192.0.2.7'",
            []
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM downloads WHERE client_ip LIKE '::ffff:%.%'",
            []
        ),
        0
    );
    // Not an IPv4-mapped address: left as it was.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM downloads WHERE client_ip = '::ffff:2001:db8::1'",
            []
        ),
        1
    );
}

/// C3: a public page or download that the proxy says came over plain HTTP
/// gets a 301 to the same URL with https://, on the host the client asked
/// for, as the original answers; what came over HTTPS, or says nothing, is
/// served; the owner's pages, the API and other methods are never
/// redirected.
#[tokio::test]
async fn plain_http_behind_a_proxy_is_sent_to_https() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "a.txt", b"hello", "text/plain", None, None)
        .await;
    let link = guest_link(&s, &c).await;
    let host = s.addr.to_string();
    for path in [
        "/".to_owned(),
        "/login?next=%2Ffiles".to_owned(),
        format!("/-{id}"),
        format!("/-{id}/a.txt?x=1"),
        format!("/!{id}"),
        format!("/g/{link}"),
        format!("/g/{link}/anything"),
        format!("/v/{id}"),
    ] {
        for method in ["GET", "HEAD"] {
            let r = raw(&s, method, &path, &[("X-Forwarded-Proto", "http")]).await;
            assert_eq!(r.status, 301, "{method} {path}");
            assert_eq!(
                r.header("location"),
                Some(format!("https://{host}{path}").as_str()),
                "{method} {path}"
            );
        }
        // Over HTTPS, or nothing said: served.
        for headers in [&[("X-Forwarded-Proto", "https")][..], &[]] {
            let r = raw(&s, "GET", &path, headers).await;
            assert_ne!(r.status, 301, "{path} {headers:?}");
        }
    }
    // `Forwarded: proto=http`, and the first of a list (the client's side).
    for (name, value) in [
        ("Forwarded", "for=192.0.2.1;proto=http"),
        ("X-Forwarded-Proto", "http, https"),
    ] {
        let r = raw(&s, "GET", "/login", &[(name, value)]).await;
        assert_eq!(r.status, 301, "{name}: {value}");
    }
    // Not redirected: the owner's pages, the API, assets, other methods.
    let cookie = s.session_cookie().await;
    for (method, path) in [
        ("GET", "/files"),
        ("GET", "/api/entries"),
        ("GET", "/healthz"),
        ("GET", "/favicon.ico"),
        ("POST", "/api/auth"),
        ("POST", &format!("/-{id}")),
    ] {
        let r = raw(
            &s,
            method,
            path,
            &[("X-Forwarded-Proto", "http"), ("Cookie", &cookie)],
        )
        .await;
        assert_ne!(r.status, 301, "{method} {path}");
        assert!(r
            .header("location")
            .is_none_or(|l| !l.starts_with("https:")));
    }
}

/// C3: behind a trusted proxy the redirect goes to the host the proxy
/// reports; `PS_HTTPS_REDIRECT=0` turns the redirect off, for sites served
/// over plain HTTP through a proxy that says so.
#[tokio::test]
async fn the_https_redirect_uses_the_proxys_host_and_can_be_turned_off() {
    let s = TestServer::start_with(ServerOptions::new().env("PS_BEHIND_PROXY", "1")).await;
    let r = raw(
        &s,
        "GET",
        "/login",
        &[
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "files.example"),
        ],
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://files.example/login"));
    let r = raw(
        &s,
        "GET",
        "/",
        &[(
            "Forwarded",
            "for=192.0.2.1;proto=http;host=files.example:8443",
        )],
    )
    .await;
    assert_eq!(r.header("location"), Some("https://files.example:8443/"));

    let off = TestServer::start_with(ServerOptions::new().env("PS_HTTPS_REDIRECT", "0")).await;
    for path in ["/", "/login"] {
        let r = raw(&off, "GET", path, &[("X-Forwarded-Proto", "http")]).await;
        assert_eq!(r.status, 200, "{path}");
    }
}

/// C4: the icons that browsers, phones and tiles ask for at fixed paths are
/// served without a login, with their types; they are the embedded assets,
/// and every page links the touch icon and the manifest.
#[tokio::test]
async fn icons_are_served_at_their_fixed_paths() {
    let s = TestServer::start().await;
    for (name, kind) in [
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("favicon-16x16.png", "image/png"),
        ("favicon-32x32.png", "image/png"),
        ("apple-touch-icon.png", "image/png"),
        ("android-chrome-192x192.png", "image/png"),
        ("android-chrome-384x384.png", "image/png"),
        ("mstile-150x150.png", "image/png"),
        ("safari-pinned-tab.svg", "image/svg+xml"),
        ("browserconfig.xml", "application/xml; charset=utf-8"),
        ("site.webmanifest", "application/manifest+json"),
    ] {
        let resp = plain_client()
            .get(s.url(&format!("/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        assert_eq!(header_str(resp.headers(), "content-type"), kind, "{name}");
        assert_eq!(
            header_str(resp.headers(), "cache-control"),
            "public, max-age=3600"
        );
        let body = resp.bytes().await.unwrap();
        let asset = plain_client()
            .get(s.url(&format!("/static/icons/{name}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(!body.is_empty());
        assert_eq!(body, asset, "{name}");
        if kind == "image/png" {
            assert_eq!(&body[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        }
    }
    let manifest: Value = plain_client()
        .get(s.url("/site.webmanifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["name"], "PicoShare");
    let page = plain_client()
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<link rel="apple-touch-icon" href="/apple-touch-icon.png">"#));
    assert!(page.contains(r#"<link rel="manifest" href="/site.webmanifest">"#));
}

/// C5: the guest page is served whatever follows the link's ID, as the
/// original serves it; a bad or unknown ID is still refused.
#[tokio::test]
async fn the_guest_page_ignores_what_follows_the_id() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let link = guest_link(&s, &c).await;
    for suffix in ["", "/", "/anything", "/a/b.txt"] {
        let resp = plain_client()
            .get(s.url(&format!("/g/{link}{suffix}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{suffix}");
        let html = resp.text().await.unwrap();
        assert!(
            html.contains(&format!("/api/guest/{link}")),
            "{suffix}: not the guest upload page"
        );
    }
    let resp = plain_client()
        .get(s.url("/g/not-an-id/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = plain_client()
        .get(s.url("/g/aaaaaaaaaaaaaaaa/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

/// C6: a path with repeated slashes or dot segments is redirected to its
/// clean form (query kept), as the original does: 301 for GET and HEAD, 308
/// (method and body kept) for the rest. A trailing slash is kept, so
/// `/files/` stays a 404 as there.
#[tokio::test]
async fn unclean_paths_are_redirected_to_their_clean_form() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = s
        .upload(&c, "a.txt", b"hello", "text/plain", None, None)
        .await;
    let dl = format!("/-{id}");
    for (method, target, status, location) in [
        ("GET", format!("/{dl}"), 301, dl.clone()),
        ("HEAD", format!("/{dl}"), 301, dl.clone()),
        ("GET", "//files".to_owned(), 301, "/files".to_owned()),
        (
            "GET",
            "//files?x=1".to_owned(),
            301,
            "/files?x=1".to_owned(),
        ),
        ("GET", "/./files".to_owned(), 301, "/files".to_owned()),
        ("GET", "/a/../files".to_owned(), 301, "/files".to_owned()),
        ("GET", "/%2e/files".to_owned(), 301, "/files".to_owned()),
        ("GET", format!("{dl}/../login"), 301, "/login".to_owned()),
        ("GET", "///".to_owned(), 301, "/".to_owned()),
        (
            "POST",
            "//api/entry".to_owned(),
            308,
            "/api/entry".to_owned(),
        ),
        (
            "PUT",
            "/api//settings".to_owned(),
            308,
            "/api/settings".to_owned(),
        ),
    ] {
        let r = raw(&s, method, &target, &[]).await;
        assert_eq!(r.status, status, "{method} {target}");
        assert_eq!(
            r.header("location"),
            Some(location.as_str()),
            "{method} {target}"
        );
        // The redirect carries the security headers like any reply.
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // Clean paths are served as they are.
    let r = raw(&s, "GET", &dl, &[]).await;
    assert_eq!(r.status, 200);
    let r = raw(&s, "GET", "/files/", &[]).await;
    assert_eq!(r.status, 404);
}
