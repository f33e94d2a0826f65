//! `POST /api/auth` and `DELETE /api/auth`: login with the passphrase, and
//! logout. Sessions themselves are in [`crate::http::auth::session`].

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use subtle::ConstantTimeEq;

use crate::http::auth::session::{
    clearing_cookie, secret_digest, session_token, token_hash, COOKIE_NAME, SESSION_DAYS,
};
use crate::http::client::ClientView;
use crate::http::error::JsonBody;
use crate::http::{AppError, AppState};
use crate::store::Store;

#[derive(serde::Deserialize)]
struct LoginRequest {
    #[serde(rename = "sharedSecretKey")]
    shared_secret_key: Option<String>,
}

/// `POST /api/auth`: checks the passphrase and starts a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientView,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let addr = &client.ip;
    let now = std::time::Instant::now();
    if let Some(wait) = state.login_limiter.blocked(addr, now) {
        return Err(AppError::too_many(
            "Too many wrong passphrases from your address.",
            wait,
        ));
    }
    let result = start_session(&state, &client, &body).await;
    match &result {
        Ok(_) => state.login_limiter.succeeded(addr),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => state.login_limiter.failed(addr, now),
        Err(_) => {}
    }
    result
}

/// Checks the passphrase and starts a session: the reply that sets its cookie.
async fn start_session(
    state: &AppState,
    client: &ClientView,
    body: &[u8],
) -> Result<Response, AppError> {
    // Like the original, read only the first JSON value and ignore what follows.
    let req: LoginRequest = serde_json::Deserializer::from_slice(body)
        .into_iter::<LoginRequest>()
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| AppError::bad_request("malformed request"))?;
    let key = req.shared_secret_key.unwrap_or_default();
    if key.is_empty() {
        return Err(AppError::bad_request("invalid shared secret"));
    }
    if !bool::from(secret_digest(&key).ct_eq(&state.secret_digest)) {
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "incorrect shared secret",
        ));
    }
    let token = crate::ids::random_hex(32);
    let now = state.clock.now();
    state
        .store
        .create_session(token_hash(&token), now, now + Duration::days(SESSION_DAYS))
        .await
        .map_err(|e| AppError::store("failed to start a session", e))?;
    let secure = client.secure_attribute();
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        SESSION_DAYS * 86400
    );
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::internal("bad cookie", e))?,
    );
    Ok(resp)
}

/// `DELETE /api/auth`: revokes the session (if any) and clears the cookie.
pub(crate) async fn logout(
    State(store): State<Store>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers) {
        store
            .delete_session(token_hash(&token))
            .await
            .map_err(|e| AppError::store("failed to end the session", e))?;
    }
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clearing_cookie());
    Ok(resp)
}
