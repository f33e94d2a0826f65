//! The writer's durability and space: syncing the WAL for commits that
//! must be durable, early writeback of dirty pages, checkpoints (inline, in
//! the background, when idle, at shutdown), and giving free pages back to
//! the filesystem with small incremental-vacuum steps.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::super::checkpoint::{Checkpointer, Waited};
use super::super::files::{self, Which};
use super::super::JournalMode;
use super::Writer;
use crate::store::StoreError;

/// Committed bytes after which a background checkpoint is started.
const CHECKPOINT_EVERY: u64 = 16 << 20;

/// Bytes of free pages returned per incremental-vacuum step: small enough
/// that a step never holds up an upload or a metadata change for long, and
/// that the pages a step takes off the freelist fit in the writer's cache
/// while it frees pages ([`FREEING_CACHE_KIB`](super::super::FREEING_CACHE_KIB)):
/// then they are dropped at commit with the end of the file instead of being
/// spilled to the WAL. Returning a deleted 100 MiB file's space wrote 1.6 MiB
/// to the WAL this way, against 103 MiB with 32 MiB steps and a small cache
/// (docs/benchmarks.md).
pub(in crate::store::sqlite) const VACUUM_STEP_BYTES: i64 = 8 << 20;

/// With checkpoints left to Litestream (`LITESTREAM_BUCKET`): committed bytes
/// between two looks at the WAL's size, at most.
const EXTERNAL_LOOK_EVERY: u64 = 64 << 20;

/// How long the final checkpoint waits for readers (a Litestream process
/// holding its read transaction) before it leaves the WAL to them.
const FINAL_CHECKPOINT_WAIT: Duration = Duration::from_millis(500);

/// Where the writer stands with the WAL and the disk.
pub(super) struct Space {
    pub(super) writeback: Option<Writeback>,
    pub(super) checkpointer: Option<Checkpointer>,
    /// Bytes committed to the WAL since it last restarted (background checkpoints).
    pub(super) wal_bytes: u64,
    /// Chunk bytes written since the last durable commit.
    pub(super) undurable_bytes: u64,
    /// Bytes committed since the checkpointer was last asked to run.
    pub(super) unchecked_bytes: u64,
    /// Whether the last checkpoint asked for when idle may not have copied
    /// the whole WAL yet.
    pub(super) checkpoint_unconfirmed: bool,
    /// Whether a checkpoint at the WAL limit could not copy everything (a
    /// reader in another process, Litestream, holds an old snapshot): the
    /// writer then stops waiting at the limit until a checkpoint completes
    /// again, so that uploads do not stall for a reader that will not move.
    pub(super) limit_blocked: bool,
    /// With checkpoints left to Litestream: whether a checkpoint of the
    /// server's at the WAL's bound was stopped short by a reader (Litestream
    /// runs), and whether the server has warned that nothing else seems to
    /// checkpoint.
    pub(super) external_blocked: bool,
    pub(super) external_warned: bool,
}

impl Space {
    pub(super) fn new(writeback: Option<Writeback>, checkpointer: Option<Checkpointer>) -> Self {
        Space {
            writeback,
            checkpointer,
            wal_bytes: 0,
            undurable_bytes: 0,
            unchecked_bytes: 0,
            checkpoint_unconfirmed: false,
            limit_blocked: false,
            external_blocked: false,
            external_warned: false,
        }
    }
}

impl Writer {
    /// Copies the WAL into the database file and truncates it, so a stopped
    /// server leaves one self-contained file behind. If another process
    /// reads the database (Litestream holds a read transaction between its
    /// syncs), the WAL cannot be truncated under it: after a short wait the
    /// WAL stays beside the database for that process, which is logged.
    /// SQLite reports a checkpoint that could not finish in its result row,
    /// not as an error.
    pub(super) fn checkpoint(&self) {
        if self.cfg.journal_mode != JournalMode::Wal || self.cfg.external_checkpoints {
            return;
        }
        let _ = self.conn.busy_timeout(FINAL_CHECKPOINT_WAIT);
        let blocked: rusqlite::Result<i64> =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
        let _ = self.conn.busy_timeout(Duration::from_secs(10));
        match blocked {
            Ok(0) => {}
            Ok(_) => tracing::info!(
                "another process is reading the database (Litestream?): the WAL stays beside it for that process; nothing is lost"
            ),
            Err(e) => tracing::warn!(error = %e, "final checkpoint failed; the WAL stays beside the database, nothing is lost"),
        }
    }

    /// Makes the last commit durable. The connection runs with
    /// `synchronous = NORMAL`, under which a WAL commit is not fsync'd (SQLite
    /// refuses to change that setting inside a transaction, and we only learn
    /// that a transaction needs durability while it runs). A checkpoint always
    /// syncs the WAL before copying it, so syncing the WAL file here covers every
    /// commit so far. The sync goes through the WAL file SQLite holds open
    /// (`files.rs`), never a descriptor of our own. In rollback-journal mode,
    /// NORMAL already syncs at commit.
    pub(super) fn sync_wal(&self) -> Result<(), StoreError> {
        if self.cfg.journal_mode != JournalMode::Wal {
            return Ok(());
        }
        files::sync_journal(&self.conn)
    }

