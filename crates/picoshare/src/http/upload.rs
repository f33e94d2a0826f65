//! `POST /api/entry`: admin upload, streamed straight into the store.
//!
//! The multipart body is parsed as it arrives; the file part's bytes go to an
//! [`UploadSink`](crate::store::UploadSink) chunk by chunk, so memory use does not
//! depend on the file size and no temporary file is ever written. The note may
//! come before or after the file. The reply is sent only once the entry is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use std::time::Instant;

use super::auth::Uploader;
use super::error::Path;
use super::metrics::HttpMetrics;
use super::{json_reply, protect, AppError, AppState};
use crate::ids::EntryId;
use crate::store::model::NewEntry;
use crate::validate;

/// What the multipart body held, once fully read.
pub(super) struct ReceivedUpload {
    /// The sink holding the file's bytes (not yet finished).
    pub sink: crate::store::UploadSink,
    /// Validated filename.
    pub filename: String,
    /// Content type of the file part, verbatim.
    pub content_type: String,
    /// Raw note field, if one was sent.
    pub note: Option<String>,
    /// Raw `maxDownloads` field, if one was sent.
    pub max_downloads: Option<String>,
    /// Raw `password` field, if one was sent.
    pub password: Option<String>,
}

/// How an upload body failed.
pub(super) enum ReceiveError {
    /// The request is wrong; the text goes after `invalid request: `.
    Invalid(String),
    /// The file passed the caller's size limit (in bytes).
    TooLarge(u64),
    /// Storing failed.
    Store(crate::store::StoreError),
}

/// Longest note field we read before giving up (the rule is 500 bytes).
pub(crate) const NOTE_READ_LIMIT: usize = 4096;

/// What a size-limited upload may carry besides the file itself: boundaries,
/// part headers and small fields.
const FORM_OVERHEAD: u64 = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A size-limited request body went past the file limit (held here) plus
/// [`FORM_OVERHEAD`].
#[derive(Debug)]
struct BodyTooLarge(u64);

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body too large")
    }
}

impl std::error::Error for BodyTooLarge {}

/// Most body bytes the multipart parser may hold while it looks for the end
/// of something that is not file data: the preamble, a part's headers, a
/// boundary. It buffers those whole, so without this bound one endless part
/// header would take all memory. Field data is handed on as it arrives and
/// does not count. (Larger than any one read of the body, which the parser
/// takes whole.)
const MAX_UNPARSED: u64 = 1 << 20;

/// Bytes fed to the multipart parser, and the count when it last produced
/// something (a new field or a piece of data).
#[derive(Default)]
struct ParserProgress {
    fed: AtomicU64,
    at_last_output: AtomicU64,
}

impl ParserProgress {
    fn output(&self) {
        self.at_last_output
            .store(self.fed.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// More than [`MAX_UNPARSED`] bytes arrived without the parser producing anything.
#[derive(Debug)]
struct PartHeadersTooLarge;

impl std::fmt::Display for PartHeadersTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a multipart boundary or part header section is larger than {} KiB",
            MAX_UNPARSED / 1024
        )
    }
}

impl std::error::Error for PartHeadersTooLarge {}

