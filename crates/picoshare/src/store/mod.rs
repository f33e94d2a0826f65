//! The store: the only code that knows SQL, chunk sizes and object storage.
//! The HTTP layer sees [`Store`], a handle on one of two closed backends:
//!
//! - [`sqlite`]: everything in one SQLite file, in the original PicoShare's
//!   schema (the default);
//! - [`remote`]: metadata in PostgreSQL, file data in S3-compatible object
//!   storage, for several server instances at once (the scale-out store).
//!
//! [`model`] holds what does not depend on the backend: the types the HTTP
//! layer gets and gives, and every rule both backends share, with the SQL
//! they both run written once. Each backend has one file per area, named
//! alike on both sides (`entries.rs`, `sessions.rs`, `tokens.rs`,
//! `guest_links.rs`, `limits.rs`, `shares.rs`, `settings.rs`, `history.rs`,
//! `tus.rs`, `gc.rs`, `upload.rs`, `reader.rs`, `schema.rs`), so that one can
//! be held against the other; ARCHITECTURE.md lists the correspondence.
//!
//! # The contract
//!
//! Both backends offer the same operations with the same guarantees, and the
//! HTTP layer relies on these alone, never on which backend runs:
//!
//! - **A file is visible only when complete.** An upload ([`UploadSink`])
//!   stores its bytes first and the entry last; [`UploadSink::finish`]
//!   returns once both are durable, and until then no lookup finds the
//!   entry. Dropping an unfinished sink abandons the upload and reclaims
//!   its bytes.
//! - **What is acknowledged is durable.** A call that changes something
//!   returns once the change is durable, except the few marked
//!   fire-and-forget (download records, a token's last use, the end of a
//!   limited download), which are queued and whose failures are logged.
//! - **Counted limits are never exceeded.** [`Store::reserve_download`] and
//!   [`Store::reserve_guest_slot`] decide and take under one lock, so
//!   concurrent requests (on any instance) never get more downloads or
//!   uploads than the limit; what holds a reservation gives it back when it
//!   ends or is dropped. On the scale-out store a reservation is held under
//!   the instance's lease and consumed by the commit that relies on it, so
//!   not even an instance stalled past its lease can exceed a limit.
//! - **A resumable upload never claims more than it stored.** Its offset is
//!   recorded with the bytes it counts, and the full length only with the
//!   entry row; one session writes to an upload at a time.
//! - **Deleting an entry deletes everything that hangs off it** (bytes,
//!   download history, limits, places in shares, a share left empty), in
//!   one transaction; garbage collection does the same for expired entries.
//! - **Times** are stored in one text format (`model/time.rs`), so every
//!   value reads the same in both databases and moves between them as is.
//! - **Errors** are [`StoreError`]: [`StoreError::DiskFull`] when the
//!   storage is full, [`StoreError::WriterGone`] while shutting down,
//!   [`StoreError::Busy`] while another server writes a resumable upload,
//!   [`StoreError::LeaseLost`] when another instance took back what this
//!   one held (it stalled past its lease; nothing was committed),
//!   [`StoreError::Postgres`] and [`StoreError::Object`] when a storage
//!   service does not answer.
//!
//! [`Store`] dispatches statically (a `match` on the enum, no trait object):
//! most of its methods are declared once below with their contract and
//! forwarded to the backend in use by the `forward!` macro.

mod error;
mod hooks;
pub(crate) mod model;
pub(crate) mod remote;
pub(crate) mod sqlite;
mod stats;
mod transfer;

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub(crate) use error::StoreError;
pub(crate) use sqlite::{JournalMode, StoreConfig, DEFAULT_CHUNK_SIZE, DEFAULT_PAGE_SIZE};
pub(crate) use stats::StoreStats;
pub(crate) use transfer::{GuestSlot, RangeReader, TusSink, UploadSink};

use crate::ids::{ApiTokenId, EntryId, GuestLinkId, SessionId, ShareId, TusUploadId};
use model::sessions::{NewSession, Session};
use model::{
    ApiToken, Change, CreateOutcome, DatabaseSpace, DownloadPage, DownloadQuery, DownloadRecord,
    Entry, EntryLimits, EntryPage, EntryQuery, GcOutcome, GuestLink, NewApiToken, NewGuestLink,
    NewShare, ReplacementRecord, Reservation, Settings, Share, StorageUsage, TusUpload,
};
use remote::RemoteStore;
use sqlite::SqliteStore;

