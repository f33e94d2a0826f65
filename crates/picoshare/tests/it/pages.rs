//! The server side of the landing, login and upload pages: status codes,
//! the Content-Security-Policy nonce on every script, the guest upload page
//! and its "Guest Link Inactive" variant. (The browser flows are covered by
//! the end-to-end suite.)

use serde_json::json;

use crate::helpers::*;

/// The nonce in a page's CSP `script-src`.
fn csp_nonce(csp: &str) -> String {
    let start = csp.find("'nonce-").expect("CSP has a nonce") + "'nonce-".len();
    let len = csp[start..].find('\'').expect("nonce ends");
    csp[start..start + len].to_owned()
}

/// Checks the CSP and that every `<script` in `html` carries its nonce.
fn assert_scripts_have_nonce(headers: &reqwest::header::HeaderMap, html: &str) {
    let csp = header_str(headers, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp_nonce(&csp);
    assert!(nonce.len() >= 16, "{nonce}");
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page has scripts");
    for s in scripts {
        let tag = &s[..s.find('>').expect("tag ends")];
        let is_data = tag.contains("type=\"application/json\"");
        assert!(
            is_data || tag.contains(&format!("nonce=\"{nonce}\"")),
            "script without the nonce: <script{tag}>"
        );
    }
}

async fn get(client: &reqwest::Client, url: String) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = client.get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.expect("body"))
}

#[tokio::test]
async fn landing_page_for_visitors() {
    let s = TestServer::start().await;
    let (status, headers, html) = get(&plain_client(), s.url("/")).await;
    assert_eq!(status, 200);
    assert!(header_str(&headers, "content-type").starts_with("text/html"));
    assert!(html.contains("What is PicoShare?"));
    assert!(html.contains("href=\"/login\""));
    assert!(!html.contains("data-page=\"upload\""));
    assert_scripts_have_nonce(&headers, &html);
}

#[tokio::test]
async fn nonces_differ_per_response() {
    let s = TestServer::start().await;
    let (_, a, _) = get(&plain_client(), s.url("/")).await;
    let (_, b, _) = get(&plain_client(), s.url("/")).await;
    assert_ne!(
        csp_nonce(&header_str(&a, "content-security-policy")),
        csp_nonce(&header_str(&b, "content-security-policy"))
    );
}

#[tokio::test]
async fn upload_page_for_the_owner() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let (status, headers, html) = get(&c, s.url("/")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>PicoShare - Upload</title>"), "{html}");
    assert!(html.contains("data-page=\"upload\""));
    for label in [
        "Choose files",
        "Paste or type text",
        "Expiration",
        "Expiration date",
        "Note (optional)",
    ] {
        assert!(html.contains(&format!(">{label}</label>")), "label {label}");
    }
    for opt in ["1 day", "7 days", "30 days", "1 year", "Never", "Custom"] {
        assert!(html.contains(&format!(">{opt}</option>")), "option {opt}");
    }
    // The default lifetime (30 days) is preselected.
    assert!(html.contains("value=\"days:30\" selected"), "{html}");
    assert!(html.contains("\"endpoint\":\"/api/entry\""));
    assert!(html.contains("aria-label=\"Uploads\""));
    assert_scripts_have_nonce(&headers, &html);
}

#[tokio::test]
async fn upload_page_preselects_the_settings_default() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let resp = c
        .put(s.url("/api/settings"))
        .json(&json!({ "defaultExpirationDays": 14 }))
        .send()
        .await
        .expect("PUT settings");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    let (_, _, html) = get(&c, s.url("/")).await;
    assert!(html.contains("value=\"days:14\" selected"), "{html}");
}

#[tokio::test]
async fn login_page() {
    let s = TestServer::start().await;
    let (status, headers, html) = get(&plain_client(), s.url("/login?next=/files")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>PicoShare - Log in</title>"));
    assert!(html.contains(">Passphrase</label>"));
    assert!(html.contains(">Authenticate</button>"));
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("data-next=\"/files\""));
    assert_scripts_have_nonce(&headers, &html);
    // Only local paths are followed after login.
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/%5Cevil.example",
    ] {
        let (_, _, html) = get(&plain_client(), s.url(&format!("/login?next={bad}"))).await;
        assert!(html.contains("data-next=\"/\""), "{bad}: {html}");
    }
}

