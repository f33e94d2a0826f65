//! Login sessions (`picoshare_sessions`): the statements both backends run.
//! Only the SHA-256 of a session's token is stored, so a copy of the
//! database does not hand out valid cookies.

use chrono::{DateTime, Utc};

use super::sql::shared_sql;
use super::time::db_time_to_utc;

shared_sql! {
    /// Deletes the sessions that expired before `$1` (done when one is created).
    pub(crate) const DELETE_EXPIRED_SESSIONS =
        "DELETE FROM picoshare_sessions WHERE expiration_time < $1";
    /// Stores a session: token hash, creation and expiration times.
    pub(crate) const INSERT_SESSION =
        "INSERT INTO picoshare_sessions (token_sha256, created_time, expiration_time)
         VALUES ($1, $2, $3)";
    /// The expiration of the session whose token hash is `$1`.
    pub(crate) const SESSION_EXPIRATION =
        "SELECT expiration_time FROM picoshare_sessions WHERE token_sha256 = $1";
    /// Revokes the session whose token hash is `$1`.
    pub(crate) const DELETE_SESSION = "DELETE FROM picoshare_sessions WHERE token_sha256 = $1";
}

/// Whether a session found with this stored expiration (`None`: not found)
/// is valid at `now`.
pub(crate) fn session_valid(expiration: Option<String>, now: DateTime<Utc>) -> bool {
    expiration.is_some_and(|t| db_time_to_utc(&t) > now)
}
