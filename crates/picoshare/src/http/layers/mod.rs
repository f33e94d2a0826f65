//! Layers the router applies to every route and the fallback, so that routes
//! added later get them without doing anything (see [`mod@crate::http::router`]
//! for their order): the request-body idle timeout ([`body_timeout`]), the
//! cross-origin check ([`csrf`]), the original's redirects of unclean paths
//! and of plain-HTTP requests behind a proxy ([`redirects`]), the security
//! headers ([`security_headers`]), gzip of the server's own text
//! ([`compression`]) and, outermost, the request counters ([`metrics`]).

pub(crate) mod body_timeout;
pub(crate) mod compression;
pub(crate) mod csrf;
pub(crate) mod metrics;
pub(crate) mod redirects;
pub(crate) mod security_headers;
