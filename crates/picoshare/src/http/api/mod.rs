//! The JSON API under `/api/` (all but uploads, which are in
//! [`crate::http::uploads`]) and the operations endpoints `/healthz` and
//! `/metrics`. Replies are JSON (or empty); errors are [`crate::http::AppError`].

pub(crate) mod admin;
pub(crate) mod entries;
pub(crate) mod guest_links;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod login;
pub(crate) mod metrics;
pub(crate) mod notifications;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod shares;
pub(crate) mod system;
pub(crate) mod tokens;
