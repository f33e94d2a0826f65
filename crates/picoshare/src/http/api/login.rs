//! `POST /api/auth` and `DELETE /api/auth`: login with the passphrase, and
//! logout. Sessions themselves are in [`crate::http::auth::session`].

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::http::auth::login_limit::ClientKey;
use crate::http::auth::session::{
    clearing_cookie, open_session, secret_digest, session_token, token_hash,
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
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    limited(&state, &client, || {
        start_session(&state, &client, &headers, &body)
    })
    .await
}

/// Runs a login attempt under the limit on wrong passphrases: 429 while the
/// client is blocked; the attempt holds its place in the count before the
/// passphrase is compared (waiting while attempts in flight hold every
/// place), a wrong one then counts and a right one clears the client's count.
pub(crate) async fn limited<F>(
    state: &AppState,
    client: &ClientView,
    attempt: impl FnOnce() -> F,
) -> Result<Response, AppError>
where
    F: std::future::Future<Output = Result<Response, AppError>>,
{
    let key = ClientKey::of(client.limit_ip);
    if let Err(wait) = state.login_limiter.begin(&key).await {
        return Err(AppError::too_many(
            "Too many wrong passphrases from your address.",
            wait,
        ));
    }
    let result = attempt().await;
    match &result {
        Ok(_) => state.login_limiter.succeeded(&key),
        // A malformed request or a failure of the server is no guess.
        Err(e) if e.status() != StatusCode::UNAUTHORIZED => state.login_limiter.refund(&key),
        Err(_) => state.login_limiter.wrong(&key, std::time::Instant::now()),
    }
    result
}

/// Checks the passphrase and starts a session: the reply that sets its cookie.
async fn start_session(
    state: &AppState,
    client: &ClientView,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AppError> {
    // Like the original, read only the first JSON value and ignore what follows.
    let req: LoginRequest = serde_json::Deserializer::from_slice(body)
        .into_iter::<LoginRequest>()
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| AppError::bad_request("malformed request"))?;
    check_passphrase(state, &req.shared_secret_key.unwrap_or_default())?;
    let cookie = open_session(state, client, headers).await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// Compares `key` with the passphrase, in constant time: 400 `invalid shared
/// secret` when empty, 401 `incorrect shared secret` when wrong (the
/// original's messages).
///
/// # Errors
/// The refusal.
pub(crate) fn check_passphrase(state: &AppState, key: &str) -> Result<(), AppError> {
    if key.is_empty() {
        return Err(AppError::bad_request("invalid shared secret"));
    }
    if !bool::from(secret_digest(key).ct_eq(&state.secret_digest)) {
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "incorrect shared secret",
        ));
    }
    Ok(())
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