    /// Has the early-writeback thread start writing the database's and the
    /// WAL's dirty pages to disk. The descriptors are SQLite's own, found once.
    pub(super) fn start_writeback(&mut self) {
        let Some(wb) = &mut self.space.writeback else {
            return;
        };
        if wb.targets.is_none() {
            let path = &self.cfg.path;
            let mut targets = vec![files::Descriptor::of_or_warn(
                &self.conn,
                Which::Database,
                path,
            )];
            if self.cfg.journal_mode == JournalMode::Wal {
                targets.push(files::Descriptor::of_or_warn(
                    &self.conn,
                    Which::Journal,
                    &files::wal_path(path),
                ));
            }
            // All of them or none: a partial writeback would mislead the
            // measurements the setting exists for.
            wb.targets = Some(
                targets
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default(),
            );
        }
        wb.poke();
    }

    /// With background checkpoints: start copying what was just committed, and
    /// once the WAL has grown past its limit, wait for the copy to finish so the
    /// next transaction restarts the WAL from the beginning. A reader in
    /// another process that keeps an old snapshot (Litestream does, between
    /// its syncs) stops the copy from completing: then the writer waits no
    /// more at the limit until a checkpoint completes again, and the WAL grows
    /// meanwhile.
    ///
    /// With checkpoints left to Litestream, see [`Writer::external_bound`].
    pub(super) fn after_commit(&mut self) {
        if self.cfg.external_checkpoints {
            self.external_bound();
            return;
        }
        let Some(cp) = &self.space.checkpointer else {
            return;
        };
        let n = self.txn.bytes.max(1);
        self.space.wal_bytes += n;
        self.space.unchecked_bytes += n;
        match cp.caught_up() {
            Some(true) => self.space.limit_blocked = false,
            // The last checkpoint finished short of the end: a reader in
            // another process holds an old snapshot (it may have outlasted
            // the last wait at the limit, which then saw a checkpoint still
            // copying).
            Some(false) => self.space.limit_blocked = true,
            None => {}
        }
        if self.space.wal_bytes >= self.cfg.wal_limit_bytes {
            if self.space.limit_blocked {
                cp.poke();
            } else {
                match cp.wait_complete(Duration::from_secs(1)) {
                    Waited::Complete => {}
                    Waited::Blocked => {
                        tracing::debug!("the WAL could not be fully checkpointed (another process reads it); it grows for now");
                        self.space.limit_blocked = true;
                    }
                    // The disk is slow: the next limit waits again.
                    Waited::Slow => {}
                }
            }
            self.space.wal_bytes = 0;
            self.space.unchecked_bytes = 0;
            self.space.checkpoint_unconfirmed = true;
        } else if self.space.unchecked_bytes >= CHECKPOINT_EVERY {
            // Small commits (download records, edits) are checkpointed when the
            // writer goes idle instead: a checkpoint costs two fsyncs.
            cp.poke();
            self.space.unchecked_bytes = 0;
            // Once idle, the writer confirms that it copied everything and
            // gives the WAL file's space back.
            self.space.checkpoint_unconfirmed = true;
        }
    }

    /// With checkpoints left to Litestream (`LITESTREAM_BUCKET`), the server
    /// never checkpoints while Litestream works: Litestream keeps a read
    /// transaction open, which stops any checkpoint of ours from copying
    /// frames it has not replicated yet. But if nothing checkpoints (the
    /// variable is set and Litestream is not running), the WAL would grow
    /// without bound: once it passes four times the WAL limit (1 GiB by
    /// default), the server checkpoints it itself and waits (up to a second)
    /// for that checkpoint to copy the whole WAL, as it does at every limit
    /// without the variable, so that the next write restarts the WAL even in
    /// the middle of a long upload. If the checkpoint copied everything,
    /// nobody was reading the WAL: the server says so once, loudly. If a
    /// reader stopped it short (Litestream is running after all, its WAL
    /// simply large), the server waits no more until a checkpoint (its own,
    /// asked for at each later look, or Litestream's) completes again.
    fn external_bound(&mut self) {
        let Some(cp) = &self.space.checkpointer else {
            return;
        };
        self.space.wal_bytes += self.txn.bytes.max(1);
        if self.space.wal_bytes < self.external_look_every() {
            return;
        }
        self.space.wal_bytes = 0;
        let wal = std::fs::metadata(files::wal_path(&self.cfg.path)).map_or(0, |m| m.len());
        if wal < self.external_wal_bound() {
            return;
        }
        if self.space.external_blocked {
            match cp.caught_up() {
                Some(true) => self.space.external_blocked = false,
                Some(false) => {
                    cp.poke();
                    return;
                }
                None => return,
            }
        }
        match cp.wait_complete(Duration::from_secs(1)) {
            Waited::Complete => {
                if !self.space.external_warned {
                    self.space.external_warned = true;
                    tracing::warn!(
                        bound_mib = self.external_wal_bound() >> 20,
                        "LITESTREAM_BUCKET is set, so the server leaves WAL checkpoints to Litestream, \
                         but the WAL passed its bound and no other process was reading or checkpointing it: \
                         is Litestream running? The server checkpointed the WAL itself"
                    );
                }
            }
            Waited::Blocked => self.space.external_blocked = true,
            Waited::Slow => {}
        }
    }

