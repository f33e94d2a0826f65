//! The HTTP layer: the only part of the server that knows status codes and
//! headers. Its folders follow the roles of its code:
//!
//! - [`serve`]: the transport, accepting connections and serving HTTP/1.1 on
//!   them with the timeouts against slow clients.
//! - [`mod@router`]: every route and the layers around them; [`AppState`] (here),
//!   the state handlers share; [`error`]: the one error reply type and the
//!   extractors whose refusals use it.
//! - [`layers`]: what wraps every route: the request-body idle timeout, the
//!   cross-origin check, the security headers, the request counters.
//! - [`auth`]: who is calling: the owner's session, API tokens, the login rate
//!   limit, file passwords; [`client`]: the client's address and the scheme
//!   and host it used, behind a reverse proxy too.
//! - [`proto`]: pure protocol parsers and writers (ranges, conditional
//!   requests, `Content-Disposition`, media types, tus headers, proxy headers,
//!   the streaming ZIP writer), unit-tested and fuzzed, knowing nothing of the server.
//! - Handlers: [`api`] (the JSON API and operations endpoints), [`uploads`]
//!   (multipart, raw and resumable uploads, the owner's and guests'),
//!   [`downloads`] (files and share ZIPs), [`pages`] (the HTML pages);
//!   [`listing`]: the paging, sorting and filtering parameters of the long
//!   lists, shared by the pages and the API.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod downloads;
pub(crate) mod error;
pub(crate) mod layers;
pub(crate) mod listing;
pub(crate) mod pages;
pub(crate) mod params;
pub(crate) mod proto;
pub(crate) mod router;
pub(crate) mod serve;
pub(crate) mod uploads;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub(crate) use error::AppError;
pub(crate) use router::router;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

/// Largest JSON body the API accepts.
pub(crate) const JSON_LIMIT: usize = 64 * 1024;

/// State shared by all handlers: one pointer, cloned for every request by
/// each layer and route of the router (a clone is one atomic increment; a
/// struct of a dozen `Arc`s cost a dozen, and their decrements, on cache
/// lines both runtime threads touch: about a fifth of the CPU time of a
/// trivial request).
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppStateInner>);

impl AppState {
    /// Wraps the state for sharing.
    pub(crate) fn new(inner: AppStateInner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// What [`AppState`] holds.
pub(crate) struct AppStateInner {
    /// The database.
    pub(crate) store: Store,
    /// Configuration.
    pub(crate) config: Arc<Config>,
    /// SHA-256 of the admin passphrase.
    pub(crate) secret_digest: [u8; 32],
    /// The passphrase's tag, which sessions are stored with (see
    /// `auth::session::passphrase_tag`).
    pub(crate) secret_tag: Arc<str>,
    /// Source of "now".
    pub(crate) clock: Arc<dyn Clock>,
    /// Counters for `/metrics`.
    pub(crate) metrics: Arc<layers::metrics::HttpMetrics>,
    /// Failed logins per client address.
    pub(crate) login_limiter: Arc<auth::login_limit::Limiter<auth::login_limit::ClientKey>>,
    /// Wrong passwords of protected files, and the key of their cookies.
    pub(crate) file_access: Arc<auth::protect::FileAccess>,
    /// The request writing to each resumable upload.
    pub(crate) tus_locks: Arc<uploads::tus::TusLocks>,
    /// Turns true when the server starts shutting down, so that long requests
    /// (resumable uploads) can save their progress and stop.
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Handlers that need nothing but the store take only it (`State<Store>`).
impl axum::extract::FromRef<AppState> for Store {
    fn from_ref(state: &AppState) -> Store {
        state.store.clone()
    }
}

/// A JSON reply followed by a newline, as the original sends, never cached
/// (`Cache-Control: no-store`: the owner's replies list private files and
/// settings, and every reply is about the state at the time it was asked).
fn json_reply(value: &serde_json::Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    uncached(StatusCode::OK, "application/json", body)
}

/// A reply of `content_type` that no cache may keep (`Cache-Control:
/// no-store`).
pub(crate) fn uncached(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
