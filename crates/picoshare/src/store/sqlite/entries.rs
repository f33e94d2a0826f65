//! Entries on SQLite: looking one up (its size from its chunk rows), editing,
//! deleting with everything that hangs off it, download records, and the
//! entry row a finished upload writes.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{query_opt, stats, SqliteStore};
use crate::ids::EntryId;
use crate::store::model::entries::{DELETE_DOWNLOADS, DELETE_ENTRY, INSERT_DOWNLOAD, UPDATE_ENTRY};
use crate::store::model::limits::DELETE_LIMITS;
use crate::store::model::time::{db_time, expiration_to_db};
use std::sync::Arc;

use crate::store::model::entries::ContentPin;
use crate::store::model::{DownloadRecord, Entry, EntryLimits, NewEntry};
use crate::store::DownloadLookup;
use crate::store::StoreError;

/// An entry with its size and chunk size, both taken from its chunk rows
/// (through `idx_entries_data_length`); NULL for an entry without data.
const ENTRY: &str = "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
        e.note, e.guest_link_id,
        (SELECT sum(length(chunk)) FROM entries_data d WHERE d.id = e.id),
        (SELECT length(chunk) FROM entries_data d WHERE d.id = e.id AND d.chunk_index = 0)
     FROM entries e WHERE e.id = ?1";

/// Deletes entry `id` and everything that hangs off it, in the caller's
/// transaction: its download history, chunks, row, limits, and its places in
/// shares (with a share it was the last entry of). Returns the number of
/// shares deleted.
pub(super) fn delete_entry_rows(conn: &Connection, id: &str) -> Result<usize, StoreError> {
    conn.execute(DELETE_DOWNLOADS.sqlite(), [id])?;
    super::freeing_pages(conn, || {
        conn.execute("DELETE FROM entries_data WHERE id = ?1", [id])
    })?;
    conn.execute(DELETE_ENTRY.sqlite(), [id])?;
    conn.execute(DELETE_LIMITS.sqlite(), [id])?;
    // Retired contents go with the entry, as its current one does.
    super::freeing_pages(conn, || {
        conn.execute(
            "DELETE FROM entries_data WHERE id IN (SELECT old_content_id
             FROM picoshare_replacements WHERE entry_id = ?1 AND old_content_id IS NOT NULL)",
            [id],
        )
    })?;
    conn.execute(
        "DELETE FROM picoshare_replacements WHERE entry_id = ?1",
        [id],
    )?;
    super::shares::leave_shares(conn, id)
}

/// Writes a finished upload's entry row, and its download limit or password
/// if it has one, in the running transaction.
pub(super) fn insert_entry(
    conn: &Connection,
    id: &EntryId,
    entry: &NewEntry,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO entries (id, filename, content_type, upload_time, expiration_time, guest_link_id, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.as_str(),
            entry.filename,
            entry.content_type,
            db_time(entry.upload_time),
            expiration_to_db(entry.expiration),
            entry.guest_link_id,
            entry.note
        ],
    )
    .map_err(StoreError::classify)?;
    if let Some(l) = &entry.limits {
        super::limits::insert(conn, id.as_str(), l).map_err(StoreError::classify)?;
    }
    super::hooks::entry_inserted(conn, id, entry)
}

