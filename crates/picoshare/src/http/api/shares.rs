//! Shares: several files behind one link. The owner's API (`/api/shares…`)
//! and the rules a share's public routes share: the share page
//! ([`crate::http::pages::shares`]) and its ZIP ([`crate::http::downloads::zip`]).
//!
//! A share groups existing entries; each keeps its own link, expiration,
//! limits and password. Files that are protected (a password or a download
//! limit) are only served by their own links, which enforce the protection.

use std::collections::{HashMap, HashSet};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::http::auth::session::Admin;
use crate::http::error::{JsonBody, Path};
use crate::http::params::{parse_entry_id, parse_share_id};
use crate::http::{json_reply, AppError, AppState};
use crate::ids::ShareId;
use crate::store::model::{CreateOutcome, EntryLimits, NewShare, Share, ShareFile};
use crate::validate::{self, db_time};

/// Most files in one share.
const MAX_FILES: usize = 1000;
/// Longest relative path, in bytes.
const MAX_PATH_BYTES: usize = 1024;
/// Longest title, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// Checks a relative path from a folder upload: `/`-separated names, none
/// empty, `.` or `..`; not absolute (no leading `/`, no drive letter); no
/// backslash or control character; at most [`MAX_PATH_BYTES`].
fn check_path(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("a path cannot be empty".into());
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!(
            "a path is too long: at most {MAX_PATH_BYTES} bytes"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err("a path cannot contain control characters".into());
    }
    if raw.contains('\\') {
        return Err("a path uses `/` between names, never `\\`".into());
    }
    if raw.starts_with('/') || raw.as_bytes().get(1) == Some(&b':') {
        return Err(format!("a path must be relative: {raw:?}"));
    }
    if raw
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "a path cannot have empty, `.` or `..` parts: {raw:?}"
        ));
    }
    Ok(())
}

/// Checks a title: trimmed, at most [`MAX_TITLE_CHARS`], no control characters.
fn check_title(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(title) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(format!(
            "the title is too long: at most {MAX_TITLE_CHARS} characters"
        ));
    }
    if title.chars().any(char::is_control) {
        return Err("the title cannot contain control characters".into());
    }
    Ok(Some(title.to_owned()))
}

/// The name of a file inside the share (and its ZIP): its path, else its filename.
pub(crate) fn member_name(file: &ShareFile) -> &str {
    file.path.as_deref().unwrap_or(&file.entry.filename)
}

/// Whether a file is only served by its own link (a password or a download limit).
pub(crate) fn is_protected(limits: Option<&EntryLimits>) -> bool {
    limits.is_some_and(EntryLimits::restricts)
}

#[derive(serde::Deserialize)]
struct CreateRequest {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    note: Option<String>,
    entries: Vec<String>,
    #[serde(default)]
    paths: Option<Vec<Option<String>>>,
}

fn share_json(
    share: &Share,
    limits: &HashMap<String, EntryLimits>,
    now: DateTime<Utc>,
) -> serde_json::Value {
    let files: Vec<serde_json::Value> = share
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.entry.id.as_str(),
                "filename": f.entry.filename,
                "path": f.path,
                "size": f.entry.size,
                "expires": f.entry.expiration.map(db_time),
                "expired": f.entry.is_expired(now),
                "protected": is_protected(limits.get(f.entry.id.as_str())),
            })
        })
        .collect();
    serde_json::json!({
        "id": share.id.as_str(),
        "title": share.title,
        "note": share.note,
        "created": db_time(share.created),
        "url": format!("/s/{}", share.id),
        "zipUrl": format!("/s/{}/zip", share.id),
        "files": files,
    })
}

pub(crate) async fn all_limits(state: &AppState) -> Result<HashMap<String, EntryLimits>, AppError> {
    state
        .store
        .all_limits()
        .await
        .map_err(|e| AppError::store("failed to read the files' limits", e))
}

