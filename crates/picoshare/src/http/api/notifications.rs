//! Notification destinations (owner's session only):
//! `GET`/`POST /api/notifications`, `PUT`/`DELETE /api/notifications/{id}`,
//! `POST /api/notifications/{id}/test`.
//!
//! A destination is a generic webhook (signed JSON), a push topic URL in
//! the style of ntfy (plain text), or e-mail addresses (`to`; plain text
//! through the server's SMTP server, which must be configured); see
//! `store/model/hooks/`. Its secret is shown once, in the reply that
//! creates it (generated when none is given for a webhook), and kept when
//! an update leaves it out, unless the update changes the destination's
//! kind, or a push topic's scheme, host or port (then a push has no token
//! and a webhook must be given a secret). An e-mail destination has no secret; its
//! addresses are stored as a `mailto:` URL, which the API shows as `url`
//! beside `to`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::http::auth::session::Admin;
use crate::http::error::{JsonBody, Path};
use crate::http::{json_reply, AppError, AppState};
use crate::ids::EntryId;
use crate::store::model::hooks::{
    mailto, recipients, Destination, DestinationKind, DestinationSpec, EventType, EVENT_TYPES,
};
use crate::validate::db_time;

/// Destinations at most.
const MAX_DESTINATIONS: usize = 20;
/// Longest name.
const MAX_NAME_CHARS: usize = 100;
/// Longest URL.
const MAX_URL_BYTES: usize = 2_000;
/// Longest secret.
const MAX_SECRET_BYTES: usize = 256;
/// Files a destination may be limited to at most.
const MAX_ENTRY_IDS: usize = 1_000;
/// Recipients of an e-mail destination at most.
const MAX_RECIPIENTS: usize = 10;
/// Longest e-mail address (RFC 5321's limit on a path).
const MAX_ADDRESS_BYTES: usize = 254;

/// The event types a destination may choose (the test event is sent on
/// demand, not subscribed to).
fn subscribable() -> impl Iterator<Item = EventType> {
    EVENT_TYPES.into_iter().filter(|t| *t != EventType::Test)
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(db_time(t)))
}

/// A destination as the API shows it (never its secret).
pub(crate) fn destination_json(d: &Destination) -> Value {
    let mut value = json!({
        "id": d.id,
        "name": d.spec.name,
        "kind": d.spec.kind.as_str(),
        "url": d.spec.url,
        "hasSecret": !d.spec.secret.is_empty(),
        "events": d.spec.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "firstDownloadOnly": d.spec.first_download_only,
        "entryIds": d.spec.entry_ids,
        "enabled": d.spec.enabled,
        "created": db_time(d.created),
        "state": {
            "lastSuccess": time(d.last_success),
            "lastError": d.last_error.as_ref().map(|(e, _)| e.clone()),
            "lastErrorTime": time(d.last_error.as_ref().map(|(_, t)| *t)),
            "queued": d.queued,
        },
    });
    if d.spec.kind == DestinationKind::Email {
        value["to"] = json!(recipients(&d.spec.url));
    }
    value
}

/// The body of a create or an update.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    name: Option<String>,
    kind: Option<String>,
    url: Option<String>,
    to: Option<Vec<String>>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    first_download_only: Option<bool>,
    entry_ids: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// One recipient of an e-mail destination, checked: a plain address
/// (`name@example.com`, no display name), without the characters that a
/// `mailto:` URL would have to escape.
fn address(raw: &str) -> Result<String, String> {
    let a = raw.trim();
    if a.is_empty() {
        return Err("an e-mail address is empty".into());
    }
    if a.len() > MAX_ADDRESS_BYTES {
        return Err(format!(
            "the e-mail address {a:?} is too long: at most {MAX_ADDRESS_BYTES} bytes"
        ));
    }
    if a.contains([',', '?', '#', '%', '<', '>', '"', '(', ')', '\\'])
        || a.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{a:?} is not a plain e-mail address (name@example.com, one per entry of \"to\")"
        ));
    }
    a.parse::<lettre::Address>()
        .map_err(|e| format!("{a:?} is not an e-mail address: {e}"))?;
    Ok(a.to_owned())
}

