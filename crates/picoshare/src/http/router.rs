//! The router: every route, the download fallback, and the layers that wrap
//! them all.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;

use super::api::{
    admin, entries, guest_links, health, history, login, metrics, settings, shares, system, tokens,
};
use super::downloads;
use super::layers::{self, body_timeout, csrf, security_headers};
use super::pages;
use super::uploads::{guest, owner, tus};
use super::{AppError, AppState, JSON_LIMIT};

/// Builds the router.
///
/// Routes go before the layers at the end, which apply to every route and the
/// fallback: the JSON body limit, the request-body idle timeout, the
/// cross-origin check on state-changing requests, and the security headers
/// (so refusals from the other layers get them too), and outermost the request
/// counters of `/metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/auth", post(login::login).delete(login::logout))
        .route(
            "/api/entry",
            post(owner::upload_entry).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/upload/{filename}",
            put(owner::upload_raw).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/upload", put(owner::upload_raw_unnamed))
        .route("/api/upload/", put(owner::upload_raw_unnamed))
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
            post(guest::upload_guest_file).layer(DefaultBodyLimit::disable()),
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
        .route("/s/{id}/zip", get(downloads::zip::download_zip))
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
            layers::metrics::layer,
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
) -> Result<Response, AppError> {
    let path = req.uri().path();
    let is_download = path.starts_with("/-") || path.starts_with("/!");
    if !is_download {
        return Err(AppError::not_found("404 page not found"));
    }
    // POST carries the password form of a protected file.
    if req.method() != Method::GET && req.method() != Method::HEAD && req.method() != Method::POST {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    downloads::file::serve(state, peer, req).await
}
