//! Resumable uploads with the tus 1.0.0 protocol.
//!
//! Routes (each upload is reachable only under the URL it was created at):
//! - owner: `POST /api/tus` creates, `HEAD|PATCH|DELETE /api/tus/{uploadID}`;
//! - guest: `POST /api/guest/{guestLinkID}/tus`, then
//!   `HEAD|PATCH|DELETE /api/guest/{guestLinkID}/tus/{uploadID}`;
//! - `OPTIONS` on all of them describes what the server supports.
//!
//! Extensions: creation, creation-with-upload, termination, expiration,
//! checksum (sha1, sha256). Metadata keys: `filename` (or `name`), `filetype`
//! (or `type`, `contentType`), `note` and `expiration`, with the same rules as
//! the multipart upload's fields.
//!
//! With `replaces` (an entry's ID; the owner's uploads only) the upload is a
//! new content for that file, as `PUT /api/entry/{id}/content`: its
//! completion switches the file's content instead of creating an entry
//! (`TusSink::complete_replace`). The name follows `filename` unless it is
//! left out or `keepName` is `true`; note, expiration and limits stay the
//! file's own and may not be sent. A guest link's upload with `replaces` is
//! refused (403), an unknown file is 404 at creation, and a file deleted
//! before the upload completes makes its last request 404 (the upload is
//! dropped).
//!
//! Bytes go through the same writer and chunk table as a multipart upload. A
//! request's bytes are recorded as they are committed (every 64 MiB), and its
//! end records the exact offset durably before the reply, so the offset a
//! client is told always survives a crash. The entry appears, with the
//! metadata given at creation, in the transaction that stores the last byte.
//!
//! Only one request writes to an upload at a time: a new request for the same
//! upload asks the running one to stop (it saves what it has) and takes over,
//! so a client that reconnects after a dropped connection does not wait for
//! the server to notice the old one died.

mod locks;
mod write;

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

pub(crate) use locks::TusLocks;
use write::write;

use crate::http::auth::protect;
use crate::http::auth::session::Uploader;
use crate::http::error::Path;
use crate::http::proto::conditional::http_date;
use crate::http::proto::tus_headers::{
    self as th, MetadataPair, CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION,
};
use crate::http::uploads::guest::{active_link, guest_expiration, reserve_slot};
use crate::http::uploads::owner::owner_expiration;
use crate::http::{AppError, AppState};
use crate::ids::TusUploadId;
use crate::store::model::{GuestLink, NewTusUpload, TusUpload};
use crate::validate;

/// The media type of PATCH bodies.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// The entry a completed upload became (`HEAD` and the completing request).
const ENTRY_ID_HEADER: &str = "picoshare-entry-id";

// ---------------------------------------------------------------------------
// Who is asking
// ---------------------------------------------------------------------------

/// Whose upload route a request came in on.
enum Owner {
    Admin,
    Guest(GuestLink),
}

impl Owner {
    /// The URL of upload `id` under this owner's routes.
    fn upload_url(&self, id: &TusUploadId) -> String {
        match self {
            Owner::Admin => format!("/api/tus/{id}"),
            Owner::Guest(link) => format!("/api/guest/{}/tus/{id}", link.id),
        }
    }

    /// Whether `row` was created under this owner's routes.
    fn owns(&self, row: &TusUpload) -> bool {
        match self {
            Owner::Admin => row.guest_link_id.is_none(),
            Owner::Guest(link) => row.guest_link_id.as_deref() == Some(link.id.as_str()),
        }
    }
}

/// The owner of a guest link's tus routes (see [`active_link`]).
async fn guest_owner(
    state: &AppState,
    raw_id: &str,
    for_new_upload: bool,
) -> Result<Owner, AppError> {
    let link = active_link(state, raw_id, for_new_upload, state.clock.now()).await?;
    Ok(Owner::Guest(link))
}

