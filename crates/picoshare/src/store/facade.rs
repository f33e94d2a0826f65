//! The store the HTTP layer sees: either the embedded SQLite store (the
//! default) or the scale-out store (PostgreSQL for metadata, S3-compatible
//! object storage for file data). Both offer the same operations with the same
//! guarantees; this module only forwards each call to the one in use.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::api_tokens::{ApiToken, NewApiToken};
use super::gc::GcOutcome;
use super::guest_links::{GuestLink, NewGuestLink};
use super::history::{DatabaseSpace, Download, EntrySummary, StorageUsage};
use super::limits::{Change, EntryLimits, Reservation};
use super::remote::{RemoteSink, RemoteStore};
use super::settings::Settings;
use super::shares::{CreateOutcome, NewShare, Share};
use super::tus::{NewTusUpload, TusUpload};
use super::{DownloadRecord, Entry, NewEntry, SqliteSink, SqliteStore, StoreError, StoreStats};
use crate::ids::{ApiTokenId, EntryId, GuestLinkId, ShareId, TusUploadId};

/// Handle to the store in use; cheap to clone.
#[derive(Clone)]
pub enum Store {
    /// Everything in one SQLite file.
    Sqlite(SqliteStore),
    /// Metadata in PostgreSQL, file data in S3-compatible object storage.
    Remote(RemoteStore),
}

/// Calls the same method on whichever store is in use.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Remote($s) => $call,
        }
    };
}

impl Store {
    /// Whether file data lives in object storage (several instances may share it).
    pub fn is_remote(&self) -> bool {
        matches!(self, Store::Remote(_))
    }

    /// Starts an upload of a new entry with ID `id`. Nothing is visible until
    /// [`UploadSink::finish`] returns; dropping the sink abandons the upload.
    /// `expected_len` is the request's length when known (a hint for the size
    /// of object-storage parts).
    pub fn begin_upload(&self, id: EntryId, expected_len: Option<u64>) -> UploadSink {
        match self {
            Store::Sqlite(s) => UploadSink::Sqlite(s.begin_upload(id)),
            Store::Remote(s) => UploadSink::Remote(Box::new(s.begin_upload(id, expected_len))),
        }
    }

