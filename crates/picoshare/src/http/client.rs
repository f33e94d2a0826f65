//! What the server believes about a request's client: its address, and the
//! scheme and host it used. From the connection itself, and behind a reverse
//! proxy (`PS_BEHIND_PROXY`, `PS_TRUSTED_PROXIES`) from what the proxy says
//! ([`crate::http::proto::proxy`]: the address the trusted proxy added, not
//! the one a client wrote).
//!
//! The scheme is `https` only when a trusted proxy says so
//! (`X-Forwarded-Proto: https` or `Forwarded: proto=https`): this server
//! never speaks TLS itself, so a request that nobody vouches for came over
//! plain HTTP. That one answer decides both the `Secure` flag of cookies and
//! the scheme of the links in plain-text replies, so that a TLS proxy gets
//! `https` links and `Secure` cookies, and a plain-HTTP proxy neither (a
//! `Secure` cookie would not be kept, and an `https` link would not open).
//!
//! Addresses are written as the original writes them: an IPv4 client is
//! `192.0.2.9`, never the `::ffff:192.0.2.9` that the dual-stack listener
//! (and some proxies) report for it, so that one client is one address in the
//! download history whichever server recorded it.
//!
//! The limits on wrong passphrases and passwords count per
//! [`ClientView::limit_ip`]: the client's address when the proxy gave one,
//! else the connection's (a proxy that writes `unknown` shares one count for
//! all such clients, rather than letting each choose a new one).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};

use crate::config::proxy::ProxyTrust;
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};
use crate::http::{AppError, AppState};

/// Longest text kept of a client "address" that a proxy wrote and that is not
/// an IP address (`unknown`, an obfuscated `_name`).
const MAX_ADDRESS_TEXT: usize = 64;

/// The client of a request, as far as the server can tell (an extractor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientView {
    /// The client's address: the proxy's word behind a proxy, else the peer's
    /// (as text, for the download history).
    pub(crate) ip: String,
    /// The address the rate limits count: the client's when it is an IP
    /// address, else the connection's.
    pub(crate) limit_ip: IpAddr,
    /// The scheme the client used, when a trusted proxy said it.
    pub(crate) proto: Option<String>,
    /// The host (and port) the client asked for, if the request names one.
    pub(crate) host: Option<String>,
}

impl ClientView {
    /// The view of a request with `headers` and `uri` that came from `peer`;
    /// the proxy's headers count if `proxy` (the server's proxy settings)
    /// trusts the peer.
    pub(crate) fn new(
        proxy: Option<&ProxyTrust>,
        headers: &HeaderMap,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Self {
        let peer_ip = peer.ip().to_canonical();
        let forwarded = Forwarded::read(ProxyHeaders::of(headers), proxy, peer_ip);
        let said = forwarded.client.as_deref();
        let parsed = said.and_then(|c| c.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()));
        let ip = match (parsed, said) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(text)) => shortened(text),
            (None, None) => peer_ip.to_string(),
        };
        ClientView {
            ip,
            limit_ip: parsed.unwrap_or(peer_ip),
            host: requested_host(&forwarded, headers, uri),
            proto: forwarded.proto,
        }
    }

    /// Whether the client used HTTPS (see the module docs).
    fn is_https(&self) -> bool {
        self.proto.as_deref() == Some("https")
    }

    /// The attribute that makes a cookie `Secure` when the client used HTTPS,
    /// to append to a `Set-Cookie` value (empty otherwise).
    pub(crate) fn secure_attribute(&self) -> &'static str {
        if self.is_https() {
            "; Secure"
        } else {
            ""
        }
    }

    /// The base of this server's URLs as the client reached it:
    /// `https://files.example` or `http://127.0.0.1:4001`.
    pub(crate) fn base_url(&self) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        format!("{scheme}://{}", self.host.as_deref().unwrap_or_default())
    }
}

