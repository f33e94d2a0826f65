//! The owner's session and API tokens: who is calling.
//!
//! Unlike the original (whose cookie is a fixed function of the passphrase), a
//! login creates a random 256-bit session token. The database stores only its
//! SHA-256, logout deletes it, and sessions end after 30 days.
//!
//! As with the original, changing the passphrase ends every session: each
//! session is stored with the tag of the passphrase it was opened under
//! ([`passphrase_tag`]), only sessions of the current passphrase are valid,
//! and the server deletes the others when it starts. The owner can also list
//! the sessions and end any of them (`/sessions`, `api/sessions.rs`).
//!
//! The extractors [`Admin`] (a session) and [`Uploader`] (a session or an API
//! token) admit the callers of the owner's routes. A request that carries a
//! bearer token is judged by the token alone, on both: a bad token is
//! refused whatever else the request carries.

use argon2::Params;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::http::client::ClientView;
use crate::http::{AppError, AppState};
use crate::ids::SessionId;
use crate::store::model::sessions::NewSession;
use crate::store::{Store, StoreError};

/// Name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "ps_session";
/// Session lifetime.
pub(crate) const SESSION_DAYS: i64 = 30;

/// The SHA-256 of a secret, for constant-time comparison of equal-length values.
pub(crate) fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// SHA-256 of a session or API token, lower-case hex: what the database keeps.
pub(crate) fn token_hash(token: &str) -> String {
    crate::ids::hex(&Sha256::digest(token.as_bytes()))
}

/// Name of the server key that salts the passphrase's tag.
const TAG_SALT_KEY: &str = "session-passphrase-salt";

/// The tag of the passphrase `secret`, stored with each session: an argon2id
/// hash (7 MiB, 5 passes: of the equally strong settings commonly
/// recommended, the one with the least memory; fixed here so that a new
/// version of the crate does not change it) under a random salt the database
/// keeps. It tells the sessions of the current passphrase from others
/// without the database ever holding the passphrase, and costs a guesser who
/// copied the database an argon2id hash per guess. Computed once, at
/// start-up, in memory given back right after: with 19 MiB kept for reuse,
/// as the password checks keep theirs, an idle server held 34 MB instead of
/// 15 and the peak during a 5 GiB upload rose past 32 MiB (2026-12-05).
///
/// # Errors
/// The salt cannot be read from the store.
pub(crate) async fn passphrase_tag(store: &Store, secret: &str) -> Result<String, StoreError> {
    let salt = store.server_key(TAG_SALT_KEY).await?;
    let params = Params::new(7 * 1024, 5, 1, Some(32))
        .map_err(|e| StoreError::Hashing(format!("argon2 parameters: {e}")))?;
    let tag = super::hashing::raw(secret.to_owned(), salt, params)
        .await
        .map_err(|e| StoreError::Hashing(format!("the passphrase's tag: {e}")))?;
    Ok(crate::ids::hex(&tag))
}

/// Longest `User-Agent` kept with a session, in bytes.
const MAX_AGENT: usize = 512;

/// Opens a session for `client` (the passphrase was right): stores it and
/// returns the `Set-Cookie` value that hands out its token.
///
/// # Errors
/// Storage failures.
pub(crate) async fn open_session(
    state: &AppState,
    client: &ClientView,
    headers: &HeaderMap,
) -> Result<HeaderValue, AppError> {
    let token = crate::ids::random_hex(32);
    let now = state.clock.now();
    let mut agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if agent.len() > MAX_AGENT {
        let mut end = MAX_AGENT;
        while !agent.is_char_boundary(end) {
            end -= 1;
        }
        agent.truncate(end);
    }
    let id = state
        .store
        .create_session(NewSession {
            token_sha256: token_hash(&token),
            secret_tag: state.secret_tag.to_string(),
            created: now,
            expires: now + Duration::days(SESSION_DAYS),
            client_ip: client.ip.clone(),
            user_agent: agent,
        })
        .await
        .map_err(|e| AppError::store("failed to start a session", e))?;
    tracing::info!(session_id = %id, "logged in");
    let secure = client.secure_attribute();
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        SESSION_DAYS * 86400
    );
    HeaderValue::from_str(&cookie).map_err(|e| AppError::internal("bad cookie", e))
}

/// A `Set-Cookie` value that deletes the session cookie.
pub(crate) fn clearing_cookie() -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    ))
    .expect("static cookie is a valid header value")
}