    /// Whether the storage answers (for health checks).
    ///
    /// # Errors
    /// The storage cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        forward!(self, s => s.ping().await)
    }

    /// The store's counters, for metrics.
    pub fn stats(&self) -> StoreStats {
        forward!(self, s => s.stats())
    }

    /// Looks up an entry's metadata and size (entries without data are missing).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        forward!(self, s => s.entry(id).await)
    }

    /// Opens bytes `start..=end` of `entry` for reading in batches.
    pub fn read_range(&self, entry: &Entry, start: u64, end: u64) -> RangeReader {
        match self {
            Store::Sqlite(s) => RangeReader::Sqlite(SqliteRange {
                store: s.clone(),
                id: entry.id.clone(),
                chunk_size: entry.chunk_size.max(1),
                next: start,
                end,
            }),
            Store::Remote(s) => RangeReader::Remote(s.read_range(entry, start, end)),
        }
    }

    /// Changes an entry's filename, expiration and note. Returns whether it exists.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn update_entry(
        &self,
        id: &EntryId,
        filename: String,
        expiration: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        forward!(self, s => s.update_entry(id, filename, expiration, note).await)
    }

    /// Deletes an entry with its data and download history (nothing if absent).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError> {
        forward!(self, s => s.delete_entry(id).await)
    }

    /// Records a download. Fire-and-forget.
    pub fn record_download(&self, rec: DownloadRecord) {
        forward!(self, s => s.record_download(rec))
    }

    /// Stores a new login session by the SHA-256 of its token.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        forward!(self, s => s.create_session(token_sha256, now, expires).await)
    }

    /// Whether a session with this token hash exists and has not expired.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn session_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        forward!(self, s => s.session_valid(token_sha256, now).await)
    }

    /// Revokes a session.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        forward!(self, s => s.delete_session(token_sha256).await)
    }

    /// Finishes queued work and stops background tasks.
    pub async fn shutdown(&self) {
        forward!(self, s => s.shutdown().await)
    }

    /// Stores a new API token.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken, StoreError> {
        forward!(self, s => s.create_api_token(token).await)
    }

    /// All API tokens.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        forward!(self, s => s.api_tokens().await)
    }

    /// The API token with this SHA-256, if any.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn api_token_by_hash(
        &self,
        token_sha256: String,
    ) -> Result<Option<ApiToken>, StoreError> {
        forward!(self, s => s.api_token_by_hash(token_sha256).await)
    }

    /// Records a token's use. Fire-and-forget.
    pub fn touch_api_token(&self, id: &ApiTokenId, now: DateTime<Utc>) {
        forward!(self, s => s.touch_api_token(id, now))
    }

    /// Revokes an API token; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_api_token(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        forward!(self, s => s.delete_api_token(id).await)
    }

    /// Deletes expired entries and uploads and data that belongs to nothing.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GcOutcome, StoreError> {
        forward!(self, s => s.collect_garbage(now).await)
    }

    /// Creates a guest link.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_guest_link(&self, link: NewGuestLink) -> Result<GuestLinkId, StoreError> {
        forward!(self, s => s.create_guest_link(link).await)
    }

    /// One guest link.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn guest_link(&self, id: &GuestLinkId) -> Result<Option<GuestLink>, StoreError> {
        forward!(self, s => s.guest_link(id).await)
    }

    /// All guest links.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError> {
        forward!(self, s => s.guest_links().await)
    }

    /// Files stored (and resumable uploads unfinished) through a guest link.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn guest_link_files_uploaded(&self, id: &GuestLinkId) -> Result<u64, StoreError> {
        forward!(self, s => s.guest_link_files_uploaded(id).await)
    }

    /// Deletes a guest link.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError> {
        forward!(self, s => s.delete_guest_link(id).await)
    }

    /// Enables or disables a guest link; returns whether it exists.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn set_guest_link_disabled(
        &self,
        id: &GuestLinkId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        forward!(self, s => s.set_guest_link_disabled(id, disabled).await)
    }

    /// An entry's download history (`None` if the entry does not exist).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn downloads(&self, id: &EntryId) -> Result<Option<Vec<Download>>, StoreError> {
        forward!(self, s => s.downloads(id).await)
    }

    /// Every entry, for the file list.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn entries(&self) -> Result<Vec<EntrySummary>, StoreError> {
        forward!(self, s => s.entries().await)
    }

    /// Stored bytes and space on the storage.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn usage(&self) -> Result<StorageUsage, StoreError> {
        forward!(self, s => s.usage().await)
    }

    /// The metadata database's size and the space it could give back.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn database_space(&self) -> Result<DatabaseSpace, StoreError> {
        forward!(self, s => s.database_space().await)
    }

    /// An entry's download limit and password.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn entry_limits(&self, id: &EntryId) -> Result<Option<EntryLimits>, StoreError> {
        forward!(self, s => s.entry_limits(id).await)
    }

    /// The limits of every entry that has any, by entry ID.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError> {
        forward!(self, s => s.all_limits().await)
    }

    /// Changes an entry's download limit and password; returns whether it exists.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn update_limits(
        &self,
        id: &EntryId,
        max_downloads: Change<u64>,
        password_hash: Change<String>,
    ) -> Result<bool, StoreError> {
        forward!(self, s => s.update_limits(id, max_downloads, password_hash).await)
    }

    /// Takes one of an entry's remaining downloads, atomically.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError> {
        forward!(self, s => s.reserve_download(id).await)
    }

    /// Ends a reserved download (used when `completed`, else released).
    pub fn end_download(&self, id: &EntryId, completed: bool) {
        forward!(self, s => s.end_download(id, completed))
    }

    /// The server's key called `name`, created on first use.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        forward!(self, s => s.server_key(name).await)
    }

    /// The settings.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn settings(&self) -> Result<Settings, StoreError> {
        forward!(self, s => s.settings().await)
    }

    /// Saves the settings.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn update_settings(&self, settings: Settings) -> Result<(), StoreError> {
        forward!(self, s => s.update_settings(settings).await)
    }

    /// Creates a share.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError> {
        forward!(self, s => s.create_share(share).await)
    }

    /// One share.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError> {
        forward!(self, s => s.share(id).await)
    }

    /// All shares.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn shares(&self) -> Result<Vec<Share>, StoreError> {
        forward!(self, s => s.shares().await)
    }

    /// Deletes a share (and its files with `with_files`); returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_share(&self, id: &ShareId, with_files: bool) -> Result<bool, StoreError> {
        forward!(self, s => s.delete_share(id, with_files).await)
    }

    /// Creates a resumable upload.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_create(&self, new: NewTusUpload) -> Result<TusUpload, StoreError> {
        forward!(self, s => s.tus_create(new).await)
    }

    /// Looks up a resumable upload.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_upload(&self, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError> {
        forward!(self, s => s.tus_upload(id).await)
    }

    /// Starts writing to a resumable upload (see [`SqliteStore::tus_open`]).
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Busy`] when another server writes to it.
    pub async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<UploadSink>)>, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => s
                .tus_open(id, track)
                .await?
                .map(|(u, sink)| (u, sink.map(UploadSink::Sqlite))),
            Store::Remote(s) => s
                .tus_open(id, track)
                .await?
                .map(|(u, sink)| (u, sink.map(|s| UploadSink::Remote(Box::new(s))))),
        })
    }

    /// Deletes a resumable upload (and its data unless it completed).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError> {
        forward!(self, s => s.tus_terminate(id).await)
    }

    /// Takes one of a guest link's upload slots (`max` in all) until the
    /// returned guard is dropped or the upload becomes a file. `None` when
    /// every slot is taken. Only the scale-out store implements this; the
    /// SQLite server counts slots in memory (see `http::guest_links`).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<super::remote::SlotLease>, StoreError> {
        match self {
            Store::Sqlite(_) => Err(StoreError::Task(
                "guest slots of the SQLite store are kept in memory".into(),
            )),
            Store::Remote(s) => s.reserve_guest_slot(link, max).await,
        }
    }
}

macro_rules! forward_sink {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            UploadSink::Sqlite($s) => $call,
            UploadSink::Remote($s) => $call,
        }
    };
}
/// Receives the bytes of one upload.
pub enum UploadSink {
    /// Into SQLite chunk rows.
    Sqlite(SqliteSink),
    /// Into an object-storage multipart upload (boxed: it is much larger).
    Remote(Box<RemoteSink>),
}

impl UploadSink {
    /// The ID the entry will have.
    pub fn id(&self) -> &EntryId {
        forward_sink!(self, s => s.id())
    }

    /// Bytes received so far (for a resumable upload: its offset).
    pub fn bytes_received(&self) -> u64 {
        forward_sink!(self, s => s.bytes_received())
    }

    /// Appends bytes; waits while storage is behind (backpressure).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        forward_sink!(self, s => s.write(data).await)
    }

    /// Stores the rest and the entry; returns once both are durable.
    ///
    /// # Errors
    /// Storage failures; nothing is stored then.
    pub async fn finish(self, entry: NewEntry) -> Result<(), StoreError> {
        forward_sink!(self, s => s.finish(entry).await)
    }

    /// Ends a resumable upload's session, keeping the bytes received.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_save(self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        forward_sink!(self, s => s.tus_save(expires).await)
    }

    /// Completes a resumable upload whose last byte has arrived.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn tus_complete(
        self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        forward_sink!(self, s => s.tus_complete(entry, expires).await)
    }

    /// Has the scale-out store delete guest-link slot `slot_id` in the
    /// transaction that inserts the entry (the SQLite store counts slots in
    /// memory and ignores it).
    pub fn release_guest_slot_with_entry(&mut self, slot_id: String) {
        if let UploadSink::Remote(s) = self {
            s.slot = Some(slot_id);
        }
    }

    /// Ends a resumable upload's session, dropping what it wrote.
    pub async fn tus_discard(self) {
        forward_sink!(self, s => s.tus_discard().await)
    }
}

/// Reads one byte range of a file in batches, in order.
pub enum RangeReader {
    /// Chunk rows, read in short read transactions.
    Sqlite(SqliteRange),
    /// One ranged GET, streamed.
    Remote(super::remote::RemoteRange),
}

/// The SQLite side of [`RangeReader`].
pub struct SqliteRange {
    store: SqliteStore,
    id: EntryId,
    chunk_size: u64,
    next: u64,
    end: u64,
}

impl RangeReader {
    /// The next pieces of the range, about `batch_bytes` of them (whole
    /// chunks for SQLite, whatever the network delivered for object
    /// storage), or `None` at its end.
    ///
    /// # Errors
    /// Storage failures, or missing data.
    pub async fn next(&mut self, batch_bytes: u64) -> Result<Option<Vec<Bytes>>, StoreError> {
        match self {
            RangeReader::Sqlite(r) => r.next(batch_bytes).await,
            RangeReader::Remote(r) => r.next().await.map(|o| o.map(|b| vec![b])),
        }
    }
}

impl SqliteRange {
    async fn next(&mut self, batch_bytes: u64) -> Result<Option<Vec<Bytes>>, StoreError> {
        if self.next > self.end {
            return Ok(None);
        }
        let cs = self.chunk_size;
        let first = self.next / cs;
        let last_chunk = self.end / cs;
        let per_batch = (batch_bytes / cs).max(1);
        let last = (first + per_batch - 1).min(last_chunk);
        let chunks = self.store.read_chunks(&self.id, first, last).await?;
        let mut out = Vec::with_capacity(chunks.len());
        for (i, data) in chunks.into_iter().enumerate() {
            let base = (first + i as u64) * cs;
            let from = self.next.saturating_sub(base) as usize;
            let to = ((self.end + 1 - base) as usize).min(data.len());
            if from < to {
                out.push(data.slice(from..to));
            }
        }
        self.next = (last + 1) * cs;
        Ok(Some(out))
    }
}
