//! Entries (stored files): their metadata, the download history rows, and
//! the statements both backends run on them.
//!
//! Deleting an entry deletes everything that hangs off it, in one
//! transaction: its download history, its limits, its places in shares (and
//! a share it was the last entry of, see [`super::shares`]), and its bytes
//! (chunk rows in SQLite; in the scale-out store the object is queued for
//! deletion in the same transaction).

use chrono::{DateTime, Utc};

use super::limits::NewLimits;
use super::sql::{shared_sql, unsigned, Row};
use super::time::{db_time_to_utc, expiration_from_db};
use crate::ids::EntryId;
use crate::store::StoreError;

/// Metadata of a stored file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its ID.
    pub(crate) id: EntryId,
    /// Filename shown to downloaders.
    pub(crate) filename: String,
    /// Content type as uploaded (may be empty).
    pub(crate) content_type: String,
    /// Upload time (UTC, whole seconds).
    pub(crate) upload_time: DateTime<Utc>,
    /// Expiration, `None` if it never expires.
    pub(crate) expiration: Option<DateTime<Utc>>,
    /// Owner's note.
    pub(crate) note: Option<String>,
    /// Guest link it came through.
    pub(crate) guest_link_id: Option<String>,
    /// Total size in bytes.
    pub(crate) size: u64,
    /// Size of every chunk (SQLite) or part (object storage) but the last.
    pub(crate) chunk_size: u64,
    /// A download's hold on the version of the content it looked up, so that
    /// a replacement does not free it while the download reads it: on SQLite
    /// a pin (`sqlite/content.rs`), taken for downloads only (`None`
    /// elsewhere); on the scale-out store the key of the object it was read
    /// with, held by every entry read (`remote/replace.rs`).
    pub(crate) pin: Option<ContentPin>,
}

/// A backend's hold on one version of a file's content, released when the
/// last clone of its [`Entry`] is dropped.
pub(crate) type ContentPin = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// What replacing a file's content changes besides its bytes (the size
/// follows from them).
#[derive(Debug, Clone)]
pub(crate) struct Replacement {
    /// The new filename, or `None` to keep the entry's.
    pub(crate) filename: Option<String>,
    /// The new content's type.
    pub(crate) content_type: String,
    /// When the replacement is made. The entry's upload time becomes this,
    /// or one second after the old one if that is later, so that it always
    /// moves forward (`Last-Modified`, the `ETag`, and the version a
    /// download reads are taken from it).
    pub(crate) now: DateTime<Utc>,
}

impl Entry {
    /// Whether it has expired at `now` (at its expiration time, not after):
    /// from then on it is neither downloaded, shown, nor zipped, until garbage
    /// collection deletes it.
    pub(crate) fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration.is_some_and(|t| t <= now)
    }

    /// Reads an entry from nine columns starting at `at`: `id, filename,
    /// content_type, upload_time, expiration_time, note, guest_link_id,
    /// size, chunk_size`. `None` when the size or chunk size is NULL: an
    /// entry without any data is treated as missing, as in the original.
    ///
    /// # Errors
    /// A malformed ID, or a column of the wrong type.
    pub(crate) fn decode(r: &impl Row, at: usize) -> Result<Option<Entry>, StoreError> {
        let (Some(size), Some(chunk_size)) = (r.opt_int(at + 7)?, r.opt_int(at + 8)?) else {
            return Ok(None);
        };
        let id = r.text(at)?;
        let id = EntryId::parse(&id)
            .map_err(|e| StoreError::Corrupt(format!("entry ID {id:?}: {e}")))?;
        Ok(Some(Entry {
            id,
            filename: r.text(at + 1)?,
            content_type: r.text(at + 2)?,
            upload_time: db_time_to_utc(&r.text(at + 3)?),
            expiration: expiration_from_db(r.opt_text(at + 4)?),
            note: r.opt_text(at + 5)?,
            guest_link_id: r.opt_text(at + 6)?.filter(|g| !g.is_empty()),
            size: unsigned(size),
            chunk_size: unsigned(chunk_size).max(1),
            pin: None,
        }))
    }
}

/// A new entry's metadata, written when its upload completes.
#[derive(Debug, Clone)]
pub(crate) struct NewEntry {
    /// Filename.
    pub(crate) filename: String,
    /// Content type, verbatim from the client.
    pub(crate) content_type: String,
    /// Upload time.
    pub(crate) upload_time: DateTime<Utc>,
    /// Expiration, `None` for never.
    pub(crate) expiration: Option<DateTime<Utc>>,
    /// Note.
    pub(crate) note: Option<String>,
    /// Guest link.
    pub(crate) guest_link_id: Option<String>,
    /// Download limit and password, stored with the entry row.
    pub(crate) limits: Option<NewLimits>,
}

/// One row of download history.
#[derive(Debug, Clone)]
pub(crate) struct DownloadRecord {
    /// Entry downloaded.
    pub(crate) entry_id: EntryId,
    /// When.
    pub(crate) time: DateTime<Utc>,
    /// Client IP.
    pub(crate) client_ip: String,
    /// Client User-Agent.
    pub(crate) user_agent: String,
}

shared_sql! {
    /// Whether entry `$1` exists.
    pub(crate) const ENTRY_EXISTS = "SELECT 1 FROM entries WHERE id = $1";
    /// Changes entry `$1`'s filename, expiration and note.
    pub(crate) const UPDATE_ENTRY =
        "UPDATE entries SET filename = $2, expiration_time = $3, note = $4 WHERE id = $1";
    /// Records a download ([`DownloadRecord`]).
    pub(crate) const INSERT_DOWNLOAD =
        "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
         VALUES ($1, $2, $3, $4)";
    /// Deletes entry `$1`'s download history (part of deleting it).
    pub(crate) const DELETE_DOWNLOADS = "DELETE FROM downloads WHERE entry_id = $1";
    /// Deletes entry `$1`'s row (part of deleting it).
    pub(crate) const DELETE_ENTRY = "DELETE FROM entries WHERE id = $1";
}
