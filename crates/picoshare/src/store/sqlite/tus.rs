//! Resumable (tus) uploads on SQLite: their rows in `picoshare_tus_uploads`.
//!
//! The bytes of a resumable upload go through the same writer and chunk table
//! as any upload (see `writer/resumable.rs` for the sessions that write them);
//! this module creates, reads and terminates the rows that remember how far
//! each upload got and what entry it becomes.

use rusqlite::{params, Connection};

use super::{query_opt, LocalSlot, SqliteStore, SqliteTusSink};
use crate::ids::TusUploadId;
use crate::store::model::time::{db_time, expiration_to_db};
use crate::store::model::tus::{tus_columns, INSERT_TUS};
use crate::store::model::{NewTusUpload, TusUpload};
use crate::store::StoreError;

/// Loads one upload's row.
pub(super) fn load(conn: &Connection, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError> {
    query_opt(
        conn,
        concat!(
            "SELECT ",
            tus_columns!(),
            " FROM picoshare_tus_uploads WHERE id = ?1"
        ),
        [id.as_str()],
        |r| TusUpload::decode(r),
    )
}

impl SqliteStore {
    /// Creates a resumable upload; its bytes arrive later through
    /// [`SqliteStore::tus_open`]. Durable when it returns. A guest upload's
    /// `slot` is given back once the row, which counts in its place, is.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn tus_create(
        &self,
        new: NewTusUpload,
        slot: Option<LocalSlot>,
    ) -> Result<TusUpload, StoreError> {
        let (row, limits) = new.into_row(self.inner.cfg.chunk_size as u64);
        let r = row.clone();
        self.write(move |conn| {
            conn.execute(
                INSERT_TUS.sqlite(),
                params![
                    r.id.as_str(),
                    r.entry_id.as_str(),
                    r.guest_link_id,
                    r.length as i64,
                    r.chunk_size as i64,
                    r.filename,
                    r.content_type,
                    r.note,
                    expiration_to_db(r.expiration),
                    r.metadata,
                    db_time(r.created),
                    db_time(r.expires),
                ],
            )
            .map_err(StoreError::classify)?;
            if let Some(l) = &limits {
                super::limits::insert(conn, r.entry_id.as_str(), l)
                    .map_err(StoreError::classify)?;
            }
            Ok(())
        })
        .await?;
        drop(slot);
        Ok(row)
    }

    /// Looks up a resumable upload (its last committed state).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn tus_upload(
        &self,
        id: &TusUploadId,
    ) -> Result<Option<TusUpload>, StoreError> {
        let id = id.clone();
        self.read(move |conn| load(conn, &id)).await
    }

    /// Starts writing to a resumable upload: returns its row and a sink that
    /// continues it from its offset (none if it is complete), or `None` if it
    /// does not exist. With `track`, each batch commit records the offset
    /// reached, so a crash loses at most the bytes since the last commit;
    /// without (a request whose checksum is checked at its end), nothing of the
    /// request counts until the sink is saved.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<SqliteTusSink>)>, StoreError> {
        let writer = &self.inner.writer;
        let Some((row, session)) = writer.tus_open(id.clone(), track).await? else {
            return Ok(None);
        };
        if row.completed {
            return Ok(Some((row, None)));
        }
        let sink = SqliteTusSink::new(writer.sender(), &row, session);
        Ok(Some((row, Some(sink))))
    }

    /// Deletes a resumable upload and, unless it completed, its chunks.
    /// Returns whether it existed. The caller must make sure no session is
    /// writing to it.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError> {
        let id = id.clone();
        let found = self
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM entries_data WHERE id IN
                        (SELECT entry_id FROM picoshare_tus_uploads WHERE id = ?1 AND completed = 0)",
                    [id.as_str()],
                )
                .map_err(StoreError::classify)?;
                let n = conn
                    .execute("DELETE FROM picoshare_tus_uploads WHERE id = ?1", [id.as_str()])
                    .map_err(StoreError::classify)?;
                Ok(n > 0)
            })
            .await?;
        if found {
            self.space_freed();
        }
        Ok(found)
    }
}
