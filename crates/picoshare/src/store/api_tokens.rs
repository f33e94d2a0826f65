//! API tokens: their rows in `picoshare_api_tokens`.
//!
//! The store never sees a token itself, only its SHA-256 (hex) and the short
//! prefix shown in the list; generating tokens and hashing them is the HTTP
//! layer's job.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{db_time_to_utc, SqliteStore, StoreError};
use crate::ids::ApiTokenId;
use crate::validate::db_time;

/// A token as the list shows it (nothing secret).
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Public ID.
    pub id: ApiTokenId,
    /// The name the owner gave it.
    pub name: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last used (to the second), if ever.
    pub last_used: Option<DateTime<Utc>>,
}

/// A new token's row.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Validated name.
    pub name: String,
    /// SHA-256 of the token, lower-case hex.
    pub token_sha256: String,
    /// The token's first characters.
    pub prefix: String,
    /// Creation time.
    pub created: DateTime<Utc>,
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ApiToken, StoreError>> {
    let id: String = r.get(0)?;
    let created: String = r.get(3)?;
    let last_used: Option<String> = r.get(4)?;
    let Ok(id) = ApiTokenId::parse(&id) else {
        return Ok(Err(StoreError::Corrupt(format!("API token ID {id:?}"))));
    };
    Ok(Ok(ApiToken {
        id,
        name: r.get(1)?,
        prefix: r.get(2)?,
        created: db_time_to_utc(&created),
        last_used: last_used.as_deref().map(db_time_to_utc),
    }))
}

impl SqliteStore {
    /// Stores a new token and returns its ID.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError> {
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
                "INSERT INTO picoshare_api_tokens
                     (id, name, token_sha256, prefix, created_time, last_used_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
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
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, name, prefix, created_time, last_used_time
                 FROM picoshare_api_tokens ORDER BY created_time DESC, rowid DESC",
            )?;
            let rows = stmt.query_map([], token_from_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row??);
            }
            Ok(out)
        })
        .await
    }

    /// The token whose SHA-256 is `token_sha256`, if it exists (not revoked).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn api_token_by_hash(
        &self,
        token_sha256: String,
    ) -> Result<Option<ApiToken>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT id, name, prefix, created_time, last_used_time
                 FROM picoshare_api_tokens WHERE token_sha256 = ?1",
                [token_sha256],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    /// Records that a token was used at `now`. Fire-and-forget: the request
    /// does not wait for it.
    pub fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>) {
        let id = id.clone();
        self.inner.writer.exec_detached(move |conn| {
            conn.execute(
                "UPDATE picoshare_api_tokens SET last_used_time = ?2 WHERE id = ?1",
                params![id.as_str(), db_time(now)],
            )?;
            Ok(())
        });
    }

    /// Revokes (deletes) a token. Returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM picoshare_api_tokens WHERE id = ?1",
                [id.as_str()],
            )?;
            Ok(n > 0)
        })
        .await
    }
}
