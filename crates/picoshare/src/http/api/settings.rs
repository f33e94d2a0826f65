//! `GET` and `PUT /api/settings`: the default lifetime of new uploads.
//!
//! The JSON shape and the error texts are the original's:
//! `{"defaultExpirationDays": uint16, "defaultNeverExpire": bool}`. `GET` is new
//! (the original renders the settings into its page instead); it returns the
//! same shape, so a client can send back what it read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::http::auth::session::Admin;
use crate::http::error::JsonBody;
use crate::http::{json_reply, AppError};
use crate::store::model::{DefaultLifetime, Settings, DEFAULT_LIFETIME_DAYS};
use crate::store::Store;

/// The settings as the API reads and writes them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsJson {
    /// Missing and `null` both mean 0, as when Go decodes into a `uint16`; a
    /// negative, fractional or too large number is a decode error.
    #[serde(default)]
    default_expiration_days: Option<u16>,
    #[serde(default)]
    default_never_expire: Option<bool>,
}

/// `GET /api/settings`. With "never expire", `defaultExpirationDays` is 30: the
/// value the original's settings form shows (disabled) in that case, and a
/// valid finite value should the admin untick "Store files forever".
pub(crate) async fn get_settings(
    _admin: Admin,
    State(store): State<Store>,
) -> Result<Response, AppError> {
    let settings = store
        .settings()
        .await
        .map_err(|e| AppError::store("failed to read settings from database", e))?;
    let (days, never) = match settings.default_lifetime {
        DefaultLifetime::Days(d) => (d, false),
        DefaultLifetime::Never => (DEFAULT_LIFETIME_DAYS, true),
    };
    Ok(json_reply(&serde_json::json!({
        "defaultExpirationDays": days,
        "defaultNeverExpire": never,
    })))
}

/// `PUT /api/settings`: "never expire" wins over any number of days; otherwise
/// the days must be between 1 and 3650. Replies 200 with an empty body.
pub(crate) async fn put_settings(
    _admin: Admin,
    State(store): State<Store>,
    JsonBody(body): JsonBody,
) -> Result<Response, AppError> {
    let invalid = |e: String| AppError::bad_request(format!("Invalid request: {e}"));
    // Like the original's decoder: the first JSON value counts, the rest is
    // ignored, and an empty body is `EOF`. `null` decodes to all zeroes, but
    // an array is refused (serde would otherwise read it field by field).
    let value: serde_json::Value = serde_json::Deserializer::from_slice(&body)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap_or_else(|| Err(serde::de::Error::custom("EOF")))
        .map_err(|e| invalid(e.to_string()))?;
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        serde_json::Value::Object(_) => value,
        _ => return Err(invalid("the settings must be a JSON object".into())),
    };
    let req: SettingsJson = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let default_lifetime = if req.default_never_expire.unwrap_or(false) {
        DefaultLifetime::Never
    } else {
        DefaultLifetime::from_days(req.default_expiration_days.unwrap_or(0)).map_err(invalid)?
    };
    store
        .update_settings(Settings { default_lifetime })
        .await
        .map_err(|e| AppError::store("Failed to save settings", e))?;
    Ok(StatusCode::OK.into_response())
}
