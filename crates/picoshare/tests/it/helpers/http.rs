//! HTTP clients, the running server's HTTP conveniences (log in, upload,
//! download) and checks of its replies: uploads' entry IDs, error replies,
//! `Set-Cookie` headers.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, SET_COOKIE};
use reqwest::{Client, Response};

use super::{Multipart, TestServer, FAR_FUTURE, ID_ALPHABET};

/// Logging in, uploading and downloading through the server's HTTP API.
impl TestServer {
    /// Logs `client` in with the server's secret; asserts 200.
    pub async fn login(&self, client: &Client) {
        let resp = client
            .post(self.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": self.secret }))
            .send()
            .await
            .expect("POST /api/auth");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "login failed: {:?}",
            resp.text().await
        );
    }

    /// A cookie-keeping client that is already logged in.
    pub async fn admin_client(&self) -> Client {
        let c = client();
        self.login(&c).await;
        c
    }

    /// Logs in with a cookie-less client and returns what a browser would
    /// send back: the `Cookie` header value (`name=value[; name2=value2]`).
    pub async fn session_cookie(&self) -> String {
        let resp = plain_client()
            .post(self.url("/api/auth"))
            .json(&serde_json::json!({ "sharedSecretKey": self.secret }))
            .send()
            .await
            .expect("POST /api/auth");
        assert_eq!(resp.status().as_u16(), 200);
        let cookies = set_cookies(resp.headers());
        assert!(!cookies.is_empty(), "login set no cookie");
        cookies
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends an upload request with the given query string (`""` for none).
    pub async fn post_entry(&self, client: &Client, query: &str, form: Multipart) -> Response {
        let content_type = form.content_type();
        client
            .post(self.url(&format!("/api/entry{query}")))
            .header(CONTENT_TYPE, content_type)
            .body(form.finish())
            .send()
            .await
            .expect("POST /api/entry")
    }

    /// Uploads a file (note first, like the web UI) and returns its new ID.
    /// `expiration: None` means [`FAR_FUTURE`].
    pub async fn upload(
        &self,
        client: &Client,
        filename: &str,
        data: &[u8],
        content_type: &str,
        note: Option<&str>,
        expiration: Option<&str>,
    ) -> String {
        let mut form = Multipart::new();
        if let Some(note) = note {
            form = form.text("note", note);
        }
        form = form.file("file", filename, Some(content_type), data);
        let query = format!("?expiration={}", expiration.unwrap_or(FAR_FUTURE));
        let resp = self.post_entry(client, &query, form).await;
        upload_id(resp).await
    }

    /// The value of a line of `/metrics` (a series with its labels, e.g.
    /// `picoshare_rate_limit_keys{limit="login"}`), if it is there. The
    /// server must run with `PS_METRICS_PUBLIC`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = plain_client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.trim().parse().expect("a number"))
    }

    /// GETs `/-{id}` and returns the body; asserts 200.
    pub async fn download(&self, id: &str) -> Vec<u8> {
        let resp = plain_client()
            .get(self.url(&format!("/-{id}")))
            .send()
            .await
            .expect("GET download");
        assert_eq!(resp.status().as_u16(), 200, "download of {id}");
        resp.bytes().await.expect("download body").to_vec()
    }
}

/// How long the clients keep an idle connection for reuse: well under the
/// server's idle keep-alive time (its header timeout, 10 s by default). A
/// client that reused a connection the server had just closed would send its
/// request into a closed socket, and a POST is not retried: on a busy
/// machine, where a test can take seconds to prepare its next upload, that
/// failed uploads with "broken pipe".
const POOL_IDLE: Duration = Duration::from_secs(3);

/// A client with a cookie store, no redirects and no proxy.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .expect("reqwest client")
}

/// A client that keeps no cookies (for anonymous requests and manual
/// `Cookie` headers).
pub fn plain_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .expect("reqwest client")
}

