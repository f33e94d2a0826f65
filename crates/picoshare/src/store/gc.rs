//! Garbage collection: expired entries and chunks of abandoned uploads.
//!
//! Runs inside the writer's transaction, so it sees exactly which uploads are
//! in progress and never touches their chunks. Freed pages are then returned
//! to the filesystem by the writer's background incremental vacuum.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rusqlite::params_from_iter;

use super::{SqliteStore, StoreError};
use crate::validate::{db_time, NEVER_EXPIRE};

/// What one collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcOutcome {
    /// Expired entries deleted (with their data and download history).
    pub expired_entries: u64,
    /// Chunk rows deleted that belonged to no entry and no upload in progress.
    pub orphan_chunks: u64,
    /// Resumable uploads deleted because they expired (unfinished ones with
    /// their chunks).
    pub expired_uploads: u64,
}

impl SqliteStore {
    /// Deletes entries that expired before `now`, with their chunks and download
    /// history, and chunks left by abandoned uploads (never those of an upload
    /// in progress).
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GcOutcome, StoreError> {
        let shared = self.inner.shared.clone();
        let outcome = self
            .write(move |conn| {
                let now = db_time(now);
                // Text comparison works: every stored time has the same format.
                let expired = "SELECT id FROM entries
                     WHERE expiration_time IS NOT NULL AND expiration_time <> ?1 AND expiration_time < ?2";
                conn.execute(
                    &format!("DELETE FROM downloads WHERE entry_id IN ({expired})"),
                    [NEVER_EXPIRE, &now],
                )?;
                conn.execute(
                    &format!("DELETE FROM entries_data WHERE id IN ({expired})"),
                    [NEVER_EXPIRE, &now],
                )?;
                let expired_entries = conn.execute(
                    "DELETE FROM entries
                     WHERE expiration_time IS NOT NULL AND expiration_time <> ?1 AND expiration_time < ?2",
                    [NEVER_EXPIRE, &now],
                )? as u64;
                // This job runs on the writer thread, so the set of uploads in
                // progress cannot change while it runs.
                let in_progress: Vec<String> = shared
                    .in_progress
                    .lock()
                    .map(|set| set.iter().map(|id| id.as_str().to_owned()).collect())
                    .unwrap_or_default();
                let placeholders = vec!["?"; in_progress.len()].join(",");
                let busy = if in_progress.is_empty() {
                    String::new()
                } else {
                    format!("AND entry_id NOT IN ({placeholders})")
                };
                // Resumable uploads that saw no bytes for their expiry time;
                // one being written to is never collected.
                let mut args: Vec<&str> = vec![&now];
                args.extend(in_progress.iter().map(String::as_str));
                let expired_tus = format!(
                    "SELECT entry_id FROM picoshare_tus_uploads
                     WHERE completed = 0 AND expires_time < ?1 {busy}"
                );
                conn.execute(
                    &format!("DELETE FROM entries_data WHERE id IN ({expired_tus})"),
                    params_from_iter(args.iter()),
                )?;
                let expired_uploads = conn.execute(
                    &format!(
                        "DELETE FROM picoshare_tus_uploads WHERE expires_time < ?1 {busy}"
                    ),
                    params_from_iter(args.iter()),
                )? as u64;
                let orphan_chunks = conn.execute(
                    &format!(
                        "DELETE FROM entries_data WHERE id NOT IN (SELECT id FROM entries)
                         AND id NOT IN (SELECT entry_id FROM picoshare_tus_uploads WHERE completed = 0)
                         {}",
                        busy.replace("entry_id", "id")
                    ),
                    params_from_iter(in_progress.iter()),
                )? as u64;
                // Limits of entries that are gone (deleted, expired, or never
                // completed). Limits are written with their entry row or their
                // resumable upload's row, so this never races an upload.
                super::limits::delete_orphans(conn)?;
                // Shares' rows of entries that are gone, and the shares left
                // without entries.
                let shares = super::shares::delete_orphans(conn)?;
                if shares > 0 {
                    tracing::info!(shares, "deleted shares whose files are all gone");
                }
                Ok(GcOutcome {
                    expired_entries,
                    orphan_chunks,
                    expired_uploads,
                })
            })
            .await?;
        if outcome != GcOutcome::default() {
            self.inner
                .shared
                .vacuum_wanted
                .store(true, Ordering::Relaxed);
            tracing::info!(
                expired = outcome.expired_entries,
                orphan_chunks = outcome.orphan_chunks,
                expired_uploads = outcome.expired_uploads,
                "garbage collected"
            );
        }
        Ok(outcome)
    }

    /// Bytes of free pages in the database file (space that deletes freed and
    /// that incremental vacuum has not yet returned to the filesystem).
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn reclaimable_bytes(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((free * page) as u64)
        })
        .await
    }
}
