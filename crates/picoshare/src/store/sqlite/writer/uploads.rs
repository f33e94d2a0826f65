//! The writer's uploads: which are in progress, their chunks, their entry
//! rows, and what happens to them when they fail or are abandoned.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::super::entries::insert_entry;
use super::resumable::TusTrack;
use super::{Reply, Writer};
use crate::ids::EntryId;
use crate::store::model::time::db_time;
use crate::store::model::{NewEntry, Replacement};
use crate::store::StoreError;

/// Early writeback starts once this many bytes await a durable commit. Smaller
/// uploads fit in the page cache until their one fsync, and measured faster
/// without it; larger ones measured faster with it (docs/benchmarks.md).
const WRITEBACK_AFTER: u64 = 128 << 20;

/// The same for a large resumable upload sent in several requests: each request
/// ends with a durable commit, so the bytes awaiting one never reach
/// [`WRITEBACK_AFTER`], yet the upload as a whole is large.
const TUS_WRITEBACK_AFTER: u64 = 16 << 20;

/// The uploads in progress.
pub(super) struct Uploads {
    /// Uploads that have sent at least one chunk and not yet finished, and
    /// sessions on resumable uploads.
    pub(super) by_id: HashMap<EntryId, UploadState>,
    /// The next resumable-upload session number.
    pub(super) next_session: u64,
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            by_id: HashMap::new(),
            next_session: 1,
        }
    }
}

#[derive(Default)]
pub(super) struct UploadState {
    /// Set once the upload cannot succeed; later chunks are dropped.
    pub(super) failed: Option<FailKind>,
    /// Set for a session on a resumable upload.
    pub(super) tus: Option<TusTrack>,
}

/// Why an upload failed, for the errors its later requests get.
#[derive(Clone, Copy, Debug)]
pub(super) enum FailKind {
    DiskFull,
    Other,
}

impl FailKind {
    pub(super) fn of(e: &StoreError) -> Self {
        match e {
            StoreError::DiskFull => FailKind::DiskFull,
            _ => FailKind::Other,
        }
    }
    pub(super) fn error(self, context: &str) -> StoreError {
        match self {
            FailKind::DiskFull => StoreError::DiskFull,
            FailKind::Other => StoreError::WriteFailed(context.to_owned()),
        }
    }
}

