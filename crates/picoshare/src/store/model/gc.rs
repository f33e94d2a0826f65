//! What one garbage collection removed; both backends collect the same
//! things (expired entries, expired resumable uploads, data of uploads
//! abandoned by a server that stopped) and report them alike.

/// What one collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GcOutcome {
    /// Expired entries deleted (with their data and download history).
    pub(crate) expired_entries: u64,
    /// Chunk rows (SQLite) or abandoned uploads (object storage) deleted
    /// that belonged to no entry and no upload in progress.
    pub(crate) orphan_chunks: u64,
    /// Resumable uploads deleted because they expired (unfinished ones with
    /// their data).
    pub(crate) expired_uploads: u64,
}
