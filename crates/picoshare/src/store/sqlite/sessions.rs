//! Login sessions on SQLite (`picoshare_sessions`).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{query_all, SqliteStore};
use crate::ids::SessionId;
use crate::store::model::sessions::{
    valid_session, NewSession, Session, DELETE_EXPIRED_SESSIONS, DELETE_OTHER_SESSIONS,
    DELETE_SESSION, DELETE_SESSION_BY_ID, END_SESSIONS_OF_OTHER_SECRETS, INSERT_SESSION,
    LIST_SESSIONS, SESSION_BY_HASH,
};
use crate::store::model::time::db_time;
use crate::store::StoreError;

impl SqliteStore {
    /// Stores a new login session (and deletes the expired ones); returns
    /// its ID.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn create_session(&self, s: NewSession) -> Result<SessionId, StoreError> {
        let id = SessionId::generate();
        let row_id = id.clone();
        self.write(move |conn| {
            conn.execute(DELETE_EXPIRED_SESSIONS.sqlite(), [db_time(s.created)])?;
            conn.execute(
                INSERT_SESSION.sqlite(),
                params![
                    s.token_sha256,
                    db_time(s.created),
                    db_time(s.expires),
                    row_id.as_str(),
                    s.secret_tag,
                    s.client_ip,
                    s.user_agent
                ],
            )?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// The ID of the session with this token hash, if it was opened under
    /// the passphrase tagged `secret_tag` and has not expired.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn session_id(
        &self,
        token_sha256: String,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionId>, StoreError> {
        self.read(move |conn| {
            let found = conn
                .query_row(
                    SESSION_BY_HASH.sqlite(),
                    params![token_sha256, secret_tag],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            valid_session(found, now)
        })
        .await
    }

    /// The sessions of the passphrase tagged `secret_tag` that have not
    /// expired, newest first.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn sessions(
        &self,
        secret_tag: String,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, StoreError> {
        self.read(move |conn| {
            query_all(
                conn,
                LIST_SESSIONS.sqlite(),
                params![secret_tag, db_time(now)],
                |r| Session::decode(r),
            )
        })
        .await
    }

    /// Revokes a session by its token hash (logout).
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

    /// Revokes a session by its ID; returns whether it existed.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_session_by_id(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| Ok(conn.execute(DELETE_SESSION_BY_ID.sqlite(), [id.as_str()])? > 0))
            .await
    }

    /// Revokes every session but `keep`; returns how many ended.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_other_sessions(&self, keep: &SessionId) -> Result<u64, StoreError> {
        let keep = keep.clone();
        self.write(move |conn| {
            Ok(conn.execute(DELETE_OTHER_SESSIONS.sqlite(), [keep.as_str()])? as u64)
        })
        .await
    }

    /// Ends every session opened under another passphrase than the one
    /// tagged `secret_tag`; returns how many ended.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn end_sessions_of_other_secrets(
        &self,
        secret_tag: String,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(END_SESSIONS_OF_OTHER_SECRETS.sqlite(), [secret_tag])? as u64)
        })
        .await
    }
}
