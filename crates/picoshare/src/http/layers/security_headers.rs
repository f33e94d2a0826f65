//! Security headers on every response, added by a layer of the router so that
//! no route (error replies, 404s, redirects, routes added later) can miss them.
//! A header a handler set itself is kept (pages send their own CSP with a
//! nonce; downloads send `Content-Security-Policy: sandbox`).
//!
//! - Every response: `X-Content-Type-Options: nosniff` (written here only;
//!   no handler repeats it).
//! - Everything but downloads: `Referrer-Policy: same-origin`,
//!   `X-Frame-Options: DENY`, `Cross-Origin-Resource-Policy: same-origin`, and,
//!   except for our own static files (`/static/…`, which tools and tests open
//!   as documents), a CSP that allows nothing and no framing when the handler
//!   sent none. HTML also gets `Cross-Origin-Opener-Policy: same-origin`.
//! - Downloads (`/-…`, `/!…`): `Referrer-Policy: no-referrer`, so that a link
//!   followed from a downloaded document never reveals the download's URL (a
//!   capability). They may be embedded by other sites (images, videos, PDFs);
//!   their own CSP sandbox keeps an uploaded document from running script on
//!   this origin.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The CSP of responses whose handler sent none: nothing may load or run, and
/// nothing may frame them.
const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Middleware: adds the headers listed in the module docs.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let download = path.starts_with("/-") || path.starts_with("/!");
    let asset = path.starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let mut default = |name: HeaderName, value: &'static str| {
        h.entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if download {
        default(header::REFERRER_POLICY, "no-referrer");
        return resp;
    }
    default(header::REFERRER_POLICY, "same-origin");
    default(header::X_FRAME_OPTIONS, "DENY");
    if !asset {
        default(header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    }
    default(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    if html {
        h.entry(HeaderName::from_static("cross-origin-opener-policy"))
            .or_insert_with(|| HeaderValue::from_static("same-origin"));
    }
    resp
}
