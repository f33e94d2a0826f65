//! Login sessions on the scale-out store (`picoshare_sessions`).

use chrono::{DateTime, Utc};

use super::RemoteStore;
use crate::store::model::sessions::{
    session_valid, DELETE_EXPIRED_SESSIONS, DELETE_SESSION, INSERT_SESSION, SESSION_EXPIRATION,
};
use crate::store::model::time::db_time;
use crate::store::StoreError;

impl RemoteStore {
    /// Stores a new login session by the SHA-256 of its token (and deletes
    /// the expired ones).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(DELETE_EXPIRED_SESSIONS.pg(), &[&db_time(now)])
            .await?;
        tx.execute(
            INSERT_SESSION.pg(),
            &[&token_sha256, &db_time(now), &db_time(expires)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a session with this token hash exists and has not expired.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn session_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = self
            .query_opt(SESSION_EXPIRATION.pg(), &[&token_sha256])
            .await?;
        Ok(session_valid(row.map(|r| r.get(0)), now))
    }

    /// Revokes a session.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.execute(DELETE_SESSION.pg(), &[&token_sha256]).await?;
        Ok(())
    }
}
