//! Login sessions (`picoshare_sessions`): the types, how a row reads, and
//! the statements both backends run.
//!
//! Only the SHA-256 of a session's token is stored, so a copy of the
//! database does not hand out valid cookies. Each session also carries the
//! tag of the passphrase it was opened with (`secret_tag`, an argon2id hash
//! of the passphrase, computed by the HTTP layer): a session is valid only
//! under the passphrase it was opened with, and a server started with
//! another passphrase deletes the sessions of every other one
//! ([`END_SESSIONS_OF_OTHER_SECRETS`]). Rows from before the tag existed
//! have none, and are ended the same way.

use chrono::{DateTime, Utc};

use super::sql::{shared_sql, Row};
use super::time::db_time_to_utc;
use crate::ids::SessionId;
use crate::store::StoreError;

/// A session as the sessions page shows it (nothing secret).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Public ID, which names it for revocation.
    pub(crate) id: SessionId,
    /// When the owner logged in.
    pub(crate) created: DateTime<Utc>,
    /// When it ends by itself.
    pub(crate) expires: DateTime<Utc>,
    /// The address it logged in from.
    pub(crate) client_ip: String,
    /// The browser it logged in with (`User-Agent`).
    pub(crate) user_agent: String,
}

impl Session {
    /// Reads a row of the sessions list (`LIST_SESSIONS`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a malformed ID; a column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<Session, StoreError> {
        let id = r.text(0)?;
        let Ok(id) = SessionId::parse(&id) else {
            return Err(StoreError::Corrupt(format!("session ID {id:?}")));
        };
        Ok(Session {
            id,
            created: db_time_to_utc(&r.text(1)?),
            expires: db_time_to_utc(&r.text(2)?),
            client_ip: r.opt_text(3)?.unwrap_or_default(),
            user_agent: r.opt_text(4)?.unwrap_or_default(),
        })
    }
}

/// A new session's row.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    /// SHA-256 of the token, lower-case hex.
    pub(crate) token_sha256: String,
    /// The tag of the passphrase it was opened with.
    pub(crate) secret_tag: String,
    /// Login time.
    pub(crate) created: DateTime<Utc>,
    /// When it ends.
    pub(crate) expires: DateTime<Utc>,
    /// The address it logged in from.
    pub(crate) client_ip: String,
    /// The browser it logged in with.
    pub(crate) user_agent: String,
}

/// The columns [`Session::decode`] reads, in its order.
macro_rules! select_session {
    () => {
        "SELECT id, created_time, expiration_time, client_ip, user_agent FROM picoshare_sessions"
    };
}

shared_sql! {
    /// Deletes the sessions that expired before `$1` (done when one is created).
    pub(crate) const DELETE_EXPIRED_SESSIONS =
        "DELETE FROM picoshare_sessions WHERE expiration_time < $1";
    /// Stores a session: token hash, times, ID, passphrase tag, address, browser.
    pub(crate) const INSERT_SESSION =
        "INSERT INTO picoshare_sessions
             (token_sha256, created_time, expiration_time, id, secret_tag, client_ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// The expiration and ID of the session whose token hash is `$1`, if it
    /// was opened under the passphrase tagged `$2`.
    pub(crate) const SESSION_BY_HASH =
        "SELECT expiration_time, id FROM picoshare_sessions
         WHERE token_sha256 = $1 AND secret_tag = $2";
    /// The sessions of the passphrase tagged `$1` that have not expired at
    /// `$2`, newest first.
    pub(crate) const LIST_SESSIONS = concat!(
        select_session!(),
        " WHERE secret_tag = $1 AND expiration_time > $2 ORDER BY created_time DESC, id"
    );
    /// Revokes the session whose token hash is `$1` (logout).
    pub(crate) const DELETE_SESSION = "DELETE FROM picoshare_sessions WHERE token_sha256 = $1";
    /// Revokes the session whose ID is `$1` (the sessions page).
    pub(crate) const DELETE_SESSION_BY_ID = "DELETE FROM picoshare_sessions WHERE id = $1";
    /// Revokes every session but the one whose ID is `$1`.
    pub(crate) const DELETE_OTHER_SESSIONS =
        "DELETE FROM picoshare_sessions WHERE id IS NULL OR id <> $1";
    /// Ends the sessions opened under any other passphrase than the one
    /// tagged `$1` (and those from before tags).
    pub(crate) const END_SESSIONS_OF_OTHER_SECRETS =
        "DELETE FROM picoshare_sessions WHERE secret_tag IS NULL OR secret_tag <> $1";
}

/// The ID of a session found with this stored expiration and ID (`None`:
/// not found), if it is valid at `now`.
///
/// # Errors
/// [`StoreError::Corrupt`] for a malformed ID.
pub(crate) fn valid_session(
    found: Option<(String, Option<String>)>,
    now: DateTime<Utc>,
) -> Result<Option<SessionId>, StoreError> {
    Ok(valid_session_until(found, now)?.map(|(id, _)| id))
}

/// As [`valid_session`], with the time the session expires (for the SQLite
/// store's cache of look-ups, which must stop answering at that time).
///
/// # Errors
/// [`StoreError::Corrupt`] for a malformed ID.
pub(crate) fn valid_session_until(
    found: Option<(String, Option<String>)>,
    now: DateTime<Utc>,
) -> Result<Option<(SessionId, DateTime<Utc>)>, StoreError> {
    let Some((expiration, id)) = found else {
        return Ok(None);
    };
    let expires = db_time_to_utc(&expiration);
    if expires <= now {
        return Ok(None);
    }
    let id = id.unwrap_or_default();
    SessionId::parse(&id)
        .map(|id| Some((id, expires)))
        .map_err(|_| StoreError::Corrupt(format!("session ID {id:?}")))
}