impl SqliteStore {
    /// Entry `id`'s content replacements, newest first.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn replacements(
        &self,
        id: &EntryId,
    ) -> Result<Vec<crate::store::model::ReplacementRecord>, StoreError> {
        use crate::store::model::history::REPLACEMENTS;
        use crate::store::model::ReplacementRecord;
        let id = id.clone();
        self.read(move |conn| {
            super::query_all(conn, REPLACEMENTS.sqlite(), [id.as_str()], |r| {
                ReplacementRecord::decode(r)
            })
        })
        .await
    }

    /// Looks up an entry's metadata and size. Entries without any data are
    /// treated as missing, as in the original.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            Ok(query_opt(conn, ENTRY, [id.as_str()], |r| Entry::decode(r, 0))?.flatten())
        })
        .await
    }

    /// `entries` read again in one snapshot, each pinned before it
    /// (`content.rs`), so that reading them later gets the versions
    /// returned even if they are replaced meanwhile; `None` for one that is
    /// gone. A share's ZIP reads its files this way.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn pinned_entries(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Vec<Option<Entry>>, StoreError> {
        let pinned: Vec<(EntryId, ContentPin)> = entries
            .into_iter()
            .map(|e| {
                let pin: ContentPin = Arc::new(
                    self.inner
                        .shared
                        .pins
                        .pin(&e.id, self.inner.writer.sender()),
                );
                (e.id, pin)
            })
            .collect();
        self.read(move |conn| {
            let txn = conn.unchecked_transaction()?;
            let mut out = Vec::with_capacity(pinned.len());
            for (id, pin) in pinned {
                let entry = query_opt(&txn, ENTRY, [id.as_str()], |r| Entry::decode(r, 0))?
                    .flatten()
                    .map(|mut e| {
                        e.pin = Some(pin);
                        e
                    });
                out.push(entry);
            }
            Ok(out)
        })
        .await
    }

    /// An entry, its limits and, when it is at most `prefetch` bytes, its
    /// data, in one read transaction (see `Store::download_lookup`).
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] if a chunk is missing.
    pub(crate) async fn download_lookup(
        &self,
        id: &EntryId,
        prefetch: u64,
    ) -> Result<Option<DownloadLookup>, StoreError> {
        let id = id.clone();
        let counters = self.inner.counters.clone();
        // Taken before the snapshot, so that a replacement committed after
        // it keeps the version this download sees (`content.rs`).
        let pin: ContentPin = Arc::new(self.inner.shared.pins.pin(&id, self.inner.writer.sender()));
        self.read(move |conn| {
            // One snapshot for the entry, its limits and its data.
            let txn = conn.unchecked_transaction()?;
            let Some(mut entry) =
                query_opt(&txn, ENTRY, [id.as_str()], |r| Entry::decode(r, 0))?.flatten()
            else {
                return Ok(None);
            };
            entry.pin = Some(pin);
            let limits = query_opt(&txn, super::limits::ENTRY_LIMITS, [id.as_str()], |r| {
                EntryLimits::decode(r)
            })?;
            let data = if entry.size > 0 && entry.size <= prefetch {
                let started = std::time::Instant::now();
                let last = (entry.size - 1) / entry.chunk_size.max(1);
                let mut chunks = super::reader::read_chunks(&txn, id.as_str(), 0, last)?;
                stats::Counters::add(&counters.read_ns, started.elapsed().as_nanos() as u64);
                let data = if chunks.len() == 1 {
                    chunks.pop().unwrap_or_default()
                } else {
                    Bytes::from(chunks.concat())
                };
                // Chunk rows that disagree with the size are a corruption,
                // as the streamed path reports them.
                if data.len() as u64 != entry.size {
                    return Err(StoreError::Corrupt(format!(
                        "entry {id}: its chunks hold {} bytes, not {}",
                        data.len(),
                        entry.size
                    )));
                }
                Some(data)
            } else {
                None
            };
            txn.finish()?;
            Ok(Some(DownloadLookup {
                entry,
                limits,
                data,
            }))
        })
        .await
    }

    /// Changes an entry's filename, expiration and note. Returns whether it exists.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn update_entry(
        &self,
        id: &EntryId,
        filename: String,
        expiration: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let n = conn.execute(
                UPDATE_ENTRY.sqlite(),
                params![id.as_str(), filename, expiration_to_db(expiration), note],
            )?;
            Ok(n > 0)
        })
        .await
    }

    /// Deletes an entry with its data and download history (nothing if absent).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| delete_entry_rows(conn, id.as_str()).map(drop))
            .await?;
        self.space_freed();
        Ok(())
    }

    /// Records a download. Fire-and-forget: the reply does not wait for it.
    ///
    /// Records gather for [`DOWNLOADS_GATHER`] (longer while downloads are
    /// many: [`gather_for`]) and go to the writer together,
    /// as one job: the writer thread then wakes once for all the downloads
    /// of that time instead of once for each (a small download's other costs
    /// are about that of a wake-up and a switch of threads), and their rows
    /// share one commit. Only a download starts the wait, so an idle server
    /// stays idle; at shutdown the records still gathering are written.
    pub(crate) fn record_download(&self, rec: DownloadRecord) {
        self.gather(&self.inner.downloads, rec);
    }

    /// Adds `rec` to `queue`; the first record to wait there starts the
    /// wait of [`DOWNLOADS_GATHER`] after which the records go to the writer.
    fn gather(&self, queue: &std::sync::Mutex<Vec<DownloadRecord>>, rec: DownloadRecord) {
        let first = {
            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push(rec);
            q.len() == 1
        };
        if first {
            let store = self.clone();
            let wait = gather_for(
                self.inner
                    .downloads_last_batch
                    .load(std::sync::atomic::Ordering::Relaxed),
            );
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                store.flush_downloads();
            });
        }
    }

    /// Notes that the body of the download `rec` was sent whole, for the
    /// notifications (`hooks.rs`): it waits with the download records and
    /// its event is written by their job, after them. Nothing happens when
    /// no destination wants downloads.
    pub(crate) fn download_completed(&self, rec: DownloadRecord) {
        if !self.downloads_wanted() {
            return;
        }
        self.gather(&self.inner.completed_downloads, rec);
    }

    /// Whether some notification destination wants downloads.
    pub(crate) fn downloads_wanted(&self) -> bool {
        self.inner
            .shared
            .hooks
            .downloads_wanted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hands the gathered download records (and completed downloads) to the
    /// writer as one job.
    pub(super) fn flush_downloads(&self) {
        let take = |q: &std::sync::Mutex<Vec<DownloadRecord>>| {
            std::mem::take(&mut *q.lock().unwrap_or_else(|e| e.into_inner()))
        };
        let records = take(&self.inner.downloads);
        let completed = take(&self.inner.completed_downloads);
        self.inner
            .downloads_last_batch
            .store(records.len(), std::sync::atomic::Ordering::Relaxed);
        if records.is_empty() && completed.is_empty() {
            return;
        }
        self.inner.writer.exec_detached(move |conn| {
            let mut stmt = conn.prepare_cached(INSERT_DOWNLOAD.sqlite())?;
            for rec in records {
                // A record whose file was deleted meanwhile fails its
                // foreign key; that statement alone is undone and the
                // others are kept, as when each was a job of its own.
                if let Err(e) = stmt.execute(params![
                    rec.entry_id.as_str(),
                    db_time(rec.time),
                    rec.client_ip,
                    rec.user_agent
                ]) {
                    tracing::warn!(error = %e, "a download record could not be written");
                }
            }
            super::hooks::downloads_completed(conn, &completed)
        });
    }
}

