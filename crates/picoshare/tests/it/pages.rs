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
        "Paste here",
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
