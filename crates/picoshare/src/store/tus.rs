//! Resumable (tus) uploads: their rows in `picoshare_tus_uploads`.
//!
//! The bytes of a resumable upload go through the same writer and chunk table
//! as any upload (see `writer.rs` for the sessions that write them); this
//! module creates, reads and terminates the rows that remember how far each
//! upload got and what entry it becomes.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    db_time_to_utc, expiration_from_db, expiration_to_db, SqliteSink, SqliteStore, StoreError,
};
use crate::ids::{EntryId, GuestLinkId, TusUploadId};
use crate::validate::db_time;

/// A resumable upload as stored.
#[derive(Debug, Clone)]
pub struct TusUpload {
    /// The ID in its URL.
    pub id: TusUploadId,
    /// The entry it becomes once complete.
    pub entry_id: EntryId,
    /// The guest link it was created through (`None` for the owner's).
    pub guest_link_id: Option<String>,
    /// Declared length (`Upload-Length`).
    pub length: u64,
    /// Bytes stored so far.
    pub offset: u64,
    /// Chunk size its chunks are cut to (fixed at creation).
    pub chunk_size: u64,
    /// Bytes after the last full chunk (`offset % chunk_size` of them).
    pub(super) tail: Vec<u8>,
    /// The entry's filename.
    pub filename: String,
    /// The entry's content type.
    pub content_type: String,
    /// The entry's note.
    pub note: Option<String>,
    /// The entry's expiration (`None` for never).
    pub expiration: Option<DateTime<Utc>>,
    /// `Upload-Metadata` as the client sent it.
    pub metadata: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it expires if no more bytes arrive.
    pub expires: DateTime<Utc>,
    /// Whether the last byte arrived and the entry exists.
    pub completed: bool,
}

/// What creating a resumable upload needs.
#[derive(Debug, Clone)]
pub struct NewTusUpload {
    /// Guest link it comes through.
    pub guest_link_id: Option<GuestLinkId>,
    /// Declared length.
    pub length: u64,
    /// The entry's filename.
    pub filename: String,
    /// The entry's content type.
    pub content_type: String,
    /// The entry's note.
    pub note: Option<String>,
    /// The entry's expiration.
    pub expiration: Option<DateTime<Utc>>,
    /// `Upload-Metadata` as sent, without a password.
    pub metadata: String,
    /// Now.
    pub created: DateTime<Utc>,
    /// When it expires without progress.
    pub expires: DateTime<Utc>,
    /// Download limit and password of the entry to be, stored with the row.
    pub limits: Option<super::limits::NewLimits>,
    /// A guest-link slot held in the database for this upload (scale-out
    /// store): deleted in the transaction that inserts the row, which counts
    /// in its place from then on.
    pub guest_slot: Option<String>,
}

const SELECT: &str = "SELECT id, entry_id, guest_link_id, upload_length, upload_offset, chunk_size,
        tail, filename, content_type, note, expiration_time, metadata, created_time,
        expires_time, completed
    FROM picoshare_tus_uploads";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TusUpload, StoreError>> {
    let id: String = r.get(0)?;
    let entry_id: String = r.get(1)?;
    let (Ok(id), Ok(entry_id)) = (TusUploadId::parse(&id), EntryId::parse(&entry_id)) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "resumable upload {id:?} has a malformed ID"
        ))));
    };
    let int = |i| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(Ok(TusUpload {
        id,
        entry_id,
        guest_link_id: r.get(2)?,
        length: int(3)?,
        offset: int(4)?,
        chunk_size: int(5)?.max(1),
        tail: r.get::<_, Option<Vec<u8>>>(6)?.unwrap_or_default(),
        filename: r.get(7)?,
        content_type: r.get(8)?,
        note: r.get(9)?,
        expiration: expiration_from_db(r.get(10)?),
        metadata: r.get(11)?,
        created: db_time_to_utc(&r.get::<_, String>(12)?),
        expires: db_time_to_utc(&r.get::<_, String>(13)?),
        completed: r.get::<_, i64>(14)? != 0,
    }))
}

/// Loads one upload's row.
pub(super) fn load(conn: &Connection, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError> {
    conn.query_row(&format!("{SELECT} WHERE id = ?1"), [id.as_str()], from_row)
        .optional()?
        .transpose()
}

impl SqliteStore {
    /// Creates a resumable upload; its bytes arrive later through
    /// [`Store::tus_open`](crate::store::Store::tus_open). Durable when it returns.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_create(&self, new: NewTusUpload) -> Result<TusUpload, StoreError> {
        let id = TusUploadId::generate();
        let entry_id = EntryId::generate();
        let chunk_size = self.inner.cfg.chunk_size as u64;
        let row = TusUpload {
            id: id.clone(),
            entry_id: entry_id.clone(),
            guest_link_id: new.guest_link_id.map(|g| g.as_str().to_owned()),
            length: new.length,
            offset: 0,
            chunk_size,
            tail: Vec::new(),
            filename: new.filename,
            content_type: new.content_type,
            note: new.note,
            expiration: new.expiration,
            metadata: new.metadata,
            created: new.created,
            expires: new.expires,
            completed: false,
        };
        let r = row.clone();
        let limits = new.limits;
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO picoshare_tus_uploads (id, entry_id, guest_link_id, upload_length,
                    upload_offset, chunk_size, tail, filename, content_type, note, expiration_time,
                    metadata, created_time, expires_time, completed)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, NULL, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0)",
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
        Ok(row)
    }

    /// Looks up a resumable upload (its last committed state).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_upload(&self, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError> {
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
    pub async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<SqliteSink>)>, StoreError> {
        self.inner.writer.tus_open(id.clone(), track).await
    }

    /// Deletes a resumable upload and, unless it completed, its chunks.
    /// Returns whether it existed. The caller must make sure no session is
    /// writing to it.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError> {
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
            self.inner
                .shared
                .vacuum_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(found)
    }
}
