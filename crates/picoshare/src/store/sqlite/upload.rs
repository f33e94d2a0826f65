//! Uploads into SQLite, on the request's side: [`SqliteSink`] receives the
//! bytes of a new entry, [`SqliteTusSink`] those of one writing session on a
//! resumable upload. Both cut the bytes into chunks and hand them to the
//! writer thread through its bounded channel, so a slow disk pushes back on
//! the uploading client. Dropping a sink before it is finished tells the
//! writer: a plain upload is abandoned (its chunks deleted), a resumable one
//! keeps what its commits recorded.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::writer::{Cmd, TusCompletion};
use super::{LocalSlot, SqliteStore};
use crate::ids::EntryId;
use crate::store::model::time::db_time;
use crate::store::model::{NewEntry, Pieces, Replacement, TusUpload};
use crate::store::StoreError;

/// Cuts an upload's bytes into chunks ([`Pieces`]) and sends each full one
/// to the writer.
struct Chunker {
    id: EntryId,
    tx: flume::Sender<Cmd>,
    pieces: Pieces,
    /// The index of the next chunk to send.
    next_index: u64,
    /// Bytes received so far (for a resumable upload, counting those stored
    /// before this session).
    bytes: u64,
}

impl Chunker {
    /// Appends bytes. Waits while the writer is behind (backpressure).
    async fn write(&mut self, mut data: Bytes) -> Result<(), StoreError> {
        self.bytes += data.len() as u64;
        while let Some(chunk) = self.pieces.next(&mut data) {
            self.send_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn send_chunk(&mut self, data: Bytes) -> Result<(), StoreError> {
        let index = self.next_index;
        self.next_index += 1;
        self.send(Cmd::Chunk {
            id: self.id.clone(),
            index,
            data,
        })
        .await
    }

    /// Sends the last, partial chunk if there is one.
    async fn flush(&mut self) -> Result<(), StoreError> {
        let chunk = self.pieces.take_rest();
        if chunk.is_empty() {
            return Ok(());
        }
        self.send_chunk(chunk).await
    }

    async fn send(&self, cmd: Cmd) -> Result<(), StoreError> {
        self.tx
            .send_async(cmd)
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    /// Sends `cmd` from a destructor, which cannot wait: at once if the queue
    /// has room, else as soon as it has. If the runtime is gone, the writer's
    /// shutdown (or the next start) cleans up instead.
    fn send_from_drop(&self, cmd: Cmd) {
        if let Err(flume::TrySendError::Full(cmd)) = self.tx.try_send(cmd) {
            let tx = self.tx.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tx.send_async(cmd).await;
                });
            }
        }
    }
}

/// Receives the bytes of one new entry and hands full chunks to the writer.
///
/// Dropping it before [`SqliteSink::finish`] abandons the upload: the writer
/// deletes whatever chunks it already stored.
pub(crate) struct SqliteSink {
    chunks: Chunker,
    /// Set once the writer owns the outcome.
    done: bool,
    /// A guest-link slot this upload holds until its entry is committed.
    slot: Option<LocalSlot>,
}

impl SqliteSink {
    /// The ID the entry will have.
    pub(crate) fn id(&self) -> &EntryId {
        &self.chunks.id
    }

    /// Bytes received so far.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.chunks.bytes
    }

    /// Appends bytes. Waits while the writer is behind (backpressure).
    ///
    /// # Errors
    /// [`StoreError::WriterGone`] when the server is shutting down.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.chunks.write(data).await
    }

    /// Holds a guest-link upload slot until the entry is committed (or the
    /// upload abandoned), so that no count misses this upload.
    pub(crate) fn hold_guest_slot(&mut self, slot: LocalSlot) {
        self.slot = Some(slot);
    }

    /// Stores the last partial chunk and the entry row, and returns once both are
    /// durable on disk. The caller must have checked that the file is not empty.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] and other storage failures; nothing is stored then.
    pub(crate) async fn finish(mut self, entry: NewEntry) -> Result<(), StoreError> {
        self.chunks.flush().await?;
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Finish {
            id: self.chunks.id.clone(),
            entry,
            reply,
        };
        self.chunks.send(cmd).await?;
        // From here on the writer owns the outcome: it cleans up on failure.
        self.done = true;
        let stored = rx.await.map_err(|_| StoreError::WriterGone)?;
        // The slot goes only now that the entry, which counts in its place, is
        // committed (or the upload failed).
        drop(self.slot.take());
        stored
    }
}

