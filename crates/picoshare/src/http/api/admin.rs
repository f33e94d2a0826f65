//! Maintenance routes for the admin.

use axum::extract::State;
use axum::response::Response;

use crate::http::auth::session::Admin;
use crate::http::{json_reply, AppError, AppState};

/// `POST /api/admin/gc`: collects garbage now (instead of waiting for the next
/// scheduled run) and reports what it removed.
pub(crate) async fn collect_garbage(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let outcome = state
        .store
        .collect_garbage(state.clock.now())
        .await
        .map_err(|e| AppError::store("garbage collection failed", e))?;
    Ok(json_reply(
        &serde_json::to_value(outcome).unwrap_or_default(),
    ))
}
