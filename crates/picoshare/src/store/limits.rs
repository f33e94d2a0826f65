//! Download limits and passwords of entries (`picoshare_entry_limits`), and the
//! server's own keys (`picoshare_server_keys`).
//!
//! A limited entry counts its completed full downloads in `downloads_used`.
//! A full download first *reserves* one of the remaining downloads (a writer
//! job, so two requests can never both take the last one), and when it ends
//! either turns the reservation into a used download (the whole body was sent)
//! or releases it (the transfer stopped early).

use std::collections::HashMap;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

use super::{SqliteStore, StoreError};
use crate::ids::EntryId;

/// A new entry's download limit and password hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLimits {
    /// Full downloads allowed, `None` for no limit.
    pub max_downloads: Option<u64>,
    /// Argon2id PHC string of the password, `None` for no password.
    pub password_hash: Option<String>,
}

impl NewLimits {
    /// `Some(self)` unless it limits nothing.
    pub fn if_any(self) -> Option<Self> {
        (self.max_downloads.is_some() || self.password_hash.is_some()).then_some(self)
    }
}

/// An entry's limits and their state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryLimits {
    /// Full downloads allowed, `None` for no limit.
    pub max_downloads: Option<u64>,
    /// Full downloads completed.
    pub downloads_used: u64,
    /// Full downloads in progress (each holds one of the remaining ones).
    pub reserved: u64,
    /// Argon2id PHC string of the password, if the entry has one.
    pub password_hash: Option<String>,
}

impl EntryLimits {
    /// Whether every allowed download has been used.
    pub fn used_up(&self) -> bool {
        self.max_downloads.is_some_and(|m| self.downloads_used >= m)
    }
}

/// The outcome of asking to start a full download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The entry has no download limit: nothing to count.
    Unlimited,
    /// One remaining download is now held by this request.
    Reserved,
    /// Every allowed download has been used.
    UsedUp,
    /// The remaining downloads are all held by downloads in progress.
    Busy,
}

/// A change to one limit: keep it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave as it is.
    Keep,
    /// Remove.
    Clear,
    /// Set to this value.
    Set(T),
}

pub(super) fn insert(conn: &Connection, entry_id: &str, l: &NewLimits) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO picoshare_entry_limits
            (entry_id, max_downloads, downloads_used, reserved, password_hash)
         VALUES (?1, ?2, 0, 0, ?3)",
        params![entry_id, l.max_downloads.map(|m| m as i64), l.password_hash],
    )?;
    Ok(())
}

pub(super) fn delete_for_entry(conn: &Connection, entry_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM picoshare_entry_limits WHERE entry_id = ?1",
        [entry_id],
    )?;
    Ok(())
}

pub(super) fn delete_orphans(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM picoshare_entry_limits
         WHERE entry_id NOT IN (SELECT id FROM entries)
           AND entry_id NOT IN (SELECT entry_id FROM picoshare_tus_uploads)",
        [],
    )
}

pub(super) fn reset_reservations(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE picoshare_entry_limits SET reserved = 0 WHERE reserved <> 0",
        [],
    )?;
    Ok(())
}

