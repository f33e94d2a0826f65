//! Password-protected files and download limits: parsing the options,
//! hashing and checking passwords, the per-file access cookie, and the
//! password form.
//!
//! A protected file is served only to the owner (admin session), to a request
//! with the right password in HTTP Basic auth (any user name), or to a browser
//! holding the file's access cookie, which the password form sets. The cookie
//! is `EXPIRY.MAC`, where MAC is an HMAC-SHA256, under a random key the server
//! keeps in its database, of the entry ID, the expiry and the password hash:
//! it opens that one file only, and changing or removing the password voids it.
//! Wrong passwords are limited per client address and per file, as logins are.
//!
//! Checking a password costs an argon2id hash (19 MiB of memory, tens of
//! milliseconds of a core), so it is bounded twice: an attempt is counted
//! against the client and the file *before* its hash runs (so no more than
//! the limit are ever hashed, however many arrive at once; a right password
//! takes its count back), and hashes run a few at a time in memory that is
//! reused ([`super::hashing`]).

use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use maud::html;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::hashing;
use super::login_limit::{self, ClientKey, Limiter, Refused};
use crate::http::client::ClientView;
use crate::http::pages::{wants_html, Page};
use crate::http::{AppError, AppState};
use crate::ids::EntryId;
use crate::store::model::NewLimits;

/// Most downloads a limit may allow.
const MAX_DOWNLOADS_LIMIT: u64 = 1_000_000;
/// Longest password accepted, in bytes.
const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a file's access cookie lasts.
const COOKIE_SECONDS: i64 = 12 * 3600;
/// Name of the server key that signs access cookies.
const COOKIE_KEY: &str = "file-access-cookie";

/// Wrong-password counts and the cookie key, shared by all requests.
#[derive(Debug, Default)]
pub(crate) struct FileAccess {
    by_address: Limiter<ClientKey>,
    by_file: Limiter<EntryId>,
    key: tokio::sync::OnceCell<Vec<u8>>,
}

impl FileAccess {
    /// Limits that hold at most `capacity` keys each.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        FileAccess {
            by_address: Limiter::with_capacity(capacity),
            by_file: Limiter::with_capacity(capacity),
            key: tokio::sync::OnceCell::new(),
        }
    }
}

/// Parses a download limit: empty means none, otherwise a whole number from 1
/// to [`MAX_DOWNLOADS_LIMIT`].
pub(crate) fn parse_max_downloads(raw: &str) -> Result<Option<u64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u64>() {
        Ok(n) if (1..=MAX_DOWNLOADS_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "maxDownloads must be a whole number from 1 to {MAX_DOWNLOADS_LIMIT}"
        )),
    }
}

/// Checks a new password: not empty, at most [`MAX_PASSWORD_BYTES`].
pub(crate) fn check_new_password(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("the password must not be empty".into());
    }
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes long"
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub(crate) async fn hash_password(password: String) -> Result<String, AppError> {
    hashing::hash_new(password)
        .await
        .map_err(|e| AppError::internal("failed to hash the password", e))
}

