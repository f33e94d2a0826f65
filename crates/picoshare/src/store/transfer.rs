//! Handles on one transfer in progress, each an enum over the two backends
//! like [`Store`]: [`UploadSink`] (the bytes of a new entry),
//! [`TusSink`] (one writing session on a resumable upload), [`RangeReader`]
//! (a byte range of a file, read in batches) and [`GuestSlot`] (a guest
//! link's upload slot held by one upload).
//!
//! A plain upload and a resumable session are different types, so that
//! saving or completing a plain upload, or finishing a session as if it were
//! a new entry, does not compile. The [`Store`] methods that open each
//! handle are here too.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::model::{Entry, NewTusUpload, TusUpload};
use super::model::{NewEntry, Replacement};
use super::remote::{RemoteRange, RemoteSink, RemoteTusSink, SlotLease};
use super::sqlite::{LocalSlot, SqliteRange, SqliteSink, SqliteTusSink};
use super::{Store, StoreError};
use crate::ids::{EntryId, GuestLinkId, TusUploadId};

/// Calls the same method on whichever backend's value `$value` holds.
macro_rules! dispatch {
    ($enum:ident, $value:expr, $s:ident => $call:expr) => {
        match $value {
            $enum::Sqlite($s) => $call,
            $enum::Remote($s) => $call,
        }
    };
}

impl Store {
    /// Starts an upload of a new entry with ID `id`. Nothing is visible until
    /// [`UploadSink::finish`] returns; dropping the sink abandons the upload.
    /// `expected_len` is the request's length when known (a hint for the size
    /// of object-storage parts).
    pub(crate) fn begin_upload(&self, id: EntryId, expected_len: Option<u64>) -> UploadSink {
        match self {
            Store::Sqlite(s) => UploadSink::Sqlite(s.begin_upload(id)),
            Store::Remote(s) => UploadSink::Remote(Box::new(s.begin_upload(id, expected_len))),
        }
    }

    /// Opens bytes `start..=end` of `entry` for reading in batches.
    pub(crate) fn read_range(&self, entry: &Entry, start: u64, end: u64) -> RangeReader {
        match self {
            Store::Sqlite(s) => RangeReader::Sqlite(s.read_range(entry, start, end)),
            Store::Remote(s) => RangeReader::Remote(s.read_range(entry, start, end)),
        }
    }

    /// Takes one of guest link `link`'s `max` upload slots: counts its
    /// files, its unfinished resumable uploads and the slots other uploads
    /// hold, and takes one if any is left, atomically. `None` when every
    /// slot is taken. The slot is held until the returned guard is dropped,
    /// or handed to what counts in its place: the upload's sink
    /// ([`UploadSink::hold_guest_slot`]) or its resumable row
    /// ([`Store::tus_create`]).
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Contended`] if the count kept changing.
    pub(crate) async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<GuestSlot>, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => s
                .reserve_guest_slot(link, max)
                .await?
                .map(GuestSlot::Sqlite),
            Store::Remote(s) => s
                .reserve_guest_slot(link, max)
                .await?
                .map(GuestSlot::Remote),
        })
    }

    /// Creates a resumable upload; durable when it returns. A guest upload
    /// hands over its `slot`: the row counts in its place from then on.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn tus_create(
        &self,
        new: NewTusUpload,
        slot: Option<GuestSlot>,
    ) -> Result<TusUpload, StoreError> {
        match self {
            Store::Sqlite(s) => s.tus_create(new, slot.and_then(GuestSlot::sqlite)).await,
            Store::Remote(s) => s.tus_create(new, slot.and_then(GuestSlot::remote)).await,
        }
    }

    /// Starts a writing session on a resumable upload: its row and a sink
    /// that continues it from its offset (none if it is complete), or `None`
    /// if it does not exist. With `track`, the offset reached is recorded as
    /// the bytes are stored, so a crash loses at most the last moments;
    /// without (a request whose checksum is checked at its end), nothing of
    /// the session counts until it is saved. Within one server a new session
    /// takes an upload over from an older one at once.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Busy`] while another server writes to it.
    pub(crate) async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<TusSink>)>, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => s
                .tus_open(id, track)
                .await?
                .map(|(u, sink)| (u, sink.map(TusSink::Sqlite))),
            Store::Remote(s) => s
                .tus_open(id, track)
                .await?
                .map(|(u, sink)| (u, sink.map(|s| TusSink::Remote(Box::new(s))))),
        })
    }
}

/// Receives the bytes of one new entry. Nothing is visible until
/// [`UploadSink::finish`] returns; dropping it abandons the upload and
/// reclaims what it stored.
pub(crate) enum UploadSink {
    /// Into SQLite chunk rows.
    Sqlite(SqliteSink),
    /// Into an object-storage multipart upload (boxed: it is much larger).
    Remote(Box<RemoteSink>),
}

impl UploadSink {
    /// The ID the entry will have.
    pub(crate) fn id(&self) -> &EntryId {
        dispatch!(UploadSink, self, s => s.id())
    }

    /// Bytes received so far.
    pub(crate) fn bytes_received(&self) -> u64 {
        dispatch!(UploadSink, self, s => s.bytes_received())
    }

