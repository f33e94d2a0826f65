//! The one receive-and-time loop every upload runs ([`receive_into`]): a body's
//! chunks go into a store sink as they arrive, the time spent waiting for
//! the client and for the store counted in [`HttpMetrics`]. What differs
//! between uploads (a size limit, a declared length, a checksum, a
//! multipart parser's bookkeeping) is the caller's `check`, run on each
//! chunk before it is stored.

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::http::layers::metrics::HttpMetrics;
use crate::store::{StoreError, TusSink, UploadSink};

/// Where an upload's bytes go: a new entry's sink or a resumable upload's
/// session.
pub(crate) trait Sink {
    /// Bytes held so far (for a resumable upload, including earlier sessions').
    fn bytes_received(&self) -> u64;
    /// Appends bytes; waits while storage is behind (backpressure).
    fn write(&mut self, data: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl Sink for UploadSink {
    fn bytes_received(&self) -> u64 {
        UploadSink::bytes_received(self)
    }
    fn write(&mut self, data: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send {
        UploadSink::write(self, data)
    }
}

impl Sink for TusSink {
    fn bytes_received(&self) -> u64 {
        TusSink::bytes_received(self)
    }
    fn write(&mut self, data: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send {
        TusSink::write(self, data)
    }
}

/// What `check` decided about a chunk it accepted.
pub(crate) enum Take<E> {
    /// Store it and read on.
    Store,
    /// Store it (as `check` trimmed it), then stop with this.
    StoreThenStop(E),
}

/// Why [`receive_into`] stopped before the body's end.
pub(crate) enum Stopped<E> {
    /// The body yielded this error, or `check` refused or stopped with it.
    By(E),
    /// The store failed to take a chunk.
    Store(StoreError),
}

/// Streams `body` into `sink` until it ends (`Ok`) or stops. Each chunk is
/// counted as received, then handed to `check` with the bytes the sink held
/// before it: `Err` refuses it unstored, otherwise it is stored as `check`
/// left it. Empty chunks are passed over.
///
/// # Errors
/// See [`Stopped`].
pub(crate) async fn receive_into<S, E>(
    metrics: &HttpMetrics,
    body: impl Stream<Item = Result<Bytes, E>>,
    sink: &mut S,
    mut check: impl FnMut(&mut Bytes, u64) -> Result<Take<E>, E>,
) -> Result<(), Stopped<E>>
where
    S: Sink,
{
    let mut body = std::pin::pin!(body);
    loop {
        let t = Instant::now();
        let Some(next) = body.next().await else {
            return Ok(());
        };
        let mut bytes = next.map_err(Stopped::By)?;
        HttpMetrics::add(&metrics.upload_receive_ns, t.elapsed().as_nanos() as u64);
        if bytes.is_empty() {
            continue;
        }
        HttpMetrics::add(&metrics.upload_bytes, bytes.len() as u64);
        let take = check(&mut bytes, sink.bytes_received()).map_err(Stopped::By)?;
        let t = Instant::now();
        sink.write(bytes).await.map_err(Stopped::Store)?;
        HttpMetrics::add(&metrics.upload_store_wait_ns, t.elapsed().as_nanos() as u64);
        if let Take::StoreThenStop(e) = take {
            return Err(Stopped::By(e));
        }
    }
}
