//! Layers the router applies to every route and the fallback, so that routes
//! added later get them without doing anything (see [`mod@crate::http::router`]
//! for their order): the request-body idle timeout ([`body_timeout`]), the
//! cross-origin check ([`csrf`]), the security headers ([`security_headers`])
//! and, outermost, the request counters ([`metrics`]).

pub mod body_timeout;
pub mod csrf;
pub mod metrics;
pub mod security_headers;
