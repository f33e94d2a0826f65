//! API tokens (`picoshare_api_tokens`): the types, how a row reads, and the
//! statements both backends run.
//!
//! The store never sees a token itself, only its SHA-256 (hex) and the short
//! prefix shown in the list; generating tokens and hashing them is the HTTP
//! layer's job.

use chrono::{DateTime, Utc};

use super::sql::{shared_sql, Row};
use super::time::db_time_to_utc;
use crate::ids::ApiTokenId;
use crate::store::StoreError;

/// A token as the list shows it (nothing secret).
#[derive(Debug, Clone)]
pub(crate) struct ApiToken {
    /// Public ID.
    pub(crate) id: ApiTokenId,
    /// The name the owner gave it.
    pub(crate) name: String,
    /// The first characters of the token, to recognise it.
    pub(crate) prefix: String,
    /// When it was created.
    pub(crate) created: DateTime<Utc>,
    /// When it was last used (to the second), if ever.
    pub(crate) last_used: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Reads a row of [`select_token!`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a malformed ID; a column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<ApiToken, StoreError> {
        let id = r.text(0)?;
        let Ok(id) = ApiTokenId::parse(&id) else {
            return Err(StoreError::Corrupt(format!("API token ID {id:?}")));
        };
        Ok(ApiToken {
            id,
            name: r.text(1)?,
            prefix: r.text(2)?,
            created: db_time_to_utc(&r.text(3)?),
            last_used: r.opt_text(4)?.as_deref().map(db_time_to_utc),
        })
    }
}

/// A new token's row.
#[derive(Debug, Clone)]
pub(crate) struct NewApiToken {
    /// Validated name.
    pub(crate) name: String,
    /// SHA-256 of the token, lower-case hex.
    pub(crate) token_sha256: String,
    /// The token's first characters.
    pub(crate) prefix: String,
    /// Creation time.
    pub(crate) created: DateTime<Utc>,
}

/// The columns [`ApiToken::decode`] reads, in its order. (The list's order
/// is each backend's: insertion order is `rowid` in SQLite, `seq` in
/// PostgreSQL.)
macro_rules! select_token {
    () => {
        "SELECT id, name, prefix, created_time, last_used_time FROM picoshare_api_tokens"
    };
}
pub(crate) use select_token;

shared_sql! {
    /// Stores a new token (never used yet).
    pub(crate) const INSERT_TOKEN = "INSERT INTO picoshare_api_tokens
             (id, name, token_sha256, prefix, created_time, last_used_time)
         VALUES ($1, $2, $3, $4, $5, NULL)";
    /// The token whose SHA-256 is `$1`.
    pub(crate) const TOKEN_BY_HASH = concat!(select_token!(), " WHERE token_sha256 = $1");
    /// Records that token `$1` was used at `$2`.
    pub(crate) const TOUCH_TOKEN =
        "UPDATE picoshare_api_tokens SET last_used_time = $2 WHERE id = $1";
    /// Revokes token `$1`.
    pub(crate) const DELETE_TOKEN = "DELETE FROM picoshare_api_tokens WHERE id = $1";
}
