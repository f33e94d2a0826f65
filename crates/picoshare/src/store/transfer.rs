//! Handles on one transfer in progress, each an enum over the two backends
//! like [`Store`](super::Store): [`UploadSink`] (the bytes of a new entry),
//! [`TusSink`] (one writing session on a resumable upload), [`RangeReader`]
//! (a byte range of a file, read in batches) and [`GuestSlot`] (a guest
//! link's upload slot held by one upload).
//!
//! A plain upload and a resumable session are different types, so that
//! saving or completing a plain upload, or finishing a session as if it were
//! a new entry, does not compile.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::model::{NewEntry, Replacement};
use super::remote::{RemoteRange, RemoteSink, RemoteTusSink, SlotLease};
use super::sqlite::{LocalSlot, SqliteRange, SqliteSink, SqliteTusSink};
use super::StoreError;
use crate::ids::EntryId;

/// Calls the same method on whichever backend's value `$value` holds.
macro_rules! dispatch {
    ($enum:ident, $value:expr, $s:ident => $call:expr) => {
        match $value {
            $enum::Sqlite($s) => $call,
            $enum::Remote($s) => $call,
        }
    };
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
