//! What a reverse proxy says about the request it forwards: the client's
//! address, the scheme and the host the client used. Pure: the one parser of
//! `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! RFC 7239 `Forwarded`, used wherever the server needs one of those facts
//! (download history and rate limits, `Secure` cookies, the links in
//! plain-text replies, the cross-origin check).
//!
//! # Trust
//!
//! The headers are believed only from a trusted proxy ([`ProxyTrust`], in
//! `crate::config::proxy`: the
//! server runs with `PS_BEHIND_PROXY` or `PS_TRUSTED_PROXIES`, and with the
//! latter the connection must come from one of the networks listed): anyone
//! can send them, so without a proxy that sets them they say nothing.
//!
//! # The client's address
//!
//! A proxy passes on the headers a client sent and adds its own: nginx's
//! `$proxy_add_x_forwarded_for`, Caddy and Traefik append the address they
//! saw to `X-Forwarded-For`, so in `X-Forwarded-For: 203.0.113.66,
//! 198.51.100.7` only the last element comes from the proxy; the first is
//! whatever the client wrote. So lists are read **from the right**: the
//! client is the rightmost element that is not itself a trusted proxy (an
//! address inside `PS_TRUSTED_PROXIES`); with one proxy and no list, the
//! rightmost element. A node may carry a port and IPv6 brackets
//! (`"[2001:db8::1]:4711"`, `192.0.2.1:80`), which are dropped; empty
//! elements are skipped.
//!
//! Which header ([`ClientHeader`], `PS_CLIENT_IP_HEADER`): by default
//! `X-Forwarded-For` when it has an element, else `X-Real-IP`, else the
//! `for=` of `Forwarded`, the original's order. A proxy passes on the headers
//! it does not set, so a proxy that sets only `X-Real-IP` (or only
//! `Forwarded`) must be named, or a client's own `X-Forwarded-For` would win;
//! a named header is the only one read.
//!
//! # Scheme and host
//!
//! Each comes from the `X-Forwarded-*` header when it has a value, and from
//! the first element of `Forwarded` otherwise; lists are read at their first
//! element (`X-Forwarded-Proto: https, http`). They decide only what the
//! client itself sees (its cookies' `Secure` flag, its links, the origin its
//! own browser is checked against), so a client that chooses them gains
//! nothing over others. `Forwarded` values may be quoted strings. Empty values
//! count as absent. The scheme is lower-case.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::proxy::{ClientHeader, ProxyTrust};

/// The forwarding headers of a request, as text (a header that is absent or
/// not visible ASCII is `None`; of a repeated header, the first line).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ProxyHeaders<'a> {
    /// `X-Forwarded-For`.
    pub(crate) forwarded_for: Option<&'a str>,
    /// `X-Real-IP`.
    pub(crate) real_ip: Option<&'a str>,
    /// `X-Forwarded-Proto`.
    pub(crate) forwarded_proto: Option<&'a str>,
    /// `X-Forwarded-Host`.
    pub(crate) forwarded_host: Option<&'a str>,
    /// `Forwarded` (RFC 7239).
    pub(crate) forwarded: Option<&'a str>,
}

impl<'a> ProxyHeaders<'a> {
    /// The forwarding headers among `headers`.
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        ProxyHeaders {
            forwarded_for: get("x-forwarded-for"),
            real_ip: get("x-real-ip"),
            forwarded_proto: get("x-forwarded-proto"),
            forwarded_host: get("x-forwarded-host"),
            forwarded: get("forwarded"),
        }
    }
}

/// What the proxy says about the client's request; each fact `None` when it
/// says nothing (or is not trusted).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Forwarded {
    /// The client's address (an IP address, or what the proxy puts in its
    /// place: `unknown`, an obfuscated `_name`), without port or brackets.
    pub(crate) client: Option<String>,
    /// The scheme the client used, lower-case (`https`, `http`).
    pub(crate) proto: Option<String>,
    /// The host the client asked for, with its port if it named one.
    pub(crate) host: Option<String>,
}

impl Forwarded {
    /// What `headers` say, if the connection came from `peer` and `proxy`
    /// (the server's proxy settings, `None` without a proxy) trusts it;
    /// nothing otherwise.
    pub(crate) fn read(
        headers: ProxyHeaders<'_>,
        proxy: Option<&ProxyTrust>,
        peer: IpAddr,
    ) -> Forwarded {
        match proxy {
            Some(trust) if trust.trusts_peer(peer) => Forwarded::parse(headers, trust),
            _ => Forwarded::default(),
        }
    }

