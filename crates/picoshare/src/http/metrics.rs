//! `GET /metrics`: counters in the Prometheus text format.
//!
//! They say where the time of uploads and downloads goes: waiting for the
//! client's bytes, waiting for the database writer (backpressure), inserting,
//! committing, checkpointing; reading chunks and waiting for the client to take
//! them. Cumulative counters: a client takes the difference between two scrapes.
//!
//! Every request is also counted by [`layer`], outermost in the router: by
//! method and status class, with the body bytes received and sent (headers
//! not included). Gauges give the uploads in progress and the database's size
//! and reclaimable space.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::{AppError, AppState};
use crate::store::model::DatabaseSpace;

/// The methods counted by name; anything else counts as `other`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
/// Status classes `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Requests by method and status class, and HTTP body bytes.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// Indexed by `METHODS` position, then status class − 1.
    requests: [[AtomicU64; CLASSES.len()]; METHODS.len()],
    /// Request body bytes received.
    pub bytes_in: Arc<AtomicU64>,
    /// Response body bytes sent (handed to the connection).
    pub bytes_out: Arc<AtomicU64>,
}

impl RequestMetrics {
    fn method_index(method: &Method) -> usize {
        METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1)
    }

    /// Counts one finished request.
    pub fn count(&self, method: &Method, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[Self::method_index(method)][class].fetch_add(1, Ordering::Relaxed);
    }

    /// The number of requests with `method` (one of `METHODS`) and `class`.
    fn requests(&self, method: usize, class: usize) -> u64 {
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
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let m = &state.metrics.requests;
    let method = req.method().clone();
    let req = req.map(|b| counted(b, m.bytes_in.clone()));
    let resp = next.run(req).await;
    m.count(&method, resp.status());
    resp.map(|b| counted(b, m.bytes_out.clone()))
}

/// Counters kept by the HTTP layer.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Uploads stored.
    pub uploads: AtomicU64,
    /// File bytes received by uploads (stored or not).
    pub upload_bytes: AtomicU64,
    /// Time upload handlers waited for the client's next bytes.
    pub upload_receive_ns: AtomicU64,
    /// Time upload handlers waited for the database writer to accept chunks.
    pub upload_store_wait_ns: AtomicU64,
    /// Time from the end of an upload's body to its durable commit.
    pub upload_finish_ns: AtomicU64,
    /// Downloads served (GET requests with a body).
    pub downloads: AtomicU64,
    /// File bytes handed to download responses.
    pub download_bytes: AtomicU64,
    /// Time download producers waited for the client to take data.
    pub download_send_wait_ns: AtomicU64,
    /// Download bodies being streamed now.
    pub downloads_streaming: AtomicU64,
    /// Requests by method and status class, HTTP body bytes.
    pub requests: RequestMetrics,
}

