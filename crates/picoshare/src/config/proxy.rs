//! Which reverse proxies the server believes (`PS_BEHIND_PROXY`,
//! `PS_TRUSTED_PROXIES`) and which header names the client
//! (`PS_CLIENT_IP_HEADER`): the settings `crate::http::proto::proxy` reads
//! the forwarding headers with (its module header says how).

use std::net::IpAddr;

use ipnet::IpNet;

/// The header the client's address is read from (`PS_CLIENT_IP_HEADER`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientHeader {
    /// `X-Forwarded-For` if it has an element, else `X-Real-IP`, else
    /// `Forwarded` (the original's order).
    #[default]
    Any,
    /// `X-Forwarded-For` only.
    XForwardedFor,
    /// `X-Real-IP` only.
    XRealIp,
    /// `Forwarded` only.
    Forwarded,
}

impl ClientHeader {
    /// The setting's value: a header name (any case), or empty for [`ClientHeader::Any`].
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub(crate) fn parse(raw: &str) -> Result<ClientHeader, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" => Ok(ClientHeader::Any),
            "x-forwarded-for" => Ok(ClientHeader::XForwardedFor),
            "x-real-ip" => Ok(ClientHeader::XRealIp),
            "forwarded" => Ok(ClientHeader::Forwarded),
            _ => Err(format!(
                "PS_CLIENT_IP_HEADER must be X-Forwarded-For, X-Real-IP or Forwarded, not {raw:?}"
            )),
        }
    }
}

/// Which reverse proxies the server believes, and how it reads them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProxyTrust {
    /// The proxies' networks (`PS_TRUSTED_PROXIES`): only connections from
    /// them are believed, and their addresses are skipped in lists. Empty:
    /// the connecting peer is the one trusted proxy, whoever it is.
    pub(crate) networks: Vec<IpNet>,
    /// Where the client's address is read.
    pub(crate) client_header: ClientHeader,
}

impl ProxyTrust {
    /// Parses `PS_TRUSTED_PROXIES`: IP addresses and networks (`10.0.0.0/8`,
    /// `2001:db8::/32`), separated by commas or spaces.
    ///
    /// # Errors
    /// A message naming the entry that is neither.
    pub(crate) fn parse_networks(raw: &str) -> Result<Vec<IpNet>, String> {
        raw.split([',', ' ', '\t', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        format!(
                            "PS_TRUSTED_PROXIES: {s:?} is neither an IP address nor a network \
                             such as 10.0.0.0/8"
                        )
                    })
            })
            .collect()
    }

    /// Whether a connection from `peer` comes from a trusted proxy.
    pub(crate) fn trusts_peer(&self, peer: IpAddr) -> bool {
        self.networks.is_empty() || self.is_proxy(peer)
    }

    /// Whether `ip` is one of the listed proxies.
    pub(crate) fn is_proxy(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// The client among the nodes of a list, read from the right: the first
    /// that is not a listed proxy (the leftmost if all of them are).
    pub(crate) fn client_in<'a>(
        &self,
        nodes: impl DoubleEndedIterator<Item = &'a str>,
    ) -> Option<&'a str> {
        let mut last = None;
        for node in nodes.rev().filter(|n| !n.is_empty()) {
            match node.parse::<IpAddr>() {
                Ok(ip) if self.is_proxy(ip) => last = Some(node),
                _ => return Some(node),
            }
        }
        last
    }
}