fn load(conn: &Connection, entry_id: &str) -> rusqlite::Result<Option<EntryLimits>> {
    conn.query_row(
        "SELECT max_downloads, downloads_used, reserved, password_hash
         FROM picoshare_entry_limits WHERE entry_id = ?1",
        [entry_id],
        from_row,
    )
    .optional()
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntryLimits> {
    Ok(EntryLimits {
        max_downloads: r.get::<_, Option<i64>>(0)?.map(|m| m.max(1) as u64),
        downloads_used: r.get::<_, i64>(1)?.max(0) as u64,
        reserved: r.get::<_, i64>(2)?.max(0) as u64,
        password_hash: r.get(3)?,
    })
}

impl SqliteStore {
    /// An entry's limits, `None` if it has none.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn entry_limits(&self, id: &EntryId) -> Result<Option<EntryLimits>, StoreError> {
        let id = id.clone();
        self.read(move |conn| Ok(load(conn, id.as_str())?)).await
    }

    /// The limits of every entry that has some, by entry ID.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT max_downloads, downloads_used, reserved, password_hash, entry_id
                 FROM picoshare_entry_limits",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(4)?, from_row(r)?)))?
                .collect::<Result<HashMap<_, _>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Changes an entry's download limit and password. Returns whether the
    /// entry exists. A row that ends up limiting nothing is deleted (with its
    /// count of used downloads).
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn update_limits(
        &self,
        id: &EntryId,
        max_downloads: Change<u64>,
        password_hash: Change<String>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM entries WHERE id = ?1", [id.as_str()], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            conn.execute(
                "INSERT OR IGNORE INTO picoshare_entry_limits (entry_id) VALUES (?1)",
                [id.as_str()],
            )?;
            match max_downloads {
                Change::Keep => {}
                Change::Clear => {
                    conn.execute(
                        "UPDATE picoshare_entry_limits SET max_downloads = NULL WHERE entry_id = ?1",
                        [id.as_str()],
                    )?;
                }
                Change::Set(m) => {
                    conn.execute(
                        "UPDATE picoshare_entry_limits SET max_downloads = ?2 WHERE entry_id = ?1",
                        params![id.as_str(), m as i64],
                    )?;
                }
            }
            match password_hash {
                Change::Keep => {}
                Change::Clear => {
                    conn.execute(
                        "UPDATE picoshare_entry_limits SET password_hash = NULL WHERE entry_id = ?1",
                        [id.as_str()],
                    )?;
                }
                Change::Set(h) => {
                    conn.execute(
                        "UPDATE picoshare_entry_limits SET password_hash = ?2 WHERE entry_id = ?1",
                        params![id.as_str(), h],
                    )?;
                }
            }
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
    pub async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError> {
        let id = id.clone();
        self.inner
            .writer
            .exec(
                move |conn| {
                    let Some(l) = load(conn, id.as_str())? else {
                        return Ok(Reservation::Unlimited);
                    };
                    let Some(max) = l.max_downloads else {
                        return Ok(Reservation::Unlimited);
                    };
                    if l.downloads_used >= max {
                        return Ok(Reservation::UsedUp);
                    }
                    if l.downloads_used + l.reserved >= max {
                        return Ok(Reservation::Busy);
                    }
                    conn.execute(
                        "UPDATE picoshare_entry_limits SET reserved = reserved + 1 WHERE entry_id = ?1",
                        [id.as_str()],
                    )?;
                    Ok(Reservation::Reserved)
                },
                false,
            )
            .await
    }

    /// Ends a reserved download: with `completed`, it becomes a used download
    /// (durably); otherwise the reservation is released. Fire-and-forget.
    pub fn end_download(&self, id: &EntryId, completed: bool) {
        let id = id.clone();
        let store = self.clone();
        let job = move |conn: &Connection| {
            conn.execute(
                "UPDATE picoshare_entry_limits
                 SET reserved = max(reserved - 1, 0), downloads_used = downloads_used + ?2
                 WHERE entry_id = ?1",
                params![id.as_str(), i64::from(completed)],
            )?;
            Ok(())
        };
        let run = async move {
            if let Err(e) = store.inner.writer.exec(job, completed).await {
                tracing::warn!(error = %e, "could not record the end of a limited download");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(run);
            }
            Err(_) => tracing::warn!("no runtime to record the end of a limited download"),
        }
    }

    /// The server's key called `name`, created (32 random bytes) on first use.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        let found = self
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT value FROM picoshare_server_keys WHERE name = ?1",
                        [name],
                        |r| r.get::<_, Vec<u8>>(0),
                    )
                    .optional()?)
            })
            .await?;
        if let Some(k) = found {
            return Ok(k);
        }
        let mut fresh = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO picoshare_server_keys (name, value) VALUES (?1, ?2)",
                params![name, fresh],
            )?;
            Ok(conn.query_row(
                "SELECT value FROM picoshare_server_keys WHERE name = ?1",
                [name],
                |r| r.get::<_, Vec<u8>>(0),
            )?)
        })
        .await
    }
}
