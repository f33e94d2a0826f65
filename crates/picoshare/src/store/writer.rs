//! The writer thread: the only connection that writes to the database.
//!
//! Everything that changes the database arrives here as a [`Cmd`] on one bounded
//! channel. Chunk inserts of all running uploads share large transactions that are
//! committed every `commit_bytes` of data, or as soon as something waits for a
//! reply (an upload that finished, a metadata change), and then with a full fsync
//! (group commit). Batch commits in between skip the fsync: they need not be
//! durable, because nothing is visible, and nothing is acknowledged, until the
//! upload's final, durable commit.
//!
//! Failure model: if a statement or a commit fails (disk full, I/O error), the
//! whole running transaction is rolled back, every upload with chunks in it is
//! marked failed (its later chunks are dropped and its finish reports the error),
//! and every waiter gets the error. The database stays consistent: an entry row is
//! only ever written in the same transaction as, or after, all of its chunks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::tus::{self, TusUpload};
use super::{expiration_to_db, NewEntry, StoreConfig, StoreError};
use crate::ids::{EntryId, TusUploadId};
use crate::validate::db_time;

/// Called once the transaction holding a job's changes has committed (or failed).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A unit of work run inside the writer's transaction. `Err` means the job failed
/// and its changes must be rolled back; the completion then carries its error.
/// It is given the transaction's connection, or the reason none could be started.
type Job =
    Box<dyn FnOnce(Result<&Connection, StoreError>) -> Result<Completion, Completion> + Send>;

