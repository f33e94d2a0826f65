//! Login sessions on the scale-out store (`picoshare_sessions`).

use chrono::{DateTime, Utc};

use super::RemoteStore;
use crate::ids::SessionId;
use crate::store::model::sessions::{
    valid_session, NewSession, Session, DELETE_EXPIRED_SESSIONS, DELETE_OTHER_SESSIONS,
    DELETE_SESSION, DELETE_SESSION_BY_ID, END_SESSIONS_OF_OTHER_SECRETS, INSERT_SESSION,
    LIST_SESSIONS, SESSION_BY_HASH,
};
use crate::store::model::time::db_time;
use crate::store::StoreError;

impl RemoteStore {
    /// Stores a new login session (and deletes the expired ones); returns
    /// its ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_session(&self, s: NewSession) -> Result<SessionId, StoreError> {
        let id = SessionId::generate();
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(DELETE_EXPIRED_SESSIONS.pg(), &[&db_time(s.created)])
            .await?;
        tx.execute(
            INSERT_SESSION.pg(),
            &[
                &s.token_sha256,
                &db_time(s.created),
                &db_time(s.expires),
                &id.as_str(),
                &s.secret_tag,
                &s.client_ip,
                &s.user_agent,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The ID of the session with this token hash, if it was opened under
    /// the passphrase tagged `secret_tag` and has not expired.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn session_id(
        &self,
        token_sha256: String,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError> {
        let row = self
            .query_opt(SESSION_BY_HASH.pg(), &[&token_sha256, &secret_tag])
            .await?;
        valid_session(row.map(|r| (r.get(0), r.get(1))), now)
    }

    /// The sessions of the passphrase tagged `secret_tag` that have not
    /// expired, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn sessions(
        &self,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = self
            .query(LIST_SESSIONS.pg(), &[&secret_tag, &db_time(now)])
            .await?;
        rows.iter().map(Session::decode).collect()
    }

    /// Revokes a session by its token hash (logout).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.execute(DELETE_SESSION.pg(), &[&token_sha256]).await?;
        Ok(())
    }

    /// Revokes a session by its ID; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_session_by_id(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(self
            .execute(DELETE_SESSION_BY_ID.pg(), &[&id.as_str()])
            .await?
            > 0)
    }

    /// Revokes every session but `keep`; returns how many ended.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_other_sessions(&self, keep: &SessionId) -> Result<u64, StoreError> {
        self.execute(DELETE_OTHER_SESSIONS.pg(), &[&keep.as_str()])
            .await
    }

    /// Ends every session opened under another passphrase than the one
    /// tagged `secret_tag`; returns how many ended.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn end_sessions_of_other_secrets(
        &self,
        secret_tag: String,
    ) -> Result<u64, StoreError> {
        self.execute(END_SESSIONS_OF_OTHER_SECRETS.pg(), &[&secret_tag])
            .await
    }
}
