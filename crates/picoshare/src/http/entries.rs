//! `PUT /api/entry/{id}` and `DELETE /api/entry/{id}`.

use axum::extract::State;

use super::error::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Admin;
use super::error::JsonBody;
use super::{AppError, AppState};
use crate::ids::EntryId;
use crate::validate;

/// Parses an entry ID from a path, with the original's message.
pub(super) fn parse_entry_id(raw: &str) -> Result<EntryId, AppError> {
    EntryId::parse(raw).map_err(|e| AppError::bad_request(format!("bad entry ID: {e}")))
}

#[derive(serde::Deserialize)]
struct EntryUpdate {
    filename: String,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `PUT /api/entry/{id}`: rename, change expiration (missing or empty: never),
/// change or clear the note.
pub async fn update_entry(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Response {
    let result = async {
        let id = parse_entry_id(&raw_id)?;
        let bad = |e: String| AppError::bad_request(format!("Bad request: {e}"));
        let req: EntryUpdate = serde_json::Deserializer::from_slice(&body)
            .into_iter::<EntryUpdate>()
            .next()
            .unwrap_or_else(|| Err(serde::de::Error::custom("EOF")))
            .map_err(|e| bad(e.to_string()))?;
        let filename = validate::filename(&req.filename).map_err(bad)?.to_owned();
        let expiration = match req.expiration.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(validate::expiration(raw, state.clock.now()).map_err(bad)?),
        };
        let note = validate::note(req.note.as_deref().unwrap_or("")).map_err(bad)?;
        let found = state
            .store
            .update_entry(&id, filename, expiration, note)
            .await
            .map_err(|e| AppError::store("Failed to save new entry data", e))?;
        if !found {
            return Err(AppError::not_found("Invalid entry ID"));
        }
        Ok(StatusCode::OK.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /api/entry/{id}`: removes the entry, its data and its download history.
/// Succeeds also when the entry does not exist.
pub async fn delete_entry(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    let id = match parse_entry_id(&raw_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match state.store.delete_entry(&id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => AppError::store("failed to delete entry", e).into_response(),
    }
}
