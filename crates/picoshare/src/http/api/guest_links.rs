//! Guest links: the owner's routes to create, delete, enable and disable them
//! (`/api/guest-links…`). The public upload routes they open are in
//! [`crate::http::uploads::guest`] and [`crate::http::uploads::tus`].
//!
//! Requests, replies and error texts are the original's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::http::auth::session::Admin;
use crate::http::error::{JsonBody, Path};
use crate::http::params::parse_guest_link_id;
use crate::http::uploads::guest::never;
use crate::http::{json_reply, AppError, AppState};
use crate::store::model::{GuestFileLifetime, NewGuestLink};
use crate::store::Store;
use crate::validate;

/// Longest label, in bytes.
const MAX_LABEL_BYTES: usize = 200;
/// Smallest `maxFileBytes` a link may have (1 MiB).
const MIN_MAX_FILE_BYTES: u64 = 1 << 20;

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
pub(crate) async fn create_guest_link(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let link = new_guest_link(&body, state.clock.now())
        .map_err(|e| AppError::bad_request(format!("Invalid request: {e}")))?;
    let id = state
        .store
        .create_guest_link(link)
        .await
        .map_err(|e| AppError::store("Failed to save guest link", e))?;
    Ok(json_reply(&serde_json::json!({ "id": id.as_str() })))
}

/// `DELETE /api/guest-links/{id}`: removes the link; files uploaded through it
/// stay. Succeeds also when the link does not exist.
pub(crate) async fn delete_guest_link(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = parse_guest_link_id(&raw_id)?;
    store
        .delete_guest_link(&id)
        .await
        .map_err(|e| AppError::store("Failed to delete guest link", e))?;
    Ok(StatusCode::OK.into_response())
}

/// `PUT /api/guest-links/{id}/enable`.
pub(crate) async fn enable_guest_link(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    set_disabled(&store, &raw_id, false).await
}

/// `PUT /api/guest-links/{id}/disable`.
pub(crate) async fn disable_guest_link(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    set_disabled(&store, &raw_id, true).await
}

/// Switches a link off or on: 204 (also when it already was), 404 if unknown.
async fn set_disabled(store: &Store, raw_id: &str, disabled: bool) -> Result<Response, AppError> {
    let id = parse_guest_link_id(raw_id)?;
    let found = store
        .set_guest_link_disabled(&id, disabled)
        .await
        .map_err(|e| AppError::store("Failed to change guest link enabled state", e))?;
    if !found {
        return Err(AppError::not_found(format!(
            "Guest link with ID {raw_id} not found: Could not find guest link with ID {raw_id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
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
}
