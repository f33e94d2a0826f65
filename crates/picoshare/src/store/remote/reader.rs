//! Reading on the scale-out store: [`RemoteRange`] reads a byte range of an
//! entry's object with one ranged GET, streamed as the network delivers it.
//!
//! A download opens its GET before its reply's headers are sent
//! ([`RemoteRange::open`]), so that a bucket that is down or hangs gets the
//! client a 503 rather than a 200 cut at its first byte; the GET's answer,
//! and each piece of its body, must come within `PS_S3_TIMEOUT_SECS`.

use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};

use super::RemoteStore;
use crate::store::model::Entry;
use crate::store::stats::Counters;
use crate::store::StoreError;

impl RemoteStore {
    /// Opens bytes `start..=end` of `entry` (one ranged GET, sent when first read).
    pub(crate) fn read_range(&self, entry: &Entry, start: u64, end: u64) -> RemoteRange {
        // The object the entry was read with: a replacement since then
        // points the entry at another, and keeps this one while it is held.
        let path = match super::replace::held_key(entry.pin.as_ref()) {
            Some(key) => ObjectPath::from(key),
            None => self.object_path(&entry.id),
        };
        RemoteRange {
            store: self.clone(),
            _hold: entry.pin.clone(),
            path,
            start,
            end,
            stream: None,
            finished: entry.size == 0 || start > end,
        }
    }
}

/// Reads one byte range of an object: one ranged GET, streamed as the
/// network delivers it.
pub(crate) struct RemoteRange {
    store: RemoteStore,
    /// The entry's hold on its object, kept while the range is read.
    _hold: Option<crate::store::model::entries::ContentPin>,
    path: ObjectPath,
    start: u64,
    end: u64,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    finished: bool,
}

impl RemoteRange {
    /// Sends the GET and waits for its answer (not for the bytes), unless
    /// that was done already or there is nothing to read.
    ///
    /// # Errors
    /// Object-storage failures, no answer within the timeout, or no object.
    pub(crate) async fn open(&mut self) -> Result<(), StoreError> {
        if self.finished || self.stream.is_some() {
            return Ok(());
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(self.start..self.end + 1)),
            ..GetOptions::default()
        };
        let s3 = self.store.s3().clone();
        let got = match self.store.s3_call(s3.get_opts(&self.path, opts)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::Corrupt(format!(
                    "object {} is missing",
                    self.path
                )))
            }
            Err(e) => return Err(e.into()),
        };
        self.stream = Some(got.into_stream());
        Ok(())
    }

    /// The next piece of the range, or `None` at its end.
    ///
    /// # Errors
    /// Object-storage failures, a piece that does not come within the
    /// timeout, or an object shorter than its entry says.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        self.open().await?;
        let started = Instant::now();
        let timeout = self.store.s3_timeout();
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let Ok(piece) = tokio::time::timeout(timeout, stream.next()).await else {
            return Err(StoreError::Object(format!(
                "object {}: no data within {} s",
                self.path,
                timeout.as_secs()
            )));
        };
        match piece {
            Some(Ok(b)) => {
                let c = &self.store.inner.counters;
                Counters::add(&c.read_ns, started.elapsed().as_nanos() as u64);
                self.start += b.len() as u64;
                Ok(Some(b))
            }
            Some(Err(e)) => Err(e.into()),
            None => {
                self.finished = true;
                if self.start <= self.end {
                    return Err(StoreError::Corrupt(format!(
                        "object {} ended {} bytes early",
                        self.path,
                        self.end + 1 - self.start
                    )));
                }
                Ok(None)
            }
        }
    }
}
