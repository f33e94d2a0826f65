//! The one error type of the HTTP layer and how it becomes a response.
//!
//! Client errors carry a message a person can act on, sent as `text/plain` (the
//! web UI shows these bodies verbatim). Server errors send a short fixed message
//! and log the cause.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// An error reply.
#[derive(Debug)]
pub(crate) struct AppError {
    status: StatusCode,
    message: String,
    clear_cookie: bool,
    bearer_challenge: bool,
    retry_after: Option<u64>,
}

impl AppError {
    /// A reply with `status` and `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            clear_cookie: false,
            bearer_challenge: false,
            retry_after: None,
        }
    }
    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 401 that also clears the session cookie, as the original does.
    pub(crate) fn unauthorized() -> Self {
        Self {
            clear_cookie: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "Authentication required")
        }
    }
    /// A refused API token: `status` (401 or 403) with a
    /// `WWW-Authenticate: Bearer` challenge. The session cookie is left alone.
    pub(crate) fn bearer(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            bearer_challenge: true,
            ..Self::new(status, message)
        }
    }
    /// 429: too many wrong passphrases or passwords; `message` gets the wait
    /// appended, which `Retry-After` gives too (at least a second).
    pub(crate) fn too_many(message: &str, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs().max(1);
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{message} Try again in {secs} seconds."),
            )
        }
    }
    /// 500 with a fixed public message; `cause` is logged, never sent.
    pub(crate) fn internal(public: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{public}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, public)
    }
    /// Maps a storage failure: a full disk is the client's 507, the rest is 500.
    pub(crate) fn store(public: &str, e: StoreError) -> Self {
        if e.is_disk_full() {
            return if matches!(e, StoreError::DiskFull) {
                // An upload's own report.
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "The server's disk is full: the file was not stored. Free some space or ask the server's owner.",
                )
            } else {
                tracing::warn!(error = %e, "{public}: the disk is full");
                Self::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "The server's disk is full: nothing was changed. Free some space or ask the server's owner.",
                )
            };
        }
        match e {
            StoreError::WriterGone => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is shutting down; please try again in a moment.",
            ),
            StoreError::Busy => Self::new(
                StatusCode::LOCKED,
                "Another server is still writing to this upload; try again in a moment.",
            ),
            StoreError::LeaseLost => {
                tracing::error!(error = %e, "{public}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{public}: this server was paused or cut off from its database for too long, \
                         and another server took over its work; nothing was saved. Please try again."
                    ),
                )
            }
            StoreError::TooLarge(msg) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, msg),
            StoreError::Contended => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy; please try again in a moment.",
            ),
            StoreError::Postgres(_) | StoreError::Object(_) => {
                tracing::error!(error = %e, "{public}");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{public}: the storage service did not answer; please try again in a moment."),
                )
            }
            StoreError::EntryGone => Self::not_found(
                "The file this upload was to replace has been deleted: nothing was replaced, and the upload was dropped.",
            ),
            other => Self::internal(public, other),
        }
    }
    /// The status code.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for people.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The `Retry-After` of a 429, if this is one.
    pub(crate) fn retry_after(&self) -> Option<HeaderValue> {
        self.retry_after.map(HeaderValue::from)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, format!("{}\n", self.message)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        // A refusal is about this request at this moment (a 429 about one
        // client, a 401 before a password): no cache may keep it for others.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.clear_cookie {
            h.insert(header::SET_COOKIE, super::auth::session::clearing_cookie());
        }
        if self.bearer_challenge {
            let challenge = if self.status == StatusCode::FORBIDDEN {
                r#"Bearer realm="PicoShare", error="insufficient_scope""#
            } else {
                r#"Bearer realm="PicoShare", error="invalid_token""#
            };
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A JSON request body of at most the router's limit (64 KiB), as bytes. A
/// larger body is refused with 413 and a message, in our error format.
pub(crate) struct JsonBody(pub(crate) bytes::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        match bytes::Bytes::from_request(req, state).await {
            Ok(b) => Ok(JsonBody(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request body too large: JSON requests are limited to {} KiB.",
                    super::JSON_LIMIT / 1024
                ),
            )),
            Err(e) => Err(AppError::bad_request(format!(
                "could not read the request body: {e}"
            ))),
        }
    }
}

/// `axum::extract::Path`, with its refusals (a path segment that is not valid
/// UTF-8 once percent-decoded) in our error format.
pub(crate) struct Path<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) => Err(AppError::new(e.status(), e.body_text())),
        }
    }
}
