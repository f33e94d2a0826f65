//! What the admin pages report: an entry's download history, the file list
//! with sizes and download counts, and how much space the store uses; and how
//! the rows of the first two read.

use chrono::{DateTime, Utc};

use super::sql::{unsigned, Row};
use super::time::{db_time_to_utc, expiration_from_db};
use crate::store::StoreError;

/// One download of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// When (UTC, whole seconds).
    pub time: DateTime<Utc>,
    /// The client's IP as recorded (empty if the row has none).
    pub client_ip: String,
    /// The full User-Agent header (empty if there was none).
    pub user_agent: String,
}

/// An entry as the file list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    /// Its ID.
    pub id: String,
    /// Filename.
    pub filename: String,
    /// Content type as uploaded (may be empty).
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time.
    pub upload_time: DateTime<Utc>,
    /// Expiration, `None` if it never expires.
    pub expiration: Option<DateTime<Utc>>,
    /// Owner's note.
    pub note: Option<String>,
    /// Guest link it came through.
    pub guest_link_id: Option<String>,
    /// Number of recorded downloads.
    pub downloads: u64,
}

/// Space used by the store and free on its filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageUsage {
    /// Size of the filesystem holding the database.
    pub fs_total: u64,
    /// Bytes in use on that filesystem, by anyone.
    pub fs_used: u64,
    /// Bytes an unprivileged process can still write there.
    pub fs_free: u64,
    /// The database file plus its `-wal` and `-shm` files.
    pub database: u64,
    /// Sum of the sizes of all entries.
    pub stored_files: u64,
    /// Free pages inside the database file: space that deleted files left
    /// behind, reused by new uploads before the file grows again.
    pub reclaimable: u64,
    /// Whether the file data is on this server's filesystem (the `fs_*`
    /// figures are then that filesystem's). Object storage has no fixed
    /// capacity: its `fs_*` figures are 0.
    pub local_disk: bool,
}

/// The database's size on disk and its free pages, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSpace {
    /// The database file plus its `-wal` and `-shm` files.
    pub database: u64,
    /// Free pages inside the database file.
    pub reclaimable: u64,
}

impl Download {
    /// Reads `download_timestamp, client_ip, user_agent`.
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<Download, StoreError> {
        Ok(Download {
            time: db_time_to_utc(&r.text(0)?),
            client_ip: r.opt_text(1)?.unwrap_or_default(),
            user_agent: r.opt_text(2)?.unwrap_or_default(),
        })
    }
}

impl EntrySummary {
    /// Reads `id, filename, content_type, upload_time, expiration_time,
    /// note, guest_link_id, size, downloads`.
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<EntrySummary, StoreError> {
        Ok(EntrySummary {
            id: r.text(0)?,
            filename: r.text(1)?,
            content_type: r.text(2)?,
            upload_time: db_time_to_utc(&r.text(3)?),
            expiration: expiration_from_db(r.opt_text(4)?),
            note: r.opt_text(5)?,
            guest_link_id: r.opt_text(6)?.filter(|g| !g.is_empty()),
            size: unsigned(r.int(7)?),
            downloads: unsigned(r.int(8)?),
        })
    }
}
