//! The owner's login sessions: `GET /api/sessions` (the list),
//! `DELETE /api/sessions/{id}` (end one), `DELETE /api/sessions` (end every
//! other one). Session only: an API token gets 403.
//!
//! A session is listed by its public ID (not its token, which only the
//! browser holds), with when and from where it logged in; only sessions of
//! the current passphrase exist (see [`crate::http::auth::session`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::auth::session::Admin;
use crate::http::error::Path;
use crate::http::{json_reply, AppError, AppState};
use crate::ids::SessionId;
use crate::store::model::sessions::Session;
use crate::validate::db_time;

/// The sessions of the current passphrase that have not expired, newest
/// first.
///
/// # Errors
/// Storage failures.
pub(crate) async fn current_sessions(state: &AppState) -> Result<Vec<Session>, AppError> {
    state
        .store
        .sessions(state.secret_tag.to_string(), state.clock.now())
        .await
        .map_err(|e| AppError::store("failed to read the sessions", e))
}

fn session_json(s: &Session, current: &SessionId) -> serde_json::Value {
    let agent = crate::useragent::parse(&s.user_agent);
    serde_json::json!({
        "id": s.id.as_str(),
        "created": db_time(s.created),
        "expires": db_time(s.expires),
        "clientIp": s.client_ip,
        "userAgent": s.user_agent,
        "browser": agent.browser,
        "platform": agent.platform,
        "current": s.id == *current,
    })
}

/// `GET /api/sessions`: every session, newest first; `current` marks the
/// caller's.
pub(crate) async fn list_sessions(
    Admin(current): Admin,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let sessions = current_sessions(&state).await?;
    Ok(json_reply(&serde_json::Value::Array(
        sessions.iter().map(|s| session_json(s, &current)).collect(),
    )))
}

/// `DELETE /api/sessions/{id}`: ends that session at once (204), 404 if
/// unknown. Ending the caller's own session logs it out.
pub(crate) async fn delete_session(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = SessionId::parse(&raw_id)
        .map_err(|_| AppError::bad_request(format!("Invalid session ID: {raw_id:?}")))?;
    let found = state
        .store
        .delete_session_by_id(&id)
        .await
        .map_err(|e| AppError::store("failed to end the session", e))?;
    if !found {
        return Err(AppError::not_found(format!("No session with ID {raw_id}")));
    }
    tracing::info!(session_id = %id, "ended a session");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/sessions`: ends every session but the caller's; replies
/// `{"ended": N}`.
pub(crate) async fn delete_other_sessions(
    Admin(current): Admin,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let ended = state
        .store
        .delete_other_sessions(&current)
        .await
        .map_err(|e| AppError::store("failed to end the sessions", e))?;
    tracing::info!(sessions = ended, "ended every other session");
    Ok(json_reply(&serde_json::json!({ "ended": ended })))
}