/// At most [`MAX_ADDRESS_TEXT`] bytes of `text` (on a character boundary).
fn shortened(text: &str) -> String {
    let mut end = text.len().min(MAX_ADDRESS_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The host the client asked for: the proxy's word, else the request
/// target's authority (an absolute-form request), else `Host`.
pub(crate) fn requested_host(
    forwarded: &Forwarded,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<String> {
    forwarded
        .host
        .clone()
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
}

/// Whether `req` came from a proxy the server trusts (its forwarding
/// headers count).
pub(crate) fn from_trusted_proxy<B>(state: &AppState, req: &axum::http::Request<B>) -> bool {
    let Some(proxy) = &state.config.proxy else {
        return false;
    };
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| proxy.trusts_peer(peer.ip()))
}

impl FromRequestParts<AppState> for ClientView {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(AppError::internal(
                "the connection's address is unknown",
                "no ConnectInfo in the request",
            ));
        };
        Ok(ClientView::new(
            state.config.proxy.as_ref(),
            &parts.headers,
            &parts.uri,
            *peer,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn view(behind_proxy: bool, pairs: &[(&'static str, &'static str)]) -> ClientView {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        let peer = SocketAddr::from(([192, 0, 2, 9], 50000));
        let trust = ProxyTrust::default();
        let proxy = behind_proxy.then_some(&trust);
        ClientView::new(proxy, &h, &Uri::from_static("/api/entry"), peer)
    }

    #[test]
    fn without_a_proxy_only_the_connection_counts() {
        let v = view(
            false,
            &[
                ("host", "files.example:4001"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
            ],
        );
        assert_eq!(v.ip, "192.0.2.9");
        assert_eq!(v.limit_ip.to_string(), "192.0.2.9");
        assert_eq!(v.base_url(), "http://files.example:4001");
        assert_eq!(v.secure_attribute(), "");
    }

    #[test]
    fn behind_a_proxy_its_word_counts() {
        let tls = view(
            true,
            &[
                ("host", "127.0.0.1:4001"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "files.example"),
            ],
        );
        assert_eq!(tls.ip, "203.0.113.7");
        assert_eq!(tls.limit_ip.to_string(), "203.0.113.7");
        assert_eq!(tls.base_url(), "https://files.example");
        assert_eq!(tls.secure_attribute(), "; Secure");
        // A plain-HTTP proxy, or one that does not say: no https.
        for pairs in [
            &[("host", "files.example"), ("x-forwarded-proto", "http")][..],
            &[("host", "files.example")][..],
        ] {
            let plain = view(true, pairs);
            assert_eq!(plain.base_url(), "http://files.example");
            assert_eq!(plain.secure_attribute(), "");
            assert_eq!(plain.ip, "192.0.2.9");
        }
    }

    #[test]
    fn ipv4_clients_are_plain_ipv4_addresses() {
        let mapped: SocketAddr = "[::ffff:192.0.2.9]:50000".parse().unwrap();
        let v = ClientView::new(None, &HeaderMap::new(), &Uri::from_static("/"), mapped);
        assert_eq!(v.ip, "192.0.2.9");
        let v6: SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let v = ClientView::new(None, &HeaderMap::new(), &Uri::from_static("/"), v6);
        assert_eq!(v.ip, "2001:db8::1");
        // A proxy's word too; what is not an address stays as the proxy said it.
        assert_eq!(
            view(true, &[("x-forwarded-for", "::FFFF:203.0.113.7")]).ip,
            "203.0.113.7"
        );
        assert_eq!(
            view(true, &[("x-forwarded-for", "2001:db8::7")]).ip,
            "2001:db8::7"
        );
        let unknown = view(true, &[("x-forwarded-for", "unknown")]);
        assert_eq!(unknown.ip, "unknown");
        // The limits then count the connection's address.
        assert_eq!(unknown.limit_ip.to_string(), "192.0.2.9");
        // What is not an address is kept short.
        let long = view(true, &[("x-forwarded-for", "x".repeat(1000).leak())]);
        assert_eq!(long.ip, "x".repeat(MAX_ADDRESS_TEXT));
        assert_eq!(
            shortened(&"é".repeat(100)),
            "é".repeat(MAX_ADDRESS_TEXT / 2)
        );
        use crate::store::model::history::plain_ip;
        assert_eq!(plain_ip("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(plain_ip("::1"), "::1");
        assert_eq!(plain_ip(""), "");
    }

    #[test]
    fn an_absolute_target_names_the_host() {
        let peer = SocketAddr::from(([192, 0, 2, 9], 50000));
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("other.example"));
        let uri = Uri::from_static("http://files.example/api/entry");
        let v = ClientView::new(None, &h, &uri, peer);
        assert_eq!(v.host.as_deref(), Some("files.example"));
    }
}