/// The recipients of an e-mail destination, from `to` or a `mailto:` URL.
fn email_url(to: Option<Vec<String>>, url: &str) -> Result<String, String> {
    let from_url =
        |url: &str| -> Vec<String> { recipients(url).into_iter().map(str::to_owned).collect() };
    let list = match to {
        Some(list) => {
            if !url.is_empty() && url != mailto(&list) {
                return Err(
                    "give an e-mail destination's addresses once: in \"to\", or as a mailto: \"url\""
                        .into(),
                );
            }
            list
        }
        None if url.starts_with("mailto:") => from_url(url),
        None if url.is_empty() => Vec::new(),
        None => {
            return Err(
                "an e-mail destination takes its addresses in \"to\" (a list), not a URL".into(),
            )
        }
    };
    if list.is_empty() {
        return Err(
            "an e-mail destination needs at least one address in \"to\" (e.g. [\"me@example.com\"])"
                .into(),
        );
    }
    if list.len() > MAX_RECIPIENTS {
        return Err(format!(
            "an e-mail destination takes at most {MAX_RECIPIENTS} addresses"
        ));
    }
    let mut checked: Vec<String> = Vec::new();
    for a in &list {
        let a = address(a)?;
        if !checked.iter().any(|c| c.eq_ignore_ascii_case(&a)) {
            checked.push(a);
        }
    }
    Ok(mailto(&checked))
}

/// Checks a request; `secret` is `None` when it gave none. `smtp`: whether
/// the server has an SMTP server (without one, e-mail is refused).
fn spec_of(req: Request, smtp: bool) -> Result<(DestinationSpec, Option<String>), String> {
    let name = req.name.as_deref().unwrap_or("").trim().to_owned();
    if name.is_empty() {
        return Err("a destination needs a name (e.g. \"phone\" or \"CI webhook\")".into());
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "the name must be at most {MAX_NAME_CHARS} characters, without control characters"
        ));
    }
    let kind_text = req.kind.as_deref().unwrap_or("webhook");
    let kind = DestinationKind::parse(kind_text).ok_or_else(|| {
        format!("kind must be \"webhook\", \"ntfy\" or \"email\", not {kind_text:?}")
    })?;
    let url = req.url.as_deref().unwrap_or("").trim().to_owned();
    let url = if kind == DestinationKind::Email {
        if !smtp {
            return Err(
                "e-mail needs an SMTP server, and this server has none: its owner sets \
                 PS_SMTP_HOST and PS_SMTP_FROM (see the README's Notifications section)"
                    .into(),
            );
        }
        if req.secret.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err("an e-mail destination has no secret".into());
        }
        email_url(req.to, &url)?
    } else {
        if req.to.is_some() {
            return Err(format!(
                "only an e-mail destination takes \"to\"; a {} destination takes a \"url\"",
                kind.as_str()
            ));
        }
        if url.is_empty() {
            return Err("a destination needs a URL to send events to".into());
        }
        if url.len() > MAX_URL_BYTES {
            return Err(format!(
                "the URL is too long: at most {MAX_URL_BYTES} bytes"
            ));
        }
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("the URL is not valid: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("the URL must start with http:// or https:// and name a host".into());
        }
        url
    };
    let secret = match req.secret {
        Some(s) if !s.is_empty() => {
            if s.len() > MAX_SECRET_BYTES || !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "the secret must be at most {MAX_SECRET_BYTES} printable ASCII characters, without spaces"
                ));
            }
            Some(s)
        }
        _ => None,
    };
    let events = match req.events {
        None => subscribable().collect(),
        Some(list) => {
            let mut events = Vec::new();
            for e in list {
                match EventType::parse(&e).filter(|t| *t != EventType::Test) {
                    Some(t) if !events.contains(&t) => events.push(t),
                    Some(_) => {}
                    None => {
                        let known: Vec<&str> = subscribable().map(EventType::as_str).collect();
                        return Err(format!(
                            "unknown event type {e:?}; the types are {}",
                            known.join(", ")
                        ));
                    }
                }
            }
            events
        }
    };
    let entry_ids = match req.entry_ids {
        None => None,
        Some(ids) if ids.is_empty() => None,
        Some(ids) => {
            if ids.len() > MAX_ENTRY_IDS {
                return Err(format!("at most {MAX_ENTRY_IDS} files may be chosen"));
            }
            for id in &ids {
                EntryId::parse(id).map_err(|_| format!("{id:?} is not a file ID"))?;
            }
            Some(ids)
        }
    };
    Ok((
        DestinationSpec {
            name,
            kind,
            url,
            secret: String::new(),
            events,
            first_download_only: req.first_download_only.unwrap_or(false),
            entry_ids,
            enabled: req.enabled.unwrap_or(true),
        },
        secret,
    ))
}

fn parse_body(
    state: &AppState,
    body: &[u8],
) -> Result<(DestinationSpec, Option<String>), AppError> {
    let req: Request = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("Invalid request: malformed JSON: {e}")))?;
    spec_of(req, state.config.smtp.is_some())
        .map_err(|e| AppError::bad_request(format!("Invalid request: {e}")))
}

/// A destination ID from a path (16 hex digits).
fn destination_id(raw: &str) -> Result<String, AppError> {
    if raw.len() == 16 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(AppError::bad_request(format!(
            "Invalid destination ID: {raw:?}"
        )))
    }
}

