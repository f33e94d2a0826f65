//! The JSON API under `/api/` (all but uploads, which are in
//! [`crate::http::uploads`]) and the operations endpoints `/healthz` and
//! `/metrics`. Replies are JSON (or empty); errors are [`crate::http::AppError`].

pub mod admin;
pub mod entries;
pub mod guest_links;
pub mod health;
pub mod history;
pub mod login;
pub mod metrics;
pub mod settings;
pub mod shares;
pub mod system;
pub mod tokens;
