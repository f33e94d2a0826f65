//! Server-rendered HTML pages (maud templates, checked at compile time) and the
//! embedded static assets they use.
//!
//! Every page goes through [`Page::render`], which wraps it in the common
//! layout (head, navigation, theme) and sends a strict Content-Security-Policy
//! with a fresh nonce: scripts and styles run only from `/static/` or with that
//! nonce, and nothing is loaded from another origin.

pub(crate) mod assets;
pub(crate) mod file_list;
pub(crate) mod files;
pub(crate) mod guest_links;
pub(crate) mod login;
pub(crate) mod notifications;
pub(crate) mod preview;
pub(crate) mod qr;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod shares;
pub(crate) mod system;
pub(crate) mod tokens;
pub(crate) mod upload;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::auth::session::is_admin;
use super::{AppError, AppState};

/// What every page needs to know about the request.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// Per-response CSP nonce (hex of 16 random bytes).
    pub(crate) nonce: String,
    /// Whether the visitor is logged in (shows the admin navigation).
    pub(crate) admin: bool,
    /// The request's path, to mark the current page in the navigation
    /// (empty: none is marked).
    pub(crate) path: String,
}

/// The admin navigation: path and label of each page.
const NAV: [(&str, &str); 8] = [
    ("/", "Upload"),
    ("/files", "Files"),
    ("/shares", "Shares"),
    ("/guest-links", "Guest Links"),
    ("/tokens", "API Tokens"),
    ("/sessions", "Sessions"),
    ("/information", "Information"),
    ("/settings", "Settings"),
];

impl Page {
    /// A page context with a new nonce.
    pub(crate) fn new(admin: bool) -> Self {
        Page {
            nonce: crate::ids::random_hex(16),
            admin,
            path: String::new(),
        }
    }

    /// The same page context at `path` (for the navigation's current page).
    pub(crate) fn at(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Whether the navigation entry `href` is the current page or one below
    /// it (a file's pages are under Files).
    fn is_current(&self, href: &str) -> bool {
        if href == "/" {
            return self.path == "/";
        }
        self.path == href || self.path.starts_with(&format!("{href}/"))
    }

    /// The Content-Security-Policy sent with this page.
    fn csp(&self) -> String {
        let n = &self.nonce;
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{n}'; style-src 'self' 'nonce-{n}'; \
             img-src 'self' data:; media-src 'self'; frame-src 'self'; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        )
    }

    /// Renders `body` inside the layout, with `title` (shown as `PicoShare - title`).
    pub(crate) fn render(&self, title: &str, body: Markup) -> Response {
        self.render_status(StatusCode::OK, title, body)
    }

    /// Like [`Page::render`] with another status code.
    pub(crate) fn render_status(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        let full_title = if title.is_empty() {
            "PicoShare".to_owned()
        } else {
            format!("PicoShare - {title}")
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (full_title) }
                    link rel="icon" href=(assets::url("favicon.svg")) type="image/svg+xml";
                    link rel="apple-touch-icon" href="/apple-touch-icon.png";
                    link rel="manifest" href="/site.webmanifest";
                    link rel="stylesheet" href=(assets::url("style.css"));
                    script type="module" src=(assets::url("app.js")) nonce=(self.nonce) {}
                }
                body {
                    a.skip-link href="#main" { "Skip to content" }
                    (self.nav())
                    main id="main" { (body) }
                }
            }
        };
        let mut resp = (status, markup.into_string()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&self.csp()) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    /// The header: the brand, and for the owner the navigation (a plain
    /// list of links, the current one marked; on phones folded behind a Menu
    /// button by app.js). Visitors (recipients, guests) get the brand only:
    /// nothing invites them to log in; the landing page links to the login.
    fn nav(&self) -> Markup {
        html! {
            header.site-header {
                @if self.admin {
                    nav.site-nav aria-label="Main" {
                        a.brand href="/" { "PicoShare" }
                        button.nav-toggle type="button" aria-expanded="false"
                            aria-controls="nav-links" hidden { "Menu" }
                        ul.nav-links #nav-links {
                            @for (href, label) in NAV {
                                li {
                                    @if self.is_current(href) {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                            li { button.button.secondary type="button" data-action="logout" { "Log Out" } }
                        }
                    }
                } @else {
                    div.site-nav {
                        span.brand { "PicoShare" }
                    }
                }
            }
        }
    }
}

/// Why a page is not shown, and what is sent in its place: what page
/// handlers return as their error (API handlers return [`AppError`]).
pub(crate) enum PageError {
    /// The visitor is not logged in: `303 See Other` to the login page, which
    /// comes back to this path (with its query).
    Login(String),
    /// A page that says what went wrong, rendered with its status.
    Shown(Response),
    /// A plain-text error reply, for failures before there is a page to say
    /// them in (the session could not be checked) or where the original
    /// answers in plain text.
    Plain(AppError),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::Plain(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(path) => login_redirect(&path),
            PageError::Shown(page) => page,
            PageError::Plain(e) => e.into_response(),
        }
    }
}

