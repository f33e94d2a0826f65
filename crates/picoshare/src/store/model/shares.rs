//! Shares: several entries behind one link (`picoshare_shares`,
//! `picoshare_share_entries`): the types, how their rows read, and the
//! statements both backends run.
//!
//! A share only groups entries: each stays an ordinary entry with its own
//! data, limits and link. A share's row for an entry is deleted with the
//! entry (and by garbage collection for entries that expired), and **a share
//! goes with its last entry**: deleting an entry runs [`SHARES_OF_ENTRY`],
//! [`LEAVE_SHARES`] and then [`DELETE_SHARE_IF_EMPTY`] for each of them.

use chrono::{DateTime, Utc};

use super::entries::Entry;
use super::sql::{shared_sql, Row};
use super::time::db_time_to_utc;
use crate::ids::{EntryId, ShareId};
use crate::store::StoreError;

/// A new share, already validated.
#[derive(Debug, Clone)]
pub(crate) struct NewShare {
    /// Title shown on the share page, if any.
    pub(crate) title: Option<String>,
    /// The owner's note, if any.
    pub(crate) note: Option<String>,
    /// Creation time.
    pub(crate) created: DateTime<Utc>,
    /// The entries in order, each with its relative path (from a folder upload).
    pub(crate) files: Vec<(EntryId, Option<String>)>,
}

/// One file of a share.
#[derive(Debug, Clone)]
pub(crate) struct ShareFile {
    /// The entry (metadata and size).
    pub(crate) entry: Entry,
    /// Its relative path inside the share, if it came from a folder.
    pub(crate) path: Option<String>,
}

impl ShareFile {
    /// Reads `path` and then [`Entry::decode`]'s nine columns. `None` for a
    /// file whose entry has no data or cannot be read: the share shows the
    /// files it can.
    ///
    /// # Errors
    /// A column of the wrong type.
    pub(crate) fn decode(r: &impl Row) -> Result<Option<ShareFile>, StoreError> {
        let entry = match Entry::decode(r, 1) {
            Ok(Some(entry)) => entry,
            Ok(None) | Err(StoreError::Corrupt(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ShareFile {
            entry,
            path: r.opt_text(0)?,
        }))
    }
}

/// A share with its files that still exist, in order.
#[derive(Debug, Clone)]
pub(crate) struct Share {
    /// Its ID.
    pub(crate) id: ShareId,
    /// Title, if any.
    pub(crate) title: Option<String>,
    /// The owner's note, if any.
    pub(crate) note: Option<String>,
    /// When it was created.
    pub(crate) created: DateTime<Utc>,
    /// Its files (expired ones included: callers decide).
    pub(crate) files: Vec<ShareFile>,
}

impl Share {
    /// Reads share `id` from its row of [`SHARE`], with its `files`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a malformed ID; a column of the wrong type.
    pub(crate) fn decode(
        id: &str,
        r: &impl Row,
        files: Vec<ShareFile>,
    ) -> Result<Share, StoreError> {
        let Ok(share_id) = ShareId::parse(id) else {
            return Err(StoreError::Corrupt(format!("share ID {id:?}")));
        };
        Ok(Share {
            id: share_id,
            title: r.opt_text(0)?,
            note: r.opt_text(1)?,
            created: db_time_to_utc(&r.text(2)?),
            files,
        })
    }
}

/// Why a share could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateOutcome {
    /// Created with this ID.
    Created(ShareId),
    /// An entry does not exist.
    UnknownEntry(EntryId),
}

shared_sql! {
    /// Share `$1`'s own row ([`Share::decode`]).
    pub(crate) const SHARE = "SELECT title, note, created_time FROM picoshare_shares WHERE id = $1";
    /// Every share's ID, newest first.
    pub(crate) const SHARE_IDS = "SELECT id FROM picoshare_shares ORDER BY created_time DESC, id";
    /// Creates a share's row.
    pub(crate) const INSERT_SHARE =
        "INSERT INTO picoshare_shares (id, title, created_time, note) VALUES ($1, $2, $3, $4)";
    /// Adds entry `$2` to share `$1` at position `$3`, with relative path `$4`.
    pub(crate) const INSERT_SHARE_ENTRY =
        "INSERT INTO picoshare_share_entries (share_id, entry_id, position, path)
         VALUES ($1, $2, $3, $4)";
    /// The shares entry `$1` is in.
    pub(crate) const SHARES_OF_ENTRY =
        "SELECT DISTINCT share_id FROM picoshare_share_entries WHERE entry_id = $1";
    /// Takes entry `$1` out of every share (it is being deleted).
    pub(crate) const LEAVE_SHARES = "DELETE FROM picoshare_share_entries WHERE entry_id = $1";
    /// Deletes share `$1` if it has no entry left.
    pub(crate) const DELETE_SHARE_IF_EMPTY = "DELETE FROM picoshare_shares WHERE id = $1
         AND NOT EXISTS (SELECT 1 FROM picoshare_share_entries WHERE share_id = $1)";
    /// Deletes share `$1`'s own row.
    pub(crate) const DELETE_SHARE = "DELETE FROM picoshare_shares WHERE id = $1";
}
