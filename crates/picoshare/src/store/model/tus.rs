//! Resumable (tus) uploads (`picoshare_tus_uploads`): the types, how a row
//! reads, and the statements both backends run.
//!
//! A row remembers how far an upload got and what entry it becomes. Its
//! bytes go where any upload's go (chunk rows, or one multipart upload);
//! those after the last full chunk or part wait in the row's `tail`, so
//! that every chunk or part but the last keeps the upload's size. The row
//! never records the full length before the entry row exists: the last
//! byte, the entry and `completed` commit together.

use chrono::{DateTime, Utc};

use super::limits::NewLimits;
use super::sql::{shared_sql, unsigned, Row};
use super::time::{db_time_to_utc, expiration_from_db};
use crate::ids::{EntryId, GuestLinkId, TusUploadId};
use crate::store::StoreError;

/// A resumable upload as stored.
#[derive(Debug, Clone)]
pub(crate) struct TusUpload {
    /// The ID in its URL.
    pub(crate) id: TusUploadId,
    /// The entry it becomes once complete.
    pub(crate) entry_id: EntryId,
    /// The guest link it was created through (`None` for the owner's).
    pub(crate) guest_link_id: Option<String>,
    /// Declared length (`Upload-Length`).
    pub(crate) length: u64,
    /// Bytes stored so far.
    pub(crate) offset: u64,
    /// Chunk size its chunks are cut to (fixed at creation).
    pub(crate) chunk_size: u64,
    /// Bytes after the last full chunk (`offset % chunk_size` of them).
    pub(crate) tail: Vec<u8>,
    /// The entry's filename.
    pub(crate) filename: String,
    /// The entry's content type.
    pub(crate) content_type: String,
    /// The entry's note.
    pub(crate) note: Option<String>,
    /// The entry's expiration (`None` for never).
    pub(crate) expiration: Option<DateTime<Utc>>,
    /// `Upload-Metadata` as the client sent it.
    pub(crate) metadata: String,
    /// When it was created.
    pub(crate) created: DateTime<Utc>,
    /// When it expires if no more bytes arrive.
    pub(crate) expires: DateTime<Utc>,
    /// Whether the last byte arrived and the entry exists.
    pub(crate) completed: bool,
}

/// What creating a resumable upload needs.
#[derive(Debug, Clone)]
pub(crate) struct NewTusUpload {
    /// Guest link it comes through.
    pub(crate) guest_link_id: Option<GuestLinkId>,
    /// Declared length.
    pub(crate) length: u64,
    /// The entry's filename.
    pub(crate) filename: String,
    /// The entry's content type.
    pub(crate) content_type: String,
    /// The entry's note.
    pub(crate) note: Option<String>,
    /// The entry's expiration.
    pub(crate) expiration: Option<DateTime<Utc>>,
    /// `Upload-Metadata` as sent, without a password.
    pub(crate) metadata: String,
    /// Now.
    pub(crate) created: DateTime<Utc>,
    /// When it expires without progress.
    pub(crate) expires: DateTime<Utc>,
    /// Download limit and password of the entry to be, stored with the row.
    pub(crate) limits: Option<NewLimits>,
}

impl NewTusUpload {
    /// The row of the new upload (fresh IDs, nothing stored yet) whose
    /// chunks or parts have `chunk_size` bytes, and the limits to store
    /// with it.
    pub(crate) fn into_row(self, chunk_size: u64) -> (TusUpload, Option<NewLimits>) {
        let row = TusUpload {
            id: TusUploadId::generate(),
            entry_id: EntryId::generate(),
            guest_link_id: self.guest_link_id.map(|g| g.as_str().to_owned()),
            length: self.length,
            offset: 0,
            chunk_size,
            tail: Vec::new(),
            filename: self.filename,
            content_type: self.content_type,
            note: self.note,
            expiration: self.expiration,
            metadata: self.metadata,
            created: self.created,
            expires: self.expires,
            completed: false,
        };
        (row, self.limits)
    }
}

impl TusUpload {
    /// Reads the columns of [`tus_columns!`], in its order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a malformed ID; a column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<TusUpload, StoreError> {
        let id = r.text(0)?;
        let entry_id = r.text(1)?;
        let (Ok(id), Ok(entry_id)) = (TusUploadId::parse(&id), EntryId::parse(&entry_id)) else {
            return Err(StoreError::Corrupt(format!(
                "resumable upload {id:?} has a malformed ID"
            )));
        };
        Ok(TusUpload {
            id,
            entry_id,
            guest_link_id: r.opt_text(2)?,
            length: unsigned(r.int(3)?),
            offset: unsigned(r.int(4)?),
            chunk_size: unsigned(r.int(5)?).max(1),
            tail: r.opt_bytes(6)?.unwrap_or_default(),
            filename: r.text(7)?,
            content_type: r.text(8)?,
            note: r.opt_text(9)?,
            expiration: expiration_from_db(r.opt_text(10)?),
            metadata: r.text(11)?,
            created: db_time_to_utc(&r.text(12)?),
            expires: db_time_to_utc(&r.text(13)?),
            completed: r.int(14)? != 0,
        })
    }
}

/// The columns [`TusUpload::decode`] reads, in its order.
macro_rules! tus_columns {
    () => {
        "id, entry_id, guest_link_id, upload_length, upload_offset, chunk_size, tail, filename,
         content_type, note, expiration_time, metadata, created_time, expires_time, completed"
    };
}
pub(crate) use tus_columns;

shared_sql! {
    /// Creates a resumable upload's row (nothing stored yet).
    pub(crate) const INSERT_TUS = "INSERT INTO picoshare_tus_uploads (id, entry_id, guest_link_id,
            upload_length, upload_offset, chunk_size, tail, filename, content_type, note,
            expiration_time, metadata, created_time, expires_time, completed)
         VALUES ($1, $2, $3, $4, 0, $5, NULL, $6, $7, $8, $9, $10, $11, $12, 0)";
}
