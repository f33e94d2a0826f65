//! `POST /api/guest/{id}`: a guest's upload through a guest link, streamed
//! into the store like the owner's, within the link's limits; and the rules
//! that guest uploads share with the resumable ones (the link must be
//! active, its upload count, its file lifetime).
//!
//! Two limits are enforced more strictly than the original does:
//! - `maxFileBytes` while the file streams in: once the file part passes the
//!   limit, reading stops, the partial upload is abandoned (its chunks deleted)
//!   and the reply is 413. The original capped the whole request body and
//!   answered 400.
//! - `maxFileUploads` atomically: an upload takes a slot before its body is read
//!   and holds it until its entry is committed, so concurrent uploads can never
//!   exceed the limit (the original checked the count and could overshoot).

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Timelike, Utc};

use crate::http::client::ClientView;
use crate::http::error::Path;
use crate::http::params::parse_guest_link_id;
use crate::http::uploads::multipart::{receive, receive_error};
use crate::http::uploads::STORE_FAILED;
use crate::http::{json_reply, AppError, AppState};
use crate::store::model::{GuestFileLifetime, GuestLink, NewEntry};
use crate::store::GuestSlot;
use crate::validate;

/// Refusal of a guest upload that asks for a download limit or a password:
/// only the owner sets those.
pub(crate) const GUEST_NO_LIMITS: &str = "guest uploads cannot have download limits or passwords";

/// The reply to any upload through a link that cannot take it (expired,
/// disabled, or out of uploads).
const INACTIVE: &str = "Guest link is no longer active";

// ---------------------------------------------------------------------------
// Upload slots
// ---------------------------------------------------------------------------

/// The guest link `raw_id` for an upload through it: it must exist and not
/// be disabled; `for_new_upload` also requires it unexpired at `now` (a
/// resumable upload already started may finish after its link expired).
pub(crate) async fn active_link(
    state: &AppState,
    raw_id: &str,
    for_new_upload: bool,
    now: DateTime<Utc>,
) -> Result<GuestLink, AppError> {
    let id = parse_guest_link_id(raw_id)?;
    let link = state
        .store
        .guest_link(&id)
        .await
        .map_err(|e| AppError::store("Failed to retrieve guest link", e))?
        .ok_or_else(|| AppError::not_found("Invalid guest link ID"))?;
    if link.is_disabled || (for_new_upload && link.is_expired(now)) {
        return Err(AppError::new(StatusCode::UNAUTHORIZED, INACTIVE));
    }
    Ok(link)
}

/// Takes an upload slot on `link` if it has a limit (`None` if it has none):
/// the store counts the link's files and the uploads in progress, and takes
/// a slot atomically. The upload holds it until what counts in its place is
/// stored.
pub(crate) async fn reserve_slot(
    state: &AppState,
    link: &GuestLink,
) -> Result<Option<GuestSlot>, AppError> {
    let Some(max) = link.max_file_uploads else {
        return Ok(None);
    };
    match state.store.reserve_guest_slot(&link.id, max).await {
        Ok(Some(slot)) => Ok(Some(slot)),
        Ok(None) => Err(AppError::new(StatusCode::UNAUTHORIZED, INACTIVE)),
        Err(e) => Err(AppError::store("Failed to retrieve guest link", e)),
    }
}

// ---------------------------------------------------------------------------
// Guest upload
// ---------------------------------------------------------------------------

