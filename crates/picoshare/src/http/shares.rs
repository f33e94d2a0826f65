//! Shares: several files behind one link. The owner's API (`/api/shares…`)
//! and the public ZIP of a share (`GET /s/{id}/zip`); the share page itself
//! is in `pages/shares.rs`.
//!
//! A share groups existing entries; each keeps its own link, expiration,
//! limits and password. The ZIP holds the share's files that are neither
//! expired nor protected (a password or a download limit): those are only
//! served by their own links, which enforce the protection, so the ZIP can
//! never be used to get around it. The ZIP is built while it streams
//! ([`super::zipstream`]): no temporary file, a few chunks in memory.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::auth::Admin;
use super::disposition::content_disposition;
use super::entries::parse_entry_id;
use super::error::{JsonBody, Path};
use super::zipstream::{Member, ZipLayout, ZipStream};
use super::{json_reply, AppError, AppState};
use crate::ids::ShareId;
use crate::store::model::{
    CreateOutcome, DownloadRecord, Entry, EntryLimits, NewShare, Share, ShareFile,
};
use crate::store::Store;
use crate::validate::{self, db_time};

/// Most files in one share.
pub const MAX_FILES: usize = 1000;
/// Longest relative path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Bytes read from the database per read transaction while zipping.
const READ_BATCH_BYTES: u64 = 2 << 20;
/// Pieces buffered between the reader task and the socket.
const CHANNEL_CHUNKS: usize = 4;

/// Parses a share ID from a path.
pub(crate) fn parse_share_id(raw: &str) -> Result<ShareId, AppError> {
    ShareId::parse(raw).map_err(|_| AppError::bad_request("This is not a valid share ID."))
}

