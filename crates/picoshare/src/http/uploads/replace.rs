//! `PUT /api/entry/{id}/content`: replaces a file's content behind the
//! links it already has. The owner (session or API token) sends the new
//! file as a multipart form (its part's type follows, and its name unless
//! `keepName=true`, which keeps the old name only) or as a raw body (the
//! type from `Content-Type`; the name kept, or `?filename=`). The bytes stream into the store like any
//! upload; the switch is one durable commit, before which the old content
//! is served and after which the new one is, while downloads that started
//! before finish with the old bytes (the store's `UploadSink::finish_replace`).
//! Guest links cannot reach this route.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::response::Response;

use crate::http::auth::session::Uploader;
use crate::http::error::Path;
use crate::http::params::{entry_by_id, entry_named};
use crate::http::uploads::multipart::{receive, receive_error};
use crate::http::uploads::owner::{raw_content_type, receive_raw};
use crate::http::uploads::STORE_FAILED;
use crate::http::{json_reply, AppError, AppState};
use crate::store::model::Replacement;
use crate::validate;

/// The handler (see the module header). Replies with the entry's ID, new
/// name and size.
pub(crate) async fn replace_content(
    _uploader: Uploader,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, AppError> {
    let invalid = |e: String| AppError::bad_request(format!("invalid request: {e}"));
    let keep_name = match query.get("keepName").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(format!(
                "keepName must be true or false, not {other:?}"
            )))
        }
    };
    // Refused before a byte is read: an unknown file, or one past its expiry.
    let (id, entry) = entry_named(&state, &raw_id).await?;
    let now = state.clock.now();
    if entry.is_expired(now) {
        return Err(AppError::not_found("entry not found"));
    }
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let (sink, filename, content_type) = if multipart {
        let received = receive(&state, req, None).await.map_err(receive_error)?;
        let name = (!keep_name).then_some(received.filename);
        (received.sink, name, received.content_type)
    } else {
        let name = match query.get("filename") {
            Some(raw) if !keep_name => Some(
                validate::filename(validate::upload_basename(raw))
                    .map_err(invalid)?
                    .to_owned(),
            ),
            _ => None,
        };
        let content_type = raw_content_type(req.headers());
        (receive_raw(&state, req).await?, name, content_type)
    };
    let size = sink.bytes_received();
    let change = Replacement {
        filename,
        content_type,
        now,
    };
    let replaced = super::finish(&state.metrics, &id, "replacement", async {
        sink.finish_replace(id.clone(), change)
            .await
            .map_err(|e| AppError::store(STORE_FAILED, e))
    })
    .await?;
    if !replaced {
        return Err(AppError::not_found("entry not found"));
    }
    let entry = entry_by_id(&state, &id).await?;
    Ok(json_reply(&serde_json::json!({
        "id": id.as_str(),
        "filename": entry.filename,
        "size": size,
    })))
}