/// The upload a request is about, and whose routes it came in on: the guest
/// routes carry `guestLinkID` (the link must exist and not be disabled); the
/// owner's need a session or an API token. Then, as for every tus request
/// but `OPTIONS`, the protocol version must be ours.
pub(crate) struct TusTarget {
    owner: Owner,
    id: TusUploadId,
}

impl axum::extract::FromRequestParts<AppState> for TusTarget {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let target = async {
            let Path(params) =
                Path::<HashMap<String, String>>::from_request_parts(parts, state).await?;
            let owner = match params.get("guestLinkID") {
                Some(link) => guest_owner(state, link, false).await?,
                None => {
                    Uploader::from_request_parts(parts, state).await?;
                    Owner::Admin
                }
            };
            let id = parse_upload_id(params.get("uploadID").map_or("", String::as_str))?;
            Ok::<_, AppError>(TusTarget { owner, id })
        };
        let target = target.await.map_err(IntoResponse::into_response)?;
        match version_refusal(&parts.headers) {
            Some(refusal) => Err(refusal),
            None => Ok(target),
        }
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// Adds `Tus-Resumable` to every reply of the tus routes.
pub(crate) async fn add_tus_resumable(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        HeaderName::from_static("tus-resumable"),
        HeaderValue::from_static(TUS_VERSION),
    );
    resp
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Every request but `OPTIONS` must speak our version: the refusal if not.
fn version_refusal(headers: &HeaderMap) -> Option<Response> {
    match header_str(headers, "tus-resumable") {
        Some(TUS_VERSION) => None,
        other => {
            let msg = match other {
                None => "This is a tus endpoint: send Tus-Resumable: 1.0.0 with every request."
                    .to_owned(),
                Some(v) => format!(
                    "Tus-Resumable {:?} is not supported; this server speaks tus {TUS_VERSION}.",
                    v.chars().take(20).collect::<String>()
                ),
            };
            let mut resp = AppError::new(StatusCode::PRECONDITION_FAILED, msg).into_response();
            set(&mut resp, "tus-version", TUS_VERSION);
            Some(resp)
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The headers that describe an upload's state.
fn describe(resp: &mut Response, row: &TusUpload, offset: u64) {
    set(resp, "upload-offset", &offset.to_string());
    if row.completed {
        // The file it became, or the one whose content it replaced.
        let entry = replacing(row).map_or_else(|| row.entry_id.clone(), |(target, _)| target);
        set(resp, ENTRY_ID_HEADER, entry.as_str());
    } else {
        set(resp, "upload-expires", &http_date(row.expires));
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn gone() -> AppError {
    AppError::new(
        StatusCode::GONE,
        "This upload expired before it was finished; start it again.",
    )
}

fn no_such_upload() -> AppError {
    AppError::not_found(
        "No such upload: it was never created here, was cancelled, or expired and was removed.",
    )
}

fn parse_upload_id(raw: &str) -> Result<TusUploadId, AppError> {
    TusUploadId::parse(raw).map_err(|_| no_such_upload())
}

// ---------------------------------------------------------------------------
// OPTIONS
// ---------------------------------------------------------------------------

fn options_reply(max_size: Option<u64>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set(&mut resp, "tus-version", TUS_VERSION);
    set(&mut resp, "tus-extension", TUS_EXTENSIONS);
    set(&mut resp, "tus-checksum-algorithm", CHECKSUM_ALGORITHMS);
    if let Some(max) = max_size {
        set(&mut resp, "tus-max-size", &max.to_string());
    }
    resp
}

/// `OPTIONS /api/tus[/{id}]`: what the server supports. Needs no session;
/// never fails.
pub(crate) async fn options_admin() -> Response {
    options_reply(None)
}

/// `OPTIONS /api/guest/{guestLinkID}/tus[/{id}]`, with the link's size limit.
pub(crate) async fn options_guest(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let raw = params.get("guestLinkID").map_or("", String::as_str);
    let link = active_link(&state, raw, false, state.clock.now()).await?;
    Ok(options_reply(link.max_file_bytes))
}

// ---------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------

/// `POST /api/tus`: the owner creates an upload.
pub(crate) async fn create_admin(
    _uploader: Uploader,
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, AppError> {
    create(state, Owner::Admin, req).await
}

/// `POST /api/guest/{guestLinkID}/tus`: a guest creates an upload.
pub(crate) async fn create_guest(
    State(state): State<AppState>,
    Path(raw_link): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let owner = guest_owner(&state, &raw_link, true).await?;
    create(state, owner, req).await
}

/// The file an upload created with `replaces` will replace: the owner's
/// uploads only, and the file must exist and not have expired.
async fn entry_to_replace(
    state: &AppState,
    owner: &Owner,
    raw: &str,
    now: DateTime<Utc>,
) -> Result<crate::store::model::Entry, AppError> {
    if matches!(owner, Owner::Guest(_)) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "A guest link's uploads cannot replace a file (Upload-Metadata `replaces`): \
             only the file's owner can.",
        ));
    }
    let (_, entry) = crate::http::params::entry_named(state, raw).await?;
    if entry.is_expired(now) {
        return Err(AppError::not_found("entry not found"));
    }
    Ok(entry)
}

/// `keepName` of an upload's metadata: absent is `false`.
fn keep_name_flag(pairs: &[MetadataPair]) -> Result<bool, String> {
    match th::metadata_text(pairs, &["keepName"])?.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("keepName must be true or false, not {other:?}")),
    }
}

/// The file upload `row` replaces (created with `replaces`), and whether it
/// keeps its name (`keepName`, or no `filename` sent); `None` for an
/// upload that becomes a new file. The metadata was checked at creation.
pub(super) fn replacing(row: &TusUpload) -> Option<(crate::ids::EntryId, bool)> {
    let pairs = th::parse_metadata(&row.metadata).ok()?;
    let target = th::metadata_text(&pairs, &["replaces"]).ok()??;
    let target = crate::ids::EntryId::parse(&target).ok()?;
    let named = th::metadata_text(&pairs, &["filename", "name"])
        .ok()
        .flatten()
        .is_some();
    let keep = keep_name_flag(&pairs).unwrap_or(false) || !named;
    Some((target, keep))
}

/// What `Upload-Metadata` and the owner's rules make of a new upload.
async fn new_upload(
    state: &AppState,
    owner: &Owner,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<NewTusUpload, AppError> {
    let invalid = |e: &str| AppError::bad_request(format!("invalid request: {e}"));
    if headers.contains_key("upload-defer-length") {
        return Err(invalid(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let length = match header_str(headers, "upload-length") {
        Some(raw) => th::parse_size("Upload-Length", raw).map_err(|e| invalid(&e))?,
        None => return Err(invalid("Upload-Length is required")),
    };
    if length == 0 {
        return Err(invalid("file must be non-empty"));
    }
    if let Owner::Guest(link) = owner {
        if let Some(max) = link.max_file_bytes {
            if length > max {
                return Err(AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "File is too large: this guest link accepts files up to {} ({max} bytes).",
                        crate::http::pages::files::human_size(max)
                    ),
                ));
            }
        }
    }
    let raw_metadata = match headers.get("upload-metadata") {
        Some(v) => v
            .to_str()
            .map_err(|_| invalid("Upload-Metadata must be ASCII"))?
            .to_owned(),
        None => String::new(),
    };
    let pairs: Vec<MetadataPair> = th::parse_metadata(&raw_metadata).map_err(|e| invalid(&e))?;
    let text = |keys: &[&str]| th::metadata_text(&pairs, keys).map_err(|e| invalid(&e));
    let replaced = match text(&["replaces"])? {
        Some(raw) => Some(entry_to_replace(state, owner, &raw, now).await?),
        None => None,
    };
    if replaced.is_some() {
        if ["note", "expiration", "maxDownloads", "password"]
            .iter()
            .any(|k| pairs.iter().any(|p| p.key == *k))
        {
            return Err(invalid(
                "a replacement keeps the file's note, expiration, download limit and password: \
                 with `replaces`, send only filename, filetype and keepName",
            ));
        }
        keep_name_flag(&pairs).map_err(|e| invalid(&e))?;
    }
    let raw_name = match (text(&["filename", "name"])?, &replaced) {
        (Some(name), _) => name,
        (None, Some(entry)) => entry.filename.clone(),
        (None, None) => return Err(invalid("Upload-Metadata needs a filename")),
    };
    let filename = validate::filename(validate::upload_basename(&raw_name))
        .map_err(|e| invalid(&e))?
        .to_owned();
    let content_type = text(&["filetype", "type", "contentType"])?.unwrap_or_default();
    if content_type.len() > 255 || content_type.chars().any(char::is_control) {
        return Err(invalid("the file type is not a valid media type"));
    }
    let raw_note = text(&["note"])?.unwrap_or_default();
    let note = validate::note(&raw_note).map_err(|e| invalid(&e))?;
    let raw_expiration = text(&["expiration"])?;
    let raw_max = text(&["maxDownloads"])?;
    let password = text(&["password"])?;
    if matches!(owner, Owner::Guest(_)) && (raw_max.is_some() || password.is_some()) {
        return Err(invalid(crate::http::uploads::guest::GUEST_NO_LIMITS));
    }
    let limits = protect::new_limits(raw_max.as_deref(), password, |e| invalid(&e)).await?;
    // The password must never be stored: keep every pair but its own.
    let raw_metadata = raw_metadata
        .split(',')
        .filter(|pair| pair.split_whitespace().next() != Some("password"))
        .collect::<Vec<_>>()
        .join(",");
    let (expiration, guest_link_id, note) = match owner {
        Owner::Admin => {
            let exp = owner_expiration(state, raw_expiration.as_deref(), now, |e| {
                AppError::bad_request(format!("Invalid expiration: {e}"))
            })
            .await?;
            (exp, None, note)
        }
        Owner::Guest(link) => {
            if note.is_some() {
                return Err(invalid("guest uploads cannot have file notes"));
            }
            let exp = guest_expiration(raw_expiration.as_deref(), link.file_lifetime, now)
                .map_err(|e| AppError::bad_request(format!("Invalid expiration: {e}")))?;
            (exp, Some(link.id.clone()), None)
        }
    };
    Ok(NewTusUpload {
        guest_link_id,
        length,
        filename,
        content_type,
        note,
        expiration,
        metadata: raw_metadata,
        created: now,
        expires: now + state.config.tus_expiry,
        limits,
    })
}

async fn create(state: AppState, owner: Owner, req: Request) -> Result<Response, AppError> {
    if let Some(resp) = version_refusal(req.headers()) {
        return Ok(resp);
    }
    let now = state.clock.now();
    let new = new_upload(&state, &owner, req.headers(), now).await?;
    // A guest's upload takes a slot from creation on: the row counts as one of
    // the link's files until it completes (and becomes one) or expires.
    let slot = match &owner {
        Owner::Guest(link) => reserve_slot(&state, link).await?,
        Owner::Admin => None,
    };
    let row = state
        .store
        .tus_create(new, slot)
        .await
        .map_err(|e| AppError::store("failed to create the upload", e))?;
    let location = owner.upload_url(&row.id);
    tracing::info!(entry = %crate::ids::log_ref(row.entry_id.as_str()), length = row.length, "created a resumable upload");

    // creation-with-upload: the body, if any, is the upload's first bytes.
    let has_body = header_str(req.headers(), "content-type")
        .is_some_and(|v| v.eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
        && header_str(req.headers(), "content-length") != Some("0");
    let (mut resp, offset, row) = if has_body {
        match write(&state, &owner, &row.id, 0, req).await {
            Ok(w) => (StatusCode::CREATED.into_response(), w.offset, w.row),
            Err(e) => {
                // The upload exists: tell the client where, so it can resume.
                let mut resp = e.into_response();
                set(&mut resp, "location", &location);
                return Ok(resp);
            }
        }
    } else {
        (StatusCode::CREATED.into_response(), 0, row)
    };
    set(&mut resp, "location", &location);
    describe(&mut resp, &row, offset);
    Ok(resp)
}

// ---------------------------------------------------------------------------
// HEAD
// ---------------------------------------------------------------------------

/// Upload `id` as last committed, if it was created under `owner`'s routes.
async fn owned_upload(
    state: &AppState,
    owner: &Owner,
    id: &TusUploadId,
) -> Result<TusUpload, AppError> {
    state
        .store
        .tus_upload(id)
        .await
        .map_err(|e| AppError::store("failed to read the upload", e))?
        .filter(|r| owner.owns(r))
        .ok_or_else(no_such_upload)
}

/// `HEAD /api/tus/{uploadID}` and `HEAD /api/guest/{guestLinkID}/tus/{uploadID}`.
pub(crate) async fn head(
    TusTarget { owner, id }: TusTarget,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let row = owned_upload(&state, &owner, &id).await?;
    if !row.completed && row.expires < state.clock.now() {
        return Err(gone());
    }
    let mut resp = StatusCode::OK.into_response();
    set(&mut resp, "upload-length", &row.length.to_string());
    if !row.metadata.is_empty() {
        set(&mut resp, "upload-metadata", &row.metadata);
    }
    describe(&mut resp, &row, row.offset);
    Ok(resp)
}

// ---------------------------------------------------------------------------
// PATCH
// ---------------------------------------------------------------------------

/// `PATCH /api/tus/{uploadID}` and `PATCH /api/guest/{guestLinkID}/tus/{uploadID}`.
pub(crate) async fn patch(
    TusTarget { owner, id }: TusTarget,
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, AppError> {
    let content_type = header_str(req.headers(), "content-type").unwrap_or("");
    if !content_type.eq_ignore_ascii_case(OFFSET_OCTET_STREAM) {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("PATCH bodies must have Content-Type: {OFFSET_OCTET_STREAM}"),
        ));
    }
    let offset = match header_str(req.headers(), "upload-offset") {
        Some(raw) => th::parse_size("Upload-Offset", raw).map_err(AppError::bad_request)?,
        None => return Err(AppError::bad_request("Upload-Offset is required")),
    };
    let w = write(&state, &owner, &id, offset, req).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    describe(&mut resp, &w.row, w.offset);
    Ok(resp)
}

fn conflict(sent: u64, stored: u64) -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        format!(
            "Upload-Offset is {sent} but the upload has {stored} bytes: ask for the offset with HEAD and continue from there."
        ),
    )
}

// ---------------------------------------------------------------------------
// DELETE (termination)
// ---------------------------------------------------------------------------

/// `DELETE /api/tus/{uploadID}` and `DELETE /api/guest/{guestLinkID}/tus/{uploadID}`:
/// deletes an upload and its bytes. A completed upload's file stays (delete it
/// as a file); only the upload's record goes.
pub(crate) async fn terminate(
    TusTarget { owner, id }: TusTarget,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    owned_upload(&state, &owner, &id).await?;
    // Stop a request that is writing to it first.
    let _guard = state.tus_locks.acquire(&id).await.ok_or_else(|| {
        AppError::new(
            StatusCode::LOCKED,
            "Another request is still writing to this upload; try again in a moment.",
        )
    })?;
    if !state
        .store
        .tus_terminate(&id)
        .await
        .map_err(|e| AppError::store("failed to delete the upload", e))?
    {
        return Err(no_such_upload());
    }
    tracing::info!("terminated a resumable upload");
    Ok(StatusCode::NO_CONTENT.into_response())
}
