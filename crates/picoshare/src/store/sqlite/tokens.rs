//! API tokens on SQLite (`picoshare_api_tokens`).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{query_all, query_opt, SqliteStore};
use crate::ids::ApiTokenId;
use crate::store::model::time::db_time;
use crate::store::model::tokens::{
    select_token, DELETE_TOKEN, INSERT_TOKEN, TOKEN_BY_HASH, TOUCH_TOKEN,
};
use crate::store::model::{ApiToken, NewApiToken};
use crate::store::StoreError;

impl SqliteStore {
    /// Stores a new token and returns its row.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn create_api_token(
        &self,
        token: NewApiToken,
    ) -> Result<ApiToken, StoreError> {
        let id = ApiTokenId::generate();
        let row = ApiToken {
            id: id.clone(),
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            created: token.created,
            last_used: None,
        };
        self.write(move |conn| {
            conn.execute(
                INSERT_TOKEN.sqlite(),
                params![
                    id.as_str(),
                    token.name,
                    token.token_sha256,
                    token.prefix,
                    db_time(token.created)
                ],
            )
            .map_err(StoreError::classify)?;
            Ok(())
        })
        .await?;
        Ok(row)
    }

    /// Every token, newest first.
    ///
    /// # Errors
    /// Storage failures, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub(crate) async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|conn| {
            query_all(
                conn,
                concat!(select_token!(), " ORDER BY created_time DESC, rowid DESC"),
                [],
                |r| ApiToken::decode(r),
            )
        })
        .await
    }

    /// The token whose SHA-256 is `token_sha256`, if it exists (not revoked).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn api_token_by_hash(
        &self,
        token_sha256: String,
    ) -> Result<Option<ApiToken>, StoreError> {
        self.read(move |conn| {
            query_opt(conn, TOKEN_BY_HASH.sqlite(), [token_sha256], |r| {
                ApiToken::decode(r)
            })
        })
        .await
    }

    /// Records that a token was used at `now`. Fire-and-forget: the request
    /// does not wait for it.
    pub(crate) fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>) {
        let id = id.clone();
        self.inner.writer.exec_detached(move |conn| {
            conn.execute(TOUCH_TOKEN.sqlite(), params![id.as_str(), db_time(now)])?;
            Ok(())
        });
    }

    /// Revokes (deletes) a token. Returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| Ok(conn.execute(DELETE_TOKEN.sqlite(), [id.as_str()])? > 0))
            .await
    }
}
