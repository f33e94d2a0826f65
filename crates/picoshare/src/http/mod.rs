//! The HTTP layer: routes, shared state, and the mapping of outcomes to replies.
//!
//! This is the only part of the server that knows status codes and headers.

mod admin;
pub mod auth;
pub mod body_timeout;
pub mod conditional;
pub mod csrf;
pub mod disposition;
mod download;
mod entries;
pub mod error;
pub(crate) mod guest_links;
pub mod health;
mod history;
pub mod login_limit;
pub mod metrics;
pub mod mime;
pub mod multipart_ranges;
pub mod pages;
pub mod protect;
pub mod ranges;
pub mod security_headers;
pub mod serve;
mod settings;
mod shares;
mod system;
mod tokens;
pub mod tus;
pub mod tus_headers;
pub(crate) mod upload;
pub mod zipstream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

pub use error::AppError;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

/// Largest JSON body the API accepts.
pub(crate) const JSON_LIMIT: usize = 64 * 1024;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Configuration.
    pub config: Arc<Config>,
    /// SHA-256 of the admin passphrase.
    pub secret_digest: [u8; 32],
    /// Source of "now".
    pub clock: Arc<dyn Clock>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::HttpMetrics>,
    /// Failed logins per client address.
    pub login_limiter: Arc<login_limit::LoginLimiter>,
    /// Wrong passwords of protected files, and the key of their cookies.
    pub file_access: Arc<protect::FileAccess>,
    /// The request writing to each resumable upload.
    pub tus_locks: Arc<tus::TusLocks>,
    /// Turns true when the server starts shutting down, so that long requests
    /// (resumable uploads) can save their progress and stop.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Builds the router.
///
/// Routes go before the layers at the end, which apply to every route and the
/// fallback: the JSON body limit, the request-body idle timeout, the
/// cross-origin check on state-changing requests, and the security headers
/// (so refusals from the other layers get them too), and outermost the request
/// counters of `/metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/auth", post(auth::login).delete(auth::logout))
        .route(
            "/api/entry",
            post(upload::upload_entry).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/upload/{filename}",
            put(upload::upload_raw).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/upload", put(upload::upload_raw_unnamed))
        .route("/api/upload/", put(upload::upload_raw_unnamed))
        .route(
            "/api/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route(
            "/api/tokens/{id}",
            axum::routing::delete(tokens::delete_token),
        )
        .route(
            "/api/entry/{id}",
            put(entries::update_entry).delete(entries::delete_entry),
        )
        .route("/api/admin/gc", post(admin::collect_garbage))
        .route("/api/entries", get(history::list_entries))
        .route("/api/entry/{id}/downloads", get(history::entry_downloads))
        .route(
            "/api/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route("/api/system", get(system::system_info))
        .route("/api/guest-links", post(guest_links::create_guest_link))
        .route(
            "/api/guest-links/{id}",
            axum::routing::delete(guest_links::delete_guest_link),
        )
        .route(
            "/api/guest-links/{id}/enable",
            put(guest_links::enable_guest_link),
        )
        .route(
            "/api/guest-links/{id}/disable",
            put(guest_links::disable_guest_link),
        )
        .route(
            "/api/guest/{guestLinkID}",
            post(guest_links::upload_guest_file).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/shares",
            get(shares::list_shares).post(shares::create_share),
        )
        .route(
            "/api/shares/{id}",
            get(shares::get_share).delete(shares::delete_share),
        )
        .route("/s/{id}", get(pages::shares::share_page))
        .route("/s/{id}/zip", get(shares::download_zip))
        .route("/shares", get(pages::shares::shares_page))
        .merge(tus_routes())
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(health::healthz))
        .route("/v/{id}", get(pages::preview::view_page))
        .route("/static/{*path}", get(pages::assets::serve))
        .route("/", get(pages::upload::index))
        .route("/login", get(pages::login::login_page))
        .route("/g/{guestLinkID}", get(pages::upload::guest_page))
        .route("/files", get(pages::files::files))
        .route("/files/{id}/info", get(pages::files::file_info))
        .route("/files/{id}/edit", get(pages::files::file_edit))
        .route(
            "/files/{id}/confirm-delete",
            get(pages::files::file_confirm_delete),
        )
        .route("/files/{id}/downloads", get(pages::files::file_downloads))
        .route("/guest-links", get(pages::guest_links::guest_links))
        .route("/guest-links/new", get(pages::guest_links::new_guest_link))
        .route("/settings", get(pages::settings::settings))
        .route("/tokens", get(pages::tokens::tokens))
        .route("/information", get(pages::system::information))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_timeout::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::layer))
        .layer(middleware::from_fn(security_headers::layer))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::layer,
        ))
        .with_state(state)
}

/// The tus routes: every reply carries `Tus-Resumable`, and bodies are
/// unlimited (uploads stream into the store).
fn tus_routes() -> Router<AppState> {
    use axum::routing::head;
    Router::new()
        .route(
            "/api/tus",
            post(tus::create_admin).options(tus::options_admin),
        )
        .route(
            "/api/tus/{uploadID}",
            head(tus::head)
                .patch(tus::patch)
                .delete(tus::terminate)
                .options(tus::options_admin),
        )
        .route(
            "/api/guest/{guestLinkID}/tus",
            post(tus::create_guest).options(tus::options_guest),
        )
        .route(
            "/api/guest/{guestLinkID}/tus/{uploadID}",
            head(tus::head)
                .patch(tus::patch)
                .delete(tus::terminate)
                .options(tus::options_guest),
        )
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(tus::add_tus_resumable))
}

/// Downloads live at `/-{id}…` and `/!{id}…` (`POST` there submits a protected
/// file's password), which path patterns cannot express;
/// everything else that matched no route is a 404.
async fn fallback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let path = req.uri().path();
    let is_download = path.starts_with("/-") || path.starts_with("/!");
    if !is_download {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    }
    // POST carries the password form of a protected file.
    if req.method() != Method::GET && req.method() != Method::HEAD && req.method() != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    download::serve(state, peer, req).await
}

/// A plain-text reply with a trailing newline.
fn text(status: StatusCode, msg: &str) -> Response {
    AppError::new(status, msg).into_response()
}

/// A JSON reply followed by a newline, as the original sends.
fn json_reply(value: &serde_json::Value) -> Response {
    let mut body = value.to_string();
    body.push('\n');
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The client's IP: the peer address, or the proxy's forwarding headers when the
/// server is configured to run behind a proxy.
pub fn client_ip(config: &Config, headers: &HeaderMap, peer: SocketAddr) -> String {
    if config.behind_proxy {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(first) = header("x-forwarded-for").and_then(|v| v.split(',').next()) {
            if !first.trim().is_empty() {
                return first.trim().to_owned();
            }
        }
        if let Some(real) = header("x-real-ip") {
            if !real.trim().is_empty() {
                return real.trim().to_owned();
            }
        }
        if let Some(fwd) = header("forwarded") {
            let found = fwd
                .split([';', ','])
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                .map(|(_, v)| v.trim_matches('"').to_owned());
            if let Some(v) = found {
                return v;
            }
        }
    }
    peer.ip().to_string()
}