/// What [`Store::download_lookup`] found.
pub(crate) struct DownloadLookup {
    /// The entry.
    pub(crate) entry: Entry,
    /// Its download limit and password, if it has any.
    pub(crate) limits: Option<EntryLimits>,
    /// All of its bytes, when it was small enough to read with it.
    pub(crate) data: Option<Bytes>,
}

/// Handle to the store in use; cheap to clone.
#[derive(Clone)]
pub(crate) enum Store {
    /// Everything in one SQLite file.
    Sqlite(SqliteStore),
    /// Metadata in PostgreSQL, file data in S3-compatible object storage.
    Remote(RemoteStore),
}

/// Declares methods of [`Store`] that call the method of the same name and
/// arguments on the backend in use (awaiting it for an `async fn`).
macro_rules! forward {
    () => {};
    (
        $(#[$doc:meta])*
        async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub(crate) async fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            match self {
                Store::Sqlite(s) => s.$name($($arg),*).await,
                Store::Remote(s) => s.$name($($arg),*).await,
            }
        }
        forward!($($rest)*);
    };
    (
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)*) $(-> $ret:ty)?;
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub(crate) fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            match self {
                Store::Sqlite(s) => s.$name($($arg),*),
                Store::Remote(s) => s.$name($($arg),*),
            }
        }
        forward!($($rest)*);
    };
}