/// Reads a multipart upload body, streaming its `file` part into a new sink.
///
/// With `max_file_bytes`, reading stops as soon as the file part passes it, or
/// the whole body passes it by more than [`FORM_OVERHEAD`]: the sink is dropped,
/// which deletes what was stored, and the rest of the body is never read.
pub(super) async fn receive(
    state: &AppState,
    req: Request,
    max_file_bytes: Option<u64>,
) -> Result<ReceivedUpload, ReceiveError> {
    let expected_len = content_length(req.headers());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ReceiveError::Invalid("request Content-Type isn't multipart/form-data".into())
    })?;
    // Capping the body as well bounds what the fields that are thrown away may
    // carry, and keeps what is read past the limit independent of how the bytes
    // arrive: a frame that crosses the cap never reaches the parser.
    let cap = max_file_bytes.map(|limit| (limit, limit.saturating_add(FORM_OVERHEAD)));
    let mut body_bytes: u64 = 0;
    let progress = Arc::new(ParserProgress::default());
    let fed = Arc::clone(&progress);
    let stream = req.into_body().into_data_stream().map(move |frame| {
        let data = frame?;
        body_bytes += data.len() as u64;
        fed.fed.store(body_bytes, Ordering::Relaxed);
        if body_bytes - fed.at_last_output.load(Ordering::Relaxed) > MAX_UNPARSED {
            return Err(BoxError::from(PartHeadersTooLarge));
        }
        match cap {
            Some((limit, cap)) if body_bytes > cap => Err(BoxError::from(BodyTooLarge(limit))),
            _ => Ok(data),
        }
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut file: Option<(crate::store::UploadSink, String, String)> = None;
    let mut note: Option<String> = None;
    let mut max_downloads: Option<String> = None;
    let mut password: Option<String> = None;
    let within_limit = |n: u64| match max_file_bytes {
        Some(limit) if n > limit => Err(ReceiveError::TooLarge(limit)),
        _ => Ok(()),
    };
    let cut_off = |e: multer::Error| match &e {
        multer::Error::StreamReadFailed(inner) => {
            if let Some(&BodyTooLarge(limit)) = inner.downcast_ref::<BodyTooLarge>() {
                ReceiveError::TooLarge(limit)
            } else if inner.is::<PartHeadersTooLarge>() {
                ReceiveError::Invalid(inner.to_string())
            } else {
                ReceiveError::Invalid(format!("could not read the multipart body: {e}"))
            }
        }
        _ => ReceiveError::Invalid(format!("could not read the multipart body: {e}")),
    };
    while let Some(mut field) = multipart.next_field().await.map_err(cut_off)? {
        progress.output();
        let role = field_role(
            field.name(),
            field.file_name(),
            file.is_some(),
            note.is_some(),
        )
        .map_err(ReceiveError::Invalid)?;
        match role {
            FieldRole::File(name) => {
                let ctype = field
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let mut sink = state.store.begin_upload(EntryId::generate(), expected_len);
                let m = &state.metrics;
                loop {
                    let t = Instant::now();
                    let Some(bytes) = field.chunk().await.map_err(cut_off)? else {
                        break;
                    };
                    progress.output();
                    HttpMetrics::add(&m.upload_receive_ns, t.elapsed().as_nanos() as u64);
                    HttpMetrics::add(&m.upload_bytes, bytes.len() as u64);
                    within_limit(sink.bytes_received() + bytes.len() as u64)?;
                    let t = Instant::now();
                    sink.write(bytes).await.map_err(ReceiveError::Store)?;
                    HttpMetrics::add(&m.upload_store_wait_ns, t.elapsed().as_nanos() as u64);
                }
                file = Some((sink, name, ctype));
            }
            FieldRole::Note => {
                let mut buf = Vec::new();
                while let Some(bytes) = field.chunk().await.map_err(cut_off)? {
                    progress.output();
                    buf.extend_from_slice(&bytes);
                    if buf.len() > NOTE_READ_LIMIT {
                        return Err(ReceiveError::Invalid("note is too long".into()));
                    }
                }
                note = Some(String::from_utf8_lossy(&buf).into_owned());
            }
            role @ (FieldRole::MaxDownloads | FieldRole::Password) => {
                let is_password = matches!(role, FieldRole::Password);
                let mut buf = Vec::new();
                while let Some(bytes) = field.chunk().await.map_err(cut_off)? {
                    progress.output();
                    buf.extend_from_slice(&bytes);
                    if buf.len() > NOTE_READ_LIMIT {
                        return Err(ReceiveError::Invalid(if is_password {
                            "the password is too long".into()
                        } else {
                            "maxDownloads is too long".into()
                        }));
                    }
                }
                let value = String::from_utf8(buf)
                    .map_err(|_| ReceiveError::Invalid("form fields must be UTF-8 text".into()))?;
                if is_password {
                    password = Some(value);
                } else {
                    max_downloads = Some(value);
                }
            }
            FieldRole::Skip => {
                while field.try_next().await.map_err(cut_off)?.is_some() {
                    progress.output();
                }
            }
        }
    }
    let (sink, filename, content_type) =
        file.ok_or_else(|| ReceiveError::Invalid("http: no such file".into()))?;
    if sink.bytes_received() == 0 {
        return Err(ReceiveError::Invalid("file must be non-empty".into()));
    }
    Ok(ReceivedUpload {
        sink,
        filename,
        content_type,
        note,
        max_downloads,
        password,
    })
}

/// What an upload does with one multipart field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldRole {
    /// The file, under this validated name.
    File(String),
    /// The note.
    Note,
    /// The download limit (`maxDownloads`).
    MaxDownloads,
    /// The file's password.
    Password,
    /// Anything else (unknown fields, extra files, a second note): read and discarded.
    Skip,
}

