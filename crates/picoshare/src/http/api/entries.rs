//! `PUT /api/entry/{id}` and `DELETE /api/entry/{id}`.

use axum::extract::State;

use crate::http::error::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::auth::protect;
use crate::http::auth::session::Admin;
use crate::http::error::JsonBody;
use crate::http::params::parse_entry_id;
use crate::http::{AppError, AppState};
use crate::store::model::Change;
use crate::store::Store;
use crate::validate;

#[derive(serde::Deserialize)]
struct EntryUpdate {
    filename: String,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    note: Option<String>,
    /// Absent: unchanged; `null`: no limit; a number: the new limit.
    #[serde(default, rename = "maxDownloads", deserialize_with = "present")]
    max_downloads: Option<Option<u64>>,
    /// Absent: unchanged; `null`: remove the password; a string: the new one.
    #[serde(default, deserialize_with = "present")]
    password: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// `PUT /api/entry/{id}`: rename, change expiration (missing or empty: never),
/// change or clear the note; change or remove the download limit and the
/// password (each only when present).
pub(crate) async fn update_entry(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
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
    let max_downloads = match req.max_downloads {
        None => Change::Keep,
        Some(None) => Change::Clear,
        Some(Some(n)) => Change::Set(
            protect::parse_max_downloads(&n.to_string())
                .map_err(bad)?
                .unwrap_or(n),
        ),
    };
    let password = match req.password {
        None => Change::Keep,
        Some(None) => Change::Clear,
        Some(Some(p)) => {
            protect::check_new_password(&p).map_err(bad)?;
            Change::Set(protect::hash_password(p).await?)
        }
    };
    let found = state
        .store
        .update_entry(&id, filename, expiration, note)
        .await
        .map_err(|e| AppError::store("Failed to save new entry data", e))?;
    if !found {
        return Err(AppError::not_found("Invalid entry ID"));
    }
    if max_downloads != Change::Keep || password != Change::Keep {
        state
            .store
            .update_limits(&id, max_downloads, password)
            .await
            .map_err(|e| AppError::store("Failed to save new entry data", e))?;
    }
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /api/entry/{id}`: removes the entry, its data and its download history.
/// Succeeds also when the entry does not exist.
pub(crate) async fn delete_entry(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_entry_id(&raw_id)?;
    store
        .delete_entry(&id)
        .await
        .map_err(|e| AppError::store("failed to delete entry", e))?;
    Ok(StatusCode::OK.into_response())
}