/// The limits an upload asked for (raw `maxDownloads` and `password`
/// values), validated and with the password hashed. `invalid` turns a
/// message into the refusal.
pub(crate) async fn new_limits(
    max_downloads: Option<&str>,
    password: Option<String>,
    invalid: impl Fn(String) -> AppError,
) -> Result<Option<NewLimits>, AppError> {
    let max_downloads = match max_downloads {
        Some(raw) => parse_max_downloads(raw).map_err(&invalid)?,
        None => None,
    };
    let password_hash = match password.filter(|p| !p.is_empty()) {
        Some(p) => {
            check_new_password(&p).map_err(&invalid)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    Ok(NewLimits {
        max_downloads,
        password_hash,
    }
    .if_any())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn cookie_name(id: &EntryId) -> String {
    format!("ps_file_{}", id.as_str())
}

fn cookie_mac(key: &[u8], id: &EntryId, expiry: i64, password_hash: &str) -> String {
    let msg = format!("{}\n{expiry}\n{password_hash}", id.as_str());
    crate::ids::hex(&hmac_sha256(key, msg.as_bytes()))
}

impl FileAccess {
    async fn key(&self, state: &AppState) -> Result<&[u8], AppError> {
        self.key
            .get_or_try_init(|| async {
                state
                    .store
                    .server_key(COOKIE_KEY)
                    .await
                    .map_err(|e| AppError::store("failed to read the server key", e))
            })
            .await
            .map(Vec::as_slice)
    }

    /// Begins an attempt of `client` at file `id` before it is checked,
    /// holding its place in both limits (waiting, up to
    /// [`login_limit::BUSY_WAIT`], while attempts in flight hold every place
    /// of either): `Err(wait)`, and nothing held, while either may not try
    /// another password.
    async fn begin(&self, client: ClientKey, id: &EntryId) -> Result<(), Duration> {
        let deadline = tokio::time::Instant::now() + login_limit::BUSY_WAIT;
        loop {
            let by_address = self.by_address.settling();
            let by_file = self.by_file.settling();
            tokio::pin!(by_address, by_file);
            by_address.as_mut().enable();
            by_file.as_mut().enable();
            let now = Instant::now();
            let waits = (
                self.by_address.blocked(&client, now),
                self.by_file.blocked(id, now),
            );
            match waits {
                (Some(a), Some(b)) => return Err(a.max(b)),
                (Some(w), None) | (None, Some(w)) => return Err(w),
                (None, None) => {}
            }
            let busy = match self.by_address.try_begin(&client, now) {
                Err(Refused::Blocked(wait)) => return Err(wait),
                Err(Refused::Busy) => by_address,
                Ok(()) => match self.by_file.try_begin(id, now) {
                    Ok(()) => return Ok(()),
                    Err(refused) => {
                        self.by_address.refund(&client);
                        match refused {
                            Refused::Blocked(wait) => return Err(wait),
                            Refused::Busy => by_file,
                        }
                    }
                },
            };
            if tokio::time::timeout_at(deadline, busy).await.is_err() {
                return Err(Duration::from_secs(1));
            }
        }
    }

    /// Settles an attempt that was right: its places are given back.
    fn refund(&self, client: ClientKey, id: &EntryId) {
        self.by_address.refund(&client);
        self.by_file.refund(id);
    }

    /// Settles an attempt that was wrong: it counts against both.
    fn wrong(&self, client: ClientKey, id: &EntryId) {
        let now = Instant::now();
        self.by_address.wrong(&client, now);
        self.by_file.wrong(id, now);
    }

    /// The keys the limits hold: (client addresses, files).
    pub(crate) fn limiter_sizes(&self) -> (usize, usize) {
        (self.by_address.len(), self.by_file.len())
    }
}

fn has_valid_cookie(
    headers: &HeaderMap,
    key: &[u8],
    id: &EntryId,
    password_hash: &str,
    now: i64,
) -> bool {
    let name = cookie_name(id);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .any(|(_, v)| {
            let Some((exp, mac)) = v.split_once('.') else {
                return false;
            };
            let Ok(exp) = exp.parse::<i64>() else {
                return false;
            };
            exp > now
                && bool::from(
                    cookie_mac(key, id, exp, password_hash)
                        .as_bytes()
                        .ct_eq(mac.as_bytes()),
                )
        })
}

/// The password of an `Authorization: Basic` header (any user name).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = raw.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_owned())
}

/// How a protected download request stands.
pub(crate) enum Access {
    /// Serve it.
    Granted,
    /// Refuse it with this reply.
    Refused(Response),
}

fn too_many(wait: Duration) -> AppError {
    AppError::too_many("Too many wrong passwords.", wait)
}

/// The 401 reply: the password form for browsers, a plain message (with a
/// Basic challenge) for other clients.
fn password_required(headers: &HeaderMap, path: &str, wrong: bool) -> Response {
    let message = if wrong {
        "Wrong password."
    } else {
        "This file is protected by a password."
    };
    if wants_html(headers) {
        let page = Page::new(false);
        let mut resp = page.render_status(
            StatusCode::UNAUTHORIZED,
            "Password required",
            html! {
                section.narrow.card.message data-page="file-password" {
                    h1 { "Password required" }
                    p #password-message role=(if wrong { "alert" } else { "status" }) { (message) }
                    p.hint {
                        "The person who shared it with you set the password (its name is shown once the password is given). Ask them for it."
                    }
                    form.stack #password-form method="post" action=(path) {
                        div.field {
                            label for="file-password" { "Password" }
                            input #file-password type="password" name="password" required
                                autocomplete="current-password" autofocus;
                        }
                        button.button.primary type="submit" { "Download" }
                    }
                }
            },
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let mut resp = AppError::new(
        StatusCode::UNAUTHORIZED,
        format!("{message} Send it with HTTP Basic auth (any user name), for example curl -u x:PASSWORD."),
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"PicoShare file\", charset=\"UTF-8\""),
    );
    resp
}

/// A request for a password-protected file: who asks, with which headers,
/// for which entry, at which path (where the password form sends the
/// browser back to).
pub(crate) struct Protected<'a> {
    pub(crate) client: &'a ClientView,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) id: &'a EntryId,
    pub(crate) path: &'a str,
}

impl Protected<'_> {
    /// Tries `password` against `password_hash`, whether it came from the
    /// password form or Basic auth: `None` when it is right, else the
    /// password form again (or the 401) saying it was wrong, and the wrong
    /// password counts against the client. 429 while the client is blocked
    /// by earlier wrong passwords. The attempt is counted before its hash
    /// runs, and taken back if it was right (see the module docs). Passwords
    /// are never empty, so an empty one is wrong without hashing.
    async fn attempt(
        &self,
        state: &AppState,
        password_hash: &str,
        password: String,
    ) -> Result<Option<Response>, AppError> {
        let access = &state.file_access;
        let client = ClientKey::of(self.client.limit_ip);
        access.begin(client, self.id).await.map_err(too_many)?;
        if !password.is_empty() && hashing::verify(password_hash.to_owned(), password).await {
            access.refund(client, self.id);
            return Ok(None);
        }
        access.wrong(client, self.id);
        Ok(Some(password_required(self.headers, self.path, true)))
    }
}