enum Cmd {
    Chunk {
        id: EntryId,
        index: u64,
        data: Bytes,
    },
    Finish {
        id: EntryId,
        entry: NewEntry,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Abort {
        id: EntryId,
    },
    Exec {
        job: Job,
        durable: bool,
    },
    /// Starts a writing session on a resumable upload: loads its row and
    /// registers it as in progress.
    TusOpen {
        upload_id: TusUploadId,
        track: bool,
        reply: oneshot::Sender<Result<Option<(TusUpload, u64)>, StoreError>>,
    },
    /// Ends a session by recording its offset and tail durably, or by
    /// completing the upload (entry row written in the same transaction).
    TusSave {
        id: EntryId,
        session: u64,
        offset: u64,
        tail: Bytes,
        expires: String,
        complete: Option<NewEntry>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Ends a session without saving its tail: keeps what the transactions
    /// recorded, or with `discard_from` deletes the chunks the session wrote.
    TusRelease {
        id: EntryId,
        session: u64,
        discard_from: Option<u64>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

use super::stats::Counters;

/// State the writer shares with jobs and the rest of the store.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Entries whose upload is in progress (their chunks have no entry row yet).
    pub in_progress: std::sync::Mutex<HashSet<EntryId>>,
    /// Set when pages were freed (deletes): the writer then returns them to the
    /// filesystem with small incremental-vacuum steps whenever it is idle.
    pub vacuum_wanted: AtomicBool,
}

/// The async side's handle on the writer thread.
pub(super) struct WriterHandle {
    tx: flume::Sender<Cmd>,
}

/// Receives the bytes of one upload and hands full chunks to the writer.
///
/// Dropping it before [`SqliteSink::finish`] abandons the upload: the writer
/// deletes whatever chunks it already stored.
pub struct SqliteSink {
    id: EntryId,
    tx: flume::Sender<Cmd>,
    chunk_size: usize,
    buf: BytesMut,
    next_index: u64,
    bytes: u64,
    done: bool,
    /// Set for a session on a resumable upload.
    tus: Option<TusSession>,
}

/// A writing session on a resumable upload.
#[derive(Debug, Clone, Copy)]
struct TusSession {
    /// Tells this session's messages from those of an earlier one.
    session: u64,
    /// The first chunk index this session writes.
    start_index: u64,
}

impl SqliteSink {
    /// The ID the entry will have.
    pub fn id(&self) -> &EntryId {
        &self.id
    }

    /// Bytes received so far (for a resumable upload: its offset, counting
    /// the bytes stored before this session).
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Appends bytes. Waits while the writer is behind (backpressure).
    ///
    /// # Errors
    /// [`StoreError::WriterGone`] when the server is shutting down.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), StoreError> {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.chunk_size {
                // Whole chunk straight from the network buffer, without a copy.
                let chunk = data.split_to(self.chunk_size);
                self.send_chunk(chunk).await?;
                continue;
            }
            if self.buf.capacity() == 0 {
                self.buf.reserve(self.chunk_size);
            }
            let take = (self.chunk_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() == self.chunk_size {
                let chunk = self.buf.split().freeze();
                self.send_chunk(chunk).await?;
            }
        }
        Ok(())
    }

    async fn send_chunk(&mut self, data: Bytes) -> Result<(), StoreError> {
        let index = self.next_index;
        self.next_index += 1;
        self.tx
            .send_async(Cmd::Chunk {
                id: self.id.clone(),
                index,
                data,
            })
            .await
            .map_err(|_| StoreError::WriterGone)
    }

    /// Stores the last partial chunk and the entry row, and returns once both are
    /// durable on disk. The caller must have checked that the file is not empty.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] and other storage failures; nothing is stored then.
    pub async fn finish(mut self, entry: NewEntry) -> Result<(), StoreError> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send_chunk(chunk).await?;
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Cmd::Finish {
                id: self.id.clone(),
                entry,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        // From here on the writer owns the outcome: it cleans up on failure.
        self.done = true;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

impl SqliteSink {
    /// Ends a resumable upload's session: the bytes received so far become its
    /// durable offset (full chunks in the chunk table, the rest as its tail).
    ///
    /// # Errors
    /// Storage failures; the upload keeps the offset its last commit recorded.
    pub async fn tus_save(mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let tail = self.buf.split().freeze();
        self.tus_send(tail, expires, None).await
    }

    /// Completes a resumable upload whose last byte has arrived: stores the
    /// last chunk and the entry row, and returns once they are durable.
    ///
    /// # Errors
    /// Storage failures; the upload then keeps its last recorded offset.
    pub async fn tus_complete(
        mut self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send_chunk(chunk).await?;
        }
        self.tus_send(Bytes::new(), expires, Some(entry)).await
    }

    async fn tus_send(
        &mut self,
        tail: Bytes,
        expires: DateTime<Utc>,
        complete: Option<NewEntry>,
    ) -> Result<(), StoreError> {
        let Some(tus) = self.tus else {
            return Err(StoreError::Task("not a resumable upload".into()));
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Cmd::TusSave {
                id: self.id.clone(),
                session: tus.session,
                offset: self.bytes,
                tail,
                expires: db_time(expires),
                complete,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        self.done = true;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Ends a resumable upload's session and deletes everything it wrote (a
    /// checksum mismatch): the upload keeps the offset it had before.
    pub async fn tus_discard(mut self) {
        if let Some(tus) = self.tus {
            self.done = true;
            let _ = self
                .tx
                .send_async(Cmd::TusRelease {
                    id: self.id.clone(),
                    session: tus.session,
                    discard_from: Some(tus.start_index),
                })
                .await;
        }
    }
}

impl Drop for SqliteSink {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let cmd = match self.tus {
            // A resumable upload keeps what its commits recorded.
            Some(tus) => Cmd::TusRelease {
                id: self.id.clone(),
                session: tus.session,
                discard_from: None,
            },
            None if self.next_index == 0 => return,
            None => Cmd::Abort {
                id: self.id.clone(),
            },
        };
        if let Err(flume::TrySendError::Full(cmd)) = self.tx.try_send(cmd) {
            // The queue is full; deliver the abort as soon as there is room. If the
            // runtime is gone, the writer's shutdown (or the next start) reclaims it.
            let tx = self.tx.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tx.send_async(cmd).await;
                });
            }
        }
    }
}

impl WriterHandle {
    pub(super) fn begin_upload(&self, id: EntryId, chunk_size: usize) -> SqliteSink {
        SqliteSink {
            id,
            tx: self.tx.clone(),
            chunk_size,
            buf: BytesMut::new(),
            next_index: 0,
            bytes: 0,
            done: false,
            tus: None,
        }
    }