/// Reads `{"id": "..."}` from a successful upload reply and checks the ID's
/// shape.
pub async fn upload_id(resp: Response) -> String {
    let status = resp.status().as_u16();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("upload reply body");
    assert_eq!(status, 200, "upload failed: {body:?}");
    assert!(
        content_type.starts_with("application/json"),
        "upload reply Content-Type is {content_type:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("upload reply {body:?}: {e}"));
    let id = json["id"]
        .as_str()
        .unwrap_or_else(|| panic!("upload reply has no string id: {body:?}"))
        .to_string();
    assert_entry_id_shape(&id);
    id
}

pub fn assert_entry_id_shape(id: &str) {
    assert_eq!(id.len(), 10, "entry id {id:?} should be 10 characters");
    assert!(
        id.chars().all(|c| ID_ALPHABET.contains(c)),
        "entry id {id:?} has a character outside {ID_ALPHABET}"
    );
}

/// The header's value as text, or `""` if absent (panics on non-ASCII).
pub fn header_str(headers: &HeaderMap, name: &str) -> String {
    match headers.get(name) {
        None => String::new(),
        Some(v) => v
            .to_str()
            .unwrap_or_else(|_| panic!("header {name} is not visible ASCII: {:?}", v.as_bytes()))
            .to_string(),
    }
}

/// Asserts an error reply: status, `text/plain; charset=utf-8`, and a body of
/// exactly `message` plus a newline.
pub async fn assert_error(resp: Response, status: u16, message: &str) {
    let got_status = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("error body");
    assert_eq!(
        (got_status, body.as_str()),
        (status, format!("{message}\n").as_str()),
        "error reply for {url}"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "error Content-Type for {url}"
    );
}

/// Asserts an error reply whose body starts with `prefix`; returns the body.
pub async fn assert_error_prefix(resp: Response, status: u16, prefix: &str) -> String {
    let got_status = resp.status().as_u16();
    let url = resp.url().clone();
    let content_type = header_str(resp.headers(), "content-type");
    let body = resp.text().await.expect("error body");
    assert_eq!(got_status, status, "status for {url}; body {body:?}");
    assert!(
        body.starts_with(prefix),
        "body for {url} should start with {prefix:?}, got {body:?}"
    );
    assert!(
        body.ends_with('\n'),
        "error body should end with a newline: {body:?}"
    );
    assert_eq!(
        content_type, "text/plain; charset=utf-8",
        "error Content-Type for {url}"
    );
    body
}

/// One parsed `Set-Cookie` header.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes as written, trimmed (`HttpOnly`, `Path=/`, ...).
    pub attributes: Vec<String>,
}

impl SetCookie {
    /// Whether an attribute is present, compared case-insensitively
    /// (`"HttpOnly"`, `"SameSite=Strict"`, `"Path=/"`).
    pub fn has(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| {
            let norm: String = a.split('=').map(str::trim).collect::<Vec<_>>().join("=");
            norm.eq_ignore_ascii_case(attr)
        })
    }

    /// The value of an attribute such as `Max-Age`, if present.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            let (k, v) = a.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<SetCookie> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("Set-Cookie is ASCII");
            let mut parts = text.split(';');
            let (name, value) = parts
                .next()
                .and_then(|nv| nv.split_once('='))
                .unwrap_or_else(|| panic!("malformed Set-Cookie {text:?}"));
            SetCookie {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
                attributes: parts
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            }
        })
        .collect()
}

/// The session cookie among a login reply's cookies: PicoShare's
/// `sharedSecret` if present, otherwise the only cookie set.
pub fn session_set_cookie(headers: &HeaderMap) -> SetCookie {
    let cookies = set_cookies(headers);
    if let Some(c) = cookies.iter().find(|c| c.name == "sharedSecret") {
        return c.clone();
    }
    assert_eq!(
        cookies.len(),
        1,
        "cannot tell which cookie is the session: {cookies:?}"
    );
    cookies[0].clone()
}