/// `POST /api/shares` with `{"title", "note", "entries": [IDs], "paths": [..]}`:
/// creates a share of existing files, in order. `paths` (optional, one per
/// entry, each a relative path or null) name the files inside the share.
pub(crate) async fn create_share(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let bad = |e: String| AppError::bad_request(format!("Invalid request: {e}"));
    let req: CreateRequest =
        serde_json::from_slice(&body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    if req.entries.is_empty() {
        return Err(bad("a share needs at least one file".into()));
    }
    if req.entries.len() > MAX_FILES {
        return Err(bad(format!("a share holds at most {MAX_FILES} files")));
    }
    let paths = match req.paths {
        None => vec![None; req.entries.len()],
        Some(p) if p.len() == req.entries.len() => p,
        Some(_) => return Err(bad("`paths` must have one item per entry".into())),
    };
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    let mut files = Vec::with_capacity(req.entries.len());
    for (raw, path) in req.entries.iter().zip(paths) {
        let id = parse_entry_id(raw)?;
        if !ids.insert(id.clone()) {
            return Err(bad(format!("file {id} is listed twice")));
        }
        let path = path.filter(|p| !p.is_empty());
        if let Some(p) = &path {
            check_path(p).map_err(bad)?;
            if !names.insert(p.clone()) {
                return Err(bad(format!("two files have the path {p:?}")));
            }
        }
        files.push((id, path));
    }
    let title = check_title(req.title.as_deref()).map_err(bad)?;
    let note = validate::note(req.note.as_deref().unwrap_or("")).map_err(bad)?;
    let outcome = state
        .store
        .create_share(NewShare {
            title,
            note,
            created: state.clock.now(),
            files,
        })
        .await
        .map_err(|e| AppError::store("failed to save the share", e))?;
    let id = match outcome {
        CreateOutcome::Created(id) => id,
        CreateOutcome::UnknownEntry(id) => {
            return Err(bad(format!("there is no file with ID {id}")));
        }
    };
    tracing::info!(share = %crate::ids::log_ref(id.as_str()), "created a share");
    share_reply(&state, &id).await
}

async fn share_reply(state: &AppState, id: &ShareId) -> Result<Response, AppError> {
    let share = state
        .store
        .share(id)
        .await
        .map_err(|e| AppError::store("failed to read the share", e))?
        .ok_or_else(|| AppError::not_found("There is no share with this ID."))?;
    let limits = all_limits(state).await?;
    Ok(json_reply(&share_json(&share, &limits, state.clock.now())))
}

/// `GET /api/shares`: every share, newest first.
pub(crate) async fn list_shares(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let shares = state
        .store
        .shares()
        .await
        .map_err(|e| AppError::store("failed to read the shares", e))?;
    let limits = all_limits(&state).await?;
    let now = state.clock.now();
    Ok(json_reply(&serde_json::Value::Array(
        shares.iter().map(|s| share_json(s, &limits, now)).collect(),
    )))
}

/// `GET /api/shares/{id}`: one share with its files.
pub(crate) async fn get_share(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_share_id(&raw_id)?;
    share_reply(&state, &id).await
}

#[derive(serde::Deserialize)]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    files: Option<String>,
}

/// `DELETE /api/shares/{id}[?files=true]`: deletes the share (204), 404 if
/// unknown. Its files stay, unless `files=true` deletes them too.
pub(crate) async fn delete_share(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, AppError> {
    let id = parse_share_id(&raw_id)?;
    let with_files = match q.files.as_deref() {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "Invalid request: files must be true or false, not {other:?}"
            )))
        }
    };
    let found = state
        .store
        .delete_share(&id, with_files)
        .await
        .map_err(|e| AppError::store("failed to delete the share", e))?;
    if !found {
        return Err(AppError::not_found("There is no share with this ID."));
    }
    tracing::info!(share = %crate::ids::log_ref(id.as_str()), with_files, "deleted a share");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A share for a public route: 400 for a malformed ID, 404 if unknown, 410
/// once every file is gone or expired.
pub(crate) async fn public_share(state: &AppState, raw_id: &str) -> Result<Share, AppError> {
    let id = parse_share_id(raw_id)?;
    let share = state
        .store
        .share(&id)
        .await
        .map_err(|e| AppError::store("failed to read the share", e))?
        .ok_or_else(|| {
            AppError::not_found("There is no share with this ID. It may have been deleted.")
        })?;
    let now = state.clock.now();
    if share.files.iter().all(|f| f.entry.is_expired(now)) {
        return Err(AppError::new(
            StatusCode::GONE,
            "The files of this share have expired and are no longer available.",
        ));
    }
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for ok in ["a.txt", "dir/a.txt", "a b/c d/é.png", ".hidden", "x..y/z"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../up",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "C:/x",
            "c:x",
            "a\\b",
            "a\nb",
            "a\u{0}b",
            "a\u{7f}",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
    }

    #[test]
    fn titles_are_checked() {
        assert_eq!(check_title(None), Ok(None));
        assert_eq!(check_title(Some("  ")), Ok(None));
        assert_eq!(check_title(Some(" Holiday ")), Ok(Some("Holiday".into())));
        assert!(check_title(Some("a\tb")).is_err());
        assert!(check_title(Some(&"x".repeat(MAX_TITLE_CHARS + 1))).is_err());
    }
}