impl Store {
    /// One window of the file list, filtered and sorted as `q` asks, and
    /// the number of files that match in all. The SQLite store reads just
    /// the window through its indexes; the scale-out store reads its whole
    /// list and applies the same rule (`EntryQuery::apply`).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn entries_page(&self, q: EntryQuery) -> Result<EntryPage, StoreError> {
        match self {
            Store::Sqlite(s) => s.entries_page(q).await,
            Store::Remote(s) => Ok(q.apply(s.entries().await?)),
        }
    }

    /// One window of an entry's download history, newest first, and the
    /// number of rows in all (`None` if the entry does not exist). As for
    /// [`Store::entries_page`], the scale-out store applies the rule to the
    /// whole history (`DownloadQuery::apply`).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn downloads_page(
        &self,
        id: &EntryId,
        q: DownloadQuery,
    ) -> Result<Option<DownloadPage>, StoreError> {
        match self {
            Store::Sqlite(s) => s.downloads_page(id, q).await,
            Store::Remote(s) => Ok(s.downloads(id).await?.map(|all| q.apply(all))),
        }
    }

    /// What a download needs to start: entry `id` (`None` when it is
    /// missing or has no data), its limits, and, when the file is at most
    /// `prefetch` bytes, all of its data. On SQLite all three come from one
    /// read transaction on one blocking thread: a small download then costs
    /// one trip off the async threads instead of three (the entry, its
    /// limits, its one chunk), and its reply leaves in one write. The other
    /// backend reads the entry and its limits and prefetches nothing.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Corrupt`] if a chunk is missing.
    pub(crate) async fn download_lookup(
        &self,
        id: &EntryId,
        prefetch: u64,
    ) -> Result<Option<DownloadLookup>, StoreError> {
        match self {
            Store::Sqlite(s) => s.download_lookup(id, prefetch).await,
            Store::Remote(s) => {
                let Some(entry) = s.entry(id).await? else {
                    return Ok(None);
                };
                let limits = s.entry_limits(id).await?;
                Ok(Some(DownloadLookup {
                    entry,
                    limits,
                    data: None,
                }))
            }
        }
    }

    /// `entries` made safe to read later as they are now: on SQLite each is
    /// pinned and read again in one snapshot, so a replacement of its
    /// content meanwhile leaves the version returned readable until the
    /// entry is dropped (`None` for one that is gone). On the scale-out
    /// store they come back as they are: each already holds the object it
    /// was read with (`remote/replace.rs`).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn pinned_entries(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Vec<Option<Entry>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.pinned_entries(entries).await,
            Store::Remote(_) => Ok(entries.into_iter().map(Some).collect()),
        }
    }

    forward! {
        /// Whether the storage answers (for health checks): the SQLite file
        /// opened afresh, or PostgreSQL and the bucket.
        ///
        /// # Errors
        /// The storage cannot be reached: on the scale-out store
        /// [`StoreError::Postgres`] or [`StoreError::Object`] names the
        /// service, [`StoreError::Unavailable`] holds both.
        async fn ping(&self) -> Result<(), StoreError>;

        /// The store's counters, for metrics.
        fn stats(&self) -> StoreStats;

        /// Finishes queued work, abandons unfinished uploads and stops
        /// background tasks.
        async fn shutdown(&self);

        /// Looks up an entry's metadata and size (entries without data are missing).
        ///
        /// # Errors
        /// Storage failures.
        async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError>;

        /// Entry `id`'s content replacements, newest first (empty for a
        /// file never replaced, or one that does not exist).
        ///
        /// # Errors
        /// Storage failures.
        async fn replacements(&self, id: &EntryId) -> Result<Vec<ReplacementRecord>, StoreError>;

        /// Changes an entry's filename, expiration and note. Returns whether it exists.
        ///
        /// # Errors
        /// Storage failures.
        async fn update_entry(
            &self,
            id: &EntryId,
            filename: String,
            expiration: Option<DateTime<Utc>>,
            note: Option<String>
        ) -> Result<bool, StoreError>;

        /// Deletes an entry with everything that hangs off it (nothing if absent).
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError>;

        /// Records a download. Fire-and-forget.
        fn record_download(&self, rec: DownloadRecord);

        /// Stores a new login session by the SHA-256 of its token, tagged
        /// with the passphrase it was opened under; returns its ID.
        ///
        /// # Errors
        /// Storage failures.
        async fn create_session(&self, session: NewSession) -> Result<SessionId, StoreError>;

        /// The ID of the session with this token hash, if it exists, was
        /// opened under the passphrase tagged `secret_tag` and has not expired.
        ///
        /// # Errors
        /// Storage failures.
        async fn session_id(
            &self,
            token_sha256: String,
            secret_tag: String,
            now: DateTime<Utc>
        ) -> Result<Option<SessionId>, StoreError>;

        /// The sessions of the passphrase tagged `secret_tag` that have not
        /// expired, newest first.
        ///
        /// # Errors
        /// Storage failures.
        async fn sessions(
            &self,
            secret_tag: String,
            now: DateTime<Utc>
        ) -> Result<Vec<Session>, StoreError>;

        /// Revokes a session (logout).
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError>;

        /// Revokes the session with this ID; returns whether it existed.
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_session_by_id(&self, id: &SessionId) -> Result<bool, StoreError>;

        /// Revokes every session but `keep`; returns how many ended.
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_other_sessions(&self, keep: &SessionId) -> Result<u64, StoreError>;

        /// Ends every session opened under another passphrase than the one
        /// tagged `secret_tag` (done at start-up); returns how many ended.
        ///
        /// # Errors
        /// Storage failures.
        async fn end_sessions_of_other_secrets(
            &self,
            secret_tag: String
        ) -> Result<u64, StoreError>;

        /// Stores a new API token (its SHA-256 only).
        ///
        /// # Errors
        /// Storage failures.
        async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError>;

        /// All API tokens, newest first.
        ///
        /// # Errors
        /// Storage failures.
        async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;

        /// The API token with this SHA-256, if any.
        ///
        /// # Errors
        /// Storage failures.
        async fn api_token_by_hash(
            &self,
            token_sha256: String
        ) -> Result<Option<ApiToken>, StoreError>;

        /// Records a token's use. Fire-and-forget.
        fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>);

        /// Revokes an API token; returns whether it existed.
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError>;

        /// Deletes expired entries and resumable uploads, and data that
        /// belongs to nothing (never that of an upload in progress).
        ///
        /// # Errors
        /// Storage failures.
        async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GcOutcome, StoreError>;

        /// Creates a guest link with a new random ID.
        ///
        /// # Errors
        /// Storage failures.
        async fn create_guest_link(&self, link: NewGuestLink) -> Result<GuestLinkId, StoreError>;

        /// One guest link, with its upload count.
        ///
        /// # Errors
        /// Storage failures, or a row that cannot be read.
        async fn guest_link(&self, id: &GuestLinkId) -> Result<Option<GuestLink>, StoreError>;

        /// All guest links, newest first.
        ///
        /// # Errors
        /// Storage failures, or a row that cannot be read.
        async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError>;

        /// Deletes a guest link; the files uploaded through it stay.
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError>;

        /// Enables or disables a guest link; returns whether it exists.
        ///
        /// # Errors
        /// Storage failures.
        async fn set_guest_link_disabled(
            &self,
            id: &GuestLinkId,
            disabled: bool
        ) -> Result<bool, StoreError>;

        /// Stored bytes and space on the storage.
        ///
        /// # Errors
        /// Storage failures.
        async fn usage(&self) -> Result<StorageUsage, StoreError>;

        /// The metadata database's size and the space it could give back.
        ///
        /// # Errors
        /// Storage failures.
        async fn database_space(&self) -> Result<DatabaseSpace, StoreError>;

        /// An entry's download limit and password, and the downloads used
        /// and in progress.
        ///
        /// # Errors
        /// Storage failures.
        async fn entry_limits(&self, id: &EntryId) -> Result<Option<EntryLimits>, StoreError>;

        /// The limits of every entry that has any, by entry ID.
        ///
        /// # Errors
        /// Storage failures.
        async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError>;

        /// Changes an entry's download limit and password; returns whether
        /// it exists. Limits that end up limiting nothing are deleted.
        ///
        /// # Errors
        /// Storage failures.
        async fn update_limits(
            &self,
            id: &EntryId,
            max_downloads: Change<u64>,
            password_hash: Change<String>
        ) -> Result<bool, StoreError>;

        /// Takes one of an entry's remaining downloads for a full download
        /// about to start, atomically (the model's
        /// `EntryLimits::reservation` decides).
        ///
        /// # Errors
        /// Storage failures.
        async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError>;

        /// Turns a reserved download into a used one, durably: once this
        /// returns, no crash or power cut can give the download back. Called
        /// before the download's last byte is sent.
        ///
        /// # Errors
        /// Storage failures (the reservation then stays to be released);
        /// [`StoreError::LeaseLost`] if the reservation was taken back.
        async fn count_download(&self, id: &EntryId) -> Result<(), StoreError>;

        /// Releases a reserved download that did not complete.
        /// Fire-and-forget (the scale-out store retries it until PostgreSQL
        /// answers, so a file is never left "in progress" for good).
        fn release_download(&self, id: &EntryId);

        /// The server's key called `name`, created on first use (servers
        /// starting together agree on one).
        ///
        /// # Errors
        /// Storage failures.
        async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError>;

        /// The settings (the defaults if none are stored).
        ///
        /// # Errors
        /// Storage failures.
        async fn settings(&self) -> Result<Settings, StoreError>;

        /// Saves the settings.
        ///
        /// # Errors
        /// Storage failures.
        async fn update_settings(&self, settings: Settings) -> Result<(), StoreError>;

        /// Creates a share of existing entries (all or nothing).
        ///
        /// # Errors
        /// Storage failures.
        async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError>;

        /// One share with its files that still exist, in order.
        ///
        /// # Errors
        /// Storage failures.
        async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError>;

        /// All shares, newest first.
        ///
        /// # Errors
        /// Storage failures.
        async fn shares(&self) -> Result<Vec<Share>, StoreError>;

        /// Deletes a share (and its files with `with_files`); returns whether
        /// it existed.
        ///
        /// # Errors
        /// Storage failures.
        async fn delete_share(&self, id: &ShareId, with_files: bool) -> Result<bool, StoreError>;

        /// Looks up a resumable upload (its last recorded state).
        ///
        /// # Errors
        /// Storage failures.
        async fn tus_upload(&self, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError>;

        /// Deletes a resumable upload (and its data unless it completed);
        /// returns whether it existed. No session may be writing to it.
        ///
        /// # Errors
        /// Storage failures.
        async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError>;
    }
}

/// Runs `job` on a task of its own, for fire-and-forget writes: its
/// failure is logged ("could not {what}"). With `tracker`, the task is
/// one of those it tracks (the scale-out store's shutdown waits for them).
pub(crate) fn detached<F>(
    what: &'static str,
    job: F,
    tracker: Option<&tokio_util::task::TaskTracker>,
) where
    F: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let run = async move {
        if let Err(e) = job.await {
            tracing::warn!(error = %e, "could not {what}");
        }
    };
    match (tokio::runtime::Handle::try_current(), tracker) {
        (Ok(h), Some(t)) => {
            t.spawn_on(run, &h);
        }
        (Ok(h), None) => {
            h.spawn(run);
        }
        (Err(_), _) => tracing::warn!("no runtime to {what}"),
    }
}