    /// What `headers` say if `trusted` (by the default rules: the scheme and
    /// host do not depend on them), nothing otherwise: for the checks that
    /// need only those two facts.
    pub(crate) fn trusted_if(headers: ProxyHeaders<'_>, trusted: bool) -> Forwarded {
        if trusted {
            Forwarded::parse(headers, &ProxyTrust::default())
        } else {
            Forwarded::default()
        }
    }

    /// What `headers` say, read by the rules of `trust` (see the module docs).
    pub(crate) fn parse(headers: ProxyHeaders<'_>, trust: &ProxyTrust) -> Forwarded {
        let rfc7239: Vec<Vec<(String, String)>> =
            headers.forwarded.map(elements).unwrap_or_default();
        let param = |element: &[(String, String)], key: &str| {
            element
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let first = rfc7239.first().map(Vec::as_slice).unwrap_or_default();
        let from_xff = || {
            headers
                .forwarded_for
                .and_then(|v| trust.client_in(v.split(',').map(|n| node_address(n.trim()))))
                .map(str::to_owned)
        };
        let from_real_ip = || {
            headers
                .real_ip
                .map(|v| node_address(v.trim()))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let from_forwarded = || {
            let nodes: Vec<String> = rfc7239
                .iter()
                .map(|e| param(e, "for").unwrap_or_default())
                .collect();
            trust
                .client_in(nodes.iter().map(|n| node_address(n)))
                .map(str::to_owned)
        };
        let client = match trust.client_header {
            ClientHeader::Any => from_xff().or_else(from_real_ip).or_else(from_forwarded),
            ClientHeader::XForwardedFor => from_xff(),
            ClientHeader::XRealIp => from_real_ip(),
            ClientHeader::Forwarded => from_forwarded(),
        };
        let proto = headers
            .forwarded_proto
            .and_then(first_in_list)
            .map(str::to_owned)
            .or_else(|| param(first, "proto"))
            .map(|p| p.to_ascii_lowercase());
        let host = headers
            .forwarded_host
            .and_then(first_in_list)
            .map(str::to_owned)
            .or_else(|| param(first, "host"));
        Forwarded {
            client: client.filter(|v| !v.is_empty()),
            proto,
            host,
        }
    }
}

/// The first element of a comma-separated list, trimmed; `None` if empty.
fn first_in_list(value: &str) -> Option<&str> {
    value
        .split(',')
        .next()
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The elements of a `Forwarded` header, each as `(key, value)` pairs with
/// the keys trimmed and the values unquoted. Separators inside quoted
/// strings do not count; a pair without `=` is skipped.
fn elements(header: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut pairs = Vec::new();
    let mut pair = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in header.chars() {
        if quoted {
            pair.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                pair.push(c);
            }
            ';' => pairs.extend(split_pair(&std::mem::take(&mut pair))),
            ',' => {
                pairs.extend(split_pair(&std::mem::take(&mut pair)));
                all.push(std::mem::take(&mut pairs));
            }
            _ => pair.push(c),
        }
    }
    pairs.extend(split_pair(&pair));
    all.push(pairs);
    all
}

/// `key=value` into a trimmed key and an unquoted value.
fn split_pair(pair: &str) -> Option<(String, String)> {
    let (key, value) = pair.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_owned(), unquote(value.trim())))
}

/// A value of `Forwarded`: a token as is, a quoted string without its quotes
/// and escapes.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