    /// Starts a writing session on resumable upload `upload_id`. With `track`,
    /// every commit records the offset its full chunks reached, so a crash
    /// loses at most the bytes since the last commit. Returns `None` for an
    /// unknown upload, and no sink for a completed one.
    pub(super) async fn tus_open(
        &self,
        upload_id: TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<SqliteSink>)>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send_async(Cmd::TusOpen {
                upload_id,
                track,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        let Some((row, session)) = rx.await.map_err(|_| StoreError::WriterGone)?? else {
            return Ok(None);
        };
        if row.completed {
            return Ok(Some((row, None)));
        }
        let chunk_size = row.chunk_size as usize;
        let mut buf = BytesMut::with_capacity(chunk_size);
        buf.extend_from_slice(&row.tail);
        let start_index = row.offset / row.chunk_size;
        let sink = SqliteSink {
            id: row.entry_id.clone(),
            tx: self.tx.clone(),
            chunk_size,
            buf,
            next_index: start_index,
            bytes: row.offset,
            done: false,
            tus: Some(TusSession {
                session,
                start_index,
            }),
        };
        Ok(Some((row, Some(sink))))
    }

    fn job<T, F>(f: F) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| match conn.and_then(f) {
            Ok(v) => Ok(Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.map(|()| v));
            })),
            Err(e) => Err(Box::new(move |_| {
                let _ = tx.send(Err(e));
            })),
        });
        (job, rx)
    }

    /// Runs `f` in the writer's transaction; resolves after the commit.
    pub(super) async fn exec<T, F>(&self, f: F, durable: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = Self::job(f);
        self.tx
            .send_async(Cmd::Exec { job, durable })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `f` without waiting for it; failures are logged.
    pub(super) fn exec_detached<F>(&self, f: F)
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (job, rx) = Self::job(f);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if tx
                .send_async(Cmd::Exec {
                    job,
                    durable: false,
                })
                .await
                .is_err()
            {
                return;
            }
            if let Ok(Err(e)) = rx.await {
                tracing::warn!(error = %e, "background database write failed");
            }
        });
    }

    pub(super) async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send_async(Cmd::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the writer thread on `conn`.
pub(super) fn spawn(
    conn: Connection,
    cfg: StoreConfig,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
) -> Result<WriterHandle, StoreError> {
    // Bound the queue in bytes, not messages: about 2 MiB of chunks in flight,
    // enough to keep the writer busy while the network side fills the next one.
    let capacity = ((2usize << 20) / cfg.chunk_size.max(1)).clamp(2, 64);
    let (tx, rx) = flume::bounded(capacity);
    let writeback = cfg.early_writeback.then(|| Writeback::start(&cfg));
    let checkpointer = if cfg.background_checkpoint
        && !cfg.external_checkpoints
        && cfg.journal_mode == super::JournalMode::Wal
    {
        let c = Connection::open(&cfg.path)?;
        super::configure_connection(&c, &cfg)?;
        Some(super::checkpoint::Checkpointer::start(c, counters.clone())?)
    } else {
        None
    };
    let mut writer = Writer {
        conn,
        cfg,
        in_txn: false,
        durable: false,
        txn_bytes: 0,
        txn_uploads: HashSet::new(),
        uploads: HashMap::new(),
        next_session: 1,
        pending: Vec::new(),
        counters: counters.clone(),
        writeback,
        checkpointer,
        wal_bytes: 0,
        undurable_bytes: 0,
        unchecked_bytes: 0,
        checkpoint_unconfirmed: false,
        shared,
    };
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok(WriterHandle { tx })
}

/// Early writeback starts once this many bytes await a durable commit. Smaller
/// uploads fit in the page cache until their one fsync, and measured faster
/// without it; larger ones measured faster with it (docs/benchmarks.md).
const WRITEBACK_AFTER: u64 = 128 << 20;

/// The same for a large resumable upload sent in several requests: each request
/// ends with a durable commit, so the bytes awaiting one never reach
/// [`WRITEBACK_AFTER`], yet the upload as a whole is large.
const TUS_WRITEBACK_AFTER: u64 = 16 << 20;

/// Committed bytes after which a background checkpoint is started.
const CHECKPOINT_EVERY: u64 = 16 << 20;
/// Idle time after which a step of incremental vacuum runs.
const IDLE_VACUUM: Duration = Duration::from_millis(20);
/// Bytes of free pages returned per incremental-vacuum step: small enough
/// that a step never holds up an upload or a metadata change for long.
const VACUUM_STEP_BYTES: i64 = 32 << 20;

/// Idle time after which small commits are checkpointed.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(1);

/// How long an open transaction may sit idle before it is committed.
const IDLE_COMMIT: Duration = Duration::from_millis(100);

#[derive(Default)]
struct UploadState {
    /// Set once the upload cannot succeed; later chunks are dropped.
    failed: Option<FailKind>,
    /// Set for a session on a resumable upload.
    tus: Option<TusTrack>,
}

/// The writer's view of a resumable upload's session.
struct TusTrack {
    session: u64,
    /// Record the offset reached at every commit.
    track: bool,
    chunk_size: u64,
    length: u64,
    /// Offset reached by full chunks in the running transaction, not yet
    /// written to the upload's row.
    progress: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum FailKind {
    DiskFull,
    Other,
}

impl FailKind {
    fn of(e: &StoreError) -> Self {
        match e {
            StoreError::DiskFull => FailKind::DiskFull,
            _ => FailKind::Other,
        }
    }
    fn error(self, context: &str) -> StoreError {
        match self {
            FailKind::DiskFull => StoreError::DiskFull,
            FailKind::Other => StoreError::Task(format!("write failed: {context}")),
        }
    }
}

struct Writer {
    conn: Connection,
    cfg: StoreConfig,
    in_txn: bool,
    /// Whether the running transaction must be fsync'd at commit.
    durable: bool,
    txn_bytes: u64,
    /// Uploads with chunks in the running transaction.
    txn_uploads: HashSet<EntryId>,
    /// Uploads that have sent at least one chunk and not yet finished, and
    /// sessions on resumable uploads.
    uploads: HashMap<EntryId, UploadState>,
    /// The next resumable-upload session number.
    next_session: u64,
    /// Waiters for the running transaction's commit.
    pending: Vec<Completion>,
    counters: Arc<Counters>,
    writeback: Option<Writeback>,
    checkpointer: Option<super::checkpoint::Checkpointer>,
    /// Bytes committed to the WAL since it last restarted (background checkpoints).
    wal_bytes: u64,
    /// Chunk bytes written since the last durable commit.
    undurable_bytes: u64,
    /// Bytes committed since the checkpointer was last asked to run.
    unchecked_bytes: u64,
    /// Whether the last checkpoint asked for when idle may not have copied
    /// the whole WAL yet.
    checkpoint_unconfirmed: bool,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(&mut self, rx: flume::Receiver<Cmd>) {
        loop {
            let cmd = if self.in_txn {
                match rx.recv_timeout(IDLE_COMMIT) {
                    Ok(cmd) => cmd,
                    Err(flume::RecvTimeoutError::Timeout) => {
                        self.commit();
                        continue;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                }
            } else if self.shared.vacuum_wanted.load(Ordering::Relaxed) {
                match rx.recv_timeout(IDLE_VACUUM) {
                    Ok(cmd) => cmd,
                    Err(flume::RecvTimeoutError::Timeout) => {
                        self.vacuum_step();
                        continue;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                }
            } else if self.unchecked_bytes > 0 || self.checkpoint_unconfirmed {
                match rx.recv_timeout(IDLE_CHECKPOINT) {
                    Ok(cmd) => cmd,
                    Err(flume::RecvTimeoutError::Timeout) => {
                        self.idle();
                        continue;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                }
            };
            if let Cmd::Shutdown { reply } = cmd {
                self.abandon_all();
                self.checkpoint();
                let _ = reply.send(());
                break;
            }
            self.handle(cmd);
            let waiting = !self.pending.is_empty() && (rx.is_empty() || self.pending.len() >= 64);
            if waiting || self.txn_bytes >= self.cfg.commit_bytes {
                self.commit();
            }
        }
        self.abandon_all();
        if let Some(wb) = self.writeback.take() {
            wb.stop();
        }
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        tracing::debug!("writer stopped");
    }

    /// Deletes the chunks of every unfinished upload and commits durably.
    /// Resumable uploads keep theirs, with the offset their chunks reached.
    fn abandon_all(&mut self) {
        let ids: Vec<EntryId> = self.uploads.keys().cloned().collect();
        for id in ids {
            if self.uploads.get(&id).is_some_and(|s| s.tus.is_some()) {
                self.tus_release(&id, None, None);
            } else {
                self.abort(&id);
            }
        }
        self.durable = true;
        self.commit();
    }

    /// Copies the WAL into the database file and truncates it, so a stopped
    /// server leaves one self-contained file behind.
    fn checkpoint(&self) {
        if self.cfg.journal_mode == super::JournalMode::Wal && !self.cfg.external_checkpoints {
            if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                tracing::warn!(error = %e, "final checkpoint failed");
            }
        }
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.in_txn {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(StoreError::classify)?;
            self.in_txn = true;
        }
        Ok(())
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Chunk { id, index, data } => self.chunk(id, index, data),
            Cmd::Finish { id, entry, reply } => self.finish(id, entry, reply),
            Cmd::Abort { id } => self.abort(&id),
            Cmd::Exec { job, durable } => self.exec(job, durable),
            Cmd::TusOpen {
                upload_id,
                track,
                reply,
            } => {
                let _ = reply.send(self.tus_open(&upload_id, track));
            }
            Cmd::TusSave {
                id,
                session,
                offset,
                tail,
                expires,
                complete,
                reply,
            } => self.tus_save(&id, session, offset, &tail, &expires, complete, reply),
            Cmd::TusRelease {
                id,
                session,
                discard_from,
            } => self.tus_release(&id, Some(session), discard_from),
            Cmd::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    fn chunk(&mut self, id: EntryId, index: u64, data: Bytes) {
        let state = self.uploads.entry(id.clone()).or_insert_with(|| {
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
        self.txn_uploads.insert(id);
        match result {
            Ok(()) => {
                let n = data.len() as u64;
                self.txn_bytes += n;
                let c = &self.counters;
                c.chunks.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(n, Ordering::Relaxed);
                c.insert_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.undurable_bytes += n;
                if self.undurable_bytes >= writeback_after {
                    if let Some(wb) = &self.writeback {
                        wb.poke();
                    }
                }
            }
            Err(e) => self.fail_txn(e),
        }
    }

    fn finish(
        &mut self,
        id: EntryId,
        entry: NewEntry,
        reply: oneshot::Sender<Result<(), StoreError>>,
    ) {
        let failed = match self.uploads.get(&id) {
            Some(s) => s.failed,
            None => Some(FailKind::Other),
        };
        if let Some(kind) = failed {
            self.abort(&id);
            let _ = reply.send(Err(kind.error("an earlier chunk could not be stored")));
            return;
        }
        let result = self
            .begin()
            .and_then(|()| insert_entry(&self.conn, &id, &entry));
        match result {
            Ok(()) => {
                self.forget(&id);
                self.durable = true;
                self.pending.push(Box::new(move |r| {
                    let _ = reply.send(r);
                }));
            }
            Err(e) => {
                // The transaction is rolled back; this upload fails with the rest.
                self.txn_uploads.insert(id.clone());
                let kind = FailKind::of(&e);
                self.fail_txn(e);
                self.abort(&id);
                let _ = reply.send(Err(kind.error("the entry could not be recorded")));
            }
        }
    }

    /// Returns up to [`VACUUM_STEP_BYTES`] of free pages to the filesystem (the
    /// file shrinks at the next checkpoint). Clears the request once no free
    /// pages are left, or if the database does not use incremental vacuum.
    fn vacuum_step(&mut self) {
        let started = Instant::now();
        let step = || -> rusqlite::Result<i64> {
            let auto: i64 = self
                .conn
                .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            if auto != 2 {
                return Ok(0);
            }
            let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (VACUUM_STEP_BYTES / page.max(512)).max(1);
            // The pragma frees one page per step of its statement: run it to
            // completion (a single step would free a single page).
            let mut stmt = self
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            drop(rows);
            drop(stmt);
            self.conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        };
        match step() {
            Ok(left) => {
                Counters::add(
                    &self.counters.vacuum_ns,
                    started.elapsed().as_nanos() as u64,
                );
                Counters::add(&self.counters.vacuum_steps, 1);
                if left == 0 {
                    self.shared.vacuum_wanted.store(false, Ordering::Relaxed);
                }
                tracing::debug!(free_pages_left = left, "incremental vacuum step");
                // The file shrinks when the checkpoint copies the step's commit
                // into it: ask for one after every step, so space comes back
                // progressively rather than at the end.
                self.unchecked_bytes += 1;
                self.idle();
            }
            Err(e) => {
                tracing::warn!(error = %e, "incremental vacuum failed; will retry after the next delete");
                self.shared.vacuum_wanted.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Once everything is checkpointed, gives the WAL file's space back too (it
    /// keeps its largest size otherwise, up to the WAL limit, until the next
    /// write). Waits at most briefly for readers; returns false to retry later.
    fn truncate_wal(&self) -> bool {
        let len = std::fs::metadata(wal_path(&self.cfg.path)).map_or(0, |m| m.len());
        if len <= 4 << 20 {
            return true;
        }
        let _ = self.conn.busy_timeout(Duration::from_millis(100));
        let busy: rusqlite::Result<i64> =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
        let _ = self.conn.busy_timeout(Duration::from_secs(10));
        matches!(busy, Ok(0))
    }

    /// Stops tracking an upload; returns whether it was in progress.
    fn forget(&mut self, id: &EntryId) -> bool {
        let was = self.uploads.remove(id).is_some();
        if was {
            self.counters.in_progress.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut set) = self.shared.in_progress.lock() {
                set.remove(id);
            }
        }
        was
    }

    fn abort(&mut self, id: &EntryId) {
        if self.forget(id) {
            self.counters.aborted.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.begin().and_then(|()| {
            self.conn
                .execute("DELETE FROM entries_data WHERE id = ?1", [id.as_str()])
                .map_err(StoreError::classify)?;
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

    fn exec(&mut self, job: Job, durable: bool) {
        let started = self.begin().and_then(|()| {
            self.conn
                .execute_batch("SAVEPOINT job")
                .map_err(StoreError::classify)
        });
        if let Err(e) = started {
            let kind = FailKind::of(&e);
            self.fail_txn(e);
            // The job sees the error and its completion reports it.
            let (Ok(done) | Err(done)) = job(Err(kind.error("could not start a transaction")));
            done(Ok(()));
            return;
        }
        match job(Ok(&self.conn)) {
            Ok(done) => {
                let _ = self.conn.execute_batch("RELEASE job");
                self.durable |= durable;
                self.pending.push(done);
            }
            Err(done) => {
                let _ = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
                done(Ok(()));
            }
        }
    }

    fn commit(&mut self) {
        if !self.in_txn {
            return;
        }
        if let Err(e) = self.record_all_progress() {
            self.fail_txn(e);
            return;
        }
        let started = Instant::now();
        let result = self
            .conn
            .execute_batch("COMMIT")
            .map_err(StoreError::classify)
            .and_then(|()| {
                if self.durable {
                    self.sync_wal()
                } else {
                    Ok(())
                }
            });
        match result {
            Ok(()) => {
                self.in_txn = false;
                if self.durable {
                    self.undurable_bytes = 0;
                }
                self.after_commit();
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .commit_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.reset_txn();
                for done in std::mem::take(&mut self.pending) {
                    done(Ok(()));
                }
            }
            Err(e) => self.fail_txn(e),
        }
    }

    /// Makes the last commit durable. The connection runs with
    /// `synchronous = NORMAL`, under which a WAL commit is not fsync'd (SQLite
    /// refuses to change that setting inside a transaction, and we only learn
    /// that a transaction needs durability while it runs). A checkpoint always
    /// syncs the WAL before copying it, so syncing the WAL file here covers every
    /// commit so far. In rollback-journal mode, NORMAL already syncs at commit.
    fn sync_wal(&self) -> Result<(), StoreError> {
        if self.cfg.journal_mode != super::JournalMode::Wal {
            return Ok(());
        }
        match std::fs::File::open(wal_path(&self.cfg.path)) {
            Ok(f) => f.sync_data().map_err(StoreError::Io),
            // No WAL file: nothing is pending in one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io(e)),
        }
    }

    /// With background checkpoints: start copying what was just committed, and
    /// once the WAL has grown past its limit, wait for the copy to finish so the
    /// next transaction restarts the WAL from the beginning.
    fn after_commit(&mut self) {
        let Some(cp) = &self.checkpointer else {
            return;
        };
        let n = self.txn_bytes.max(1);
        self.wal_bytes += n;
        self.unchecked_bytes += n;
        if self.wal_bytes >= self.cfg.wal_limit_bytes {
            // A reader that keeps an old snapshot (Litestream does, between its
            // syncs) can stop the copy from completing; then do not stall uploads
            // for it, just try again after the next `wal_limit` bytes.
            if !cp.wait_complete(Duration::from_secs(1)) {
                tracing::debug!("the WAL could not be fully checkpointed yet; it grows for now");
            }
            self.wal_bytes = 0;
            self.unchecked_bytes = 0;
        } else if self.unchecked_bytes >= CHECKPOINT_EVERY {
            // Small commits (download records, edits) are checkpointed when the
            // writer goes idle instead: a checkpoint costs two fsyncs.
            cp.poke();
            self.unchecked_bytes = 0;
        }
    }

    /// Called when the writer has been idle for a while: checkpoint what was
    /// committed since the last request, and retry until a checkpoint has
    /// copied the whole WAL (a reader holding an old snapshot can stop one
    /// short; until it completes, space freed by vacuum stays in the file).
    fn idle(&mut self) {
        let Some(cp) = &self.checkpointer else {
            return;
        };
        if self.unchecked_bytes > 0 {
            cp.poke();
            self.unchecked_bytes = 0;
            self.checkpoint_unconfirmed = true;
        } else if self.checkpoint_unconfirmed {
            match cp.caught_up() {
                Some(true) => self.checkpoint_unconfirmed = !self.truncate_wal(),
                Some(false) => {
                    cp.poke();
                }
                None => {}
            }
        }
    }

    /// Writes the offset reached by each tracked resumable upload into its row,
    /// inside the running transaction (so the row and its chunks commit together).
    fn record_all_progress(&mut self) -> Result<(), StoreError> {
        let ids: Vec<EntryId> = self
            .uploads
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
        let Some(state) = self.uploads.get_mut(id) else {
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

    fn tus_open(
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
        if self.uploads.contains_key(&row.entry_id) {
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
        let session = self.next_session;
        self.next_session += 1;
        self.counters.in_progress.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut set) = self.shared.in_progress.lock() {
            set.insert(row.entry_id.clone());
        }
        self.txn_uploads.insert(row.entry_id.clone());
        self.uploads.insert(
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
            .get(id)
            .and_then(|s| s.tus.as_ref())
            .is_some_and(|t| t.session == session)
    }

    #[allow(clippy::too_many_arguments)]
    fn tus_save(
        &mut self,
        id: &EntryId,
        session: u64,
        offset: u64,
        tail: &[u8],
        expires: &str,
        complete: Option<NewEntry>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    ) {
        if !self.in_session(id, session) {
            let _ = reply.send(Err(StoreError::Task(
                "another request took over this upload".into(),
            )));
            return;
        }
        if let Some(kind) = self.uploads.get(id).and_then(|s| s.failed) {
            self.forget(id);
            let _ = reply.send(Err(kind.error("an earlier chunk could not be stored")));
            return;
        }
        let result = self.begin().and_then(|()| {
            match &complete {
                Some(entry) => {
                    insert_entry(&self.conn, id, entry)?;
                    self.conn
                        .execute(
                            "UPDATE picoshare_tus_uploads
                             SET upload_offset = upload_length, tail = NULL, completed = 1, expires_time = ?2
                             WHERE entry_id = ?1",
                            params![id.as_str(), expires],
                        )
                        .map_err(StoreError::classify)?;
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
        match result {
            Ok(()) => {
                // This save supersedes any progress not yet recorded.
                self.forget(id);
                self.durable = true;
                self.pending.push(Box::new(move |r| {
                    let _ = reply.send(r);
                }));
            }
            Err(e) => {
                self.txn_uploads.insert(id.clone());
                let kind = FailKind::of(&e);
                self.fail_txn(e);
                self.forget(id);
                let _ = reply.send(Err(
                    kind.error("the upload's progress could not be recorded")
                ));
            }
        }
    }

    /// Ends a resumable session (any session when `session` is `None`).
    fn tus_release(&mut self, id: &EntryId, session: Option<u64>, discard_from: Option<u64>) {
        if let Some(s) = session {
            if !self.in_session(id, s) {
                return;
            }
        }
        let result = match discard_from {
            Some(from) => self.begin().and_then(|()| {
                self.conn
                    .execute(
                        "DELETE FROM entries_data WHERE id = ?1 AND chunk_index >= ?2",
                        params![id.as_str(), from as i64],
                    )
                    .map_err(StoreError::classify)?;
                self.shared.vacuum_wanted.store(true, Ordering::Relaxed);
                Ok(())
            }),
            None => self.record_progress(id),
        };
        if let Err(e) = result {
            self.txn_uploads.insert(id.clone());
            self.fail_txn(e);
        }
        self.forget(id);
    }

    fn reset_txn(&mut self) {
        self.in_txn = false;
        self.durable = false;
        self.txn_bytes = 0;
        self.txn_uploads.clear();
    }

    /// Rolls back the running transaction and fails everything that was in it.
    fn fail_txn(&mut self, e: StoreError) {
        tracing::error!(error = %e, "write transaction failed; rolling back");
        if !self.conn.is_autocommit() {
            if let Err(re) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %re, "rollback failed");
            }
        }
        let kind = FailKind::of(&e);
        for id in &self.txn_uploads {
            if let Some(state) = self.uploads.get_mut(id) {
                state.failed = Some(kind);
            }
        }
        for state in self.uploads.values_mut() {
            if let Some(t) = state.tus.as_mut() {
                t.progress = None;
            }
        }
        self.reset_txn();
        for done in std::mem::take(&mut self.pending) {
            done(Err(kind.error(&e.to_string())));
        }
    }
}

/// Writes a finished upload's entry row, and its download limit or password
/// if it has one, in the running transaction.
fn insert_entry(conn: &Connection, id: &EntryId, entry: &NewEntry) -> Result<(), StoreError> {
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
    Ok(())
}

/// Starts writeback of dirty file pages early, from a side thread, so that the
/// kernel writes while the writer keeps inserting. Without it, each commit or
/// checkpoint fsync waits for all the data written since the previous one.
struct Writeback {
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    fn start(cfg: &StoreConfig) -> Self {
        let dirty = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let paths = [cfg.path.clone(), wal_path(&cfg.path)];
        let (d, s) = (dirty.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("sqlite-writeback".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if d.swap(false, Ordering::Relaxed) {
                        for p in &paths {
                            start_writeback(p);
                        }
                    }
                }
            })
            .ok();
        Writeback {
            dirty,
            stop,
            thread,
        }
    }

    fn poke(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wal_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    s.into()
}

#[cfg(target_os = "linux")]
fn start_writeback(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: a valid open descriptor; the call only schedules writeback of
        // the file's dirty pages and does not touch our memory.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_path: &std::path::Path) {}
