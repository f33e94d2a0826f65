//! API tokens for uploads from scripts: `GET`/`POST /api/tokens`,
//! `DELETE /api/tokens/{id}` (owner's session only).
//!
//! A token is `pst_` followed by 64 hex digits (256 random bits). It is shown
//! once, in the reply that creates it; the database keeps only its SHA-256 and
//! its first [`PREFIX_LEN`] characters, which name it in the list. What a token
//! may do is decided by the extractors in [`crate::http::auth::session`]: upload, nothing else.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::auth::session::{token_hash, Admin};
use crate::http::error::{JsonBody, Path};
use crate::http::{json_reply, AppError, AppState};
use crate::ids::ApiTokenId;
use crate::store::model::{ApiToken, NewApiToken};
use crate::store::Store;
use crate::validate::db_time;

/// What every token starts with, so that it is recognisable (in a script, or
/// by a secret scanner).
const TOKEN_PREFIX: &str = "pst_";
/// How many leading characters of a token the list shows (`pst_` and 8 hex
/// digits: 32 of the 256 random bits).
const PREFIX_LEN: usize = 12;
/// Longest token name.
const MAX_NAME_CHARS: usize = 100;

/// A new random token.
fn generate_token() -> String {
    format!("{TOKEN_PREFIX}{}", crate::ids::random_hex(32))
}

/// Checks a token name: 1 to 100 characters once trimmed, no control characters.
fn token_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(
            "a token needs a name (what will use it, e.g. \"laptop\" or \"ShareX\")".into(),
        );
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the name is too long: at most {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the name cannot contain control characters".into());
    }
    Ok(name.to_owned())
}

fn token_json(t: &ApiToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id.as_str(),
        "name": t.name,
        "prefix": t.prefix,
        "created": db_time(t.created),
        "lastUsed": t.last_used.map(db_time),
    })
}

/// `GET /api/tokens`: every token, newest first, without secrets.
pub(crate) async fn list_tokens(
    _admin: Admin,
    State(store): State<Store>,
) -> Result<Response, AppError> {
    let tokens = store
        .api_tokens()
        .await
        .map_err(|e| AppError::store("failed to read the API tokens", e))?;
    Ok(json_reply(&serde_json::Value::Array(
        tokens.iter().map(token_json).collect(),
    )))
}

#[derive(serde::Deserialize)]
struct CreateRequest {
    name: Option<String>,
}

/// `POST /api/tokens` with `{"name": "…"}`: creates a token. The reply is the
/// only place the token ever appears (`token`).
pub(crate) async fn create_token(
    _admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let req: CreateRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::bad_request(format!("Invalid request: malformed JSON: {e}")))?;
    let name = token_name(req.name.as_deref().unwrap_or(""))
        .map_err(|e| AppError::bad_request(format!("Invalid request: {e}")))?;
    let token = generate_token();
    let new = NewApiToken {
        name,
        token_sha256: token_hash(&token),
        prefix: token[..PREFIX_LEN].to_owned(),
        created: state.clock.now(),
    };
    let created = state
        .store
        .create_api_token(new)
        .await
        .map_err(|e| AppError::store("failed to save the API token", e))?;
    tracing::info!(token_id = %created.id, "created an API token");
    let mut value = token_json(&created);
    value["token"] = serde_json::Value::String(token);
    Ok(json_reply(&value))
}

/// `DELETE /api/tokens/{id}`: revokes a token at once (204), 404 if unknown.
pub(crate) async fn delete_token(
    _admin: Admin,
    State(store): State<Store>,
    Path(raw_id): Path<String>,
) -> Result<Response, AppError> {
    let id = ApiTokenId::parse(&raw_id)
        .map_err(|_| AppError::bad_request(format!("Invalid API token ID: {raw_id:?}")))?;
    let found = store
        .delete_api_token(&id)
        .await
        .map_err(|e| AppError::store("failed to revoke the API token", e))?;
    if !found {
        return Err(AppError::not_found(format!(
            "No API token with ID {raw_id}"
        )));
    }
    tracing::info!(token_id = %id, "revoked an API token");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_recognisable() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert!(a[TOKEN_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(token_name("  laptop ").unwrap(), "laptop");
        assert!(token_name("   ").is_err());
        assert!(token_name(&"x".repeat(101)).is_err());
        assert!(token_name(&"é".repeat(100)).is_ok());
        assert!(token_name("a\u{7}b").is_err());
    }
}
