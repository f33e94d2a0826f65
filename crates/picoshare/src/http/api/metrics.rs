//! `GET /metrics`: counters in the Prometheus text format.
//!
//! They say where the time of uploads and downloads goes: waiting for the
//! client's bytes, waiting for the database writer (backpressure), inserting,
//! committing, checkpointing; reading chunks and waiting for the client to take
//! them. Cumulative counters: a client takes the difference between two scrapes.
//!
//! Every request is also counted by [`crate::http::layers::metrics::layer`]:
//! by method and status class, with the body bytes received and sent. Gauges
//! give the uploads in progress and the database's size and reclaimable space,
//! and the keys the rate limits hold (bounded, see `auth::login_limit`);
//! a counter the password checks (argon2id hashes) run.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::auth::hashing::PASSWORD_CHECKS;
use crate::http::auth::session::is_admin;
use crate::http::layers::metrics::{CLASSES, METHODS};
use crate::http::{AppError, AppState};
use crate::store::model::DatabaseSpace;

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
pub(crate) fn render(state: &AppState, space: Option<DatabaseSpace>) -> String {
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
    metric(
        "picoshare_password_checks_total",
        "counter",
        "Passwords of protected files checked against their argon2id hash.",
        PASSWORD_CHECKS.load(Ordering::Relaxed) as f64,
    );
    metric(
        "picoshare_notifications_delivered_total",
        "counter",
        "Notifications a receiver accepted (2xx).",
        crate::hooks::DELIVERED.load(Ordering::Relaxed) as f64,
    );
    metric(
        "picoshare_notifications_failed_total",
        "counter",
        "Notification attempts that failed (each is retried).",
        crate::hooks::FAILED.load(Ordering::Relaxed) as f64,
    );
    metric(
        "picoshare_notifications_dropped_total",
        "counter",
        "Undelivered notifications dropped because the outbox was full.",
        crate::store::sqlite::hooks::dropped() as f64,
    );
    let name = "picoshare_rate_limit_keys";
    let (addresses, files) = state.file_access.limiter_sizes();
    let _ = writeln!(
        out,
        "# HELP {name} Clients (or files) the limits on wrong passphrases and passwords hold a count for.\n# TYPE {name} gauge"
    );
    for (limit, n) in [
        ("login", state.login_limiter.len()),
        ("password_client", addresses),
        ("password_file", files),
    ] {
        let _ = writeln!(out, "{name}{{limit=\"{limit}\"}} {n}");
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
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !state.config.metrics_public && !is_admin(&state, &headers).await? {
        return Err(AppError::unauthorized());
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
    Ok(resp)
}
