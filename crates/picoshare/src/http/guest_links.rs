//! Guest links: the owner's routes to create, delete, enable and disable them,
//! and the public upload route they open (`POST /api/guest/{id}`).
//!
//! Requests, replies and error texts are the original's. Two limits are
//! enforced more strictly than the original does:
//! - `maxFileBytes` while the file streams in: once the file part passes the
//!   limit, reading stops, the partial upload is abandoned (its chunks deleted)
//!   and the reply is 413. The original capped the whole request body and
//!   answered 400.
//! - `maxFileUploads` atomically: an upload takes a slot before its body is read
//!   and holds it until its entry is committed, so concurrent uploads can never
//!   exceed the limit (the original checked the count and could overshoot).

use std::collections::HashMap;
use std::time::Instant;

/// Refusal of a guest upload that asks for a download limit or a password:
/// only the owner sets those.
pub(super) const GUEST_NO_LIMITS: &str = "guest uploads cannot have download limits or passwords";

use axum::extract::{Query, Request, State};

use super::error::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Timelike, Utc};

use super::auth::Admin;
use super::error::JsonBody;
use super::metrics::HttpMetrics;
use super::upload::{receive, receive_error};
use super::{json_reply, AppError, AppState};
use crate::ids::{GuestLinkId, IdError};
use crate::store::model::{GuestFileLifetime, GuestLink, NewEntry, NewGuestLink};
use crate::store::GuestSlot;
use crate::validate;

/// Longest label, in bytes.
const MAX_LABEL_BYTES: usize = 200;
/// Smallest `maxFileBytes` a link may have (1 MiB).
const MIN_MAX_FILE_BYTES: u64 = 1 << 20;

/// The reply to any upload through a link that cannot take it (expired,
/// disabled, or out of uploads).
pub(super) const INACTIVE: &str = "Guest link is no longer active";

/// Parses a guest-link ID from a path, with the original's wording. The
/// original names guest links in its length message but, by a slip, entries in
/// its character message; clients may match either, so both are kept.
pub(super) fn parse_guest_link_id(raw: &str) -> Result<GuestLinkId, AppError> {
    GuestLinkId::parse(raw).map_err(|e| {
        let why = match e {
            IdError::Length { id, got, want } => {
                format!("guest link ID ({id}) has invalid length: got {got}, want {want}")
            }
            IdError::Character { id, ch } => {
                format!("entry ID ({id}) contains invalid character: {ch}")
            }
        };
        AppError::bad_request(format!("Invalid guest link ID: {why}"))
    })
}

// ---------------------------------------------------------------------------
// Admin routes
// ---------------------------------------------------------------------------

/// The body of `POST /api/guest-links`. Missing fields and `null` read as the
/// original reads them: an empty label or time, no limit.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestLinkRequest {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    url_expiration_time: Option<String>,
    #[serde(default)]
    file_lifetime: Option<String>,
    #[serde(default)]
    max_file_bytes: Option<u64>,
    #[serde(default)]
    max_file_uploads: Option<i64>,
}

/// Checks a creation request, in the original's order, and returns the link to
/// store. The error texts go after `Invalid request: `.
pub(crate) fn new_guest_link(body: &[u8], now: DateTime<Utc>) -> Result<NewGuestLink, String> {
    // Only the first JSON value counts; an empty body is Go's `EOF`.
    let req: GuestLinkRequest = serde_json::Deserializer::from_slice(body)
        .into_iter::<GuestLinkRequest>()
        .next()
        .unwrap_or_else(|| Err(serde::de::Error::custom("EOF")))
        .map_err(|e| e.to_string())?;
    let label = req.label.unwrap_or_default();
    if label.len() > MAX_LABEL_BYTES {
        return Err(format!(
            "label too long - limit {MAX_LABEL_BYTES} characters"
        ));
    }
    let url_expiration =
        validate::expiration(req.url_expiration_time.as_deref().unwrap_or(""), now)?;
    let file_lifetime = GuestFileLifetime::parse_go(req.file_lifetime.as_deref().unwrap_or(""))
        .map_err(|_| {
            "unrecognized format for file life time, must be in 1ns, 1us (or 1µs), 1ms, 1s, 1m, 1h format"
                .to_owned()
        })?;
    if !file_lifetime.is_infinite() && file_lifetime < GuestFileLifetime::ONE_DAY {
        return Err("file lifetime must be at least 1 day".into());
    }
    if req.max_file_bytes.is_some_and(|n| n < MIN_MAX_FILE_BYTES) {
        // "at at" is the original's text, kept because clients may match it.
        return Err(format!(
            "guest upload size limit must be at at least {MIN_MAX_FILE_BYTES} bytes"
        ));
    }
    let max_file_uploads = match req.max_file_uploads {
        None => None,
        Some(n) => Some(
            u64::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or("guest upload count limit must be a positive number")?,
        ),
    };
    Ok(NewGuestLink {
        label,
        max_file_bytes: req.max_file_bytes,
        max_file_uploads,
        creation_time: now,
        url_expiration: (url_expiration < never()).then_some(url_expiration),
        file_lifetime,
    })
}

