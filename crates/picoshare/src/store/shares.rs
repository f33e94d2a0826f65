//! Shares: several entries behind one link (`picoshare_shares`,
//! `picoshare_share_entries`).
//!
//! A share only groups entries: each stays an ordinary entry with its own
//! data, limits and link. A share's row for an entry is deleted with the
//! entry (and by garbage collection for entries that expired), and a share
//! left without entries goes with its last one.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{db_time_to_utc, expiration_from_db, limits, Entry, SqliteStore, StoreError};
use crate::ids::{EntryId, ShareId};
use crate::validate::db_time;

/// A new share, already validated.
#[derive(Debug, Clone)]
pub struct NewShare {
    /// Title shown on the share page, if any.
    pub title: Option<String>,
    /// The owner's note, if any.
    pub note: Option<String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// The entries in order, each with its relative path (from a folder upload).
    pub files: Vec<(EntryId, Option<String>)>,
}

/// One file of a share.
#[derive(Debug, Clone)]
pub struct ShareFile {
    /// The entry (metadata and size).
    pub entry: Entry,
    /// Its relative path inside the share, if it came from a folder.
    pub path: Option<String>,
}

/// A share with its files that still exist, in order.
#[derive(Debug, Clone)]
pub struct Share {
    /// Its ID.
    pub id: ShareId,
    /// Title, if any.
    pub title: Option<String>,
    /// The owner's note, if any.
    pub note: Option<String>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// Its files (expired ones included: callers decide).
    pub files: Vec<ShareFile>,
}

/// Why a share could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created with this ID.
    Created(ShareId),
    /// An entry does not exist.
    UnknownEntry(EntryId),
}

fn insert(conn: &Connection, id: &ShareId, share: &NewShare) -> Result<CreateOutcome, StoreError> {
    for (entry, _) in &share.files {
        let exists = conn
            .query_row(
                "SELECT 1 FROM entries WHERE id = ?1",
                [entry.as_str()],
                |_| Ok(()),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(CreateOutcome::UnknownEntry(entry.clone()));
        }
    }
    conn.execute(
        "INSERT INTO picoshare_shares (id, title, created_time, note) VALUES (?1, ?2, ?3, ?4)",
        params![id.as_str(), share.title, db_time(share.created), share.note],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO picoshare_share_entries (share_id, entry_id, position, path)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
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

/// Removes an entry from every share (it is being deleted), and the shares
/// it was the last entry of.
pub(super) fn delete_for_entry(conn: &Connection, entry_id: &str) -> rusqlite::Result<()> {
    let shares: Vec<String> = conn
        .prepare_cached("SELECT share_id FROM picoshare_share_entries WHERE entry_id = ?1")?
        .query_map([entry_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.execute(
        "DELETE FROM picoshare_share_entries WHERE entry_id = ?1",
        [entry_id],
    )?;
    for share in shares {
        conn.execute(
            "DELETE FROM picoshare_shares WHERE id = ?1
             AND NOT EXISTS (SELECT 1 FROM picoshare_share_entries WHERE share_id = ?1)",
            [share],
        )?;
    }
    Ok(())
}

fn load(conn: &Connection, id: &str) -> Result<Option<Share>, StoreError> {
    let row = conn
        .query_row(
            "SELECT title, note, created_time FROM picoshare_shares WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((title, note, created)) = row else {
        return Ok(None);
    };
    let Ok(share_id) = ShareId::parse(id) else {
        return Err(StoreError::Corrupt(format!("share ID {id:?}")));
    };
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, se.path, e.filename, e.content_type, e.upload_time, e.expiration_time,
            e.note, e.guest_link_id,
            (SELECT sum(length(chunk)) FROM entries_data d WHERE d.id = e.id),
            (SELECT length(chunk) FROM entries_data d WHERE d.id = e.id AND d.chunk_index = 0)
         FROM picoshare_share_entries se JOIN entries e ON e.id = se.entry_id
         WHERE se.share_id = ?1 ORDER BY se.position",
    )?;
    let mut rows = stmt.query([id])?;
    let mut files = Vec::new();
    while let Some(r) = rows.next()? {
        let entry_id: String = r.get(0)?;
        let (Some(size), Some(chunk)) = (r.get::<_, Option<i64>>(8)?, r.get::<_, Option<i64>>(9)?)
        else {
            continue;
        };
        let Ok(entry_id) = EntryId::parse(&entry_id) else {
            continue;
        };
        let upload: String = r.get(4)?;
        let guest: Option<String> = r.get(7)?;
        files.push(ShareFile {
            path: r.get(1)?,
            entry: Entry {
                id: entry_id,
                filename: r.get(2)?,
                content_type: r.get(3)?,
                upload_time: db_time_to_utc(&upload),
                expiration: expiration_from_db(r.get(5)?),
                note: r.get(6)?,
                guest_link_id: guest.filter(|g| !g.is_empty()),
                size: size as u64,
                chunk_size: chunk as u64,
            },
        });
    }
    Ok(Some(Share {
        id: share_id,
        title,
        note,
        created: db_time_to_utc(&created),
        files,
    }))
}

impl SqliteStore {
    /// Creates a share of existing entries (all or nothing).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError> {
        let id = ShareId::generate();
        self.write(move |conn| insert(conn, &id, &share)).await
    }

    /// A share and its files that still exist, if the share does.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError> {
        let id = id.clone();
        self.read(move |conn| load(conn, id.as_str())).await
    }

    /// Every share, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn shares(&self) -> Result<Vec<Share>, StoreError> {
        self.read(|conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT id FROM picoshare_shares ORDER BY created_time DESC, id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(share) = load(conn, &id)? {
                    out.push(share);
                }
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
    pub async fn delete_share(&self, id: &ShareId, with_files: bool) -> Result<bool, StoreError> {
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
                let found =
                    conn.execute("DELETE FROM picoshare_shares WHERE id = ?1", [id.as_str()])? > 0;
                if with_files {
                    for entry in &entries {
                        conn.execute("DELETE FROM downloads WHERE entry_id = ?1", [entry])?;
                        conn.execute("DELETE FROM entries_data WHERE id = ?1", [entry])?;
                        conn.execute("DELETE FROM entries WHERE id = ?1", [entry])?;
                        limits::delete_for_entry(conn, entry)?;
                        delete_for_entry(conn, entry)?;
                    }
                }
                Ok(found)
            })
            .await?;
        if with_files {
            self.inner
                .shared
                .vacuum_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(found)
    }
}
