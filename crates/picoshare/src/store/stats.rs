//! Counters of the store's work, for `/metrics` and the bench suite's
//! "where does the time go" report.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by the writer, the checkpointer and the readers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) chunks: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) insert_ns: AtomicU64,
    pub(crate) commit_ns: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) checkpoint_ns: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) in_progress: AtomicU64,
    pub(crate) read_ns: AtomicU64,
}

/// A snapshot of the store's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StoreStats {
    /// Chunk rows inserted.
    pub(crate) chunks: u64,
    /// File bytes inserted.
    pub(crate) bytes: u64,
    /// Transactions committed.
    pub(crate) commits: u64,
    /// Nanoseconds spent inserting chunk rows.
    pub(crate) insert_ns: u64,
    /// Nanoseconds spent committing (COMMIT, the WAL fsync of durable commits,
    /// and inline checkpoints or waits for the background checkpointer).
    pub(crate) commit_ns: u64,
    /// Background checkpoints run.
    pub(crate) checkpoints: u64,
    /// Nanoseconds the background checkpointer spent copying and syncing.
    pub(crate) checkpoint_ns: u64,
    /// Uploads abandoned (client gone, error or shutdown).
    pub(crate) aborted_uploads: u64,
    /// Uploads in progress right now.
    pub(crate) uploads_in_progress: u64,
    /// Nanoseconds spent reading chunks for downloads.
    pub(crate) read_ns: u64,
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
        }
    }

    pub(crate) fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }
}