impl Writer {
    pub(super) fn chunk(&mut self, id: EntryId, index: u64, data: Bytes) {
        let state = self.uploads.by_id.entry(id.clone()).or_insert_with(|| {
            self.counters.in_progress.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut set) = self.shared.in_progress.lock() {
                set.insert(id.clone());
            }
            UploadState::default()
        });
        if state.failed.is_some() {
            return;
        }
        // A resumable upload may find a chunk that a session cut short by a
        // crash stored past its recorded offset: the new bytes replace it.
        let writeback_after = match &state.tus {
            Some(t) if t.length >= WRITEBACK_AFTER => TUS_WRITEBACK_AFTER,
            _ => WRITEBACK_AFTER,
        };
        let sql = if state.tus.is_some() {
            "INSERT OR REPLACE INTO entries_data (id, chunk_index, chunk) VALUES (?1, ?2, ?3)"
        } else {
            "INSERT INTO entries_data (id, chunk_index, chunk) VALUES (?1, ?2, ?3)"
        };
        if let Some(t) = state.tus.as_mut().filter(|t| t.track) {
            // Never record the full length: only the completing save may, with
            // the entry row, or a crash could leave an upload that looks done.
            let reached = (index + 1) * t.chunk_size;
            if reached < t.length {
                t.progress = Some(reached);
            }
        }
        let started = Instant::now();
        let result = self.begin().and_then(|()| {
            let mut stmt = self.conn.prepare_cached(sql)?;
            stmt.execute(params![id.as_str(), index as i64, &data[..]])
                .map_err(StoreError::classify)?;
            Ok(())
        });
        self.txn.uploads.insert(id);
        match result {
            Ok(()) => {
                let n = data.len() as u64;
                self.txn.bytes += n;
                let c = &self.counters;
                c.chunks.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(n, Ordering::Relaxed);
                c.insert_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.space.undurable_bytes += n;
                if self.space.undurable_bytes >= writeback_after {
                    self.start_writeback();
                }
            }
            Err(e) => self.fail_txn(e),
        }
    }

    /// Whether upload `id` (unknown counts as failed) lost an earlier
    /// chunk: if so, abandons it and returns the error its finish or
    /// replacement answers with.
    fn take_failed(&mut self, id: &EntryId) -> Option<StoreError> {
        let kind = match self.uploads.by_id.get(id) {
            Some(s) => s.failed?,
            None => FailKind::Other,
        };
        self.abort(id);
        Some(kind.error("an earlier chunk could not be stored"))
    }

    pub(super) fn finish(&mut self, id: EntryId, entry: NewEntry, reply: Reply) {
        if let Some(e) = self.take_failed(&id) {
            let _ = reply.send(Err(e));
            return;
        }
        let result = self
            .begin()
            .and_then(|()| insert_entry(&self.conn, &id, &entry));
        self.conclude(&id, result, true, "the entry could not be recorded", reply);
    }

    /// Ends the writing of upload `id`, whose last statements ran with
    /// `result`. On success the upload is no longer tracked and `reply` waits
    /// for the durable commit that holds them. On failure the transaction is
    /// rolled back and the upload fails with everything in it; with
    /// `discard` its chunks are deleted (a resumable upload keeps what
    /// earlier commits recorded), and `reply` gets the error (`failed` says
    /// what failed).
    pub(super) fn conclude(
        &mut self,
        id: &EntryId,
        result: Result<(), StoreError>,
        discard: bool,
        failed: &str,
        reply: Reply,
    ) {
        match result {
            Ok(()) => {
                self.forget(id);
                self.txn.durable = true;
                self.txn.waiters += 1;
                self.txn.pending.push(Box::new(move |r| {
                    let _ = reply.send(r);
                }));
            }
            Err(e) => {
                self.txn.uploads.insert(id.clone());
                let kind = FailKind::of(&e);
                self.fail_txn(e);
                if discard {
                    self.abort(id);
                } else {
                    self.forget(id);
                }
                let _ = reply.send(Err(kind.error(failed)));
            }
        }
    }

    /// Stops tracking an upload; returns whether it was in progress.
    pub(super) fn forget(&mut self, id: &EntryId) -> bool {
        let was = self.uploads.by_id.remove(id).is_some();
        if was {
            self.counters.in_progress.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut set) = self.shared.in_progress.lock() {
                set.remove(id);
            }
        }
        was
    }

    pub(super) fn abort(&mut self, id: &EntryId) {
        if self.forget(id) {
            self.counters.aborted.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.begin().and_then(|()| {
            super::super::freeing_pages(&self.conn, || {
                self.conn
                    .execute("DELETE FROM entries_data WHERE id = ?1", [id.as_str()])
                    .map_err(StoreError::classify)
            })?;
            Ok(())
        });
        self.shared.vacuum_wanted.store(true, Ordering::Relaxed);
        if let Err(e) = result {
            tracing::warn!(entry_id = %id, error = %e, "could not delete an abandoned upload's chunks; the next start reclaims them");
            self.fail_txn(e);
        } else {
            tracing::info!(entry_id = %id, "abandoned an unfinished upload");
        }
    }

    /// Deletes the chunks of every unfinished upload and commits durably.
    /// Resumable uploads keep theirs, with the offset their chunks reached.
    pub(super) fn abandon_all(&mut self) {
        let ids: Vec<EntryId> = self.uploads.by_id.keys().cloned().collect();
        for id in ids {
            if self.uploads.by_id.get(&id).is_some_and(|s| s.tus.is_some()) {
                self.tus_release(&id, None, None);
            } else {
                self.abort(&id);
            }
        }
        self.txn.durable = true;
        self.commit();
    }
}

impl Writer {
    /// Makes upload `id`'s chunks the content of entry `target` in one
    /// transaction: the entry's chunks move to a fresh id (retired, still
    /// readable by the downloads that started before), the upload's move
    /// under the entry's id, the entry row takes the new name, type and
    /// upload time, and `picoshare_replacements` records the switch. The
    /// retired content is freed after the commit if no download needs it,
    /// else when the last one that may read it ends (`content.rs`).
    pub(super) fn replace(
        &mut self,
        id: EntryId,
        target: EntryId,
        change: Replacement,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    ) {
        if let Some(e) = self.take_failed(&id) {
            let _ = reply.send(Err(e));
            return;
        }
        let retired = EntryId::generate();
        let result = self
            .begin()
            .and_then(|()| switch_content(&self.conn, &id, &target, &retired, &change));
        match result {
            Ok(true) => {
                self.forget(&id);
                self.txn.durable = true;
                self.txn.waiters += 1;
                self.after_switch(target, retired, move |r| {
                    let _ = reply.send(r.map(|()| true));
                });
            }
            Ok(false) => {
                self.abort(&id);
                let _ = reply.send(Ok(false));
            }
            Err(e) => {
                self.txn.uploads.insert(id.clone());
                let kind = FailKind::of(&e);
                self.fail_txn(e);
                self.abort(&id);
                let _ = reply.send(Err(kind.error("the file could not be replaced")));
            }
        }
    }
}