/// A page that says what went wrong: `title` as its heading, `message` as
/// an alert, sent with `status`.
pub(crate) fn problem(page: &Page, status: StatusCode, title: &str, message: &str) -> PageError {
    PageError::Shown(page.render_status(
        status,
        title,
        html! {
            section data-page="error" {
                h1 { (title) }
                p role="alert" { (message) }
            }
        },
    ))
}

/// Whether a request asks for a page (a browser's `Accept`).
pub(crate) fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// The page a browser gets for a refused link (a download, an unknown
/// path): the server's message under a heading that names the case, and
/// what the person can do about it. Other clients keep the plain-text reply.
pub(crate) fn link_problem(e: AppError) -> Response {
    let (title, advice) = match e.status() {
        StatusCode::NOT_FOUND => (
            "Not found",
            "This link leads to no file: the file may have been deleted, or the link may be \
             incomplete. Check that you copied the whole link, or ask the person who sent it \
             for a new one.",
        ),
        StatusCode::GONE => (
            "No longer available",
            "Ask the person who shared it to upload it again if you still need it.",
        ),
        StatusCode::BAD_REQUEST => (
            "Invalid link",
            "Check that you copied the whole link, or ask the person who sent it for a new one.",
        ),
        StatusCode::CONFLICT => ("Try again later", ""),
        StatusCode::TOO_MANY_REQUESTS => ("Too many attempts", "Wait a moment, then try again."),
        _ => ("Something went wrong", "Try again in a moment."),
    };
    let message = match e.message() {
        "entry not found" | "404 page not found" => "There is nothing at this address.",
        m => m,
    };
    let page = Page::new(false);
    let mut resp = page.render_status(
        e.status(),
        title,
        html! {
            section.narrow.card.message data-page="error" {
                h1 { (title) }
                p role="alert" { (message) }
                @if !advice.is_empty() {
                    p.hint { (advice) }
                }
            }
        },
    );
    if let Some(v) = e.retry_after() {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The page context of an admin-only page, as an extractor: a [`Page`] for
/// a logged-in visitor; otherwise [`PageError::Login`], to come back to the
/// page's own path with its query (e.g. `/files/abc/edit` or
/// `/files/abc/downloads?unique=true`) after logging in, or the plain error
/// when the session could not be checked.
pub(crate) struct AdminPage(pub(crate) Page);

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        if is_admin(state, &parts.headers).await? {
            return Ok(AdminPage(Page::new(true).at(parts.uri.path())));
        }
        let uri = &parts.uri;
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        Err(PageError::Login(path))
    }
}

/// The page context of a page anyone may see, as an extractor: with the
/// admin navigation when the visitor is logged in; the plain error when the
/// session could not be checked.
impl FromRequestParts<AppState> for Page {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        Ok(Page::new(is_admin(state, &parts.headers).await?).at(parts.uri.path()))
    }
}

/// `303 See Other` to the login page, which comes back to `path` afterwards.
fn login_redirect(path: &str) -> Response {
    let location = format!("/login?next={}", encode_query_value(path));
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Percent-encodes a query parameter value (everything but unreserved
/// characters and `/`).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON embedded in a page for its script, safe inside `<script type="application/json">`.
pub(crate) fn json_data(id: &str, value: &serde_json::Value) -> Markup {
    // `<` is escaped so that no string in the data can close the script element.
    let text = value.to_string().replace('<', "\\u003c");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}
