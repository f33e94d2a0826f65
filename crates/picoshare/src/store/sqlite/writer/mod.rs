//! The writer thread: the only connection that writes to the database.
//!
//! Everything that changes the database arrives here as a [`Cmd`] on one bounded
//! channel. Chunk inserts of all running uploads share large transactions that are
//! committed every `commit_bytes` of data, or as soon as something waits for a
//! reply (an upload that finished, a metadata change), and then with a full fsync
//! (group commit; while commits are shared, a commit waits up to
//! [`GROUP_LINGER`] for company). Batch commits in between skip the fsync: they need not be
//! durable, because nothing is visible, and nothing is acknowledged, until the
//! upload's final, durable commit.
//!
//! Failure model: if a statement or a commit fails (disk full, I/O error), the
//! whole running transaction is rolled back, every upload with chunks in it is
//! marked failed (its later chunks are dropped and its finish reports the error),
//! and every waiter gets the error. The database stays consistent: an entry row is
//! only ever written in the same transaction as, or after, all of its chunks.
//!
//! The writer's jobs, one file each: `cmd.rs` holds the commands and the
//! async side's handle that sends them; this one runs the loop and the
//! transactions (group commit, jobs, failures); `uploads.rs` tracks the
//! uploads in progress and writes their chunks and entry rows;
//! `resumable.rs` runs the writing sessions of resumable uploads;
//! `space.rs` makes commits durable and gives space back (WAL sync, early
//! writeback, checkpoints, incremental vacuum). The request side of uploads,
//! which feeds this thread, is `../upload.rs`.

mod cmd;
mod resumable;
mod space;
mod uploads;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::checkpoint::Checkpointer;
use super::StoreConfig;
use crate::ids::EntryId;
use crate::store::stats::Counters;
use crate::store::StoreError;

pub(super) use cmd::{Cmd, Shared, TusCompletion, WriterHandle};
use cmd::{Completion, Job, Reply};
pub(super) use space::VACUUM_STEP_BYTES;
use space::{Space, Writeback};
use uploads::{FailKind, Uploads};

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
    let writeback = cfg.early_writeback.then(Writeback::start);
    // With checkpoints left to Litestream, the checkpointer only runs when
    // the WAL passes its bound (`space.rs`, `external_bound`).
    let checkpointer = if (cfg.background_checkpoint || cfg.external_checkpoints)
        && cfg.journal_mode == super::JournalMode::Wal
    {
        let c = Connection::open(&cfg.path)?;
        super::configure_connection(&c, &cfg)?;
        Some(Checkpointer::start(c, counters.clone())?)
    } else {
        None
    };
    let mut writer = Writer {
        conn,
        cfg,
        counters,
        shared,
        txn: Txn::default(),
        uploads: Uploads::default(),
        space: Space::new(writeback, checkpointer),
        last_group: 0,
    };
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok(WriterHandle { tx })
}

/// Idle time after which steps of incremental vacuum run.
const IDLE_VACUUM: Duration = Duration::from_millis(20);

/// Vacuum steps run back to back while the writer has nothing else to do.
const VACUUM_BURST: usize = 8;

/// Idle time after which small commits are checkpointed.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(1);

/// How long an open transaction may sit idle before it is committed.
const IDLE_COMMIT: Duration = Duration::from_millis(100);

/// How long a job nobody waits for (a download record) may wait in an open
/// transaction for others to share its commit. A commit writes every page
/// it changed to the WAL, 64 KiB each in a database with 64 KiB pages: one
/// download record per commit wrote two of them; many per commit share
/// them.
const DETACHED_COMMIT_AFTER: Duration = Duration::from_millis(100);

/// How long a commit that someone waits for may wait for company when the
/// last commit was shared (several uploads finishing at once): the others
/// are about to finish too, and one commit (its pages written to the WAL
/// and one fsync) for all of them costs about what one costs alone. The
/// wait ends once the commit has as many waiters as the last one had (with
/// 8 clients uploading small files in a loop, the 8 arrive well within the
/// time; waiting it out every time cost 40 % of the upload rate), so a
/// writer whose last commit had a single waiter commits at once.
const GROUP_LINGER: Duration = Duration::from_millis(1);

/// The writer thread's state, grouped by job.
struct Writer {
    conn: Connection,
    cfg: StoreConfig,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    /// The running transaction.
    txn: Txn,
    /// Uploads and resumable sessions in progress (`uploads.rs`).
    uploads: Uploads,
    /// Durability and space (`space.rs`).
    space: Space,
    /// Waiters of the last commit (see [`GROUP_LINGER`]).
    last_group: usize,
}

/// The running transaction and who waits for it.
#[derive(Default)]
struct Txn {
    /// Whether a transaction is open.
    open: bool,
    /// When it was opened.
    started: Option<Instant>,
    /// Jobs in it whose callers wait for its commit.
    waiters: usize,
    /// Whether it must be fsync'd at commit.
    durable: bool,
    /// Chunk bytes written in it.
    bytes: u64,
    /// Uploads with chunks in it.
    uploads: HashSet<EntryId>,
    /// Waiters for its commit.
    pending: Vec<Completion>,
    /// Until when its commit waits for more waiters ([`GROUP_LINGER`]).
    linger_until: Option<Instant>,
}