    /// Appends bytes; waits while storage is behind (backpressure).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        dispatch!(UploadSink, self, s => s.write(data).await)
    }

    /// Holds a guest-link upload slot until the entry, which counts in its
    /// place, is stored (or the upload abandoned), so that no count of the
    /// link's uploads misses this one or sees it twice.
    pub(crate) fn hold_guest_slot(&mut self, slot: GuestSlot) {
        match (self, slot) {
            (UploadSink::Sqlite(s), GuestSlot::Sqlite(g)) => s.hold_guest_slot(g),
            (UploadSink::Remote(s), GuestSlot::Remote(g)) => s.hold_guest_slot(g),
            // One server has one store: a slot of the other cannot exist.
            // Dropping it gives it back.
            _ => {}
        }
    }

    /// Stores the rest and the entry; returns once both are durable.
    ///
    /// # Errors
    /// Storage failures; nothing is stored then.
    pub(crate) async fn finish(self, entry: NewEntry) -> Result<(), StoreError> {
        dispatch!(UploadSink, self, s => s.finish(entry).await)
    }

    /// Makes the bytes received the new content of entry `target`, in one
    /// atomic switch, and returns once it is durable: `false` if the entry
    /// is gone. Downloads that started before keep reading the old content.
    ///
    /// # Errors
    /// Storage failures; the entry keeps its old content then.
    pub(crate) async fn finish_replace(
        self,
        target: EntryId,
        change: Replacement,
    ) -> Result<bool, StoreError> {
        dispatch!(UploadSink, self, s => s.finish_replace(target, change).await)
    }
}

/// One writing session on a resumable upload, continuing it from its
/// recorded offset. It ends with [`TusSink::save`], [`TusSink::complete`] or
/// [`TusSink::discard`]; dropping it ends the session keeping what was
/// recorded.
pub(crate) enum TusSink {
    /// Into SQLite chunk rows.
    Sqlite(SqliteTusSink),
    /// Into the upload's object-storage multipart upload (boxed: it is much larger).
    Remote(Box<RemoteTusSink>),
}

impl TusSink {
    /// The upload's offset: bytes stored before this session and received in it.
    pub(crate) fn bytes_received(&self) -> u64 {
        dispatch!(TusSink, self, s => s.bytes_received())
    }

    /// Appends bytes; waits while storage is behind (backpressure).
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Busy`] if another server took the
    /// upload over.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        dispatch!(TusSink, self, s => s.write(data).await)
    }

    /// Ends the session, recording the bytes received as the upload's
    /// durable offset; `expires` is when it expires without more bytes.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn save(self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(TusSink, self, s => s.save(expires).await)
    }

    /// Completes the upload, whose last byte has arrived: the entry exists
    /// and is durable when this returns.
    ///
    /// # Errors
    /// Storage failures; the upload keeps its last recorded offset.
    pub(crate) async fn complete(
        self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(TusSink, self, s => s.complete(entry, expires).await)
    }

    /// Completes the upload, whose last byte has arrived, as the new content
    /// of entry `target` (one atomic switch, as
    /// [`UploadSink::finish_replace`]), durable when this returns.
    ///
    /// # Errors
    /// Storage failures, the upload keeping its last recorded offset;
    /// [`StoreError::EntryGone`] if the entry was deleted meanwhile (the
    /// upload is then dropped with its bytes).
    pub(crate) async fn complete_replace(
        self,
        target: EntryId,
        change: Replacement,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(TusSink, self, s => s.complete_replace(target, change, expires).await)
    }

    /// Ends the session, dropping what it wrote (a checksum mismatch): the
    /// upload keeps the offset it had before.
    pub(crate) async fn discard(self) {
        dispatch!(TusSink, self, s => s.discard().await)
    }
}

/// Reads one byte range of a file in batches, in order.
pub(crate) enum RangeReader {
    /// Chunk rows, read in short read transactions.
    Sqlite(SqliteRange),
    /// One ranged GET, streamed.
    Remote(RemoteRange),
}

impl RangeReader {
    /// Makes sure the bytes can be read, before a reply promises them: for
    /// object storage, the GET is sent and its answer awaited (SQLite
    /// reads nothing ahead).
    ///
    /// # Errors
    /// The storage does not answer, or the data is missing.
    pub(crate) async fn open(&mut self) -> Result<(), StoreError> {
        match self {
            RangeReader::Sqlite(_) => Ok(()),
            RangeReader::Remote(r) => r.open().await,
        }
    }

    /// The next pieces of the range, about `batch_bytes` of them (whole
    /// chunks for SQLite, whatever the network delivered for object
    /// storage), or `None` at its end.
    ///
    /// # Errors
    /// Storage failures, or missing data.
    pub(crate) async fn next(
        &mut self,
        batch_bytes: u64,
    ) -> Result<Option<Vec<Bytes>>, StoreError> {
        match self {
            RangeReader::Sqlite(r) => r.next(batch_bytes).await,
            RangeReader::Remote(r) => r.next().await.map(|o| o.map(|b| vec![b])),
        }
    }
}

/// A guest link's upload slot, held by one upload (see
/// [`Store::reserve_guest_slot`](super::Store::reserve_guest_slot));
/// dropping it gives it back.
#[derive(Debug)]
pub(crate) enum GuestSlot {
    /// Counted in this process's memory (one SQLite file, one server).
    Sqlite(LocalSlot),
    /// A row in the shared database, owned by this server instance.
    Remote(SlotLease),
}

impl GuestSlot {
    /// The SQLite store's slot, if it is one.
    pub(super) fn sqlite(self) -> Option<LocalSlot> {
        match self {
            GuestSlot::Sqlite(s) => Some(s),
            GuestSlot::Remote(_) => None,
        }
    }

    /// The scale-out store's slot, if it is one.
    pub(super) fn remote(self) -> Option<SlotLease> {
        match self {
            GuestSlot::Remote(s) => Some(s),
            GuestSlot::Sqlite(_) => None,
        }
    }
}