/// Checks a relative path from a folder upload: `/`-separated names, none
/// empty, `.` or `..`; not absolute (no leading `/`, no drive letter); no
/// backslash or control character; at most [`MAX_PATH_BYTES`].
pub fn check_path(raw: &str) -> Result<(), String> {
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
pub fn member_name(file: &ShareFile) -> &str {
    file.path.as_deref().unwrap_or(&file.entry.filename)
}

/// Whether a file is only served by its own link (a password or a download limit).
pub fn is_protected(limits: Option<&EntryLimits>) -> bool {
    limits.is_some_and(|l| l.password_hash.is_some() || l.max_downloads.is_some())
}

/// Whether a file has expired at `now`.
pub fn is_expired(file: &ShareFile, now: DateTime<Utc>) -> bool {
    file.entry.expiration.is_some_and(|t| t <= now)
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
                "expired": is_expired(f, now),
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

async fn all_limits(state: &AppState) -> Result<HashMap<String, EntryLimits>, AppError> {
    state
        .store
        .all_limits()
        .await
        .map_err(|e| AppError::store("failed to read the files' limits", e))
}

/// `POST /api/shares` with `{"title", "note", "entries": [IDs], "paths": [..]}`:
/// creates a share of existing files, in order. `paths` (optional, one per
/// entry, each a relative path or null) name the files inside the share.
pub async fn create_share(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Response {
    let result = async {
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
        tracing::info!(share_id = %id, "created a share");
        share_reply(&state, &id).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
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
pub async fn list_shares(_admin: Admin, State(state): State<AppState>) -> Response {
    let result = async {
        let shares = state
            .store
            .shares()
            .await
            .map_err(|e| AppError::store("failed to read the shares", e))?;
        let limits = all_limits(&state).await?;
        let now = state.clock.now();
        Ok::<_, AppError>(json_reply(&serde_json::Value::Array(
            shares.iter().map(|s| share_json(s, &limits, now)).collect(),
        )))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/shares/{id}`: one share with its files.
pub async fn get_share(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    let result = async {
        let id = parse_share_id(&raw_id)?;
        share_reply(&state, &id).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(serde::Deserialize)]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    files: Option<String>,
}

/// `DELETE /api/shares/{id}[?files=true]`: deletes the share (204), 404 if
/// unknown. Its files stay, unless `files=true` deletes them too.
pub async fn delete_share(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Response {
    let result = async {
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
        tracing::info!(share_id = %id, with_files, "deleted a share");
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
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
    if share.files.iter().all(|f| is_expired(f, now)) {
        return Err(AppError::new(
            StatusCode::GONE,
            "The files of this share have expired and are no longer available.",
        ));
    }
    Ok(share)
}

/// Makes names unique inside the archive: a repeated name gets ` (2)`, ` (3)`…
/// before its extension.
pub fn unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in names {
        let mut candidate = name.to_owned();
        let mut n = 2;
        while !seen.insert(candidate.clone()) {
            let (stem, ext) = match name.rfind('.') {
                Some(dot) if dot > 0 && !name[dot..].contains('/') => name.split_at(dot),
                _ => (name, ""),
            };
            candidate = format!("{stem} ({n}){ext}");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

/// The ZIP's file name: the title (or `share-{id}`), with `.zip`.
fn zip_filename(share: &Share) -> String {
    let base = share
        .title
        .as_deref()
        .map(|t| t.replace(['/', '\\'], "-"))
        .unwrap_or_else(|| format!("share-{}", share.id));
    format!("{base}.zip")
}

/// `GET /s/{id}/zip`: the share's files that are not expired and not
/// protected, as one STORED ZIP streamed with an exact `Content-Length`.
/// 409 if every remaining file is protected.
pub async fn download_zip(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    method: Method,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Response {
    let result = async {
        let share = public_share(&state, &raw_id).await?;
        let limits = all_limits(&state).await?;
        let now = state.clock.now();
        let files: Vec<&ShareFile> = share
            .files
            .iter()
            .filter(|f| !is_expired(f, now) && !is_protected(limits.get(f.entry.id.as_str())))
            .collect();
        if files.is_empty() {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "The files of this share are protected by a password or a download limit, \
                 so they are not in the ZIP: download them one by one from the share page.",
            ));
        }
        let names = unique_names(files.iter().map(|f| member_name(f)));
        let members: Vec<Member> = files
            .iter()
            .zip(names)
            .map(|(f, name)| Member {
                name,
                size: f.entry.size,
                modified: f.entry.upload_time,
            })
            .collect();
        let layout = ZipLayout::new(members, state.config.zip64_threshold);
        let length = layout.total_len();
        let addr = super::client_ip(&state.config, &headers, peer);
        let agent = headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let sources: Vec<Entry> = files.iter().map(|f| f.entry.clone()).collect();
        // HEAD: the headers only, no download recorded.
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            for Entry { id, .. } in &sources {
                state.store.record_download(DownloadRecord {
                    entry_id: id.clone(),
                    time: now,
                    client_ip: addr.clone(),
                    user_agent: agent.clone(),
                });
            }
            zip_body(state.store.clone(), ZipStream::new(layout), sources)
        };
        let mut resp = (StatusCode::OK, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/zip"),
        );
        if let Ok(v) = HeaderValue::from_str(&length.to_string()) {
            h.insert(header::CONTENT_LENGTH, v);
        }
        if let Ok(v) = HeaderValue::from_str(&content_disposition(&zip_filename(&share))) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
        Ok(resp)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The archive's body: a task reads each file's chunks in short read
/// transactions and hands headers and data to the response through a small
/// bounded channel, computing CRCs on the way.
fn zip_body(store: Store, mut zip: ZipStream, sources: Vec<Entry>) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    tokio::spawn(async move {
        let fail = |e: String| std::io::Error::other(e);
        for entry in sources {
            let id = &entry.id;
            let head = match zip.begin() {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(fail(e.to_string()))).await;
                    return;
                }
            };
            if tx.send(Ok(head)).await.is_err() {
                return;
            }
            if entry.size > 0 {
                let mut reader = store.read_range(&entry, 0, entry.size - 1);
                loop {
                    let batch = match reader.next(READ_BATCH_BYTES).await {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(entry_id = %id, error = %e, "share ZIP failed while reading");
                            let _ = tx.send(Err(fail(e.to_string()))).await;
                            return;
                        }
                    };
                    for data in batch {
                        zip.data(&data);
                        if tx.send(Ok(data)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            // A file changed under the archive (deleted and replaced) is an
            // error: the connection is cut rather than a wrong archive sent.
            match zip.end() {
                Ok(desc) => {
                    if tx.send(Ok(desc)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(entry_id = %id, error = %e, "share ZIP failed");
                    let _ = tx.send(Err(fail(e.to_string()))).await;
                    return;
                }
            }
        }
        match zip.finish() {
            Ok(tail) => {
                let _ = tx.send(Ok(tail)).await;
            }
            Err(e) => {
                let _ = tx.send(Err(fail(e.to_string()))).await;
            }
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
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

    #[test]
    fn repeated_names_are_made_unique() {
        assert_eq!(
            unique_names(["a.txt", "b", "a.txt", "a.txt", "b", "d.x/c"]),
            ["a.txt", "b", "a (2).txt", "a (3).txt", "b (2)", "d.x/c"]
        );
        assert_eq!(unique_names([".env", ".env"]), [".env", ".env (2)"]);
    }
}