/// How long download records gather before they go to the writer (see
/// `SqliteStore::record_download`); their commit may wait another 0.1 s for
/// company in the writer's transaction, so a download shows in the history
/// within about 1.1 s. Each commit of them writes the pages it changed,
/// 64 KiB each, whatever the number of rows: with 0.1 s, a 1 MiB download
/// (a few hundred a second) caused 12-35 KB of disk writes against the
/// original's 4.5 KB; the records are never acknowledged to anyone, and at
/// a graceful stop they are written at once.
const DOWNLOADS_GATHER: std::time::Duration = std::time::Duration::from_secs(1);

/// The gathering while downloads are many (see [`gather_for`]).
const DOWNLOADS_GATHER_BUSY: std::time::Duration = std::time::Duration::from_secs(4);

/// Records in one gathering from which the next gathers longer.
const BUSY_BATCH: usize = 256;

/// How long the next records gather, after a gathering of `last` records.
/// The rows of one commit land all over the history's index (keyed by the
/// file's random ID), so a commit rewrites about one leaf per file
/// downloaded, whatever the number of rows: with 1 s, hundreds of
/// downloads a second of a few hundred files (1 MiB files over one
/// connection) wrote 6-7 KB per download, against the original's 4.5 KB.
/// While a second brings [`BUSY_BATCH`] or more, records gather for
/// [`DOWNLOADS_GATHER_BUSY`] instead, sharing those leaves four times as
/// long; a quieter server keeps the 1 s (a download shows in the history
/// within about a second), and a crash may lose the records still
/// gathering (never a limited download's count, written before its last
/// byte; see docs/benchmarks.md "History rows gathered longer while
/// downloads are many").
fn gather_for(last: usize) -> std::time::Duration {
    if last >= BUSY_BATCH {
        DOWNLOADS_GATHER_BUSY
    } else {
        DOWNLOADS_GATHER
    }
}

#[cfg(test)]
mod tests {
    use super::{gather_for, BUSY_BATCH, DOWNLOADS_GATHER, DOWNLOADS_GATHER_BUSY};

    #[test]
    fn records_gather_longer_only_after_a_busy_gathering() {
        assert_eq!(gather_for(0), DOWNLOADS_GATHER);
        assert_eq!(gather_for(BUSY_BATCH - 1), DOWNLOADS_GATHER);
        assert_eq!(gather_for(BUSY_BATCH), DOWNLOADS_GATHER_BUSY);
        assert!(DOWNLOADS_GATHER_BUSY > DOWNLOADS_GATHER);
    }
}
