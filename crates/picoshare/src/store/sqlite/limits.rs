//! Download limits and passwords on SQLite (`picoshare_entry_limits`), and
//! the server's keys (`picoshare_server_keys`).
//!
//! Reservations of downloads in progress are the row's `reserved` column,
//! changed by writer jobs: the writer runs one job at a time, so a decision
//! and the reservation it leads to are one step. They are not made durable,
//! and are reset at start-up (nothing is being downloaded then).

use std::collections::HashMap;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

use super::{query_all, query_opt, SqliteStore};
use crate::ids::EntryId;
use crate::store::model::entries::ENTRY_EXISTS;
use crate::store::model::limits::{CHANGE_LIMITS, SERVER_KEY};
use crate::store::model::{Change, EntryLimits, NewLimits, Reservation};
use crate::store::StoreError;

/// An entry's limits with the downloads in progress ([`EntryLimits::decode`]).
pub(super) const ENTRY_LIMITS: &str =
    "SELECT max_downloads, downloads_used, reserved, password_hash
     FROM picoshare_entry_limits WHERE entry_id = ?1";

/// Stores an entry's limits (with its row or its resumable upload's row).
pub(super) fn insert(conn: &Connection, entry_id: &str, l: &NewLimits) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO picoshare_entry_limits
            (entry_id, max_downloads, downloads_used, reserved, password_hash)
         VALUES (?1, ?2, 0, 0, ?3)",
        params![entry_id, l.max_downloads.map(|m| m as i64), l.password_hash],
    )?;
    Ok(())
}

/// Deletes the limits of entries that are gone (deleted, expired, or never
/// completed). Limits are written with their entry row or their resumable
/// upload's row, so this never races an upload.
pub(super) fn delete_orphans(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM picoshare_entry_limits
         WHERE entry_id NOT IN (SELECT id FROM entries)
           AND entry_id NOT IN (SELECT entry_id FROM picoshare_tus_uploads)",
        [],
    )
}

/// Forgets every reservation (at start-up).
pub(super) fn reset_reservations(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE picoshare_entry_limits SET reserved = 0 WHERE reserved <> 0",
        [],
    )?;
    Ok(())
}

impl SqliteStore {
    /// An entry's limits, `None` if it has none.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn entry_limits(
        &self,
        id: &EntryId,
    ) -> Result<Option<EntryLimits>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            query_opt(conn, ENTRY_LIMITS, [id.as_str()], |r| {
                EntryLimits::decode(r)
            })
        })
        .await
    }

    /// The limits of every entry that has some, by entry ID.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError> {
        self.read(|conn| {
            let rows = query_all(
                conn,
                "SELECT max_downloads, downloads_used, reserved, password_hash, entry_id
                 FROM picoshare_entry_limits",
                [],
                |r| Ok((r.get::<_, String>(4)?, EntryLimits::decode(r)?)),
            )?;
            Ok(rows.into_iter().collect())
        })
        .await
    }

    /// Changes an entry's download limit and password. Returns whether the
    /// entry exists. A row that ends up limiting nothing is deleted (with its
    /// count of used downloads).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn update_limits(
        &self,
        id: &EntryId,
        max_downloads: Change<u64>,
        password_hash: Change<String>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        let (set_max, max) = max_downloads.assignment();
        let (set_hash, hash) = password_hash.assignment();
        self.write(move |conn| {
            let exists = conn
                .query_row(ENTRY_EXISTS.sqlite(), [id.as_str()], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR IGNORE INTO picoshare_entry_limits (entry_id) VALUES (?1)",
                [id.as_str()],
            )?;
            conn.execute(
                CHANGE_LIMITS.sqlite(),
                params![id.as_str(), set_max, max.map(|m| m as i64), set_hash, hash],
            )?;
            conn.execute(
                "DELETE FROM picoshare_entry_limits WHERE entry_id = ?1
                    AND max_downloads IS NULL AND password_hash IS NULL AND reserved = 0",
                [id.as_str()],
            )?;
            Ok(true)
        })
        .await
    }

    /// Takes one of an entry's remaining downloads for a full download that
    /// is about to start. Runs on the writer, so it is atomic with every other
    /// reservation. Not made durable: reservations are reset at start-up.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError> {
        let id = id.clone();
        let job = move |conn: &Connection| {
            let limits = query_opt(conn, ENTRY_LIMITS, [id.as_str()], |r| {
                EntryLimits::decode(r)
            })?;
            let decision = limits.map_or(Reservation::Unlimited, |l| l.reservation());
            if decision == Reservation::Reserved {
                conn.execute(
                    "UPDATE picoshare_entry_limits SET reserved = reserved + 1 WHERE entry_id = ?1",
                    [id.as_str()],
                )?;
            }
            Ok(decision)
        };
        self.inner.writer.exec(job, false).await
    }

    /// Turns a reserved download into a used one, in a durable commit.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn count_download(&self, id: &EntryId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            end_reservation(conn, &id, true)?;
            super::hooks::download_counted(conn, &id)
        })
        .await
    }

    /// Releases a reserved download. Fire-and-forget, not durable
    /// (reservations are reset at start-up).
    pub(crate) fn release_download(&self, id: &EntryId) {
        let id = id.clone();
        let store = self.clone();
        crate::store::detached(
            "release a limited download",
            async move {
                store
                    .inner
                    .writer
                    .exec(move |conn| Ok(end_reservation(conn, &id, false)?), false)
                    .await
            },
            None,
        );
    }

    /// The server's key called `name`, created (32 random bytes) on first use.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        let read = move |conn: &Connection| -> rusqlite::Result<Option<Vec<u8>>> {
            conn.query_row(SERVER_KEY.sqlite(), [name], |r| r.get(0))
                .optional()
        };
        if let Some(k) = self.read(move |conn| Ok(read(conn)?)).await? {
            return Ok(k);
        }
        let mut fresh = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO picoshare_server_keys (name, value) VALUES (?1, ?2)",
                params![name, fresh],
            )?;
            Ok(conn.query_row(SERVER_KEY.sqlite(), [name], |r| r.get(0))?)
        })
        .await
    }
}

/// Ends one reservation of `id`: with `used`, it becomes a used download.
fn end_reservation(conn: &Connection, id: &EntryId, used: bool) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE picoshare_entry_limits
         SET reserved = max(reserved - 1, 0), downloads_used = downloads_used + ?2
         WHERE entry_id = ?1",
        params![id.as_str(), i64::from(used)],
    )?;
    Ok(())
}