impl Writer {
    fn run(&mut self, rx: flume::Receiver<Cmd>) {
        loop {
            let cmd = if self.txn.open {
                let wait = self
                    .txn
                    .linger_until
                    .map_or(IDLE_COMMIT, |t| t.saturating_duration_since(Instant::now()));
                match rx.recv_timeout(wait) {
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
                        // Steps follow each other while nothing else is
                        // queued: a command waits for one step at most.
                        for _ in 0..VACUUM_BURST {
                            self.vacuum_step();
                            if !rx.is_empty() || !self.shared.vacuum_wanted.load(Ordering::Relaxed)
                            {
                                break;
                            }
                        }
                        continue;
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                }
            } else if self.space.unchecked_bytes > 0 || self.space.checkpoint_unconfirmed {
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
                // The side threads stop first: SQLite runs one checkpoint at a
                // time, and a background one still copying would leave the
                // final one unable to truncate the WAL.
                self.stop_side_threads();
                self.checkpoint();
                let _ = reply.send(());
                break;
            }
            self.handle(cmd);
            // Commit for whoever waits, once nothing else is queued (group
            // commit); jobs nobody waits for ride along with the next commit,
            // or go after a while.
            let waiting = self.txn.waiters > 0 && (rx.is_empty() || self.txn.pending.len() >= 64);
            if waiting && self.txn.waiters < self.last_group && self.txn.pending.len() < 64 {
                let until = *self
                    .txn
                    .linger_until
                    .get_or_insert_with(|| Instant::now() + GROUP_LINGER);
                if Instant::now() < until {
                    continue;
                }
            }
            let detached_due = !self.txn.pending.is_empty()
                && self
                    .txn
                    .started
                    .is_some_and(|t| t.elapsed() >= DETACHED_COMMIT_AFTER);
            if waiting || detached_due || self.txn.bytes >= self.cfg.commit_bytes {
                self.commit();
            }
        }
        self.abandon_all();
        self.stop_side_threads();
        tracing::debug!("writer stopped");
    }

    /// Stops the early-writeback and background-checkpoint threads, if they
    /// run, and waits for them.
    fn stop_side_threads(&mut self) {
        if let Some(wb) = self.space.writeback.take() {
            wb.stop();
        }
        if let Some(c) = self.space.checkpointer.take() {
            c.stop();
        }
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.txn.open {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(StoreError::classify)?;
            self.txn.open = true;
            self.txn.started = Some(Instant::now());
        }
        Ok(())
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Chunk { id, index, data } => self.chunk(id, index, data),
            Cmd::Finish { id, entry, reply } => self.finish(id, entry, reply),
            Cmd::Abort { id } => self.abort(&id),
            Cmd::Replace {
                id,
                target,
                change,
                reply,
            } => self.replace(id, target, change, reply),
            Cmd::FreeContent { ids } => self.free_content(&ids),
            Cmd::Exec {
                job,
                durable,
                detached,
            } => self.exec(job, durable, detached),
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

    fn exec(&mut self, job: Job, durable: bool, detached: bool) {
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
                self.txn.durable |= durable;
                self.txn.waiters += usize::from(!detached);
                self.txn.pending.push(done);
            }
            Err(done) => {
                let _ = self.conn.execute_batch("ROLLBACK TO job; RELEASE job");
                done(Ok(()));
            }
        }
    }

    fn commit(&mut self) {
        if !self.txn.open {
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
                if self.txn.durable {
                    self.sync_wal()
                } else {
                    Ok(())
                }
            });
        match result {
            Ok(()) => {
                self.txn.open = false;
                self.last_group = self.txn.waiters;
                if self.txn.durable {
                    self.space.undurable_bytes = 0;
                }
                self.after_commit();
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .commit_ns
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                self.reset_txn();
                for done in std::mem::take(&mut self.txn.pending) {
                    done(Ok(()));
                }
                if super::hooks::take_queued() {
                    self.shared.hooks.wake.notify_one();
                }
                let free = std::mem::take(
                    &mut *self
                        .shared
                        .free_after_commit
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()),
                );
                if !free.is_empty() {
                    // In a transaction of its own, committed like any other.
                    self.free_content(&free);
                }
            }
            Err(e) => self.fail_txn(e),
        }
    }

    fn reset_txn(&mut self) {
        self.txn.open = false;
        self.txn.started = None;
        self.txn.waiters = 0;
        self.txn.durable = false;
        self.txn.bytes = 0;
        self.txn.uploads.clear();
        self.txn.linger_until = None;
    }

    /// Rolls back the running transaction and fails everything that was in it.
    fn fail_txn(&mut self, e: StoreError) {
        tracing::error!(error = %e, "write transaction failed; rolling back");
        if !self.conn.is_autocommit() {
            if let Err(re) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %re, "rollback failed");
            }
        }
        // Events written in the transaction are gone with it.
        super::hooks::take_queued();
        let kind = FailKind::of(&e);
        for id in &self.txn.uploads {
            if let Some(state) = self.uploads.by_id.get_mut(id) {
                state.failed = Some(kind);
            }
        }
        for state in self.uploads.by_id.values_mut() {
            if let Some(t) = state.tus.as_mut() {
                t.progress = None;
            }
        }
        self.reset_txn();
        for done in std::mem::take(&mut self.txn.pending) {
            done(Err(kind.error(&e.to_string())));
        }
    }
}
