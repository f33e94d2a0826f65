//! API tokens on the scale-out store (`picoshare_api_tokens`).

use chrono::{DateTime, Utc};

use super::RemoteStore;
use crate::ids::ApiTokenId;
use crate::store::model::time::db_time;
use crate::store::model::tokens::{
    select_token, DELETE_TOKEN, INSERT_TOKEN, TOKEN_BY_HASH, TOUCH_TOKEN,
};
use crate::store::model::{ApiToken, NewApiToken};
use crate::store::StoreError;

impl RemoteStore {
    /// Stores a new API token (its SHA-256 only).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_api_token(
        &self,
        token: NewApiToken,
    ) -> Result<ApiToken, StoreError> {
        let id = ApiTokenId::generate();
        self.execute(
            INSERT_TOKEN.pg(),
            &[
                &id.as_str(),
                &token.name,
                &token.token_sha256,
                &token.prefix,
                &db_time(token.created),
            ],
        )
        .await?;
        Ok(ApiToken {
            id,
            name: token.name,
            prefix: token.prefix,
            created: token.created,
            last_used: None,
        })
    }

    /// Every API token, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self
            .query(
                concat!(select_token!(), " ORDER BY created_time DESC, seq DESC"),
                &[],
            )
            .await?;
        rows.iter().map(ApiToken::decode).collect()
    }

    /// The API token with this SHA-256, if any.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn api_token_by_hash(
        &self,
        token_sha256: String,
    ) -> Result<Option<ApiToken>, StoreError> {
        let row = self.query_opt(TOKEN_BY_HASH.pg(), &[&token_sha256]).await?;
        row.as_ref().map(ApiToken::decode).transpose()
    }

    /// Records a token's use. Fire-and-forget.
    pub(crate) fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>) {
        let store = self.clone();
        let id = id.clone();
        self.spawn_background("record an API token's use", async move {
            store
                .execute(TOUCH_TOKEN.pg(), &[&id.as_str(), &db_time(now)])
                .await?;
            Ok(())
        });
    }

    /// Revokes an API token; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        let n = self.execute(DELETE_TOKEN.pg(), &[&id.as_str()]).await?;
        Ok(n > 0)
    }
}
