//! Login sessions on SQLite (`picoshare_sessions`).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::store::model::sessions::{
    session_valid, DELETE_EXPIRED_SESSIONS, DELETE_SESSION, INSERT_SESSION, SESSION_EXPIRATION,
};
use crate::store::model::time::db_time;
use crate::store::StoreError;

impl SqliteStore {
    /// Stores a new login session by the SHA-256 of its token (and deletes
    /// the expired ones).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn create_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(DELETE_EXPIRED_SESSIONS.sqlite(), [db_time(now)])?;
            conn.execute(
                INSERT_SESSION.sqlite(),
                params![token_sha256, db_time(now), db_time(expires)],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a session with this token hash exists and has not expired.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn session_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |conn| {
            let found: Option<String> = conn
                .query_row(SESSION_EXPIRATION.sqlite(), [token_sha256], |r| r.get(0))
                .optional()?;
            Ok(session_valid(found, now))
        })
        .await
    }

    /// Revokes a session.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(DELETE_SESSION.sqlite(), [token_sha256])?;
            Ok(())
        })
        .await
    }
}