/// The session token from the request's cookies, if any.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether the request carries a session cookie (valid or not), which is what
/// a forged cross-site request would borrow.
pub(crate) fn has_session_cookie(headers: &HeaderMap) -> bool {
    session_token(headers).is_some()
}

/// The ID of the request's valid admin session, if it carries one.
pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionId>, AppError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    state
        .store
        .session_id(
            token_hash(&token),
            state.secret_tag.to_string(),
            state.clock.now(),
        )
        .await
        .map_err(|e| AppError::store("failed to check the session", e))
}

/// Whether the request carries a valid admin session.
pub(crate) async fn is_admin(state: &AppState, headers: &HeaderMap) -> Result<bool, AppError> {
    Ok(current_session(state, headers).await?.is_some())
}

/// Extractor that admits only requests with a valid admin session (its ID
/// inside); any other request gets `401 Authentication required`. A request
/// with a bearer token is judged by the token alone, whatever session comes
/// with it: an API token is refused here with a message that says what
/// tokens are for (they only upload, see [`Uploader`]), and a bad one is a
/// 401.
pub(crate) struct Admin(pub(crate) SessionId);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(token) = bearer_token(&parts.headers) {
            return match api_token(state, token).await? {
                Some(_) => Err(AppError::bearer(
                    StatusCode::FORBIDDEN,
                    "API tokens can only upload files (POST /api/entry, PUT /api/upload/{filename}, \
                     /api/tus). Log in with the passphrase for everything else.",
                )),
                None => Err(invalid_token()),
            };
        }
        match current_session(state, &parts.headers).await? {
            Some(id) => Ok(Admin(id)),
            None => Err(AppError::unauthorized()),
        }
    }
}

/// Who may upload as the owner: a logged-in browser, or a script with an API
/// token (`Authorization: Bearer <token>`). A request with a bearer token is
/// judged by the token alone: an unknown or revoked one is a 401 even if a
/// session cookie comes along.
pub(crate) enum Uploader {
    /// A valid admin session.
    Session,
    /// A valid API token.
    Token,
}

impl Uploader {
    /// Whether the request came with an API token (a script rather than the web UI).
    pub(crate) fn is_token(&self) -> bool {
        matches!(self, Uploader::Token)
    }
}

impl FromRequestParts<AppState> for Uploader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(token) = bearer_token(&parts.headers) {
            return match api_token(state, token).await? {
                Some(_) => Ok(Uploader::Token),
                None => Err(invalid_token()),
            };
        }
        if is_admin(state, &parts.headers).await? {
            Ok(Uploader::Session)
        } else {
            Err(AppError::unauthorized())
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive), if the request has one. Other schemes are ignored.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// 401 for a bearer token that is not (or no longer) valid.
fn invalid_token() -> AppError {
    AppError::bearer(
        StatusCode::UNAUTHORIZED,
        "Invalid API token: it is unknown or has been revoked. Create a new one on the \
         Tokens page (/tokens).",
    )
}

/// Longest token worth looking up (ours are much shorter).
const MAX_TOKEN_LEN: usize = 256;

/// The ID of the valid API token `token`, recording its use; `None` if there
/// is no such token. Only the token's SHA-256 is looked up: the hash of a
/// random 256-bit value gives nothing away, so the lookup need not be
/// constant-time.
async fn api_token(
    state: &AppState,
    token: &str,
) -> Result<Option<crate::ids::ApiTokenId>, AppError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let found = state
        .store
        .api_token_by_hash(token_hash(token))
        .await
        .map_err(|e| AppError::store("failed to check the API token", e))?;
    let Some(found) = found else {
        return Ok(None);
    };
    let now = state.clock.now();
    // At most one write per token and second, however many requests it makes.
    let stamp = crate::validate::db_time(now);
    if found.last_used.map(crate::validate::db_time) != Some(stamp) {
        state.store.touch_api_token(&found.id, now);
    }
    Ok(Some(found.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        assert_eq!(bearer_token(&with("Bearer pst_abc")), Some("pst_abc"));
        assert_eq!(bearer_token(&with("bearer  pst_abc ")), Some("pst_abc"));
        assert_eq!(bearer_token(&with("Bearer")), Some(""));
        assert_eq!(bearer_token(&with("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ps_session=abc; b=2"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("ps_session="));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn token_hash_is_hex_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
