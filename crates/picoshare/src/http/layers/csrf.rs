//! Cross-site request forgery protection, beyond the `SameSite=Strict` cookie.
//!
//! A request that can change something (any method but `GET`, `HEAD` and
//! `OPTIONS`) and carries the session cookie must come from this server's own
//! pages. The browser says where a request comes from; we ask, in order:
//!
//! 1. `Sec-Fetch-Site` (sent by every current browser, computed by the browser,
//!    unaffected by proxies): `same-origin` and `none` (typed by the user) pass,
//!    `same-site` and `cross-site` are refused.
//! 2. Otherwise `Origin`, compared with the origin the request was sent to: the
//!    `Host` header, or behind a proxy (`PS_BEHIND_PROXY`) `X-Forwarded-Host` /
//!    `Forwarded: host=` and `X-Forwarded-Proto` / `Forwarded: proto=` (read by
//!    [`crate::http::proto::proxy`], as everywhere else).
//!    `Origin: null` (sandboxed documents, privacy-stripped requests) is refused.
//! 3. Otherwise `Referer`, compared the same way.
//! 4. A request with none of them is not from a browser (curl, scripts, tus
//!    clients): it passes, since a forged request always comes from a browser.
//!
//! Requests without the session cookie pass untouched: they carry no authority
//! a forger could borrow. Guest uploads therefore work from any page, which is
//! what a guest link (a public capability) is for, and so do uploads with an
//! API token (`Authorization: Bearer`), a header no forged request can carry.
//!
//! Refusals are `403` with a message saying what to fix.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::auth::session::has_session_cookie;
use crate::http::client::{from_trusted_proxy, requested_host};
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};
use crate::http::{AppError, AppState};

/// Middleware: refuses forged state-changing requests (see the module docs).
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(why) = check(
        req.method(),
        req.uri(),
        req.headers(),
        from_trusted_proxy(&state, &req),
    ) {
        tracing::warn!(method = %req.method(), "cross-origin request refused: {why}");
        return AppError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Cross-origin request refused: {why}. Changes made with a PicoShare session \
                 must come from PicoShare's own pages. (Behind a reverse proxy, set \
                 PS_BEHIND_PROXY and have the proxy pass the original Host, or \
                 X-Forwarded-Host and X-Forwarded-Proto.)"
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// `Ok` if the request may proceed; otherwise why not, for the reply.
///
/// # Errors
/// The reason a request is refused.
pub(crate) fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    trusted_proxy: bool,
) -> Result<(), String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if !has_session_cookie(headers) {
        return Ok(());
    }
    let get = |name: &header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match get(&header::HeaderName::from_static("sec-fetch-site")).map(str::trim) {
        Some("same-origin" | "none") => return Ok(()),
        Some(site @ ("same-site" | "cross-site")) => {
            return Err(format!("the browser reports it as {site}"));
        }
        _ => {}
    }
    let (source, what) = if let Some(origin) = get(&header::ORIGIN) {
        (origin.trim(), "Origin")
    } else if let Some(referer) = get(&header::REFERER) {
        (referer.trim(), "Referer")
    } else if headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER) {
        return Err("its Origin or Referer header is not readable".into());
    } else {
        return Ok(());
    };
    let shown = shorten(source);
    let Some(from) = Origin::parse(source) else {
        return Err(format!("it comes from an unknown origin ({what}: {shown})"));
    };
    let Some(target) = Target::of(headers, uri, trusted_proxy) else {
        return Err(format!(
            "it has no Host header to compare its {what} ({shown}) with"
        ));
    };
    if target.accepts(&from) {
        Ok(())
    } else {
        Err(format!(
            "it comes from {shown}, another origin than this server's ({})",
            shorten(&target.describe())
        ))
    }
}

/// At most 100 characters of a header value, for messages.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 100 {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(100).collect();
        out.push('…');
        out
    }
}

/// Scheme, host and port of a URL or serialised origin.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]` with anything after it (a `Referer` has a
    /// path). `null` and anything without an authority give `None`.
    fn parse(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // Browsers never send credentials in these headers; drop them anyway.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = split_host_port(authority)?;
        Some(Origin {
            scheme: scheme.to_ascii_lowercase(),
            host,
            port,
        })
    }

    /// The port, or the scheme's default one.
    fn effective_port(&self) -> Option<u16> {
        self.port.or_else(|| default_port(&self.scheme))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (with `[v6]` literals) into a lower-case host and a port.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    Some((host, port))
}

