//! The router: every route, grouped by who may call it (anyone, a guest
//! link's holder, the owner with a session, the owner with a session or an
//! API token), the download fallback, and the layers that wrap them all.
//!
//! The groups say who each route is for; the handlers enforce it with their
//! extractors (`Admin`, `Uploader`, a guest link's ID), so that a route
//! cannot be served without its check wherever it is listed.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, post, put};
use axum::Router;

use super::api::{
    admin, entries, guest_links, health, history, login, metrics, notifications, sessions,
    settings, shares, system, tokens,
};
use super::downloads;
use super::layers::{self, body_timeout, csrf, redirects, security_headers};
use super::pages;
use super::uploads::{guest, owner, replace, tus};
use super::{AppError, AppState, JSON_LIMIT};

/// Builds the router: the routes of each kind of caller, then the layers.
///
/// The layers at the end apply to every route and the fallback: the JSON body
/// limit, the request-body idle timeout, the cross-origin check on
/// state-changing requests, the redirects the original makes before routing
/// (unclean paths, plain HTTP behind a proxy), the security headers (so
/// refusals and redirects from the other layers get them too), gzip of the
/// server's own text (never of downloads), and outermost the request
/// counters of `/metrics`.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .merge(public())
        .merge(guest())
        .merge(owner())
        .merge(uploader())
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_timeout::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::layer))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            redirects::layer,
        ))
        .layer(middleware::from_fn(security_headers::layer))
        .layer(layers::compression::layer())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::metrics::layer,
        ))
        .with_state(state)
}

/// Routes anyone may call: logging in, the landing and login pages, the
/// assets (and the icons browsers and phones ask for at fixed paths),
/// operations (`/healthz`; `/metrics`, which asks for a session
/// itself unless `PS_METRICS_PUBLIC`), and what a link opens: a file's view
/// page (its downloads are the [`fallback`]) and a share's page and ZIP. The
/// ID in a link's path is all the authority it needs.
fn public() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::upload::index))
        .route(
            "/login",
            get(pages::login::login_page).post(pages::login::login_post),
        )
        .route("/api/auth", post(login::login).delete(login::logout))
        .route("/static/{*path}", get(pages::assets::serve))
        .merge(pages::assets::root_files())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/qr.svg", get(pages::qr::qr_svg))
        .route("/v/{id}", get(pages::preview::view_page))
        .route("/s/{id}", get(pages::shares::share_page))
        .route("/s/{id}/zip", get(downloads::zip::download_zip))
}

/// Routes for whoever holds a guest link (the ID in the path): its upload
/// page (also with anything after the ID, as the original), and uploads
/// through it, multipart and resumable, within its limits.
fn guest() -> Router<AppState> {
    let resumable = Router::new()
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
        );
    Router::new()
        .route("/g/{guestLinkID}", get(pages::upload::guest_page))
        .route("/g/{guestLinkID}/", get(pages::upload::guest_page))
        .route(
            "/g/{guestLinkID}/{*rest}",
            get(pages::upload::guest_page_with_suffix),
        )
        .route(
            "/api/guest/{guestLinkID}",
            post(guest::upload_guest_file).layer(DefaultBodyLimit::disable()),
        )
        .merge(tus_layers(resumable))
}

/// The owner's routes, with a session only: the pages (which send a visitor
/// without one to the login page, the `pages::AdminPage` extractor) and the JSON
/// API (whose handlers take the `Admin` extractor: 401 without a session, 403
/// with an API token).
fn owner() -> Router<AppState> {
    let pages = Router::new()
        .route("/files", get(pages::file_list::files))
        .route("/files/{id}/info", get(pages::files::file_info))
        .route("/files/{id}/edit", get(pages::files::file_edit))
        .route(
            "/files/{id}/confirm-delete",
            get(pages::files::file_confirm_delete),
        )
        .route("/files/{id}/downloads", get(pages::files::file_downloads))
        .route("/shares", get(pages::shares::shares_page))
        .route("/guest-links", get(pages::guest_links::guest_links))
        .route("/guest-links/new", get(pages::guest_links::new_guest_link))
        .route("/tokens", get(pages::tokens::tokens))
        .route("/sessions", get(pages::sessions::sessions))
        .route("/settings", get(pages::settings::settings))
        .route(
            "/settings/notifications",
            get(pages::notifications::notifications),
        )
        .route("/information", get(pages::system::information));
    let api = Router::new()
        .route("/api/entries", get(history::list_entries))
        .route(
            "/api/entry/{id}",
            put(entries::update_entry).delete(entries::delete_entry),
        )
        .route("/api/entry/{id}/downloads", get(history::entry_downloads))
        .route(
            "/api/entry/{id}/replacements",
            get(history::entry_replacements),
        )
        .route(
            "/api/shares",
            get(shares::list_shares).post(shares::create_share),
        )
        .route(
            "/api/shares/{id}",
            get(shares::get_share).delete(shares::delete_share),
        )
        .route("/api/guest-links", post(guest_links::create_guest_link))
        .route(
            "/api/guest-links/{id}",
            delete(guest_links::delete_guest_link),
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
            "/api/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/api/tokens/{id}", delete(tokens::delete_token))
        .route(
            "/api/sessions",
            get(sessions::list_sessions).delete(sessions::delete_other_sessions),
        )
        .route("/api/sessions/{id}", delete(sessions::delete_session))
        .route(
            "/api/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route(
            "/api/notifications",
            get(notifications::list).post(notifications::create),
        )
        .route(
            "/api/notifications/{id}",
            put(notifications::update).delete(notifications::delete),
        )
        .route("/api/notifications/{id}/test", post(notifications::test))
        .route("/api/system", get(system::system_info))
        .route("/api/admin/gc", post(admin::collect_garbage));
    pages.merge(api)
}

/// Uploads as the owner, with a session or an API token (the `Uploader`
/// extractor): multipart, the raw body, and resumable uploads. Answered with
/// the file's link when a token made them.
fn uploader() -> Router<AppState> {
    let resumable = Router::new()
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
        );
    Router::new()
        .route(
            "/api/entry",
            post(owner::upload_entry).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/upload/{filename}",
            put(owner::upload_raw).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/entry/{id}/content",
            put(replace::replace_content).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/upload", put(owner::upload_raw_unnamed))
        .route("/api/upload/", put(owner::upload_raw_unnamed))
        .merge(tus_layers(resumable))
}

/// What the tus routes share: every reply carries `Tus-Resumable`, and
/// bodies are unlimited (uploads stream into the store).
fn tus_layers(routes: Router<AppState>) -> Router<AppState> {
    routes
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::map_response(tus::add_tus_resumable))
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
    // A browser gets a page that explains a refused link; other clients the
    // plain-text message.
    let page = req.method() != Method::HEAD && pages::wants_html(req.headers());
    if !is_download {
        let e = AppError::not_found("404 page not found");
        return Ok(if page {
            pages::link_problem(e)
        } else {
            e.into_response()
        });
    }
    // POST carries the password form of a protected file.
    if req.method() != Method::GET && req.method() != Method::HEAD && req.method() != Method::POST {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    match downloads::file::serve(state, peer, req).await {
        Err(e) if page => Ok(pages::link_problem(e)),
        other => other,
    }
}
