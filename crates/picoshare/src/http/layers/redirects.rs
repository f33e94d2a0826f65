//! The redirects the original makes before a request reaches its route.
//!
//! 1. **Unclean paths** (C6): a path with empty segments or dot segments
//!    (`//files`, `//-abcdefghij`, `/a/../files`, `/./files`, also written
//!    `%2e`) is answered with a redirect to its clean form, the query kept:
//!    `301` for `GET` and `HEAD`, as the original; `308` for other methods,
//!    so that a client that follows it sends the same method and body again
//!    (the original's `301` turns a `POST` into a `GET`). The clean form is
//!    the original's: dot segments resolved, repeated slashes folded, a
//!    trailing slash kept (so `/files/` stays a 404, as there).
//! 2. **Plain HTTP behind a proxy** (C3): a `GET` or `HEAD` of a public page
//!    or a download (`/`, `/login`, `/g/…`, `/-…`, `/!…`, and this server's
//!    public `/v/…` and `/s/…`) that the proxy says came over plain HTTP
//!    (`X-Forwarded-Proto: http`, or `Forwarded: proto=http`, the first
//!    element of either) gets a `301` to the same URL with `https://`, on
//!    the host the client asked for ([`crate::http::client::requested_host`]:
//!    `Host`, or `X-Forwarded-Host` / `Forwarded: host=` behind a trusted
//!    proxy). As in the original, the header is read whether or not
//!    `PS_BEHIND_PROXY` is set (it only moves a client that sent it to
//!    HTTPS), and the owner's pages and the API are not redirected.
//!    `PS_HTTPS_REDIRECT=0` turns this off, for sites served over plain HTTP
//!    through a proxy that sends `X-Forwarded-Proto: http`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::client::{from_trusted_proxy, requested_host};
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};
use crate::http::AppState;

/// Middleware: the redirects of the module docs, or the route's answer.
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    let get_or_head = matches!(*req.method(), Method::GET | Method::HEAD);
    if let Some(clean) = clean_path(uri.path()) {
        let target = match uri.query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        let status = if get_or_head {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        if let Some(resp) = redirect(status, &target) {
            return resp;
        }
    }
    if state.config.https_redirect && get_or_head && upgraded_path(uri.path()) {
        let headers = req.headers();
        let said = Forwarded::trusted_if(ProxyHeaders::of(headers), true);
        if said.proto.as_deref() == Some("http") {
            let trusted =
                Forwarded::trusted_if(ProxyHeaders::of(headers), from_trusted_proxy(&state, &req));
            if let Some(host) = requested_host(&trusted, headers, uri).filter(|h| !h.is_empty()) {
                let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
                if let Some(resp) = redirect(
                    StatusCode::MOVED_PERMANENTLY,
                    &format!("https://{host}{path_and_query}"),
                ) {
                    return resp;
                }
            }
        }
    }
    next.run(req).await
}

/// A redirect to `location`, or `None` if it cannot be a header value.
fn redirect(status: StatusCode, location: &str) -> Option<Response> {
    let value = HeaderValue::from_str(location).ok()?;
    let mut resp = status.into_response();
    resp.headers_mut().insert(header::LOCATION, value);
    Some(resp)
}

/// Whether a request for `path` over plain HTTP is sent to HTTPS: the
/// original's public pages and downloads, and this server's public pages.
fn upgraded_path(path: &str) -> bool {
    path == "/"
        || path == "/login"
        || ["/g/", "/-", "/!", "/v/", "/s/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// The clean form of a request's path (still percent-encoded), or `None`
/// when it is clean already: `.` segments dropped, `..` segments removing
/// the segment before them (never above the root), empty segments dropped,
/// a trailing slash kept. `%2e` counts as a dot.
pub(crate) fn clean_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let mut kept: Vec<&str> = Vec::new();
    for segment in rest.split('/') {
        match dots(segment) {
            Some(1) => {}
            Some(2) => {
                kept.pop();
            }
            _ if segment.is_empty() => {}
            _ => kept.push(segment),
        }
    }
    let mut clean = format!("/{}", kept.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    (clean != path).then_some(clean)
}

/// 1 for a `.` segment, 2 for `..` (either written with `%2e`), else `None`.
fn dots(segment: &str) -> Option<u8> {
    let mut n = 0u8;
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest
            .as_bytes()
            .get(..3)
            .is_some_and(|b| b.eq_ignore_ascii_case(b"%2e"))
        {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
        if n > 2 {
            return None;
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_are_left_alone() {
        for p in [
            "/",
            "/files",
            "/files/",
            "/-abcdefghij",
            "/-abcdefghij/name.txt",
            "/g/abcdefghijklmnop/",
            "/a.b/..c/.d/c..",
            "/static/0123456789ab/js/qr.js",
            "/%2f/x",
            "/é/%2",
        ] {
            assert_eq!(clean_path(p), None, "{p}");
        }
        // Not an origin-form path (`OPTIONS *`): nothing to clean.
        assert_eq!(clean_path("*"), None);
    }

    #[test]
    fn unclean_paths_get_their_clean_form() {
        for (dirty, clean) in [
            ("//-abcdefghij", "/-abcdefghij"),
            ("//files", "/files"),
            ("///", "/"),
            ("//", "/"),
            ("/./files", "/files"),
            ("/a/../files", "/files"),
            ("/-abcdefghij/../files", "/files"),
            ("/files/.", "/files"),
            ("/files/./", "/files/"),
            ("/files//", "/files/"),
            ("/..", "/"),
            ("/../../files", "/files"),
            ("/a/b/..", "/a"),
            ("/%2e/files", "/files"),
            ("/x/%2E%2e/files", "/files"),
            ("/x/.%2e/files", "/files"),
            ("//api/entry", "/api/entry"),
        ] {
            assert_eq!(clean_path(dirty).as_deref(), Some(clean), "{dirty}");
        }
    }

    #[test]
    fn public_pages_and_downloads_are_upgraded_and_the_rest_is_not() {
        for p in [
            "/",
            "/login",
            "/g/abcdefghijklmnop",
            "/g/abcdefghijklmnop/x",
            "/-abcdefghij",
            "/-abcdefghij/a.txt",
            "/!abcdefghij",
            "/v/abcdefghij",
            "/s/abcdefghijklmn",
            "/s/abcdefghijklmn/zip",
        ] {
            assert!(upgraded_path(p), "{p}");
        }
        for p in [
            "/files",
            "/login/x",
            "/api/entry",
            "/api/guest/abcdefghijklmnop",
            "/static/app.js",
            "/healthz",
            "/metrics",
            "/settings",
            "/favicon.ico",
        ] {
            assert!(!upgraded_path(p), "{p}");
        }
    }
}