/// The origin a request was sent to, as far as the server can tell.
#[derive(Debug)]
struct Target {
    /// Known only behind a proxy that says it.
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl Target {
    fn of(headers: &HeaderMap, uri: &Uri, trusted_proxy: bool) -> Option<Target> {
        let forwarded = Forwarded::trusted_if(ProxyHeaders::of(headers), trusted_proxy);
        let host = requested_host(&forwarded, headers, uri)?;
        let (host, port) = split_host_port(&host)?;
        Some(Target {
            scheme: forwarded.proto,
            host,
            port,
        })
    }

    /// Whether a request from `from` is same-origin. Without a known scheme
    /// (no proxy header) either scheme is taken, with its default port when
    /// the `Host` header names none: a TLS proxy that was not declared with
    /// `PS_BEHIND_PROXY` then still works.
    fn accepts(&self, from: &Origin) -> bool {
        if self.scheme.as_ref().is_some_and(|s| *s != from.scheme) {
            return false;
        }
        if self.host != from.host {
            return false;
        }
        let scheme = self.scheme.as_deref().unwrap_or(&from.scheme);
        let port = self.port.or_else(|| default_port(scheme));
        port.is_some() && port == from.effective_port()
    }

    fn describe(&self) -> String {
        let mut s = match &self.scheme {
            Some(scheme) => format!("{scheme}://{}", self.host),
            None => self.host.clone(),
        };
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("ps_session=abc"));
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn uri() -> Uri {
        Uri::from_static("/api/entry")
    }

    fn ok(pairs: &[(&str, &str)], proxy: bool) -> bool {
        check(&Method::POST, &uri(), &headers(pairs), proxy).is_ok()
    }

    #[test]
    fn safe_methods_and_cookieless_requests_pass() {
        let cross = headers(&[("origin", "https://evil.example"), ("host", "a.example")]);
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(check(&m, &uri(), &cross, false).is_ok());
        }
        let mut no_cookie = cross.clone();
        no_cookie.remove(header::COOKIE);
        assert!(check(&Method::POST, &uri(), &no_cookie, false).is_ok());
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(check(&m, &uri(), &cross, false).is_err(), "{m}");
        }
    }

    #[test]
    fn bearer_requests_without_a_cookie_pass() {
        let mut h = headers(&[
            ("authorization", "Bearer pst_0123"),
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("host", "a.example"),
        ]);
        assert!(
            check(&Method::PUT, &uri(), &h, false).is_err(),
            "with the cookie"
        );
        h.remove(header::COOKIE);
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(&m, &uri(), &h, false).is_ok(), "{m}");
        }
    }

    #[test]
    fn sec_fetch_site_decides_first() {
        let evil = ("origin", "https://evil.example");
        assert!(ok(
            &[("sec-fetch-site", "same-origin"), evil, ("host", "a")],
            false
        ));
        assert!(ok(&[("sec-fetch-site", "none"), ("host", "a")], false));
        assert!(!ok(
            &[("sec-fetch-site", "same-site"), ("host", "a")],
            false
        ));
        assert!(!ok(
            &[("sec-fetch-site", "cross-site"), ("host", "a")],
            false
        ));
        // An unknown value falls back to Origin.
        assert!(!ok(
            &[("sec-fetch-site", "weird"), evil, ("host", "a")],
            false
        ));
    }

    #[test]
    fn origin_is_compared_with_host() {
        let h = ("host", "files.example:4001");
        assert!(ok(&[("origin", "http://files.example:4001"), h], false));
        assert!(ok(&[("origin", "http://FILES.example:4001"), h], false));
        assert!(!ok(&[("origin", "http://files.example:4002"), h], false));
        assert!(!ok(&[("origin", "http://evil.example:4001"), h], false));
        assert!(!ok(&[("origin", "null"), h], false));
        assert!(!ok(&[("origin", "garbage"), h], false));
        // No Host to compare with.
        assert!(!ok(&[("origin", "http://files.example:4001")], false));
        // Default ports: a Host without a port matches either scheme's default.
        let h = ("host", "files.example");
        assert!(ok(&[("origin", "http://files.example"), h], false));
        assert!(ok(&[("origin", "https://files.example"), h], false));
        assert!(ok(&[("origin", "https://files.example:443"), h], false));
        assert!(!ok(&[("origin", "https://files.example:8443"), h], false));
        // IPv6 literals.
        let h = ("host", "[::1]:4001");
        assert!(ok(&[("origin", "http://[::1]:4001"), h], false));
        assert!(!ok(&[("origin", "http://[::2]:4001"), h], false));
    }

    #[test]
    fn referer_is_used_without_origin() {
        let h = ("host", "files.example");
        assert!(ok(
            &[("referer", "http://files.example/files?x=1"), h],
            false
        ));
        assert!(!ok(
            &[("referer", "http://evil.example/files.example"), h],
            false
        ));
        // Origin wins over Referer.
        assert!(!ok(
            &[
                ("origin", "http://evil.example"),
                ("referer", "http://files.example/"),
                h
            ],
            false
        ));
    }

    #[test]
    fn no_browser_headers_pass() {
        assert!(ok(&[("host", "files.example")], false));
        assert!(ok(&[], false));
    }

    #[test]
    fn proxy_headers_count_only_behind_a_proxy() {
        let fwd = [
            ("origin", "https://files.example"),
            ("host", "127.0.0.1:4001"),
            ("x-forwarded-host", "files.example"),
            ("x-forwarded-proto", "https"),
        ];
        assert!(ok(&fwd, true));
        assert!(!ok(&fwd, false));
        // The scheme must match when the proxy tells it.
        let mut http = fwd;
        http[0] = ("origin", "http://files.example");
        assert!(!ok(&http, true));
        // RFC 7239 Forwarded.
        let fwd = [
            ("origin", "https://files.example"),
            ("host", "127.0.0.1:4001"),
            (
                "forwarded",
                "for=192.0.2.1;host=files.example;proto=https, for=10.0.0.1",
            ),
        ];
        assert!(ok(&fwd, true));
        // Without forwarding headers, Host is used.
        assert!(ok(
            &[
                ("origin", "https://files.example"),
                ("host", "files.example")
            ],
            true
        ));
        assert!(!ok(
            &[
                ("origin", "https://evil.example"),
                ("host", "files.example")
            ],
            true
        ));
    }

    #[test]
    fn parses_origins() {
        assert_eq!(
            Origin::parse("https://User@Files.Example:8443/p?q#f"),
            Some(Origin {
                scheme: "https".into(),
                host: "files.example".into(),
                port: Some(8443)
            })
        );
        assert_eq!(Origin::parse("null"), None);
        assert_eq!(Origin::parse("https://"), None);
        assert_eq!(Origin::parse("https://a:99999"), None);
    }
}