/// Decides whether a GET/HEAD of a protected file, whose password has the
/// hash `password_hash`, may proceed.
pub(crate) async fn check(
    state: &AppState,
    req: &Protected<'_>,
    password_hash: &str,
) -> Result<Access, AppError> {
    let key = state.file_access.key(state).await?;
    let now = state.clock.now().timestamp();
    if has_valid_cookie(req.headers, key, req.id, password_hash, now) {
        return Ok(Access::Granted);
    }
    let Some(password) = basic_password(req.headers) else {
        return Ok(Access::Refused(password_required(
            req.headers,
            req.path,
            false,
        )));
    };
    Ok(match req.attempt(state, password_hash, password).await? {
        None => Access::Granted,
        Some(refusal) => Access::Refused(refusal),
    })
}

/// Handles the password form (`POST /-{id}`): on the right password, sets the
/// file's access cookie and sends the browser back to the download.
pub(crate) async fn submit(
    state: &AppState,
    req: &Protected<'_>,
    password_hash: &str,
    form: &[u8],
) -> Result<Response, AppError> {
    let password = crate::http::params::form_value(form, "password").unwrap_or_default();
    if let Some(refusal) = req.attempt(state, password_hash, password).await? {
        return Ok(refusal);
    }
    let key = state.file_access.key(state).await?;
    let expiry = state.clock.now().timestamp() + COOKIE_SECONDS;
    let secure = req.client.secure_attribute();
    let cookie = format!(
        "{}={expiry}.{}; Path=/; Max-Age={COOKIE_SECONDS}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(req.id),
        cookie_mac(key, req.id, expiry, password_hash)
    );
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::internal("bad cookie", e))?,
    );
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(req.path).map_err(|e| AppError::internal("bad location", e))?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::ids::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_6_long_key() {
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            crate::ids::hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn max_downloads_bounds() {
        assert_eq!(parse_max_downloads(""), Ok(None));
        assert_eq!(parse_max_downloads(" 3 "), Ok(Some(3)));
        assert!(parse_max_downloads("0").is_err());
        assert!(parse_max_downloads("-1").is_err());
        assert!(parse_max_downloads("1000001").is_err());
    }

    #[test]
    fn basic_auth_takes_any_user_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDpzM2NyZXQ6Og=="),
        );
        assert_eq!(basic_password(&h).as_deref(), Some("s3cret::"));
    }

    #[test]
    fn cookie_is_bound_to_file_expiry_and_hash() {
        let id = EntryId::parse("abcdefghij").unwrap();
        let other = EntryId::parse("bbcdefghij").unwrap();
        let mac = cookie_mac(b"k", &id, 100, "h");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; ps_file_abcdefghij=100.{mac}")).unwrap(),
        );
        assert!(has_valid_cookie(&h, b"k", &id, "h", 99));
        assert!(!has_valid_cookie(&h, b"k", &id, "h", 100), "expired");
        assert!(!has_valid_cookie(&h, b"k", &id, "h2", 99), "new password");
        assert!(!has_valid_cookie(&h, b"k2", &id, "h", 99), "other key");
        assert!(!has_valid_cookie(&h, b"k", &other, "h", 99), "other file");
    }
}