    /// With checkpoints left to Litestream: committed bytes between two looks
    /// at the WAL's size (a quarter of the bound, at most
    /// [`EXTERNAL_LOOK_EVERY`]).
    fn external_look_every(&self) -> u64 {
        (self.external_wal_bound() / 4).clamp(1 << 20, EXTERNAL_LOOK_EVERY)
    }

    /// The WAL size past which the server checkpoints even though
    /// `LITESTREAM_BUCKET` leaves checkpoints to Litestream.
    pub(super) fn external_wal_bound(&self) -> u64 {
        self.cfg.wal_limit_bytes.saturating_mul(4)
    }

    /// Called when the writer has been idle for a while: checkpoint what was
    /// committed since the last request, and retry until a checkpoint has
    /// copied the whole WAL (a reader holding an old snapshot can stop one
    /// short; until it completes, space freed by vacuum stays in the file).
    pub(super) fn idle(&mut self) {
        if self.cfg.external_checkpoints {
            return;
        }
        let Some(cp) = &self.space.checkpointer else {
            return;
        };
        if self.space.unchecked_bytes > 0 {
            cp.poke();
            self.space.unchecked_bytes = 0;
            self.space.checkpoint_unconfirmed = true;
        } else if self.space.checkpoint_unconfirmed {
            match cp.caught_up() {
                Some(true) => self.space.checkpoint_unconfirmed = !self.truncate_wal(),
                Some(false) => {
                    cp.poke();
                }
                None => {}
            }
        }
    }

    /// Returns up to [`VACUUM_STEP_BYTES`] of free pages to the filesystem (the
    /// file shrinks at the next checkpoint). Clears the request once no free
    /// pages are left, or if the database does not use incremental vacuum.
    pub(super) fn vacuum_step(&mut self) {
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
            super::super::freeing_pages(&self.conn, || {
                let mut stmt = self
                    .conn
                    .prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                Ok::<_, rusqlite::Error>(())
            })?;
            self.conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        };
        match step() {
            Ok(left) => {
                if left == 0 {
                    self.shared.vacuum_wanted.store(false, Ordering::Relaxed);
                }
                tracing::debug!(free_pages_left = left, "incremental vacuum step");
                // The file shrinks when the checkpoint copies the step's commit
                // into it: ask for one after every step, so space comes back
                // progressively rather than at the end.
                self.space.unchecked_bytes += 1;
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
        let len = std::fs::metadata(files::wal_path(&self.cfg.path)).map_or(0, |m| m.len());
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
}

/// Starts writeback of dirty file pages early, from a side thread, so that the
/// kernel writes while the writer keeps inserting. Without it, each commit or
/// checkpoint fsync waits for all the data written since the previous one.
///
/// The thread sleeps until it is poked (an idle server wakes nothing), then
/// asks for writeback at most every [`WRITEBACK_EVERY`]. It works on SQLite's
/// own descriptors (`files.rs`), which the writer's connection keeps open for
/// longer than the thread runs: the writer stops it before closing.
pub(super) struct Writeback {
    /// SQLite's descriptors of the database and the WAL, found at the first
    /// poke (empty if they could not be found: writeback is then off).
    targets: Option<Vec<files::Descriptor>>,
    tx: Option<flume::Sender<Vec<files::Descriptor>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The shortest time between two writeback requests.
const WRITEBACK_EVERY: Duration = Duration::from_millis(50);

impl Writeback {
    pub(super) fn start() -> Self {
        let (tx, rx) = flume::bounded::<Vec<files::Descriptor>>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-writeback".into())
            .spawn(move || {
                while let Ok(targets) = rx.recv() {
                    for d in targets {
                        d.start_writeback();
                    }
                    std::thread::sleep(WRITEBACK_EVERY);
                }
            })
            .ok();
        Writeback {
            targets: None,
            tx: Some(tx),
            thread,
        }
    }

    /// Asks for writeback soon; a request already waiting covers this one.
    fn poke(&self) {
        if let (Some(tx), Some(targets)) = (&self.tx, &self.targets) {
            if !targets.is_empty() {
                let _ = tx.try_send(targets.clone());
            }
        }
    }

    /// Stops the thread and waits for it, so that no descriptor is used after
    /// the caller goes on to close the connection.
    pub(super) fn stop(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