/// `POST /api/guest-links`: creates a link and answers `{"id": "…"}`.
pub async fn create_guest_link(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Response {
    let link = match new_guest_link(&body, state.clock.now()) {
        Ok(link) => link,
        Err(e) => return AppError::bad_request(format!("Invalid request: {e}")).into_response(),
    };
    match state.store.create_guest_link(link).await {
        Ok(id) => json_reply(&serde_json::json!({ "id": id.as_str() })),
        Err(e) => AppError::store("Failed to save guest link", e).into_response(),
    }
}

/// `DELETE /api/guest-links/{id}`: removes the link; files uploaded through it
/// stay. Succeeds also when the link does not exist.
pub async fn delete_guest_link(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    let id = match parse_guest_link_id(&raw_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match state.store.delete_guest_link(&id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => AppError::store("Failed to delete guest link", e).into_response(),
    }
}

/// `PUT /api/guest-links/{id}/enable`.
pub async fn enable_guest_link(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    set_disabled(&state, &raw_id, false).await
}

/// `PUT /api/guest-links/{id}/disable`.
pub async fn disable_guest_link(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Response {
    set_disabled(&state, &raw_id, true).await
}

/// Switches a link off or on: 204 (also when it already was), 404 if unknown.
async fn set_disabled(state: &AppState, raw_id: &str, disabled: bool) -> Response {
    let id = match parse_guest_link_id(raw_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match state.store.set_guest_link_disabled(&id, disabled).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => AppError::not_found(format!(
            "Guest link with ID {raw_id} not found: Could not find guest link with ID {raw_id}"
        ))
        .into_response(),
        Err(e) => AppError::store("Failed to change guest link enabled state", e).into_response(),
    }
}

// ---------------------------------------------------------------------------
// Upload slots
// ---------------------------------------------------------------------------

/// Takes an upload slot on `link` if it has a limit (`None` if it has none):
/// the store counts the link's files and the uploads in progress, and takes
/// a slot atomically. The upload holds it until what counts in its place is
/// stored.
pub(super) async fn reserve_slot(
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
fn never() -> DateTime<Utc> {
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

/// The plain-text reply's base URL: the `Host` the client used, and `https`
/// when a TLS-terminating proxy is in front (this server never speaks TLS).
pub(super) fn base_url(state: &AppState, req: &Request) -> String {
    let scheme = if state.config.behind_proxy {
        "https"
    } else {
        "http"
    };
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    format!("{scheme}://{host}")
}

/// Whether the client asked for JSON: only an `Accept` of exactly
/// `application/json` does (the web UI sends it; curl and browsers get text).
pub(super) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .is_some_and(|v| v.as_bytes() == b"application/json")
}

/// `POST /api/guest/{id}?expiration=…`: a guest's upload, streamed into the
/// store like the owner's, within the link's limits.
pub async fn upload_guest_file(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    req: Request,
) -> Response {
    guest_upload(state, &raw_id, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn guest_upload(state: AppState, raw_id: &str, req: Request) -> Result<Response, AppError> {
    let id = parse_guest_link_id(raw_id)?;
    let link = state
        .store
        .guest_link(&id)
        .await
        .map_err(|e| AppError::store("Failed to retrieve guest link", e))?
        .ok_or_else(|| AppError::not_found("Invalid guest link ID"))?;
    let now = state.clock.now();
    if link.is_disabled || link.is_expired(now) {
        return Err(AppError::new(StatusCode::UNAUTHORIZED, INACTIVE));
    }
    let slot = reserve_slot(&state, &link).await?;

    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let raw_expiration = query.get("expiration").map(String::as_str);
    let expiration = guest_expiration(raw_expiration, link.file_lifetime, now)
        .map_err(|e| AppError::bad_request(format!("Invalid expiration: {e}")))?;
    let json = wants_json(req.headers());
    let base = base_url(&state, &req);

    let received = receive(&state, req, link.max_file_bytes)
        .await
        .map_err(receive_error)?;
    // As in the original, a note is checked like the owner's (so `null` gets
    // its own message) and then refused; `?note=` in the URL counts too.
    let raw_note = received
        .note
        .or_else(|| query.get("note").cloned())
        .unwrap_or_default();
    let invalid = |e: &str| AppError::bad_request(format!("invalid request: {e}"));
    if validate::note(&raw_note)
        .map_err(|e| invalid(&e))?
        .is_some()
    {
        return Err(invalid("guest uploads cannot have file notes"));
    }
    if received.max_downloads.is_some()
        || received.password.is_some()
        || query.contains_key("maxDownloads")
        || query.contains_key("password")
    {
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
    let started = Instant::now();
    // The slot must outlive the commit, or a concurrent upload could miss this
    // file in both counts. If the client goes away now, this handler is dropped,
    // so the commit and the release run in their own task.
    let finished = tokio::spawn(async move { sink.finish(entry).await }).await;
    HttpMetrics::add(
        &state.metrics.upload_finish_ns,
        started.elapsed().as_nanos() as u64,
    );
    const STORE_FAILED: &str = "failed to insert file into database";
    finished
        .map_err(|e| AppError::internal(STORE_FAILED, e))?
        .map_err(|e| AppError::store(STORE_FAILED, e))?;
    HttpMetrics::add(&state.metrics.uploads, 1);
    tracing::info!(entry_id = %entry_id, "stored guest upload");

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

    fn check_rejected(body: &str, message: &str) {
        let now = at("2030-01-01T00:00:00Z");
        match new_guest_link(body.as_bytes(), now) {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => assert_eq!(e, message, "{body}"),
        }
    }

    const VALID: &str = r#""urlExpirationTime": "2030-02-01T00:00:00Z", "fileLifetime": "24h0m0s""#;

    #[test]
    fn creation_requests_are_checked_in_the_original_order() {
        check_rejected("", "EOF");
        check_rejected("  \n", "EOF");
        check_rejected("{}", validate::EXPIRATION_FORMAT_ERROR);
        check_rejected(
            &format!(r#"{{"label": "{}", "fileLifetime": "x"}}"#, "a".repeat(201)),
            "label too long - limit 200 characters",
        );
        check_rejected(
            r#"{"urlExpirationTime": "2030-01-01T00:30:00Z"}"#,
            validate::EXPIRATION_TOO_SOON,
        );
        check_rejected(
            r#"{"urlExpirationTime": "2030-02-01T00:00:00Z", "fileLifetime": "1d"}"#,
            "unrecognized format for file life time, must be in 1ns, 1us (or 1µs), 1ms, 1s, 1m, 1h format",
        );
        check_rejected(
            r#"{"urlExpirationTime": "2030-02-01T00:00:00Z", "fileLifetime": "23h59m59s"}"#,
            "file lifetime must be at least 1 day",
        );
        check_rejected(
            &format!(r#"{{{VALID}, "maxFileBytes": 1048575}}"#),
            "guest upload size limit must be at at least 1048576 bytes",
        );
        check_rejected(
            &format!(r#"{{{VALID}, "maxFileUploads": 0}}"#),
            "guest upload count limit must be a positive number",
        );
        for bad in [
            r#""label": 5"#,
            r#""maxFileBytes": -5"#,
            r#""maxFileBytes": 1.5"#,
            r#""maxFileUploads": 2.5"#,
        ] {
            let now = at("2030-01-01T00:00:00Z");
            let body = format!(r#"{{{VALID}, {bad}}}"#);
            assert!(new_guest_link(body.as_bytes(), now).is_err(), "{body}");
        }
    }

    #[test]
    fn creation_request_defaults() {
        let now = at("2030-01-01T00:00:00Z");
        let link = new_guest_link(
            br#"{"label": null, "urlExpirationTime": "2999-12-31T00:00:00Z",
                 "fileLifetime": "876000h0m0s", "maxFileBytes": null, "maxFileUploads": null}
                trailing garbage is ignored"#,
            now,
        )
        .unwrap();
        assert_eq!(link.label, "");
        assert_eq!(link.url_expiration, None);
        assert!(link.file_lifetime.is_infinite());
        assert_eq!((link.max_file_bytes, link.max_file_uploads), (None, None));
        assert_eq!(link.creation_time, now);
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

    #[test]
    fn ids_are_rejected_with_the_original_wording() {
        let msg = |raw: &str| {
            let resp = parse_guest_link_id(raw).unwrap_err();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            format!("{resp:?}")
        };
        assert!(msg("abc").contains("guest link ID (abc) has invalid length: got 3, want 16"));
        assert!(msg("abcdefghijkmnop0").contains("contains invalid character: 0"));
    }
}
