//! The owner's uploads, streamed straight into the store: `POST /api/entry`
//! (a multipart form, read by [`super::multipart`]) and `PUT
//! /api/upload/{filename}` (the raw body, as `curl -T` sends it). The reply
//! is sent only once the entry is durable.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::http::auth::protect;
use crate::http::auth::session::Uploader;
use crate::http::client::ClientView;
use crate::http::error::Path;
use crate::http::uploads::multipart::{content_length, receive, receive_error};
use crate::http::uploads::receive::{receive_into, Stopped, Take};
use crate::http::uploads::STORE_FAILED;
use crate::http::{json_reply, AppError, AppState};
use crate::ids::EntryId;
use crate::store::model::NewEntry;
use crate::validate;

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
pub(crate) async fn owner_expiration(
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
    fn of(client: &ClientView, headers: &HeaderMap) -> Self {
        LinkReply {
            base: client.base_url(),
            json: crate::http::uploads::guest::wants_json(headers),
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
pub(crate) async fn upload_entry(
    uploader: Uploader,
    State(state): State<AppState>,
    client: ClientView,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, AppError> {
    let link_reply = uploader
        .is_token()
        .then(|| LinkReply::of(&client, req.headers()));
    let invalid = |e: String| AppError::bad_request(format!("invalid request: {e}"));
    let now = state.clock.now();
    let expiration = expiration_param(&state, &query, now).await?;
    // Refused before a byte of the body is read (it would be stored first).
    if query.contains_key("password") {
        return Err(invalid(
            "send the password as a form field, not in the URL".into(),
        ));
    }
    let received = receive(&state, req, None).await.map_err(receive_error)?;
    // As in the original, `?note=` in the URL also counts.
    let raw_note = received
        .note
        .or_else(|| query.get("note").cloned())
        .unwrap_or_default();
    let note = validate::note(&raw_note).map_err(invalid)?;
    let raw_max = received
        .max_downloads
        .as_deref()
        .or_else(|| query.get("maxDownloads").map(String::as_str));
    let limits = protect::new_limits(raw_max, received.password, invalid).await?;
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
    finish(&state, received.sink, entry).await?;
    Ok(match link_reply {
        Some(r) => r.reply(&id),
        None => json_reply(&serde_json::json!({ "id": id.as_str() })),
    })
}

/// Commits an owner's upload and counts it.
async fn finish(
    state: &AppState,
    sink: crate::store::UploadSink,
    entry: NewEntry,
) -> Result<(), AppError> {
    let id = sink.id().clone();
    let commit = async {
        sink.finish(entry)
            .await
            .map_err(|e| AppError::store(STORE_FAILED, e))
    };
    super::finish(&state.metrics, &id, "upload", commit).await
}

/// `PUT /api/upload/{filename}?expiration=…&note=…`: the request body is the
/// file (what `curl -T FILE URL/` sends), streamed into the store as it
/// arrives. Owner only (session or API token); answered with the link.
pub(crate) async fn upload_raw(
    _uploader: Uploader,
    State(state): State<AppState>,
    client: ClientView,
    Path(raw_name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, AppError> {
    let link_reply = LinkReply::of(&client, req.headers());
    let invalid = |e: String| AppError::bad_request(format!("invalid request: {e}"));
    let now = state.clock.now();
    let expiration = expiration_param(&state, &query, now).await?;
    let filename = validate::filename(validate::upload_basename(&raw_name))
        .map_err(invalid)?
        .to_owned();
    let note = validate::note(query.get("note").map_or("", String::as_str)).map_err(invalid)?;
    if query.contains_key("password") {
        return Err(invalid(
            "a password cannot be set in the URL; use a multipart upload with a password field"
                .into(),
        ));
    }
    let raw_max = query.get("maxDownloads").map(String::as_str);
    let limits = protect::new_limits(raw_max, None, invalid).await?;
    let content_type = raw_content_type(req.headers());
    let sink = receive_raw(&state, req).await?;
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

/// Streams a raw request body into a new upload, as it arrives; refuses an
/// empty one.
pub(crate) async fn receive_raw(
    state: &AppState,
    req: Request,
) -> Result<crate::store::UploadSink, AppError> {
    let mut sink = state
        .store
        .begin_upload(EntryId::generate(), content_length(req.headers()));
    let body = req.into_body().into_data_stream();
    receive_into(&state.metrics, body, &mut sink, |_, _| Ok(Take::Store))
        .await
        .map_err(|stopped| match stopped {
            Stopped::By(e) => body_error(e),
            Stopped::Store(e) => AppError::store(STORE_FAILED, e),
        })?;
    if sink.bytes_received() == 0 {
        return Err(AppError::bad_request(
            "invalid request: file must be non-empty",
        ));
    }
    Ok(sink)
}

/// `PUT /api/upload` and `PUT /api/upload/`: no file name in the URL (curl
/// adds it only to a URL that ends with `/`).
pub(crate) async fn upload_raw_unnamed(_uploader: Uploader) -> AppError {
    AppError::bad_request(
        "invalid request: put the file's name in the URL, PUT /api/upload/{filename} \
         (with curl -T, end the URL with a slash: https://host/api/upload/)",
    )
}

/// The stored type of a raw upload: the request's `Content-Type`, unless it
/// says nothing about the file (absent, or the form type `curl --data-binary`
/// sends by default); downloads then infer one from the file name.
pub(crate) fn raw_content_type(headers: &axum::http::HeaderMap) -> String {
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
