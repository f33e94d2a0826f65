//! Shares on SQLite (`picoshare_shares`, `picoshare_share_entries`); each
//! file's size comes from its chunk rows, as for a single entry.

use rusqlite::{params, Connection, OptionalExtension};

use super::{query_all, SqliteStore};
use crate::ids::ShareId;
use crate::store::model::entries::ENTRY_EXISTS;
use crate::store::model::shares::{
    DELETE_SHARE, DELETE_SHARE_IF_EMPTY, INSERT_SHARE, INSERT_SHARE_ENTRY, LEAVE_SHARES, SHARE,
    SHARES_OF_ENTRY, SHARE_IDS,
};
use crate::store::model::time::db_time;
use crate::store::model::{CreateOutcome, NewShare, Share, ShareFile};
use crate::store::StoreError;

/// A share's files in order ([`ShareFile::decode`]).
const SHARE_FILES: &str = "SELECT se.path, e.id, e.filename, e.content_type, e.upload_time,
        e.expiration_time, e.note, e.guest_link_id,
        (SELECT sum(length(chunk)) FROM entries_data d WHERE d.id = e.id),
        (SELECT length(chunk) FROM entries_data d WHERE d.id = e.id AND d.chunk_index = 0)
     FROM picoshare_share_entries se JOIN entries e ON e.id = se.entry_id
     WHERE se.share_id = ?1 ORDER BY se.position";

fn insert(conn: &Connection, id: &ShareId, share: &NewShare) -> Result<CreateOutcome, StoreError> {
    for (entry, _) in &share.files {
        let exists = conn
            .query_row(ENTRY_EXISTS.sqlite(), [entry.as_str()], |_| Ok(()))
            .optional()?;
        if exists.is_none() {
            return Ok(CreateOutcome::UnknownEntry(entry.clone()));
        }
    }
    conn.execute(
        INSERT_SHARE.sqlite(),
        params![id.as_str(), share.title, db_time(share.created), share.note],
    )?;
    let mut stmt = conn.prepare_cached(INSERT_SHARE_ENTRY.sqlite())?;
    for (i, (entry, path)) in share.files.iter().enumerate() {
        stmt.execute(params![id.as_str(), entry.as_str(), i as i64, path])?;
    }
    Ok(CreateOutcome::Created(id.clone()))
}

/// Deletes the share rows of entries that no longer exist, and the shares
/// left without entries. Returns the number of shares deleted.
pub(super) fn delete_orphans(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM picoshare_share_entries WHERE entry_id NOT IN (SELECT id FROM entries)",
        [],
    )?;
    conn.execute(
        "DELETE FROM picoshare_shares
         WHERE id NOT IN (SELECT share_id FROM picoshare_share_entries)",
        [],
    )
}

/// Takes an entry out of every share (it is being deleted), and deletes the
/// shares it was the last entry of. Returns how many shares it deleted.
pub(super) fn leave_shares(conn: &Connection, entry_id: &str) -> Result<usize, StoreError> {
    let shares: Vec<String> = conn
        .prepare_cached(SHARES_OF_ENTRY.sqlite())?
        .query_map([entry_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.execute(LEAVE_SHARES.sqlite(), [entry_id])?;
    let mut deleted = 0;
    for share in shares {
        deleted += conn.execute(DELETE_SHARE_IF_EMPTY.sqlite(), [share])?;
    }
    Ok(deleted)
}

fn load(conn: &Connection, id: &str) -> Result<Option<Share>, StoreError> {
    let mut stmt = conn.prepare_cached(SHARE.sqlite())?;
    let mut rows = stmt.query([id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let files = query_all(conn, SHARE_FILES, [id], |r| ShareFile::decode(r))?;
    Share::decode(id, row, files.into_iter().flatten().collect()).map(Some)
}

impl SqliteStore {
    /// Creates a share of existing entries (all or nothing).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError> {
        let id = ShareId::generate();
        self.write(move |conn| insert(conn, &id, &share)).await
    }

    /// A share and its files that still exist, if the share does.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError> {
        let id = id.clone();
        self.read(move |conn| load(conn, id.as_str())).await
    }

    /// Every share, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn shares(&self) -> Result<Vec<Share>, StoreError> {
        self.read(|conn| {
            let ids = query_all(conn, SHARE_IDS.sqlite(), [], |r| Ok(r.get::<_, String>(0)?))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(load(conn, &id)?);
            }
            Ok(out)
        })
        .await
    }

    /// Deletes a share; with `with_files`, its entries too (with their data,
    /// download history and limits, and from any other share). Returns
    /// whether the share existed.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn delete_share(
        &self,
        id: &ShareId,
        with_files: bool,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let found = self
            .write(move |conn| {
                let entries: Vec<String> = conn
                    .prepare_cached(
                        "SELECT entry_id FROM picoshare_share_entries WHERE share_id = ?1",
                    )?
                    .query_map([id.as_str()], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                conn.execute(
                    "DELETE FROM picoshare_share_entries WHERE share_id = ?1",
                    [id.as_str()],
                )?;
                let found = conn.execute(DELETE_SHARE.sqlite(), [id.as_str()])? > 0;
                if with_files {
                    for entry in &entries {
                        super::entries::delete_entry_rows(conn, entry)?;
                    }
                }
                Ok(found)
            })
            .await?;
        if with_files {
            self.space_freed();
        }
        Ok(found)
    }
}
