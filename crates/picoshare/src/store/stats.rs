//! Counters of the store's work, for `/metrics` and the bench suite's
//! "where does the time go" report.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by the writer, the checkpointer and the readers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub chunks: AtomicU64,
    pub bytes: AtomicU64,
    pub commits: AtomicU64,
    pub insert_ns: AtomicU64,
    pub commit_ns: AtomicU64,
    pub checkpoints: AtomicU64,
    pub checkpoint_ns: AtomicU64,
    pub aborted: AtomicU64,
    pub in_progress: AtomicU64,
    pub read_ns: AtomicU64,
    pub read_bytes: AtomicU64,
    pub vacuum_steps: AtomicU64,
    pub vacuum_ns: AtomicU64,
}

/// A snapshot of the store's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    /// Chunk rows inserted.
    pub chunks: u64,
    /// File bytes inserted.
    pub bytes: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Nanoseconds spent inserting chunk rows.
    pub insert_ns: u64,
    /// Nanoseconds spent committing (COMMIT, the WAL fsync of durable commits,
    /// and inline checkpoints or waits for the background checkpointer).
    pub commit_ns: u64,
    /// Background checkpoints run.
    pub checkpoints: u64,
    /// Nanoseconds the background checkpointer spent copying and syncing.
    pub checkpoint_ns: u64,
    /// Uploads abandoned (client gone, error or shutdown).
    pub aborted_uploads: u64,
    /// Uploads in progress right now.
    pub uploads_in_progress: u64,
    /// Nanoseconds spent reading chunks for downloads.
    pub read_ns: u64,
    /// File bytes read for downloads.
    pub read_bytes: u64,
    /// Incremental-vacuum steps run.
    pub vacuum_steps: u64,
    /// Nanoseconds spent in incremental-vacuum steps.
    pub vacuum_ns: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> StoreStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            chunks: l(&self.chunks),
            bytes: l(&self.bytes),
            commits: l(&self.commits),
            insert_ns: l(&self.insert_ns),
            commit_ns: l(&self.commit_ns),
            checkpoints: l(&self.checkpoints),
            checkpoint_ns: l(&self.checkpoint_ns),
            aborted_uploads: l(&self.aborted),
            uploads_in_progress: l(&self.in_progress),
            read_ns: l(&self.read_ns),
            read_bytes: l(&self.read_bytes),
            vacuum_steps: l(&self.vacuum_steps),
            vacuum_ns: l(&self.vacuum_ns),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }
}
