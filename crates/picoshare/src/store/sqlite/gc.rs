//! Garbage collection on SQLite: expired entries and resumable uploads, and
//! chunks of abandoned uploads.
//!
//! Runs inside the writer's transaction, so it sees exactly which uploads are
//! in progress and never touches their chunks. Freed pages are then returned
//! to the filesystem by the writer's background incremental vacuum.

use chrono::{DateTime, Utc};
use rusqlite::{params_from_iter, Connection};

use super::{query_all, SqliteStore};
use crate::store::model::time::db_time;
use crate::store::model::GcOutcome;
use crate::store::StoreError;
use crate::validate::NEVER_EXPIRE;

/// `AND <column> NOT IN (?2, ?3, …)` for the uploads in progress (nothing
/// when there are none), to follow a clause whose `?1` is taken.
fn not_in_progress(column: &str, in_progress: &[String], first: usize) -> String {
    if in_progress.is_empty() {
        return String::new();
    }
    let placeholders: Vec<String> = (first..first + in_progress.len())
        .map(|i| format!("?{i}"))
        .collect();
    format!("AND {column} NOT IN ({})", placeholders.join(","))
}

/// Deletes every chunk that belongs to no entry, no unfinished resumable
/// upload, no retired content a download may still read and none of the
/// uploads `in_progress`. Returns how many.
pub(super) fn delete_orphan_chunks(
    conn: &Connection,
    in_progress: &[String],
) -> rusqlite::Result<usize> {
    let sql = format!(
        "DELETE FROM entries_data WHERE id NOT IN (SELECT id FROM entries)
         AND id NOT IN (SELECT entry_id FROM picoshare_tus_uploads WHERE completed = 0)
         AND id NOT IN (SELECT old_content_id FROM picoshare_replacements
                        WHERE old_content_id IS NOT NULL)
         {}",
        not_in_progress("id", in_progress, 1)
    );
    super::freeing_pages(conn, || {
        conn.execute(&sql, params_from_iter(in_progress.iter()))
    })
}

/// The collection itself, in the writer's transaction.
fn collect(
    conn: &Connection,
    now: DateTime<Utc>,
    in_progress: &[String],
) -> Result<GcOutcome, StoreError> {
    super::hooks::expiring(conn, now)?;
    let now = db_time(now);
    // Text comparison works: every stored time has the same format.
    let expired = query_all(
        conn,
        "SELECT id FROM entries
         WHERE expiration_time IS NOT NULL AND expiration_time <> ?1 AND expiration_time < ?2",
        [NEVER_EXPIRE, &now],
        |r| Ok(r.get::<_, String>(0)?),
    )?;
    let mut shares = 0;
    for id in &expired {
        shares += super::entries::delete_entry_rows(conn, id)?;
    }
    // Resumable uploads that saw no bytes for their expiry time; one being
    // written to is never collected.
    let busy = not_in_progress("entry_id", in_progress, 2);
    let mut args: Vec<&str> = vec![&now];
    args.extend(in_progress.iter().map(String::as_str));
    conn.execute(
        &format!(
            "DELETE FROM entries_data WHERE id IN (SELECT entry_id FROM picoshare_tus_uploads
                WHERE completed = 0 AND expires_time < ?1 {busy})"
        ),
        params_from_iter(args.iter()),
    )?;
    let expired_uploads = conn.execute(
        &format!("DELETE FROM picoshare_tus_uploads WHERE expires_time < ?1 {busy}"),
        params_from_iter(args.iter()),
    )? as u64;
    let orphan_chunks = delete_orphan_chunks(conn, in_progress)? as u64;
    // Limits of entries that are gone (never completed uploads), and shares'
    // rows of entries that are gone with the shares left without entries.
    super::limits::delete_orphans(conn)?;
    shares += super::shares::delete_orphans(conn)?;
    if shares > 0 {
        tracing::info!(shares, "deleted shares whose files are all gone");
    }
    Ok(GcOutcome {
        expired_entries: expired.len() as u64,
        orphan_chunks,
        expired_uploads,
    })
}

impl SqliteStore {
    /// Deletes entries that expired before `now` (with everything that hangs
    /// off them), expired resumable uploads, and chunks left by abandoned
    /// uploads (never those of an upload in progress).
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn collect_garbage(
        &self,
        now: DateTime<Utc>,
    ) -> Result<GcOutcome, StoreError> {
        let shared = self.inner.shared.clone();
        let outcome = self
            .write(move |conn| {
                // This job runs on the writer thread, so the set of uploads in
                // progress cannot change while it runs.
                let in_progress: Vec<String> = shared
                    .in_progress
                    .lock()
                    .map(|set| set.iter().map(|id| id.as_str().to_owned()).collect())
                    .unwrap_or_default();
                collect(conn, now, &in_progress)
            })
            .await?;
        if outcome != GcOutcome::default() {
            self.space_freed();
            tracing::info!(
                expired = outcome.expired_entries,
                orphan_chunks = outcome.orphan_chunks,
                expired_uploads = outcome.expired_uploads,
                "garbage collected"
            );
        }
        Ok(outcome)
    }
}
