//! `GET /healthz`: whether the server can still use its storage, for load
//! balancers, container health checks and service monitors.
//!
//! No session is needed and nothing about the files is revealed: `200 ok` when
//! the database file at the configured path is still the one the server
//! opened (its inode), opens and answers a trivial query
//! (on the scale-out store: PostgreSQL answers a query and the bucket a HEAD),
//! `503` with one line per dependency that failed, naming it, otherwise
//! (`database unavailable: …` for the SQLite file deleted, replaced or
//! unreadable; `PostgreSQL unavailable: …`, `object storage unavailable: …`),
//! or no answer within [`TIMEOUT`].

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::store::{Store, StoreError};

/// How long the database may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /healthz` (and `HEAD`).
/// Always a reply (the 503 is the answer, not an error), so no `Result`.
pub(crate) async fn healthz(State(store): State<Store>) -> Response {
    let (status, body) = match tokio::time::timeout(TIMEOUT, store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n".to_owned()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, describe(&e))
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "database unavailable: no answer within {} s\n",
                TIMEOUT.as_secs()
            ),
        ),
    };
    crate::http::uncached(status, "text/plain; charset=utf-8", body)
}

/// One line per dependency that failed, naming it.
fn describe(e: &StoreError) -> String {
    match e {
        StoreError::Postgres(why) => format!("PostgreSQL unavailable: {why}\n"),
        StoreError::Object(why) => format!("object storage unavailable: {why}\n"),
        StoreError::Unavailable(all) => all.iter().map(describe).collect(),
        other => format!("database unavailable: {other}\n"),
    }
}