/// Decides what to do with a field from its `name` and `filename` parameters,
/// given whether a file and a note were already read. The first `file` part
/// with a filename is the file; its name is reduced to a base name and checked.
///
/// # Errors
/// The filename's validation message.
pub(crate) fn field_role(
    name: Option<&str>,
    file_name: Option<&str>,
    have_file: bool,
    have_note: bool,
) -> Result<FieldRole, String> {
    Ok(match (name, file_name) {
        (Some("file"), Some(raw_name)) if !have_file => {
            FieldRole::File(validate::filename(validate::upload_basename(raw_name))?.to_owned())
        }
        (Some("note"), None) if !have_note => FieldRole::Note,
        (Some("maxDownloads"), None) => FieldRole::MaxDownloads,
        (Some("password"), None) => FieldRole::Password,
        _ => FieldRole::Skip,
    })
}

/// Turns a receive failure into the reply the original gives.
pub(super) fn receive_error(e: ReceiveError) -> AppError {
    match e {
        ReceiveError::Invalid(msg) => AppError::bad_request(format!("invalid request: {msg}")),
        ReceiveError::TooLarge(limit) => AppError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("File is too large: this guest link accepts files up to {limit} bytes."),
        ),
        ReceiveError::Store(e) => AppError::store("failed to insert file into database", e),
    }
}

/// Parses the `expiration` query parameter of an admin upload. Without the
/// parameter, the settings' default lifetime applies (the original refuses the
/// upload; API clients such as curl then need not compute a date). A present
/// but empty or invalid value is refused with the original's message.
async fn expiration_param(
    state: &AppState,
    query: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    owner_expiration(
        state,
        query.get("expiration").map(String::as_str),
        now,
        |e| AppError::bad_request(format!("Invalid expiration URL parameter: {e}")),
    )
    .await
}

/// The expiration of an owner's upload from its requested value: the default
/// lifetime when absent, never for the original's "never" time, otherwise a
/// valid future time. `invalid` turns a validation message into the reply.
pub(super) async fn owner_expiration(
    state: &AppState,
    raw: Option<&str>,
    now: DateTime<Utc>,
    invalid: impl FnOnce(String) -> AppError,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(raw) = raw else {
        let settings = state
            .store
            .settings()
            .await
            .map_err(|e| AppError::store("failed to read settings", e))?;
        return Ok(settings.default_lifetime.expiration_from(now));
    };
    if raw == validate::NEVER_EXPIRE {
        return Ok(None);
    }
    validate::expiration(raw, now).map(Some).map_err(invalid)
}

/// How a script's upload is answered: the file's link as plain text (one
/// line), or `{"id", "url"}` for a client that accepts only JSON.
struct LinkReply {
    base: String,
    json: bool,
}

impl LinkReply {
    fn of(state: &AppState, req: &Request) -> Self {
        LinkReply {
            base: super::guest_links::base_url(state, req),
            json: super::guest_links::wants_json(req.headers()),
        }
    }

    fn reply(&self, id: &EntryId) -> Response {
        let url = format!("{}/-{id}", self.base);
        if self.json {
            return json_reply(&serde_json::json!({ "id": id.as_str(), "url": url }));
        }
        let mut resp = format!("{url}\n").into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        resp
    }
}

