//! Reading a multipart upload body (`POST /api/entry`, `POST /api/guest/{id}`).
//!
//! The body is parsed as it arrives; the file part's bytes go to an
//! [`UploadSink`](crate::store::UploadSink) chunk by chunk, so memory use does not
//! depend on the file size and no temporary file is ever written. The note may
//! come before or after the file. The file's name is the part's extended
//! `filename*` when it has one that decodes, else its `filename`
//! ([`crate::http::proto::part_filename`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use futures_util::{StreamExt, TryStreamExt};

use crate::http::proto::part_filename::extended_filename;
use crate::http::uploads::receive::{receive_into, Stopped, Take};
use crate::http::{AppError, AppState};
use crate::ids::EntryId;
use crate::validate;

/// What the multipart body held, once fully read.
pub(crate) struct ReceivedUpload {
    /// The sink holding the file's bytes (not yet finished).
    pub(crate) sink: crate::store::UploadSink,
    /// Validated filename.
    pub(crate) filename: String,
    /// Content type of the file part, verbatim.
    pub(crate) content_type: String,
    /// Raw note field, if one was sent.
    pub(crate) note: Option<String>,
    /// Raw `maxDownloads` field, if one was sent.
    pub(crate) max_downloads: Option<String>,
    /// Raw `password` field, if one was sent.
    pub(crate) password: Option<String>,
}

/// How an upload body failed.
pub(crate) enum ReceiveError {
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
pub(crate) async fn receive(
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
            part_file_name(field.headers(), field.file_name()).as_deref(),
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
                let chunks = (&mut field).map_err(cut_off);
                receive_into(&state.metrics, chunks, &mut sink, |bytes, held| {
                    progress.output();
                    within_limit(held + bytes.len() as u64).map(|()| Take::Store)
                })
                .await
                .map_err(|stopped| match stopped {
                    Stopped::By(e) => e,
                    Stopped::Store(e) => ReceiveError::Store(e),
                })?;
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

/// The file name a part gives: its extended `filename*` when that decodes
/// ([`extended_filename`]), else its plain `filename` (`plain`, as the
/// multipart parser read it).
pub(crate) fn part_file_name(headers: &HeaderMap, plain: Option<&str>) -> Option<String> {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(extended_filename)
        .or_else(|| plain.map(str::to_owned))
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
pub(crate) fn receive_error(e: ReceiveError) -> AppError {
    match e {
        ReceiveError::Invalid(msg) => AppError::bad_request(format!("invalid request: {msg}")),
        ReceiveError::TooLarge(limit) => AppError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "File is too large: this guest link accepts files up to {} ({limit} bytes).",
                crate::http::pages::files::human_size(limit)
            ),
        ),
        ReceiveError::Store(e) => AppError::store(super::STORE_FAILED, e),
    }
}

/// The request's `Content-Length`, if it has a valid one.
pub(crate) fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
