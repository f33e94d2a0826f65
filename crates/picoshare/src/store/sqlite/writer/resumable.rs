//! The writer's side of resumable uploads: writing sessions. A session
//! starts from the upload's recorded offset (dropping chunks a session cut
//! short left past it), may record the offset its full chunks reach with
//! every commit, and ends by saving its offset and tail, by completing the
//! upload (the last chunk, the entry row and `completed` in one
//! transaction), or by being released or discarded.

use std::sync::atomic::Ordering;

use rusqlite::params;

use super::super::entries::insert_entry;
use super::super::tus;
use super::uploads::switch_content;
use super::uploads::UploadState;
use super::{Reply, TusCompletion, Writer};
use crate::ids::{EntryId, TusUploadId};
use crate::store::model::TusUpload;
use crate::store::StoreError;

/// The writer's view of a resumable upload's session.
pub(super) struct TusTrack {
    pub(super) session: u64,
    /// Record the offset reached at every commit.
    pub(super) track: bool,
    pub(super) chunk_size: u64,
    pub(super) length: u64,
    /// Offset reached by full chunks in the running transaction, not yet
    /// written to the upload's row.
    pub(super) progress: Option<u64>,
}

impl Writer {
    /// Writes the offset reached by each tracked resumable upload into its row,
    /// inside the running transaction (so the row and its chunks commit together).
    pub(super) fn record_all_progress(&mut self) -> Result<(), StoreError> {
        let ids: Vec<EntryId> = self
            .uploads
            .by_id
            .iter()
            .filter(|(_, s)| s.tus.as_ref().is_some_and(|t| t.progress.is_some()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.record_progress(&id)?;
        }
        Ok(())
    }

    fn record_progress(&mut self, id: &EntryId) -> Result<(), StoreError> {
        let Some(state) = self.uploads.by_id.get_mut(id) else {
            return Ok(());
        };
        if state.failed.is_some() {
            return Ok(());
        }
        let Some(offset) = state.tus.as_mut().and_then(|t| t.progress.take()) else {
            return Ok(());
        };
        self.begin()?;
        let mut stmt = self.conn.prepare_cached(
            "UPDATE picoshare_tus_uploads SET upload_offset = ?2, tail = NULL WHERE entry_id = ?1",
        )?;
        stmt.execute(params![id.as_str(), offset as i64])
            .map_err(StoreError::classify)?;
        Ok(())
    }

    pub(super) fn tus_open(
        &mut self,
        upload_id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, u64)>, StoreError> {
        self.begin()?;
        let Some(row) = tus::load(&self.conn, upload_id)? else {
            return Ok(None);
        };
        if row.completed {
            return Ok(Some((row, 0)));
        }
        // An earlier session whose end has not arrived yet (its handler was
        // dropped): keep what it recorded, then start over from the row.
        if self.uploads.by_id.contains_key(&row.entry_id) {
            self.tus_release(&row.entry_id, None, None);
        }
        let row = match tus::load(&self.conn, upload_id)? {
            Some(r) => r,
            None => return Ok(None),
        };
        if row.tail.len() as u64 != row.offset % row.chunk_size {
            return Err(StoreError::Corrupt(format!(
                "resumable upload {upload_id} has a tail of {} bytes at offset {}",
                row.tail.len(),
                row.offset
            )));
        }
        // Chunks past the recorded offset (a session cut short by a crash, or
        // one whose checksum failed) are dropped; the client sends them again.
        self.conn
            .execute(
                "DELETE FROM entries_data WHERE id = ?1 AND chunk_index >= ?2",
                params![row.entry_id.as_str(), (row.offset / row.chunk_size) as i64],
            )
            .map_err(StoreError::classify)?;
        let session = self.uploads.next_session;
        self.uploads.next_session += 1;
        self.counters.in_progress.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut set) = self.shared.in_progress.lock() {
            set.insert(row.entry_id.clone());
        }
        self.txn.uploads.insert(row.entry_id.clone());
        self.uploads.by_id.insert(
            row.entry_id.clone(),
            UploadState {
                failed: None,
                tus: Some(TusTrack {
                    session,
                    track,
                    chunk_size: row.chunk_size,
                    length: row.length,
                    progress: None,
                }),
            },
        );
        Ok(Some((row, session)))
    }

