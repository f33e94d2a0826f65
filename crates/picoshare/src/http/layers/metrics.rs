//! Request counters: the layer (outermost in the router) that counts every
//! request by method and status class, with the body bytes received and sent
//! (headers not included), and the counters handlers add to as uploads and
//! downloads go (`HttpMetrics`). `GET /metrics` ([`crate::http::api::metrics`])
//! renders them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::http::AppState;

/// The methods counted by name; anything else counts as `other`.
pub(crate) const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
/// Status classes `1xx` to `5xx`.
pub(crate) const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Requests by method and status class, and HTTP body bytes.
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    /// Indexed by `METHODS` position, then status class − 1.
    requests: [[AtomicU64; CLASSES.len()]; METHODS.len()],
    /// Request body bytes received.
    pub(crate) bytes_in: Arc<AtomicU64>,
    /// Response body bytes sent (handed to the connection).
    pub(crate) bytes_out: Arc<AtomicU64>,
}

impl RequestMetrics {
    fn method_index(method: &Method) -> usize {
        METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1)
    }

    /// Counts one finished request.
    pub(crate) fn count(&self, method: &Method, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[Self::method_index(method)][class].fetch_add(1, Ordering::Relaxed);
    }

    /// The number of requests with `method` (one of `METHODS`) and `class`.
    pub(crate) fn requests(&self, method: usize, class: usize) -> u64 {
        self.requests[method][class].load(Ordering::Relaxed)
    }
}

/// Wraps `body` so that the bytes of its data frames are added to `counter`.
fn counted(body: Body, counter: Arc<AtomicU64>) -> Body {
    Body::new(Counted {
        inner: body,
        counter,
    })
}

/// A body that counts its data bytes and otherwise passes everything through,
/// its size hint included (so that responses keep their `Content-Length`).
struct Counted {
    inner: Body,
    counter: Arc<AtomicU64>,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: counts every request by method and status class and the body
/// bytes in both directions. Outermost, so that refusals by other layers count.
pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = &state.metrics.requests;
    let method = req.method().clone();
    let req = req.map(|b| counted(b, m.bytes_in.clone()));
    let resp = next.run(req).await;
    m.count(&method, resp.status());
    resp.map(|b| counted(b, m.bytes_out.clone()))
}

/// Counters kept by the HTTP layer.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    /// Uploads stored.
    pub(crate) uploads: AtomicU64,
    /// File bytes received by uploads (stored or not).
    pub(crate) upload_bytes: AtomicU64,
    /// Time upload handlers waited for the client's next bytes.
    pub(crate) upload_receive_ns: AtomicU64,
    /// Time upload handlers waited for the database writer to accept chunks.
    pub(crate) upload_store_wait_ns: AtomicU64,
    /// Time from the end of an upload's body to its durable commit.
    pub(crate) upload_finish_ns: AtomicU64,
    /// Downloads served (GET requests with a body).
    pub(crate) downloads: AtomicU64,
    /// File bytes handed to download responses.
    pub(crate) download_bytes: AtomicU64,
    /// Time download producers waited for the client to take data.
    pub(crate) download_send_wait_ns: AtomicU64,
    /// Download bodies being streamed now.
    pub(crate) downloads_streaming: AtomicU64,
    /// Requests by method and status class, HTTP body bytes.
    pub(crate) requests: RequestMetrics,
}

impl HttpMetrics {
    /// Adds `v` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }
}
