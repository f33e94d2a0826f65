//! What the admin pages report: an entry's download history, the file list
//! with sizes and download counts, and how much space the store uses; and how
//! the rows of the first two read.

use chrono::{DateTime, Utc};

use super::sql::{unsigned, Row};
use super::time::{db_time_to_utc, expiration_from_db};
use crate::store::StoreError;

/// One download of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Download {
    /// When (UTC, whole seconds).
    pub(crate) time: DateTime<Utc>,
    /// The client's IP as recorded (empty if the row has none).
    pub(crate) client_ip: String,
    /// The full User-Agent header (empty if there was none).
    pub(crate) user_agent: String,
}

/// An entry as the file list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySummary {
    /// Its ID.
    pub(crate) id: String,
    /// Filename.
    pub(crate) filename: String,
    /// Content type as uploaded (may be empty).
    pub(crate) content_type: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Upload time.
    pub(crate) upload_time: DateTime<Utc>,
    /// Expiration, `None` if it never expires.
    pub(crate) expiration: Option<DateTime<Utc>>,
    /// Owner's note.
    pub(crate) note: Option<String>,
    /// Guest link it came through.
    pub(crate) guest_link_id: Option<String>,
    /// Number of recorded downloads.
    pub(crate) downloads: u64,
}

/// Space used by the store and free on its filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorageUsage {
    /// Size of the filesystem holding the database.
    pub(crate) fs_total: u64,
    /// Bytes in use on that filesystem, by anyone.
    pub(crate) fs_used: u64,
    /// Bytes an unprivileged process can still write there.
    pub(crate) fs_free: u64,
    /// The database file plus its `-wal` and `-shm` files.
    pub(crate) database: u64,
    /// Sum of the sizes of all entries.
    pub(crate) stored_files: u64,
    /// Free pages inside the database file: space that deleted files left
    /// behind, reused by new uploads before the file grows again.
    pub(crate) reclaimable: u64,
    /// Whether the file data is on this server's filesystem (the `fs_*`
    /// figures are then that filesystem's). Object storage has no fixed
    /// capacity: its `fs_*` figures are 0.
    pub(crate) local_disk: bool,
}

/// The database's size on disk and its free pages, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DatabaseSpace {
    /// The database file plus its `-wal` and `-shm` files.
    pub(crate) database: u64,
    /// Free pages inside the database file.
    pub(crate) reclaimable: u64,
}

/// A client address as the original records it: an IPv4-mapped IPv6
/// address (`::ffff:192.0.2.9`, what a dual-stack listener reports for an
/// IPv4 client) as the IPv4 address it maps; anything else (another address,
/// or what a proxy puts in an address's place, like `unknown`) unchanged.
pub(crate) fn plain_ip(text: &str) -> String {
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => text.to_owned(),
    }
}

impl Download {
    /// Reads `download_timestamp, client_ip, user_agent`. An IPv4-mapped
    /// address that an earlier version recorded reads as plain IPv4
    /// ([`plain_ip`]), so that one client is one address in the history.
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<Download, StoreError> {
        Ok(Download {
            time: db_time_to_utc(&r.text(0)?),
            client_ip: plain_ip(&r.opt_text(1)?.unwrap_or_default()),
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
