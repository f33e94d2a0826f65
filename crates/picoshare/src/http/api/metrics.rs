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

/// A metric's kind in the text format.
const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// Renders every metric; `space` is the database's size, when it could be read.
pub(crate) fn render(state: &AppState, space: Option<DatabaseSpace>) -> String {
    let m = &state.metrics;
    let s = state.store.stats();
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    let secs = |a: &AtomicU64| seconds(a.load(Ordering::Relaxed));
    // Name, kind, help and value of each metric with one value, in the order
    // they are written.
    #[rustfmt::skip]
    let mut table: Vec<(&str, &str, &str, f64)> = vec![
        ("picoshare_uploads_total", COUNTER, "Uploads stored.", n(&m.uploads)),
        ("picoshare_upload_bytes_total", COUNTER, "File bytes received by uploads.", n(&m.upload_bytes)),
        ("picoshare_upload_receive_seconds_total", COUNTER, "Time spent waiting for upload bytes from clients.", secs(&m.upload_receive_ns)),
        ("picoshare_upload_store_wait_seconds_total", COUNTER, "Time uploads waited for the database writer (backpressure).", secs(&m.upload_store_wait_ns)),
        ("picoshare_upload_finish_seconds_total", COUNTER, "Time from the end of upload bodies to their durable commit.", secs(&m.upload_finish_ns)),
        ("picoshare_uploads_in_progress", GAUGE, "Uploads being received now.", s.uploads_in_progress as f64),
        ("picoshare_downloads_in_progress", GAUGE, "Download bodies being streamed now.", n(&m.downloads_streaming)),
        ("picoshare_uploads_aborted_total", COUNTER, "Uploads abandoned (client gone, error, shutdown).", s.aborted_uploads as f64),
        ("picoshare_store_chunks_total", COUNTER, "Chunk rows inserted.", s.chunks as f64),
        ("picoshare_store_bytes_written_total", COUNTER, "File bytes inserted into the database.", s.bytes as f64),
        ("picoshare_store_insert_seconds_total", COUNTER, "Time the writer spent inserting chunk rows.", seconds(s.insert_ns)),
        ("picoshare_store_commits_total", COUNTER, "Write transactions committed.", s.commits as f64),
        ("picoshare_store_commit_seconds_total", COUNTER, "Time the writer spent committing (incl. fsync and checkpoint waits).", seconds(s.commit_ns)),
        ("picoshare_store_checkpoints_total", COUNTER, "Background WAL checkpoints run.", s.checkpoints as f64),
        ("picoshare_store_checkpoint_seconds_total", COUNTER, "Time spent in background WAL checkpoints.", seconds(s.checkpoint_ns)),
        ("picoshare_downloads_total", COUNTER, "Downloads served.", n(&m.downloads)),
        ("picoshare_download_bytes_total", COUNTER, "File bytes sent by downloads.", n(&m.download_bytes)),
        ("picoshare_store_read_seconds_total", COUNTER, "Time spent reading chunks for downloads.", seconds(s.read_ns)),
        ("picoshare_download_send_wait_seconds_total", COUNTER, "Time downloads waited for clients to take data.", secs(&m.download_send_wait_ns)),
        ("picoshare_http_request_bytes_total", COUNTER, "HTTP request body bytes received (all routes).", n(&m.requests.bytes_in)),
        ("picoshare_http_response_bytes_total", COUNTER, "HTTP response body bytes sent (all routes).", n(&m.requests.bytes_out)),
    ];
    if let Some(space) = space {
        #[rustfmt::skip]
        table.extend([
            ("picoshare_database_bytes", GAUGE, "Size of the database file with its -wal and -shm files.", space.database as f64),
            ("picoshare_database_reclaimable_bytes", GAUGE, "Free pages inside the database file (space deleted files left, reused by new uploads).", space.reclaimable as f64),
        ]);
    }
    if let Some((rss, hwm)) = peak_rss_bytes() {
        #[rustfmt::skip]
        table.extend([
            ("process_resident_memory_bytes", GAUGE, "Resident memory.", rss as f64),
            ("picoshare_process_peak_resident_memory_bytes", GAUGE, "Peak resident memory (VmHWM).", hwm as f64),
        ]);
    }
    table.push((
        "picoshare_password_checks_total",
        COUNTER,
        "Passwords of protected files checked against their argon2id hash.",
        n(&PASSWORD_CHECKS),
    ));
    #[rustfmt::skip]
    table.extend([
        ("picoshare_notifications_delivered_total", COUNTER, "Notifications a receiver accepted (2xx).", n(&crate::hooks::DELIVERED)),
        ("picoshare_notifications_failed_total", COUNTER, "Notification attempts that failed (each is retried).", n(&crate::hooks::FAILED)),
        ("picoshare_notifications_dropped_total", COUNTER, "Undelivered notifications dropped because the outbox was full.", crate::store::sqlite::hooks::dropped() as f64),
    ]);
    let mut out = String::new();
    for (name, kind, help, value) in table {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
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
