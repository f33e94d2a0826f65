//! Reading on the scale-out store: [`RemoteRange`] reads a byte range of an
//! entry's object with one ranged GET, streamed as the network delivers it.

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
        RemoteRange {
            store: self.clone(),
            path: self.object_path(&entry.id),
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
    path: ObjectPath,
    start: u64,
    end: u64,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    finished: bool,
}

impl RemoteRange {
    /// The next piece of the range, or `None` at its end.
    ///
    /// # Errors
    /// Object-storage failures, or an object shorter than its entry says.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        if self.stream.is_none() {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(self.start..self.end + 1)),
                ..GetOptions::default()
            };
            let got = self.store.s3().get_opts(&self.path, opts).await?;
            self.stream = Some(got.into_stream());
        }
        let started = Instant::now();
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        match stream.next().await {
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
