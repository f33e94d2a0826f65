//! What a reverse proxy says about the request it forwards: the client's
//! address, the scheme and the host the client used. Pure: the one parser of
//! `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
//! RFC 7239 `Forwarded`, used wherever the server needs one of those facts
//! (download history and rate limits, `Secure` cookies, the links in
//! plain-text replies, the cross-origin check).
//!
//! The headers are believed only when the server runs behind a proxy
//! (`PS_BEHIND_PROXY`, the `trusted` of `Forwarded::read`): anyone can send them,
//! so without a proxy that sets them they say nothing.
//!
//! Each fact comes from the `X-Forwarded-*` header when it has a value, and
//! from `Forwarded` otherwise; `X-Real-IP` is a second source of the address.
//! Lists are read at their first element, the one the proxy next to the
//! client added (`X-Forwarded-For: client, proxy1`; the first `Forwarded`
//! element). `Forwarded` values may be quoted strings; a `for=` node loses
//! its port and the brackets of an IPv6 address (`"[2001:db8::1]:4711"` is
//! `2001:db8::1`). Empty values count as absent. The scheme is lower-cased.

use axum::http::HeaderMap;

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
    /// place: `unknown`, an obfuscated `_name`).
    pub(crate) client: Option<String>,
    /// The scheme the client used, lower-case (`https`, `http`).
    pub(crate) proto: Option<String>,
    /// The host the client asked for, with its port if it named one.
    pub(crate) host: Option<String>,
}

impl Forwarded {
    /// What `headers` say, if they come from a `trusted` proxy; nothing
    /// otherwise.
    pub(crate) fn read(headers: ProxyHeaders<'_>, trusted: bool) -> Forwarded {
        if trusted {
            Forwarded::parse(headers)
        } else {
            Forwarded::default()
        }
    }

    /// What `headers` say (see the module docs for the rules).
    pub(crate) fn parse(headers: ProxyHeaders<'_>) -> Forwarded {
        let rfc7239 = headers.forwarded.map(first_element).unwrap_or_default();
        let param = |key: &str| {
            rfc7239
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let client = headers
            .forwarded_for
            .and_then(first_in_list)
            .or_else(|| headers.real_ip.map(str::trim).filter(|v| !v.is_empty()))
            .map(str::to_owned)
            .or_else(|| param("for").map(|node| node_address(&node).to_owned()))
            .filter(|v| !v.is_empty());
        let proto = headers
            .forwarded_proto
            .and_then(first_in_list)
            .map(str::to_owned)
            .or_else(|| param("proto"))
            .map(|p| p.to_ascii_lowercase());
        let host = headers
            .forwarded_host
            .and_then(first_in_list)
            .map(str::to_owned)
            .or_else(|| param("host"));
        Forwarded {
            client,
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

/// The parameters of the first element of a `Forwarded` header, as
/// `(key, value)` pairs with the keys trimmed and the values unquoted.
/// Separators inside quoted strings do not count; a pair without `=` is
/// skipped.
fn first_element(header: &str) -> Vec<(String, String)> {
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
            ',' => break,
            _ => pair.push(c),
        }
    }
    pairs.extend(split_pair(&pair));
    pairs
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

/// The address of a `for=` node: without the port, and an IPv6 address
/// without its brackets.
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

    fn parse(pairs: &[(&str, &str)]) -> Forwarded {
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
        Forwarded::parse(h)
    }

    fn fwd(client: Option<&str>, proto: Option<&str>, host: Option<&str>) -> Forwarded {
        Forwarded {
            client: client.map(str::to_owned),
            proto: proto.map(str::to_owned),
            host: host.map(str::to_owned),
        }
    }

    #[test]
    fn x_forwarded_headers_give_their_first_element() {
        assert_eq!(
            parse(&[
                ("x-forwarded-for", " 203.0.113.7 , 10.0.0.1"),
                ("x-forwarded-proto", "HTTPS, http"),
                ("x-forwarded-host", "files.example, internal"),
            ]),
            fwd(Some("203.0.113.7"), Some("https"), Some("files.example"))
        );
        assert_eq!(parse(&[]), Forwarded::default());
    }

    #[test]
    fn forwarded_is_read_when_the_x_header_says_nothing() {
        let rfc = (
            "forwarded",
            "for=192.0.2.1;host=files.example;proto=https, for=10.0.0.1",
        );
        assert_eq!(
            parse(&[rfc]),
            fwd(Some("192.0.2.1"), Some("https"), Some("files.example"))
        );
        assert_eq!(
            parse(&[rfc, ("x-forwarded-proto", "http"), ("x-forwarded-for", "")]),
            fwd(Some("192.0.2.1"), Some("http"), Some("files.example"))
        );
        assert_eq!(
            parse(&[rfc, ("x-forwarded-proto", " , https")]),
            fwd(Some("192.0.2.1"), Some("https"), Some("files.example"))
        );
    }

    #[test]
    fn x_real_ip_comes_between_the_two() {
        let real = ("x-real-ip", " 198.51.100.2 ");
        assert_eq!(parse(&[real]).client.as_deref(), Some("198.51.100.2"));
        assert_eq!(
            parse(&[real, ("x-forwarded-for", "203.0.113.7")])
                .client
                .as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            parse(&[real, ("forwarded", "for=192.0.2.1")])
                .client
                .as_deref(),
            Some("198.51.100.2")
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
        assert_eq!(client("proto=https, for=192.0.2.1").as_deref(), None);
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
        assert_eq!(Forwarded::read(h, false), Forwarded::default());
        assert_eq!(Forwarded::read(h, true).proto.as_deref(), Some("https"));
    }
}
