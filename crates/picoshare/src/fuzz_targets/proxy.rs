//! The `proxy` target: a reverse proxy's forwarding headers, read by
//! `http::proto::proxy`.

use super::lines;
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};

/// The forwarding headers of a reverse proxy, one per line: `X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`, then `Forwarded`
/// (the rest of the input). A missing line is an absent header.
///
/// Properties: nothing panics; untrusted headers say nothing; every fact is
/// trimmed and non-empty, the scheme lower-case; an `X-Forwarded-*` header
/// with a first element wins over `Forwarded`; the facts, written back as
/// one `Forwarded` element of quoted strings, read back the same.
pub fn proxy(data: &[u8]) {
    let parts = lines(data, 5);
    let line = |i: usize| parts.get(i).map(|s| s.as_ref());
    let headers = ProxyHeaders {
        forwarded_for: line(0),
        real_ip: line(1),
        forwarded_proto: line(2),
        forwarded_host: line(3),
        forwarded: line(4),
    };
    assert_eq!(Forwarded::read(headers, false), Forwarded::default());
    let seen = Forwarded::read(headers, true);
    for fact in [&seen.client, &seen.proto, &seen.host]
        .into_iter()
        .flatten()
    {
        assert!(!fact.is_empty() && fact.trim() == fact, "{seen:?}");
    }
    if let Some(proto) = &seen.proto {
        assert_eq!(*proto, proto.to_ascii_lowercase());
    }
    let first = |v: Option<&str>| {
        v.and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(client) = first(headers.forwarded_for) {
        assert_eq!(seen.client.as_deref(), Some(client.as_str()));
    }
    if let Some(proto) = first(headers.forwarded_proto) {
        assert_eq!(seen.proto, Some(proto.to_ascii_lowercase()));
    }
    if let Some(host) = first(headers.forwarded_host) {
        assert_eq!(seen.host.as_deref(), Some(host.as_str()));
    }
    // Written back as one element: an address with a colon (or a bracket)
    // as an IPv6 node in brackets, each value a quoted string.
    let quoted = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut element = Vec::new();
    let client = seen.client.as_deref().filter(|c| !c.contains(']'));
    if let Some(c) = client {
        let node = if c.contains(':') || c.starts_with('[') {
            format!("[{c}]")
        } else {
            c.to_owned()
        };
        element.push(format!("for={}", quoted(&node)));
    }
    if let Some(p) = &seen.proto {
        element.push(format!("proto={}", quoted(p)));
    }
    if let Some(h) = &seen.host {
        element.push(format!("host={}", quoted(h)));
    }
    let header = element.join(";");
    let again = Forwarded::read(
        ProxyHeaders {
            forwarded: Some(&header),
            ..ProxyHeaders::default()
        },
        true,
    );
    let want = Forwarded {
        client: client.map(str::to_owned),
        proto: seen.proto.clone(),
        host: seen.host.clone(),
    };
    assert_eq!(again, want, "{header:?}");
}
