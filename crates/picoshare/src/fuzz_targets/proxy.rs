//! The `proxy` target: a reverse proxy's forwarding headers, read by
//! `http::proto::proxy`.

use std::net::IpAddr;

use super::lines;
use crate::config::proxy::ProxyTrust;
use crate::http::proto::proxy::{Forwarded, ProxyHeaders};

/// The forwarding headers of a reverse proxy, one per line: `X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto`, `X-Forwarded-Host`, then `Forwarded`
/// (the rest of the input). A missing line is an absent header.
///
/// Properties: nothing panics; untrusted headers say nothing, nor do headers
/// from a peer outside the trusted networks; every fact is trimmed and
/// non-empty, the scheme lower-case; the address is the last non-empty
/// element of `X-Forwarded-For` when it has one (the one the proxy added),
/// and a trusted network listed for it moves the answer to an element on its
/// left; `X-Forwarded-Proto` and `-Host` with a first element win over
/// `Forwarded`; the facts, written back as one `Forwarded` element of quoted
/// strings, read back the same.
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
    let peer: IpAddr = [192, 0, 2, 9].into();
    let trust = ProxyTrust::default();
    assert_eq!(Forwarded::read(headers, None, peer), Forwarded::default());
    let elsewhere = ProxyTrust {
        networks: ProxyTrust::parse_networks("10.0.0.0/8").expect("a network"),
        ..ProxyTrust::default()
    };
    assert_eq!(
        Forwarded::read(headers, Some(&elsewhere), peer),
        Forwarded::default()
    );
    let seen = Forwarded::read(headers, Some(&trust), peer);
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
    let last_node = headers.forwarded_for.and_then(|v| {
        v.split(',')
            .map(|n| node(n.trim()))
            .rfind(|n| !n.is_empty())
    });
    if let Some(client) = last_node {
        assert_eq!(seen.client.as_deref(), Some(client));
        // Listing the client's own address as a proxy moves the answer left
        // (or keeps it, when nothing on its left is an address).
        if let Ok(ip) = client.parse::<IpAddr>() {
            let listed = ProxyTrust {
                networks: vec![ip.to_canonical().into()],
                ..ProxyTrust::default()
            };
            let other = Forwarded::read(headers, Some(&listed), ip).client;
            let on_left = headers.forwarded_for.is_some_and(|v| {
                v.split(',').map(|n| node(n.trim())).any(|n| {
                    !n.is_empty()
                        && n.parse::<IpAddr>().ok().map(|a| a.to_canonical())
                            != Some(ip.to_canonical())
                })
            });
            if on_left {
                assert_ne!(
                    other
                        .as_deref()
                        .and_then(|o| o.parse::<IpAddr>().ok())
                        .map(|a| a.to_canonical()),
                    Some(ip.to_canonical()),
                    "{headers:?}"
                );
            }
        }
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
        Some(&trust),
        peer,
    );
    let want = Forwarded {
        client: client.map(str::to_owned),
        proto: seen.proto.clone(),
        host: seen.host.clone(),
    };
    assert_eq!(again, want, "{header:?}");
}

/// A node's address as the parser reads it: without a port, and an IPv6
/// address without brackets (written again here, from the rules).
fn node(n: &str) -> &str {
    if let Some(rest) = n.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(ip, _)| ip).trim();
    }
    match n.split_once(':') {
        Some((address, port)) if !port.contains(':') => address.trim(),
        _ => n.trim(),
    }
}