/// The "never expires" time.
pub(crate) fn never() -> DateTime<Utc> {
    validate::rfc3339(validate::NEVER_EXPIRE).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A time as Go's `time.Time.String()` prints a UTC time, which the original
/// puts into its expiration messages: `2030-01-02 03:04:05 +0000 UTC`.
fn go_time(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if t.nanosecond() != 0 {
        let frac = format!("{:09}", t.nanosecond());
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// The expiration of a guest's file (`None` for never): the link's longest
/// lifetime when none was asked for, otherwise the requested time, which must be
/// at least an hour away and within that lifetime. Errors go after
/// `Invalid expiration: `.
pub(crate) fn guest_expiration(
    raw: Option<&str>,
    lifetime: GuestFileLifetime,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    let latest = lifetime.expiration_from(now);
    let raw = raw.unwrap_or("");
    if raw.is_empty() {
        return Ok(latest);
    }
    let requested = validate::expiration(raw, now)?;
    let limit = latest.unwrap_or_else(never);
    if requested > limit {
        return Err(format!(
            "requested expiration time of {} is beyond guest link's limit: {}",
            go_time(requested),
            go_time(limit)
        ));
    }
    Ok((requested < never()).then_some(requested))
}

/// Whether the client asked for JSON: only an `Accept` of exactly
/// `application/json` does (the web UI sends it; curl and browsers get text).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes() == b"application/json")
}

/// `POST /api/guest/{id}?expiration=…`: a guest's upload, streamed into the
/// store like the owner's, within the link's limits.
pub(crate) async fn upload_guest_file(
    State(state): State<AppState>,
    client: ClientView,
    Path(raw_id): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let now = state.clock.now();
    let link = active_link(&state, &raw_id, true, now).await?;
    let id = link.id.clone();
    let slot = reserve_slot(&state, &link).await?;

    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let raw_expiration = query.get("expiration").map(String::as_str);
    let expiration = guest_expiration(raw_expiration, link.file_lifetime, now)
        .map_err(|e| AppError::bad_request(format!("Invalid expiration: {e}")))?;
    let json = wants_json(req.headers());
    let base = client.base_url();
    let invalid = |e: &str| AppError::bad_request(format!("invalid request: {e}"));
    // As in the original, a note is checked like the owner's (so `null` gets
    // its own message) and then refused.
    let refuse_note = |raw: &str| match validate::note(raw) {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(invalid("guest uploads cannot have file notes")),
        Err(e) => Err(invalid(&e)),
    };
    // What the URL asks that is refused is refused before a byte of the
    // body is read (it would be stored first). A `?note=` is refused
    // whatever the form holds: the original reads a note with Go's
    // `FormValue`, which gives the URL's value before the form's.
    if query.contains_key("maxDownloads") || query.contains_key("password") {
        return Err(invalid(GUEST_NO_LIMITS));
    }
    refuse_note(query.get("note").map_or("", String::as_str))?;

    let received = receive(&state, req, link.max_file_bytes)
        .await
        .map_err(receive_error)?;
    refuse_note(received.note.as_deref().unwrap_or(""))?;
    if received.max_downloads.is_some() || received.password.is_some() {
        return Err(invalid(GUEST_NO_LIMITS));
    }

    let mut sink = received.sink;
    if let Some(slot) = slot {
        // Given back once the entry, which counts in its place, is stored.
        sink.hold_guest_slot(slot);
    }
    let entry_id = sink.id().clone();
    let entry = NewEntry {
        filename: received.filename,
        content_type: received.content_type,
        upload_time: now,
        expiration,
        note: None,
        guest_link_id: Some(id.as_str().to_owned()),
        limits: None,
    };
    // The slot must outlive the commit, or a concurrent upload could miss this
    // file in both counts. If the client goes away now, this handler is dropped,
    // so the commit and the release run in their own task.
    let commit = async {
        tokio::spawn(async move { sink.finish(entry).await })
            .await
            .map_err(|e| AppError::internal(STORE_FAILED, e))?
            .map_err(|e| AppError::store(STORE_FAILED, e))
    };
    super::finish(&state.metrics, &entry_id, "guest upload", commit).await?;

    if json {
        return Ok(json_reply(&serde_json::json!({ "id": entry_id.as_str() })));
    }
    let mut resp = format!("{base}/-{entry_id}\r\n").into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        validate::rfc3339(s).unwrap()
    }

    #[test]
    fn guest_expiration_defaults_to_and_is_bounded_by_the_lifetime() {
        let now = at("2030-01-01T00:00:00Z");
        let week = GuestFileLifetime::parse_go("168h").unwrap();
        let in_a_week = Some(at("2030-01-08T00:00:00Z"));
        assert_eq!(guest_expiration(None, week, now), Ok(in_a_week));
        assert_eq!(guest_expiration(Some(""), week, now), Ok(in_a_week));
        assert_eq!(
            guest_expiration(Some("2030-01-08T00:00:00Z"), week, now),
            Ok(in_a_week)
        );
        assert_eq!(
            guest_expiration(Some("2030-01-08T00:00:01Z"), week, now).unwrap_err(),
            "requested expiration time of 2030-01-08 00:00:01 +0000 UTC is beyond \
             guest link's limit: 2030-01-08 00:00:00 +0000 UTC"
        );
        assert_eq!(
            guest_expiration(Some("2030-01-01T00:59:59Z"), week, now).unwrap_err(),
            validate::EXPIRATION_TOO_SOON
        );
        let never_ = GuestFileLifetime::INFINITE;
        assert_eq!(guest_expiration(None, never_, now), Ok(None));
        assert_eq!(
            guest_expiration(Some(validate::NEVER_EXPIRE), never_, now),
            Ok(None)
        );
        assert_eq!(
            guest_expiration(Some("2100-01-01T00:00:00Z"), never_, now),
            Ok(Some(at("2100-01-01T00:00:00Z")))
        );
    }
}
