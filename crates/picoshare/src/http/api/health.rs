//! `GET /healthz`: whether the server can still use its database, for load
//! balancers, container health checks and service monitors.
//!
//! No session is needed and nothing about the files is revealed: `200 ok` when
//! the database file at the configured path opens and answers a trivial query,
//! `503` with the reason otherwise (file deleted, replaced, unreadable, or no
//! answer within [`TIMEOUT`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::Store;

/// How long the database may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /healthz` (and `HEAD`).
/// Always a reply (the 503 is the answer, not an error), so no `Result`.
pub(crate) async fn healthz(State(store): State<Store>) -> Response {
    let (status, body) = match tokio::time::timeout(TIMEOUT, store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n".to_owned()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable: {e}\n"),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "database unavailable: no answer within {} s\n",
                TIMEOUT.as_secs()
            ),
        ),
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
