//! The chunk pump behind every streamed body (a download, a share's ZIP): a
//! task reads a file's bytes a batch at a time, each batch in its own short
//! read transaction, and hands the pieces to the response through a small
//! bounded channel. A slow client therefore holds a few pieces of memory and
//! no database lock, and never delays uploads or other downloads.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::http::layers::metrics::HttpMetrics;
use crate::store::model::Entry;
use crate::store::{RangeReader, Store};

/// Bytes read from the store per read transaction.
const READ_BATCH_BYTES: u64 = 2 << 20;
/// The same while more than [`FULL_SPEED_DOWNLOADS`] downloads stream at once.
/// A batch is held in memory until the client has taken it, and the reader's
/// page cache grows to about a batch while reading: with many downloads,
/// smaller batches keep memory bounded (eight parallel 1 GiB downloads beside
/// eight uploads peaked at 122.6 MiB with 2 MiB batches, docs/reliability.md),
/// while one or two downloads, which are CPU-bound, keep the faster large ones.
const SHARED_READ_BATCH_BYTES: u64 = 640 << 10;
/// Downloads that may stream at once with [`READ_BATCH_BYTES`].
const FULL_SPEED_DOWNLOADS: u64 = 2;
/// Pieces buffered between the reader task and the socket.
const CHANNEL_PIECES: usize = 4;

/// One piece of a body, or the error that cuts the connection.
type Piece = Result<Bytes, std::io::Error>;

/// The task's end of a streamed body.
pub(crate) struct Pump {
    tx: mpsc::Sender<Piece>,
}

/// The response's end of a streamed body: the pieces the task sends, in order.
pub(crate) struct Pieces {
    rx: mpsc::Receiver<Piece>,
}

impl Stream for Pieces {
    type Item = Piece;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Piece>> {
        self.rx.poll_recv(cx)
    }
}

/// Runs `produce` in a task of its own with the task's end of a new body,
/// and returns the response's end.
pub(crate) fn spawn<F, Fut>(produce: F) -> Pieces
where
    F: FnOnce(Pump) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
    tokio::spawn(produce(Pump { tx }));
    Pieces { rx }
}

/// How a range is read: as a download or as part of a share's ZIP.
#[derive(Clone, Copy)]
pub(crate) enum Reading<'a> {
    /// A download: batches shrink while many downloads stream, and the
    /// download counters count its bytes and waits.
    Download(&'a HttpMetrics),
    /// A member of a share's ZIP: full batches, not counted as a download.
    ZipMember,
}

impl Pump {
    /// Sends one piece; false once the client has gone away.
    pub(crate) async fn send(&self, piece: Bytes) -> bool {
        self.tx.send(Ok(piece)).await.is_ok()
    }

    /// Ends the body with an error, so that the connection is cut rather
    /// than a short body taken for a whole one.
    pub(crate) async fn fail(&self, error: impl std::fmt::Display) {
        let _ = self
            .tx
            .send(Err(std::io::Error::other(error.to_string())))
            .await;
    }

    /// Streams bytes `start..=end` of `entry`, showing each piece to `seen`
    /// before it is sent. Returns false if the client went away or reading
    /// failed (the body is then cut, and the failure logged).
    pub(crate) async fn range(
        &self,
        store: &Store,
        entry: &Entry,
        (start, end): (u64, u64),
        reading: Reading<'_>,
        seen: impl FnMut(&Bytes),
    ) -> bool {
        let reader = store.read_range(entry, start, end);
        self.read(reader, entry, reading, seen).await
    }

    /// Streams what `reader` (a range of `entry`) reads, as
    /// [`Pump::range`] does.
    pub(crate) async fn read(
        &self,
        mut reader: RangeReader,
        entry: &Entry,
        reading: Reading<'_>,
        mut seen: impl FnMut(&Bytes),
    ) -> bool {
        loop {
            let batch_bytes = match reading {
                Reading::Download(m)
                    if m.downloads_streaming.load(Ordering::Relaxed) > FULL_SPEED_DOWNLOADS =>
                {
                    SHARED_READ_BATCH_BYTES
                }
                _ => READ_BATCH_BYTES,
            };
            let pieces = match reader.next(batch_bytes).await {
                Ok(Some(p)) => p,
                Ok(None) => return true,
                Err(e) => {
                    match reading {
                        Reading::Download(_) => {
                            tracing::error!(entry = %crate::ids::log_ref(entry.id.as_str()), error = %e, "download failed while reading");
                        }
                        Reading::ZipMember => {
                            tracing::error!(entry = %crate::ids::log_ref(entry.id.as_str()), error = %e, "share ZIP failed while reading");
                        }
                    }
                    self.fail(e).await;
                    return false;
                }
            };
            for data in pieces {
                seen(&data);
                let n = data.len() as u64;
                let t = Instant::now();
                if !self.send(data).await {
                    return false;
                }
                if let Reading::Download(m) = reading {
                    HttpMetrics::add(&m.download_send_wait_ns, t.elapsed().as_nanos() as u64);
                    HttpMetrics::add(&m.download_bytes, n);
                }
            }
        }
    }
}