/// `POST /api/entry?expiration=…`: a multipart upload by the logged-in owner
/// (answered `{"id"}`, as the original does) or with an API token (answered
/// with the link, see [`LinkReply`]).
pub async fn upload_entry(
    uploader: Uploader,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let link_reply = uploader.is_token().then(|| LinkReply::of(&state, &req));
    let now = state.clock.now();
    let expiration = match expiration_param(&state, &query, now).await {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let received = match receive(&state, req, None).await {
        Ok(r) => r,
        Err(e) => return receive_error(e).into_response(),
    };
    // As in the original, `?note=` in the URL also counts.
    let raw_note = received
        .note
        .or_else(|| query.get("note").cloned())
        .unwrap_or_default();
    let note = match validate::note(&raw_note) {
        Ok(n) => n,
        Err(e) => return AppError::bad_request(format!("invalid request: {e}")).into_response(),
    };
    if query.contains_key("password") {
        return AppError::bad_request(
            "invalid request: send the password as a form field, not in the URL",
        )
        .into_response();
    }
    let raw_max = received
        .max_downloads
        .as_deref()
        .or_else(|| query.get("maxDownloads").map(String::as_str));
    let limits = match protect::new_limits(raw_max, received.password, |e| {
        AppError::bad_request(format!("invalid request: {e}"))
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let id = received.sink.id().clone();
    let entry = NewEntry {
        filename: received.filename,
        content_type: received.content_type,
        upload_time: now,
        expiration,
        note,
        guest_link_id: None,
        limits,
    };
    match finish(&state, received.sink, entry).await {
        Ok(()) => match link_reply {
            Some(r) => r.reply(&id),
            None => json_reply(&serde_json::json!({ "id": id.as_str() })),
        },
        Err(e) => e.into_response(),
    }
}

/// Commits an owner's upload and counts it.
async fn finish(
    state: &AppState,
    sink: crate::store::UploadSink,
    entry: NewEntry,
) -> Result<(), AppError> {
    let id = sink.id().clone();
    let t = Instant::now();
    let stored = sink.finish(entry).await;
    HttpMetrics::add(
        &state.metrics.upload_finish_ns,
        t.elapsed().as_nanos() as u64,
    );
    match stored {
        Ok(()) => {
            HttpMetrics::add(&state.metrics.uploads, 1);
            tracing::info!(entry_id = %id, "stored upload");
            Ok(())
        }
        Err(e) => Err(AppError::store("failed to insert file into database", e)),
    }
}

/// `PUT /api/upload/{filename}?expiration=…&note=…`: the request body is the
/// file (what `curl -T FILE URL/` sends), streamed into the store as it
/// arrives. Owner only (session or API token); answered with the link.
pub async fn upload_raw(
    _uploader: Uploader,
    State(state): State<AppState>,
    Path(raw_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    upload_raw_inner(state, &raw_name, query, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `PUT /api/upload` and `PUT /api/upload/`: no file name in the URL (curl
/// adds it only to a URL that ends with `/`).
pub async fn upload_raw_unnamed(_uploader: Uploader) -> AppError {
    AppError::bad_request(
        "invalid request: put the file's name in the URL, PUT /api/upload/{filename} \
         (with curl -T, end the URL with a slash: https://host/api/upload/)",
    )
}

async fn upload_raw_inner(
    state: AppState,
    raw_name: &str,
    query: HashMap<String, String>,
    req: Request,
) -> Result<Response, AppError> {
    let link_reply = LinkReply::of(&state, &req);
    let invalid = |e: String| AppError::bad_request(format!("invalid request: {e}"));
    let now = state.clock.now();
    let expiration = expiration_param(&state, &query, now).await?;
    let filename = validate::filename(validate::upload_basename(raw_name))
        .map_err(invalid)?
        .to_owned();
    let note = validate::note(query.get("note").map_or("", String::as_str)).map_err(invalid)?;
    if query.contains_key("password") {
        return Err(invalid(
            "a password cannot be set in the URL; use a multipart upload with a password field"
                .into(),
        ));
    }
    let limits = protect::new_limits(query.get("maxDownloads").map(String::as_str), None, |e| {
        AppError::bad_request(format!("invalid request: {e}"))
    })
    .await?;
    let content_type = raw_content_type(req.headers());
    let mut sink = state
        .store
        .begin_upload(EntryId::generate(), content_length(req.headers()));
    let mut body = req.into_body().into_data_stream();
    let m = &state.metrics;
    loop {
        let t = Instant::now();
        let Some(frame) = body.next().await else {
            break;
        };
        let bytes = frame.map_err(body_error)?;
        HttpMetrics::add(&m.upload_receive_ns, t.elapsed().as_nanos() as u64);
        if bytes.is_empty() {
            continue;
        }
        HttpMetrics::add(&m.upload_bytes, bytes.len() as u64);
        let t = Instant::now();
        sink.write(bytes)
            .await
            .map_err(|e| AppError::store("failed to insert file into database", e))?;
        HttpMetrics::add(&m.upload_store_wait_ns, t.elapsed().as_nanos() as u64);
    }
    if sink.bytes_received() == 0 {
        return Err(invalid("file must be non-empty".into()));
    }
    let id = sink.id().clone();
    let entry = NewEntry {
        filename,
        content_type,
        upload_time: now,
        expiration,
        note,
        guest_link_id: None,
        limits,
    };
    finish(&state, sink, entry).await?;
    Ok(link_reply.reply(&id))
}

/// The stored type of a raw upload: the request's `Content-Type`, unless it
/// says nothing about the file (absent, or the form type `curl --data-binary`
/// sends by default); downloads then infer one from the file name.
/// The request's `Content-Length`, if it has a valid one.
pub(super) fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn raw_content_type(headers: &axum::http::HeaderMap) -> String {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if given.is_empty() || given.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        "application/octet-stream".to_owned()
    } else {
        given.to_owned()
    }
}

/// A request body that failed while it was read. (When the idle timeout cut
/// it off, the body-timeout layer turns this reply into its 408.)
fn body_error(e: axum::Error) -> AppError {
    AppError::bad_request(format!("could not read the request body: {e}"))
}