    /// Whether `id` is in resumable session `session`.
    fn in_session(&self, id: &EntryId, session: u64) -> bool {
        self.uploads
            .by_id
            .get(id)
            .and_then(|s| s.tus.as_ref())
            .is_some_and(|t| t.session == session)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn tus_save(
        &mut self,
        id: &EntryId,
        session: u64,
        offset: u64,
        tail: &[u8],
        expires: &str,
        complete: Option<TusCompletion>,
        reply: Reply,
    ) {
        if !self.in_session(id, session) {
            let _ = reply.send(Err(StoreError::Task(
                "another request took over this upload".into(),
            )));
            return;
        }
        if let Some(kind) = self.uploads.by_id.get(id).and_then(|s| s.failed) {
            self.forget(id);
            let _ = reply.send(Err(kind.error("an earlier chunk could not be stored")));
            return;
        }
        let retired = EntryId::generate();
        let result = self.begin().and_then(|()| {
            match &complete {
                Some(TusCompletion::Entry(entry)) => {
                    insert_entry(&self.conn, id, entry)?;
                    self.mark_completed(id, expires)?;
                }
                Some(TusCompletion::Replace { target, change }) => {
                    if !switch_content(&self.conn, id, target, &retired, change)? {
                        return Err(StoreError::EntryGone);
                    }
                    self.mark_completed(id, expires)?;
                }
                None => {
                    let tail = (!tail.is_empty()).then_some(tail);
                    self.conn
                        .execute(
                            "UPDATE picoshare_tus_uploads
                             SET upload_offset = ?2, tail = ?3, expires_time = ?4
                             WHERE entry_id = ?1",
                            params![id.as_str(), offset as i64, tail, expires],
                        )
                        .map_err(StoreError::classify)?;
                }
            }
            Ok(())
        });
        match (result, complete) {
            (Err(StoreError::EntryGone), _) => {
                // Nothing was changed; the upload has nowhere to go. The
                // reply waits for the commit that drops it.
                self.drop_tus_upload(id);
                self.txn.waiters += 1;
                self.txn.pending.push(Box::new(move |r| {
                    let _ = reply.send(r.and(Err(StoreError::EntryGone)));
                }));
            }
            (Ok(()), Some(TusCompletion::Replace { target, .. })) => {
                self.forget(id);
                self.txn.durable = true;
                self.txn.waiters += 1;
                self.after_switch(target, retired, move |r| {
                    let _ = reply.send(r);
                });
            }
            (result, _) => {
                // On success this save supersedes any progress not yet recorded.
                let failed = "the upload's progress could not be recorded";
                self.conclude(id, result, false, failed, reply);
            }
        }
    }

    /// Marks the upload of entry-to-be `id` complete, in the running transaction.
    fn mark_completed(&self, id: &EntryId, expires: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE picoshare_tus_uploads
                 SET upload_offset = upload_length, tail = NULL, completed = 1, expires_time = ?2
                 WHERE entry_id = ?1",
                params![id.as_str(), expires],
            )
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Deletes the resumable upload of entry-to-be `id` with its chunks (the
    /// file it was to replace is gone).
    fn drop_tus_upload(&mut self, id: &EntryId) {
        let result = self.begin().and_then(|()| {
            self.conn
                .execute(
                    "DELETE FROM picoshare_tus_uploads WHERE entry_id = ?1",
                    [id.as_str()],
                )
                .map_err(StoreError::classify)?;
            Ok(())
        });
        if let Err(e) = result {
            self.fail_txn(e);
        }
        self.abort(id);
    }

    /// Ends a resumable session (any session when `session` is `None`).
    pub(super) fn tus_release(
        &mut self,
        id: &EntryId,
        session: Option<u64>,
        discard_from: Option<u64>,
    ) {
        if let Some(s) = session {
            if !self.in_session(id, s) {
                return;
            }
        }
        let result = match discard_from {
            Some(from) => self.begin().and_then(|()| {
                super::super::freeing_pages(&self.conn, || {
                    self.conn
                        .execute(
                            "DELETE FROM entries_data WHERE id = ?1 AND chunk_index >= ?2",
                            params![id.as_str(), from as i64],
                        )
                        .map_err(StoreError::classify)
                })?;
                self.shared.vacuum_wanted.store(true, Ordering::Relaxed);
                Ok(())
            }),
            None => self.record_progress(id),
        };
        if let Err(e) = result {
            self.txn.uploads.insert(id.clone());
            self.fail_txn(e);
        }
        self.forget(id);
    }
}