impl HttpMetrics {
    /// Adds `v` to `counter`.
    pub fn add(counter: &AtomicU64, v: u64) {
        counter.fetch_add(v, Ordering::Relaxed);
    }
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn peak_rss_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Renders every metric; `space` is the database's size, when it could be read.
pub fn render(state: &AppState, space: Option<DatabaseSpace>) -> String {
    let m = &state.metrics;
    let s = state.store.stats();
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "picoshare_uploads_total",
        "counter",
        "Uploads stored.",
        l(&m.uploads) as f64,
    );
    metric(
        "picoshare_upload_bytes_total",
        "counter",
        "File bytes received by uploads.",
        l(&m.upload_bytes) as f64,
    );
    metric(
        "picoshare_upload_receive_seconds_total",
        "counter",
        "Time spent waiting for upload bytes from clients.",
        seconds(l(&m.upload_receive_ns)),
    );
    metric(
        "picoshare_upload_store_wait_seconds_total",
        "counter",
        "Time uploads waited for the database writer (backpressure).",
        seconds(l(&m.upload_store_wait_ns)),
    );
    metric(
        "picoshare_upload_finish_seconds_total",
        "counter",
        "Time from the end of upload bodies to their durable commit.",
        seconds(l(&m.upload_finish_ns)),
    );
    metric(
        "picoshare_uploads_in_progress",
        "gauge",
        "Uploads being received now.",
        s.uploads_in_progress as f64,
    );
    metric(
        "picoshare_downloads_in_progress",
        "gauge",
        "Download bodies being streamed now.",
        l(&m.downloads_streaming) as f64,
    );
    metric(
        "picoshare_uploads_aborted_total",
        "counter",
        "Uploads abandoned (client gone, error, shutdown).",
        s.aborted_uploads as f64,
    );
    metric(
        "picoshare_store_chunks_total",
        "counter",
        "Chunk rows inserted.",
        s.chunks as f64,
    );
    metric(
        "picoshare_store_bytes_written_total",
        "counter",
        "File bytes inserted into the database.",
        s.bytes as f64,
    );
    metric(
        "picoshare_store_insert_seconds_total",
        "counter",
        "Time the writer spent inserting chunk rows.",
        seconds(s.insert_ns),
    );
    metric(
        "picoshare_store_commits_total",
        "counter",
        "Write transactions committed.",
        s.commits as f64,
    );
    metric(
        "picoshare_store_commit_seconds_total",
        "counter",
        "Time the writer spent committing (incl. fsync and checkpoint waits).",
        seconds(s.commit_ns),
    );
    metric(
        "picoshare_store_checkpoints_total",
        "counter",
        "Background WAL checkpoints run.",
        s.checkpoints as f64,
    );
    metric(
        "picoshare_store_checkpoint_seconds_total",
        "counter",
        "Time spent in background WAL checkpoints.",
        seconds(s.checkpoint_ns),
    );
    metric(
        "picoshare_downloads_total",
        "counter",
        "Downloads served.",
        l(&m.downloads) as f64,
    );
    metric(
        "picoshare_download_bytes_total",
        "counter",
        "File bytes sent by downloads.",
        l(&m.download_bytes) as f64,
    );
    metric(
        "picoshare_store_read_seconds_total",
        "counter",
        "Time spent reading chunks for downloads.",
        seconds(s.read_ns),
    );
    metric(
        "picoshare_download_send_wait_seconds_total",
        "counter",
        "Time downloads waited for clients to take data.",
        seconds(l(&m.download_send_wait_ns)),
    );
    metric(
        "picoshare_http_request_bytes_total",
        "counter",
        "HTTP request body bytes received (all routes).",
        m.requests.bytes_in.load(Ordering::Relaxed) as f64,
    );
    metric(
        "picoshare_http_response_bytes_total",
        "counter",
        "HTTP response body bytes sent (all routes).",
        m.requests.bytes_out.load(Ordering::Relaxed) as f64,
    );
    if let Some(space) = space {
        metric(
            "picoshare_database_bytes",
            "gauge",
            "Size of the database file with its -wal and -shm files.",
            space.database as f64,
        );
        metric(
            "picoshare_database_reclaimable_bytes",
            "gauge",
            "Free pages inside the database file (space deleted files left, reused by new uploads).",
            space.reclaimable as f64,
        );
    }
    if let Some((rss, hwm)) = peak_rss_bytes() {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            rss as f64,
        );
        metric(
            "picoshare_process_peak_resident_memory_bytes",
            "gauge",
            "Peak resident memory (VmHWM).",
            hwm as f64,
        );
    }
    let name = "picoshare_http_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} HTTP requests answered, by method and status class.\n# TYPE {name} counter"
    );
    for (mi, method) in METHODS.iter().enumerate() {
        for (ci, class) in CLASSES.iter().enumerate() {
            let n = m.requests.requests(mi, ci);
            let _ = writeln!(out, "{name}{{method=\"{method}\",class=\"{class}\"}} {n}");
        }
    }
    out
}

/// `GET /metrics`: admin only, unless the server runs with `PS_METRICS_PUBLIC`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.metrics_public {
        match super::auth::is_admin(&state, &headers).await {
            Ok(true) => {}
            Ok(false) => return AppError::unauthorized().into_response(),
            Err(e) => return e.into_response(),
        }
    }
    let space = match state.store.database_space().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the database size");
            None
        }
    };
    let mut resp = (StatusCode::OK, render(&state, space)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