/// `GET /api/notifications`: the destinations with their delivery state,
/// the event types, and how many events a full outbox dropped.
pub(crate) async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let dests = state
        .store
        .hook_destinations()
        .await
        .map_err(|e| AppError::store("failed to read the notification destinations", e))?;
    Ok(json_reply(&json!({
        "destinations": dests.iter().map(destination_json).collect::<Vec<_>>(),
        "eventTypes": subscribable()
            .map(|t| json!({"type": t.as_str(), "title": t.title()}))
            .collect::<Vec<_>>(),
        "dropped": crate::store::sqlite::hooks::dropped(),
    })))
}

/// `POST /api/notifications`: adds a destination (201). The reply holds
/// its `secret`, the only time it is shown.
pub(crate) async fn create(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let (mut spec, secret) = parse_body(&state, &body)?;
    spec.secret = match (secret, spec.kind) {
        (Some(s), _) => s,
        (None, DestinationKind::Webhook) => crate::ids::random_hex(32),
        (None, DestinationKind::Ntfy | DestinationKind::Email) => String::new(),
    };
    let failed = |e| AppError::store("failed to save the notification destination", e);
    let existing = state.store.hook_destinations().await.map_err(failed)?;
    if existing.len() >= MAX_DESTINATIONS {
        return Err(AppError::bad_request(format!(
            "There are already {MAX_DESTINATIONS} destinations, the most there may be; delete one first."
        )));
    }
    let secret = spec.secret.clone();
    let id = state
        .store
        .create_hook_destination(spec, state.clock.now())
        .await
        .map_err(failed)?;
    tracing::info!(destination = %id, "added a notification destination");
    let dests = state.store.hook_destinations().await.map_err(failed)?;
    let Some(d) = dests.iter().find(|d| d.id == id) else {
        return Err(AppError::not_found("The destination was deleted meanwhile"));
    };
    let mut value = destination_json(d);
    value["secret"] = Value::String(secret);
    let mut resp = json_reply(&value);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// Whether two destination URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// `PUT /api/notifications/{id}`: changes a destination (its secret only
/// if the request gives one; see `keeps_old` for when a left-out secret is
/// kept).
pub(crate) async fn update(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let id = destination_id(&raw_id)?;
    let (mut spec, secret) = parse_body(&state, &body)?;
    let failed = |e| AppError::store("failed to save the notification destination", e);
    let dests = state.store.hook_destinations().await.map_err(failed)?;
    let Some(old) = dests.iter().find(|d| d.id == id) else {
        return Err(AppError::not_found(format!(
            "No destination with ID {raw_id}"
        )));
    };
    // The secret left out is kept only where it goes on meaning the same:
    // the same kind of destination and, for a push topic, whose token is
    // sent along with every event, the same origin. An edit never turns a
    // webhook's signing key into a token sent in the clear, nor sends a
    // token to a host it was not given for.
    let keeps_old = old.spec.kind == spec.kind
        && (spec.kind != DestinationKind::Ntfy || same_origin(&old.spec.url, &spec.url));
    spec.secret = match spec.kind {
        // A webhook or push that becomes e-mail keeps no secret.
        DestinationKind::Email => String::new(),
        _ => secret.unwrap_or_else(|| {
            if keeps_old {
                old.spec.secret.clone()
            } else {
                String::new()
            }
        }),
    };
    if spec.kind == DestinationKind::Webhook && spec.secret.is_empty() {
        // (An e-mail or push destination without one that becomes a webhook.)
        return Err(AppError::bad_request(
            "Invalid request: a webhook needs a secret to sign its events with; give one in \"secret\"",
        ));
    }
    if !state
        .store
        .update_hook_destination(id.clone(), spec)
        .await
        .map_err(failed)?
    {
        return Err(AppError::not_found(format!(
            "No destination with ID {raw_id}"
        )));
    }
    let dests = state.store.hook_destinations().await.map_err(failed)?;
    let Some(d) = dests.iter().find(|d| d.id == id) else {
        return Err(AppError::not_found(format!(
            "No destination with ID {raw_id}"
        )));
    };
    Ok(json_reply(&destination_json(d)))
}

/// `DELETE /api/notifications/{id}`: deletes a destination and the events
/// still queued for it (204).
pub(crate) async fn delete(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = destination_id(&raw_id)?;
    let found = state
        .store
        .delete_hook_destination(id.clone())
        .await
        .map_err(|e| AppError::store("failed to delete the notification destination", e))?;
    if !found {
        return Err(AppError::not_found(format!(
            "No destination with ID {raw_id}"
        )));
    }
    tracing::info!(destination = %id, "deleted a notification destination");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/notifications/{id}/test`: queues a test event for the
/// destination, enabled or not (202, with its `eventId`); its delivery
/// shows in the destination's state.
pub(crate) async fn test(
    _admin: Admin,
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = destination_id(&raw_id)?;
    let event = state
        .store
        .send_hook_test(id)
        .await
        .map_err(|e| AppError::store("failed to queue the test event", e))?;
    let Some(event) = event else {
        return Err(AppError::not_found(format!(
            "No destination with ID {raw_id}"
        )));
    };
    let mut resp = json_reply(&json!({ "eventId": event }));
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Result<(DestinationSpec, Option<String>), String> {
        spec_of(serde_json::from_value(v).unwrap(), true)
    }

    #[test]
    fn requests_are_checked() {
        let (spec, secret) =
            req(json!({"name": " hook ", "url": "https://example.com/h"})).unwrap();
        assert_eq!(spec.name, "hook");
        assert_eq!(spec.kind, DestinationKind::Webhook);
        assert_eq!(spec.events.len(), 5);
        assert!(secret.is_none());
        assert!(req(json!({"name": "", "url": "https://e/"})).is_err());
        assert!(req(json!({"name": "a", "url": "ftp://e/"})).is_err());
        assert!(req(json!({"name": "a", "url": "not a url"})).is_err());
        assert!(req(json!({"name": "a", "url": "http://e/", "kind": "mail"})).is_err());
        assert!(req(json!({"name": "a", "url": "http://e/", "events": ["nope"]})).is_err());
        assert!(req(json!({"name": "a", "url": "http://e/", "events": ["test"]})).is_err());
        assert!(req(json!({"name": "a", "url": "http://e/", "secret": "a b"})).is_err());
        assert!(req(json!({"name": "a", "url": "http://e/", "entryIds": ["x"]})).is_err());
        let (spec, _) = req(json!({"name": "a", "url": "http://e/",
            "events": ["download", "download"], "entryIds": ["abcdefghij"],
            "firstDownloadOnly": true}))
        .unwrap();
        assert_eq!(spec.events, vec![EventType::Download]);
        assert_eq!(spec.entry_ids, Some(vec!["abcdefghij".to_owned()]));
        assert!(spec.first_download_only);
    }

    #[test]
    fn email_destinations_are_checked() {
        let (spec, secret) = req(json!({"name": "me", "kind": "email",
            "to": [" a@example.com", "b@example.org", "A@example.com"]}))
        .unwrap();
        assert_eq!(spec.kind, DestinationKind::Email);
        assert_eq!(spec.url, "mailto:a@example.com,b@example.org");
        assert!(secret.is_none());
        // What the API lists (url and to) comes back unchanged.
        let (again, _) = req(json!({"name": "me", "kind": "email",
            "url": spec.url, "to": ["a@example.com", "b@example.org"]}))
        .unwrap();
        assert_eq!(again.url, spec.url);
        let (from_url, _) = req(json!({"name": "me", "kind": "email",
            "url": "mailto:c@example.com"}))
        .unwrap();
        assert_eq!(from_url.url, "mailto:c@example.com");
        for (body, message) in [
            (
                json!({"name": "m", "kind": "email"}),
                "at least one address",
            ),
            (
                json!({"name": "m", "kind": "email", "to": []}),
                "at least one address",
            ),
            (
                json!({"name": "m", "kind": "email", "to": ["nobody"]}),
                "is not an e-mail address",
            ),
            (
                json!({"name": "m", "kind": "email", "to": ["a,b@example.com"]}),
                "not a plain e-mail address",
            ),
            (
                json!({"name": "m", "kind": "email", "to": ["Me <me@example.com>"]}),
                "not a plain e-mail address",
            ),
            (
                json!({"name": "m", "kind": "email", "url": "https://x/"}),
                "not a URL",
            ),
            (
                json!({"name": "m", "kind": "email", "to": ["a@example.com"], "url": "mailto:b@example.com"}),
                "once",
            ),
            (
                json!({"name": "m", "kind": "email", "to": ["a@example.com"], "secret": "s"}),
                "no secret",
            ),
            (
                json!({"name": "m", "kind": "email", "to": vec!["a@example.com"; 11]}),
                "at most 10",
            ),
            (
                json!({"name": "m", "url": "https://x/", "to": ["a@example.com"]}),
                "only an e-mail destination",
            ),
        ] {
            let err = req(body.clone()).unwrap_err();
            assert!(err.contains(message), "{body}: {err}");
        }
        let err = spec_of(
            serde_json::from_value(json!({"name": "m", "kind": "email", "to": ["a@example.com"]}))
                .unwrap(),
            false,
        )
        .unwrap_err();
        assert!(err.contains("needs an SMTP server"), "{err}");
    }
}
