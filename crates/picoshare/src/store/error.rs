//! The store's one error type, whichever backend is in use. The HTTP layer
//! maps each kind to its status (`http::error`): a full disk is the
//! client's 507, an unreachable storage service a 503, the rest a 500.

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Any SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk (or the database's size limit) is full.
    #[error("the disk is full")]
    DiskFull,
    /// The database is not one this server can open.
    #[error("{0}")]
    Schema(String),
    /// The writer thread has stopped (the server is shutting down).
    #[error("the database writer has stopped")]
    WriterGone,
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// The stored data is inconsistent (for example a missing chunk).
    #[error("corrupt entry data: {0}")]
    Corrupt(String),
    /// An I/O error outside SQLite.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any PostgreSQL failure (scale-out store).
    #[error("PostgreSQL error: {0}")]
    Postgres(String),
    /// Any object-storage failure (scale-out store).
    #[error("object storage error: {0}")]
    Object(String),
    /// This server instance's lease was taken back by another instance
    /// (it was paused, stopped or cut off from PostgreSQL for longer than
    /// its lease), and with it what the operation relied on: an upload in
    /// progress, a guest slot, a download reservation. Nothing was committed.
    #[error("this server's lease was taken back by another instance")]
    LeaseLost,
    /// Several storage services failed (a health check of the scale-out
    /// store: PostgreSQL and the bucket, each with its own error).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unavailable(Vec<StoreError>),
    /// Another server instance is writing to this resumable upload.
    #[error("another server is writing to this upload")]
    Busy,
    /// The file is larger than the storage can hold in one object.
    #[error("{0}")]
    TooLarge(String),
    /// A count kept changing while it was read (guest-link slots); the
    /// request may be tried again.
    #[error("the server is busy")]
    Contended,
    /// The file a resumable upload was to replace was deleted before the
    /// upload completed; the upload was dropped.
    #[error("the file this upload replaces was deleted")]
    EntryGone,
}

impl StoreError {
    /// Whether this failure is a full disk, whichever way it surfaced: the
    /// store's own [`StoreError::DiskFull`], SQLite's `SQLITE_FULL` passed on
    /// as it came (any write, a delete or an edit as much as an upload), or
    /// `ENOSPC`/`EDQUOT` from an I/O call of the server's own (a sync).
    pub(crate) fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io(e) => {
                matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            }
            _ => false,
        }
    }

    /// Maps SQLite's "disk full" result to [`StoreError::DiskFull`].
    pub(crate) fn classify(e: rusqlite::Error) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::DiskFull
            }
            _ => StoreError::Sqlite(e),
        }
    }
}