async fn create_link(s: &TestServer, c: &reqwest::Client, body: serde_json::Value) -> String {
    let resp = c
        .post(s.url("/api/guest-links"))
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn guest_upload_page() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = create_link(
        &s,
        &c,
        json!({ "label": "x", "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "168h0m0s",
                "maxFileBytes": 2_097_152, "maxFileUploads": 3 }),
    )
    .await;
    let (status, headers, html) = get(&plain_client(), s.url(&format!("/g/{id}"))).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-page=\"upload\""));
    assert!(html.contains(&format!("\"endpoint\":\"/api/guest/{id}\"")));
    assert!(html.contains("\"maxFileBytes\":2097152"));
    assert!(html.contains(">1 day</option>"));
    assert!(html.contains(">7 days</option>"));
    assert!(!html.contains(">30 days</option>"));
    assert!(!html.contains(">Custom</option>"));
    assert!(!html.contains("Note (optional)"));
    assert_scripts_have_nonce(&headers, &html);
}

#[tokio::test]
async fn guest_link_inactive_and_unknown() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let id = create_link(
        &s,
        &c,
        json!({ "urlExpirationTime": NEVER_EXPIRES, "fileLifetime": "24h0m0s" }),
    )
    .await;
    let resp = c
        .put(s.url(&format!("/api/guest-links/{id}/disable")))
        .send()
        .await
        .expect("disable");
    assert_eq!(resp.status().as_u16(), 204);
    let (status, headers, html) = get(&plain_client(), s.url(&format!("/g/{id}"))).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Guest Link Inactive</h1>"), "{html}");
    assert!(!html.contains("data-page=\"upload\""));
    assert_scripts_have_nonce(&headers, &html);

    let (status, _, _) = get(&plain_client(), s.url("/g/aaaaaaaaaaaaaaaa")).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&plain_client(), s.url("/g/short")).await;
    assert_eq!(status, 400);
}

/// The owner's navigation is a plain list of links with the current page
/// marked (no menu roles); visitors get no navigation and no Log In button.
#[tokio::test]
async fn navigation_marks_the_current_page_and_spares_visitors() {
    let s = TestServer::start().await;
    let c = s.admin_client().await;
    let (_, _, html) = get(&c, s.url("/files")).await;
    assert!(!html.contains("role=\"menubar\""), "{html}");
    assert!(!html.contains("role=\"menuitem\""), "{html}");
    assert!(
        html.contains("<a href=\"/files\" aria-current=\"page\">Files</a>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"/settings\">Settings</a>"),
        "{html}"
    );
    let id = s
        .upload(&c, "seen.txt", b"seen", "text/plain", None, None)
        .await;
    let (status, _, html) = get(&plain_client(), s.url(&format!("/v/{id}"))).await;
    assert_eq!(status, 200);
    assert!(!html.contains("Log In"), "{html}");
    assert!(!html.contains("href=\"/settings\""), "{html}");
}

/// A browser that opens a missing download link, or any unknown path, gets
/// a page that explains it (with the status); other clients keep the plain
/// text.
#[tokio::test]
async fn refused_links_get_a_page_in_browsers() {
    let s = TestServer::start().await;
    let browser = |path: &str| {
        plain_client()
            .get(s.url(path))
            .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
    };
    for path in ["/-abcdefghij", "/-abcdefghij/name.txt", "/no/such/page"] {
        let resp = browser(path).await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        assert_eq!(
            header_str(resp.headers(), "content-type"),
            "text/html; charset=utf-8"
        );
        let html = resp.text().await.unwrap();
        assert!(html.contains("<h1>Not found</h1>"), "{path}: {html}");
        assert!(
            html.contains("ask the person who sent it"),
            "{path}: {html}"
        );
        assert!(!html.contains("Log In"), "{path}: {html}");
    }
    let resp = plain_client()
        .get(s.url("/-abcdefghij"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.text().await.unwrap(), "entry not found\n");
}

/// `GET /qr.svg?text=…` draws the QR code as SVG; an empty or too long text
/// is a 400 that says why.
#[tokio::test]
async fn qr_codes_are_drawn_by_the_server() {
    let s = TestServer::start().await;
    let resp = plain_client()
        .get(s.url("/qr.svg?text=http%3A%2F%2F127.0.0.1%2Fv%2Fabc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header_str(resp.headers(), "content-type"), "image/svg+xml");
    assert!(resp.text().await.unwrap().contains("<svg"));
    let resp = plain_client().get(s.url("/qr.svg")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.text().await.unwrap(), "text is required\n");
    let long = "x".repeat(1025);
    let resp = plain_client()
        .get(s.url(&format!("/qr.svg?text={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("at most 1024 bytes"));
}