impl SqliteSink {
    /// Makes the bytes received the new content of entry `target` (see
    /// `Cmd::Replace`) and returns once the switch is durable: `false` if
    /// the entry is gone (the bytes are then deleted). The caller must have
    /// checked that the file is not empty.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] and other storage failures; the entry keeps
    /// its old content then.
    pub(crate) async fn finish_replace(
        mut self,
        target: EntryId,
        change: Replacement,
    ) -> Result<bool, StoreError> {
        self.chunks.flush().await?;
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Replace {
            id: self.chunks.id.clone(),
            target,
            change,
            reply,
        };
        self.chunks.send(cmd).await?;
        self.done = true;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl Drop for SqliteSink {
    fn drop(&mut self) {
        if self.done || self.chunks.next_index == 0 {
            return;
        }
        self.chunks.send_from_drop(Cmd::Abort {
            id: self.chunks.id.clone(),
        });
    }
}

/// One writing session on a resumable upload: continues it from its
/// recorded offset (the row's tail first) and ends it with
/// [`save`](Self::save), [`complete`](Self::complete) or
/// [`discard`](Self::discard). Dropping it ends the session keeping what the
/// writer's commits recorded.
pub(crate) struct SqliteTusSink {
    chunks: Chunker,
    /// Tells this session's messages from those of an earlier one.
    session: u64,
    /// The first chunk index this session writes.
    start_index: u64,
    /// Set once the session has ended.
    done: bool,
}

impl SqliteTusSink {
    /// A sink for session `session` of `row` (not completed), continuing
    /// from its offset.
    pub(super) fn new(tx: flume::Sender<Cmd>, row: &TusUpload, session: u64) -> Self {
        let start_index = row.offset / row.chunk_size;
        SqliteTusSink {
            chunks: Chunker {
                id: row.entry_id.clone(),
                tx,
                pieces: Pieces::new(row.chunk_size as usize, &row.tail),
                next_index: start_index,
                bytes: row.offset,
            },
            session,
            start_index,
            done: false,
        }
    }

    /// The upload's offset: bytes stored before this session and received
    /// in it.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.chunks.bytes
    }

    /// Appends bytes. Waits while the writer is behind (backpressure).
    ///
    /// # Errors
    /// [`StoreError::WriterGone`] when the server is shutting down.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.chunks.write(data).await
    }

    /// Ends the session: the bytes received so far become the upload's
    /// durable offset (full chunks in the chunk table, the rest as its tail).
    ///
    /// # Errors
    /// Storage failures; the upload keeps the offset its last commit recorded.
    pub(crate) async fn save(mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let tail = self.chunks.pieces.take_rest();
        self.end(tail, expires, None).await
    }

    /// Completes the upload, whose last byte has arrived: stores the last
    /// chunk and the entry row, and returns once they are durable.
    ///
    /// # Errors
    /// Storage failures; the upload then keeps its last recorded offset.
    pub(crate) async fn complete(
        mut self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.chunks.flush().await?;
        self.end(Bytes::new(), expires, Some(TusCompletion::Entry(entry)))
            .await
    }

    /// Completes the upload as the new content of entry `target`: the last
    /// chunk, the switch (`Writer::replace`'s) and the upload marked
    /// complete, in one durable commit.
    ///
    /// # Errors
    /// Storage failures, the upload keeping its last recorded offset;
    /// [`StoreError::EntryGone`] if the entry was deleted (the upload is
    /// dropped with its chunks).
    pub(crate) async fn complete_replace(
        mut self,
        target: EntryId,
        change: Replacement,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.chunks.flush().await?;
        let completion = TusCompletion::Replace { target, change };
        self.end(Bytes::new(), expires, Some(completion)).await
    }

    async fn end(
        &mut self,
        tail: Bytes,
        expires: DateTime<Utc>,
        complete: Option<TusCompletion>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::TusSave {
            id: self.chunks.id.clone(),
            session: self.session,
            offset: self.chunks.bytes,
            tail,
            expires: db_time(expires),
            complete,
            reply,
        };
        self.chunks.send(cmd).await?;
        // From here on the writer owns the outcome.
        self.done = true;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Ends the session and deletes everything it wrote (a checksum
    /// mismatch): the upload keeps the offset it had before.
    pub(crate) async fn discard(mut self) {
        self.done = true;
        let _ = self
            .chunks
            .send(Cmd::TusRelease {
                id: self.chunks.id.clone(),
                session: self.session,
                discard_from: Some(self.start_index),
            })
            .await;
    }
}

impl Drop for SqliteTusSink {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A resumable upload keeps what its commits recorded.
        self.chunks.send_from_drop(Cmd::TusRelease {
            id: self.chunks.id.clone(),
            session: self.session,
            discard_from: None,
        });
    }
}

impl SqliteStore {
    /// Starts an upload of a new entry with ID `id`. Nothing is visible until
    /// [`SqliteSink::finish`] returns; dropping the sink abandons the upload and
    /// reclaims its chunks.
    pub(crate) fn begin_upload(&self, id: EntryId) -> SqliteSink {
        SqliteSink {
            chunks: Chunker {
                id,
                tx: self.inner.writer.sender(),
                pieces: Pieces::new(self.inner.cfg.chunk_size, &[]),
                next_index: 0,
                bytes: 0,
            },
            done: false,
            slot: None,
        }
    }
}
