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

/// A replacement of an entry's content, as its history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplacementRecord {
    /// When the content was replaced.
    pub(crate) time: DateTime<Utc>,
    /// The name and size before.
    pub(crate) old_filename: String,
    pub(crate) old_size: u64,
    /// The name and size after.
    pub(crate) new_filename: String,
    pub(crate) new_size: u64,
}

impl ReplacementRecord {
    /// Reads the columns of [`REPLACEMENTS`].
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<ReplacementRecord, StoreError> {
        Ok(ReplacementRecord {
            time: db_time_to_utc(&r.text(0)?),
            old_filename: r.text(1)?,
            old_size: unsigned(r.int(2)?),
            new_filename: r.text(3)?,
            new_size: unsigned(r.int(4)?),
        })
    }
}

super::sql::shared_sql! {
    /// Entry `$1`'s replacements, newest first (the old upload times order
    /// two made in one second).
    pub(crate) const REPLACEMENTS =
        "SELECT replaced_time, old_filename, old_size, new_filename, new_size
         FROM picoshare_replacements WHERE entry_id = $1
         ORDER BY replaced_time DESC, old_upload_time DESC";
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

/// The column the file list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum EntrySort {
    /// Upload time (the default, newest first).
    #[default]
    Uploaded,
    /// Filename, ignoring the case of ASCII letters.
    Filename,
    /// Size in bytes.
    Size,
    /// Expiration time; files that never expire come last.
    Expires,
}

impl EntrySort {
    /// Reads the `sort` parameter (`uploaded`, `filename`, `size`, `expires`).
    pub(crate) fn parse(raw: &str) -> Option<EntrySort> {
        Some(match raw {
            "uploaded" => EntrySort::Uploaded,
            "filename" => EntrySort::Filename,
            "size" => EntrySort::Size,
            "expires" => EntrySort::Expires,
            _ => return None,
        })
    }

    /// Its name in URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EntrySort::Uploaded => "uploaded",
            EntrySort::Filename => "filename",
            EntrySort::Size => "size",
            EntrySort::Expires => "expires",
        }
    }
}

/// Which part of the file list to read: a filter, an order and a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryQuery {
    /// The sort column.
    pub(crate) sort: EntrySort,
    /// Largest (or newest, or last in the alphabet) first.
    pub(crate) descending: bool,
    /// Keep only files whose name contains this, ignoring the case of ASCII
    /// letters (as SQLite's `LIKE` does); empty keeps every file.
    pub(crate) filter: String,
    /// Files to skip, in the order asked for.
    pub(crate) offset: u64,
    /// The most files to return; `None` for all the rest.
    pub(crate) limit: Option<u64>,
}

impl Default for EntryQuery {
    /// Every file, newest upload first (the original's order).
    fn default() -> Self {
        EntryQuery {
            sort: EntrySort::Uploaded,
            descending: true,
            filter: String::new(),
            offset: 0,
            limit: None,
        }
    }
}

/// A window of the file list and how many files match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPage {
    /// The files of the window, in order.
    pub(crate) entries: Vec<EntrySummary>,
    /// Files that match the filter, in all windows.
    pub(crate) total: u64,
}

/// Whether `name` contains `needle`, ignoring the case of ASCII letters
/// only (what SQLite's `LIKE` and `NOCASE` do).
pub(crate) fn contains_ascii_nocase(name: &str, needle: &str) -> bool {
    needle.is_empty()
        || name
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
}

impl EntryQuery {
    /// The query applied to a whole list that is newest upload first (ties
    /// in recording order, newest first): the rule every backend follows,
    /// computed in memory. The SQLite store runs the same rule in SQL with
    /// indexes; the scale-out store reads its list and applies this.
    pub(crate) fn apply(&self, all: Vec<EntrySummary>) -> EntryPage {
        let mut rows: Vec<EntrySummary> = all
            .into_iter()
            .filter(|e| contains_ascii_nocase(&e.filename, &self.filter))
            .collect();
        let total = rows.len() as u64;
        // A stable sort keeps the newest-first order among equal keys, as
        // the SQL's tie-breakers do, whichever direction the key goes.
        let never = "9999".to_owned();
        match self.sort {
            EntrySort::Uploaded => {
                if !self.descending {
                    rows.reverse();
                }
            }
            EntrySort::Filename => rows.sort_by(|a, b| {
                let o = a
                    .filename
                    .to_ascii_lowercase()
                    .cmp(&b.filename.to_ascii_lowercase());
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            }),
            EntrySort::Size => rows.sort_by(|a, b| {
                let o = a.size.cmp(&b.size);
                if self.descending {
                    o.reverse()
                } else {
                    o
                }
            }),
            EntrySort::Expires => {
                let key = |e: &EntrySummary| {
                    e.expiration
                        .map_or_else(|| never.clone(), super::time::db_time)
                };
                rows.sort_by(|a, b| {
                    let o = key(a).cmp(&key(b));
                    if self.descending {
                        o.reverse()
                    } else {
                        o
                    }
                });
            }
        }
        let entries = rows
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(
                self.limit
                    .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)),
            )
            .collect();
        EntryPage { entries, total }
    }
}

/// Which part of an entry's download history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DownloadQuery {
    /// Only the most recent download of each client address.
    pub(crate) unique: bool,
    /// Rows to skip, newest first.
    pub(crate) offset: u64,
    /// The most rows to return; `None` for all the rest.
    pub(crate) limit: Option<u64>,
}

/// A window of a download history and how many rows it has in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DownloadPage {
    /// The rows of the window, newest first.
    pub(crate) rows: Vec<Download>,
    /// Rows in all windows.
    pub(crate) total: u64,
}

/// Keeps the first row of each client address. The rows come newest first,
/// so that is each address's most recent download, as the original's
/// "Unique IPs only".
pub(crate) fn unique_by_ip(rows: Vec<Download>) -> Vec<Download> {
    let mut seen = std::collections::HashSet::new();
    rows.into_iter()
        .filter(|d| seen.insert(d.client_ip.clone()))
        .collect()
}

impl DownloadQuery {
    /// The query applied to a whole history, newest first: the rule the
    /// SQLite store runs in SQL, computed in memory (the scale-out store's
    /// way).
    pub(crate) fn apply(&self, all: Vec<Download>) -> DownloadPage {
        let rows = if self.unique { unique_by_ip(all) } else { all };
        let total = rows.len() as u64;
        let rows = rows
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(
                self.limit
                    .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)),
            )
            .collect();
        DownloadPage { rows, total }
    }
}