impl Writer {
    /// After the commit that holds a switch of `target`'s content: its
    /// retired content `retired` is freed if no download pins it, else when
    /// the last one ends (`content.rs`); then `reply` gets the outcome.
    pub(super) fn after_switch(
        &mut self,
        target: EntryId,
        retired: EntryId,
        reply: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        let shared = self.shared.clone();
        self.txn
            .pending
            .push(Box::new(move |r: Result<(), StoreError>| {
                if r.is_ok() && shared.pins.retire(&target, retired.clone()) {
                    shared
                        .free_after_commit
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(retired);
                }
                reply(r);
            }));
    }
}

/// The switch of [`Writer::replace`], in the running transaction. Returns
/// `false`, changing nothing, if entry `target` is gone.
pub(super) fn switch_content(
    conn: &Connection,
    id: &EntryId,
    target: &EntryId,
    retired: &EntryId,
    change: &Replacement,
) -> Result<bool, StoreError> {
    let old: Option<(String, String)> = conn
        .query_row(
            "SELECT filename, upload_time FROM entries WHERE id = ?1",
            [target.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((old_filename, old_time)) = old else {
        return Ok(false);
    };
    let size = |of: &EntryId| -> Result<i64, StoreError> {
        Ok(conn.query_row(
            "SELECT coalesce(sum(length(chunk)), 0) FROM entries_data WHERE id = ?1",
            [of.as_str()],
            |r| r.get(0),
        )?)
    };
    let (old_size, new_size) = (size(target)?, size(id)?);
    // Strictly later than the old upload time: it names the version.
    let old_utc = crate::store::model::time::db_time_to_utc(&old_time);
    let new_time = db_time(change.now.max(old_utc + chrono::Duration::seconds(1)));
    let filename = change.filename.clone().unwrap_or(old_filename.clone());
    // Ids of one length keep every row's record the same size, so SQLite
    // rewrites only each row's first page, not the overflow pages of its
    // chunk.
    conn.execute(
        "UPDATE entries_data SET id = ?2 WHERE id = ?1",
        [target.as_str(), retired.as_str()],
    )
    .map_err(StoreError::classify)?;
    conn.execute(
        "UPDATE entries_data SET id = ?2 WHERE id = ?1",
        [id.as_str(), target.as_str()],
    )
    .map_err(StoreError::classify)?;
    conn.execute(
        "UPDATE entries SET filename = ?2, content_type = ?3, upload_time = ?4 WHERE id = ?1",
        params![target.as_str(), filename, change.content_type, new_time],
    )
    .map_err(StoreError::classify)?;
    conn.execute(
        "INSERT INTO picoshare_replacements (entry_id, replaced_time, old_upload_time,
            old_filename, old_size, new_filename, new_size, old_content_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            target.as_str(),
            db_time(change.now),
            old_time,
            old_filename,
            old_size,
            filename,
            new_size,
            retired.as_str()
        ],
    )
    .map_err(StoreError::classify)?;
    Ok(true)
}

impl Writer {
    /// Deletes the chunks of retired contents no download reads any more.
    pub(super) fn free_content(&mut self, ids: &[EntryId]) {
        let result = self.begin().and_then(|()| {
            for id in ids {
                super::super::freeing_pages(&self.conn, || {
                    self.conn
                        .execute("DELETE FROM entries_data WHERE id = ?1", [id.as_str()])
                })?;
                self.conn.execute(
                    "UPDATE picoshare_replacements SET old_content_id = NULL
                     WHERE old_content_id = ?1",
                    [id.as_str()],
                )?;
            }
            Ok(())
        });
        self.shared.vacuum_wanted.store(true, Ordering::Relaxed);
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not free a replaced file's old content; the next start frees it");
            self.fail_txn(e);
        }
    }
}