/// The address of a node (a `for=` value, an element of `X-Forwarded-For`):
/// without the port, and an IPv6 address without its brackets.
fn node_address(node: &str) -> &str {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip).trim();
    }
    // One colon: `IPv4:port` or `name:port`. More: a bare IPv6 address.
    match node.split_once(':') {
        Some((address, port)) if !port.contains(':') => address.trim(),
        _ => node.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &[(&str, &'a str)]) -> ProxyHeaders<'a> {
        let mut h = ProxyHeaders::default();
        for &(name, value) in pairs {
            match name {
                "x-forwarded-for" => h.forwarded_for = Some(value),
                "x-real-ip" => h.real_ip = Some(value),
                "x-forwarded-proto" => h.forwarded_proto = Some(value),
                "x-forwarded-host" => h.forwarded_host = Some(value),
                "forwarded" => h.forwarded = Some(value),
                _ => panic!("{name}"),
            }
        }
        h
    }

    fn parse(pairs: &[(&str, &str)]) -> Forwarded {
        Forwarded::parse(headers(pairs), &ProxyTrust::default())
    }

    fn client_with(trust: &ProxyTrust, pairs: &[(&str, &str)]) -> Option<String> {
        Forwarded::parse(headers(pairs), trust).client
    }

    fn fwd(client: Option<&str>, proto: Option<&str>, host: Option<&str>) -> Forwarded {
        Forwarded {
            client: client.map(str::to_owned),
            proto: proto.map(str::to_owned),
            host: host.map(str::to_owned),
        }
    }

    fn networks(raw: &str) -> ProxyTrust {
        ProxyTrust {
            networks: ProxyTrust::parse_networks(raw).unwrap(),
            ..ProxyTrust::default()
        }
    }

    #[test]
    fn the_address_is_the_one_the_proxy_appended() {
        // nginx's $proxy_add_x_forwarded_for after a client that sent its own.
        assert_eq!(
            parse(&[("x-forwarded-for", "203.0.113.66, 198.51.100.7")]).client,
            Some("198.51.100.7".into())
        );
        assert_eq!(
            parse(&[("x-forwarded-for", " 203.0.113.7 ")]).client,
            Some("203.0.113.7".into())
        );
        // Empty elements are skipped; ports and brackets are dropped.
        assert_eq!(
            parse(&[("x-forwarded-for", "203.0.113.66, 192.0.2.1:4711, ")]).client,
            Some("192.0.2.1".into())
        );
        assert_eq!(
            parse(&[("x-forwarded-for", "[2001:db8::1]:80")]).client,
            Some("2001:db8::1".into())
        );
        assert_eq!(
            parse(&[("x-forwarded-for", "2001:db8::1")]).client,
            Some("2001:db8::1".into())
        );
        assert_eq!(parse(&[("x-forwarded-for", " , ")]).client, None);
        assert_eq!(parse(&[]), Forwarded::default());
    }

    #[test]
    fn listed_proxies_are_skipped_from_the_right() {
        let trust = networks("10.0.0.0/8, 192.0.2.10");
        let xff = |v| client_with(&trust, &[("x-forwarded-for", v)]);
        assert_eq!(
            xff("203.0.113.66, 198.51.100.7, 192.0.2.10, 10.1.2.3").as_deref(),
            Some("198.51.100.7")
        );
        // A name or `unknown` ends the walk: it is what the proxy wrote.
        assert_eq!(
            xff("198.51.100.7, unknown, 10.0.0.1").as_deref(),
            Some("unknown")
        );
        // Every element a proxy: the leftmost.
        assert_eq!(xff("10.0.0.2, 10.0.0.1").as_deref(), Some("10.0.0.2"));
        // IPv4-mapped addresses are their IPv4 address.
        assert_eq!(
            xff("198.51.100.7, ::ffff:10.0.0.1").as_deref(),
            Some("198.51.100.7")
        );
        // The same walk in `Forwarded`.
        assert_eq!(
            client_with(
                &trust,
                &[(
                    "forwarded",
                    r#"for=203.0.113.66, for="198.51.100.7:1234";proto=https, for=10.0.0.1"#
                )]
            )
            .as_deref(),
            Some("198.51.100.7")
        );
        assert!(trust.trusts_peer("10.9.9.9".parse().unwrap()));
        assert!(trust.trusts_peer("::ffff:192.0.2.10".parse().unwrap()));
        assert!(!trust.trusts_peer("192.0.2.11".parse().unwrap()));
        assert!(ProxyTrust::default().trusts_peer("192.0.2.11".parse().unwrap()));
    }

    #[test]
    fn the_header_order_is_explicit() {
        let both = [
            ("x-forwarded-for", "203.0.113.66"),
            ("x-real-ip", "198.51.100.2"),
            ("forwarded", "for=192.0.2.1"),
        ];
        let with = |header| ProxyTrust {
            client_header: header,
            ..ProxyTrust::default()
        };
        // By default as the original: X-Forwarded-For, X-Real-IP, Forwarded.
        assert_eq!(parse(&both).client.as_deref(), Some("203.0.113.66"));
        assert_eq!(parse(&both[1..]).client.as_deref(), Some("198.51.100.2"));
        assert_eq!(parse(&both[2..]).client.as_deref(), Some("192.0.2.1"));
        assert_eq!(
            parse(&[("x-forwarded-for", ""), both[1]]).client.as_deref(),
            Some("198.51.100.2")
        );
        // A named header is the only one read.
        let real = with(ClientHeader::XRealIp);
        assert_eq!(client_with(&real, &both).as_deref(), Some("198.51.100.2"));
        assert_eq!(client_with(&real, &[both[0]]), None);
        let rfc = with(ClientHeader::Forwarded);
        assert_eq!(client_with(&rfc, &both).as_deref(), Some("192.0.2.1"));
        let xff = with(ClientHeader::XForwardedFor);
        assert_eq!(client_with(&xff, &both[1..]), None);
        assert_eq!(ClientHeader::parse("X-Real-IP"), Ok(ClientHeader::XRealIp));
        assert_eq!(ClientHeader::parse(" "), Ok(ClientHeader::Any));
        assert!(ClientHeader::parse("X-Client-IP").is_err());
    }

    #[test]
    fn networks_are_parsed() {
        let n = ProxyTrust::parse_networks("10.0.0.1/8 ,2001:db8::/32,127.0.0.1").unwrap();
        let shown: Vec<String> = n.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"]);
        assert!(ProxyTrust::parse_networks("10.0.0.0/33").is_err());
        assert!(ProxyTrust::parse_networks("proxy.example").is_err());
        assert_eq!(ProxyTrust::parse_networks(" ").unwrap(), []);
    }

    #[test]
    fn x_forwarded_proto_and_host_give_their_first_element() {
        assert_eq!(
            parse(&[
                ("x-forwarded-for", " 203.0.113.7 , 10.0.0.1"),
                ("x-forwarded-proto", "HTTPS, http"),
                ("x-forwarded-host", "files.example, internal"),
            ]),
            fwd(Some("10.0.0.1"), Some("https"), Some("files.example"))
        );
    }

    #[test]
    fn forwarded_is_read_when_the_x_header_says_nothing() {
        let rfc = (
            "forwarded",
            "for=192.0.2.1;host=files.example;proto=https, for=10.0.0.1",
        );
        assert_eq!(
            parse(&[rfc]),
            fwd(Some("10.0.0.1"), Some("https"), Some("files.example"))
        );
        assert_eq!(
            parse(&[rfc, ("x-forwarded-proto", "http"), ("x-forwarded-for", "")]),
            fwd(Some("10.0.0.1"), Some("http"), Some("files.example"))
        );
        assert_eq!(
            parse(&[rfc, ("x-forwarded-proto", " , https")]),
            fwd(Some("10.0.0.1"), Some("https"), Some("files.example"))
        );
    }

    #[test]
    fn forwarded_values_are_unquoted_and_nodes_lose_their_port() {
        let client = |v: &str| parse(&[("forwarded", v)]).client;
        assert_eq!(
            client(r#"for="[2001:db8:cafe::17]:4711""#).as_deref(),
            Some("2001:db8:cafe::17")
        );
        assert_eq!(
            client("for=192.0.2.43:47011").as_deref(),
            Some("192.0.2.43")
        );
        assert_eq!(client("For=unknown").as_deref(), Some("unknown"));
        assert_eq!(client("for=2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(client("for=\"\"").as_deref(), None);
        // The last element without `for=`: the one before it.
        assert_eq!(
            client("for=192.0.2.1, proto=https").as_deref(),
            Some("192.0.2.1")
        );
        // Separators inside quotes do not split.
        assert_eq!(
            parse(&[("forwarded", r#"host="a;b,c";proto=HTTP"#)]),
            fwd(None, Some("http"), Some("a;b,c"))
        );
        assert_eq!(
            parse(&[("forwarded", r#"host="say \"hi\"""#)])
                .host
                .as_deref(),
            Some(r#"say "hi""#)
        );
    }

    #[test]
    fn untrusted_headers_say_nothing() {
        let h = ProxyHeaders {
            forwarded_for: Some("203.0.113.7"),
            forwarded_proto: Some("https"),
            ..ProxyHeaders::default()
        };
        let peer: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(Forwarded::read(h, None, peer), Forwarded::default());
        let trust = ProxyTrust::default();
        assert_eq!(
            Forwarded::read(h, Some(&trust), peer).proto.as_deref(),
            Some("https")
        );
        // With networks, only a peer inside them is believed.
        let listed = networks("10.0.0.0/8");
        assert_eq!(
            Forwarded::read(h, Some(&listed), peer),
            Forwarded::default()
        );
        assert_eq!(
            Forwarded::read(h, Some(&listed), "10.0.0.5".parse().unwrap())
                .client
                .as_deref(),
            Some("203.0.113.7")
        );
    }
}
