//! Writing a request's body to a resumable upload (`PATCH`, and the body of
//! a creation request): the checks of its offset and length, the stream into
//! the store, the checksum, and how the request ends (saved, completed, cut
//! short).

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{conflict, gone, header_str, no_such_upload, status, Owner};
use crate::http::layers::metrics::HttpMetrics;
use crate::http::proto::tus_headers::{self as th, Checksum, ChecksumError, Hasher};
use crate::http::uploads::STORE_FAILED;
use crate::http::{AppError, AppState};
use crate::ids::TusUploadId;
use crate::store::model::{NewEntry, Replacement, TusUpload};
use crate::store::TusSink;

/// The status tus defines for a checksum mismatch.
const CHECKSUM_MISMATCH: u16 = 460;

/// The state after a request's bytes were written.
pub(super) struct Written {
    /// The row (marked completed if this request completed it).
    pub(super) row: TusUpload,
    /// The offset now stored.
    pub(super) offset: u64,
}

/// Why reading a request body stopped before its end.
enum Cut {
    /// Another request took the upload over.
    TakenOver,
    /// The server is shutting down.
    ShuttingDown,
    /// The client went away or the body broke.
    BodyFailed,
    /// The body went past the upload's declared length.
    TooLong,
}

/// Writes a request's body to upload `id`, which must be at `offset`.
pub(super) async fn write(
    state: &AppState,
    owner: &Owner,
    id: &TusUploadId,
    offset: u64,
    req: Request,
) -> Result<Written, AppError> {
    let checksum: Option<Checksum> = match header_str(req.headers(), "upload-checksum") {
        Some(raw) => Some(th::parse_checksum(raw).map_err(|e| match e {
            ChecksumError::Unsupported(_) | ChecksumError::Malformed(_) => {
                AppError::bad_request(e.to_string())
            }
        })?),
        None => None,
    };
    let content_length = match header_str(req.headers(), "content-length") {
        Some(raw) => Some(th::parse_size("Content-Length", raw).map_err(AppError::bad_request)?),
        None => None,
    };
    let mut guard = state.tus_locks.acquire(id).await.ok_or_else(|| {
        AppError::new(
            StatusCode::LOCKED,
            "Another request is still writing to this upload; try again in a moment.",
        )
    })?;
    let opened = state
        .store
        .tus_open(id, checksum.is_none())
        .await
        .map_err(|e| AppError::store("failed to open the upload", e))?;
    let Some((row, sink)) = opened else {
        return Err(no_such_upload());
    };
    // From here on, returning early drops the sink, which ends its session.
    if !owner.owns(&row) {
        return Err(no_such_upload());
    }
    let now = state.clock.now();
    let Some(sink) = sink else {
        // Completed already: a repeat of the last request is harmless.
        if offset == row.length && content_length.unwrap_or(0) == 0 {
            return Ok(Written {
                offset: row.length,
                row,
            });
        }
        return Err(conflict(offset, row.length));
    };
    if row.expires < now {
        return Err(gone());
    }
    if offset != row.offset {
        return Err(conflict(offset, row.offset));
    }
    let remaining = row.length - row.offset;
    if content_length.is_some_and(|n| n > remaining) {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request carries more bytes than the upload has left ({remaining} of {} bytes).",
                row.length
            ),
        ));
    }

    let mut hasher = checksum.as_ref().map(|c| Hasher::new(c.algorithm));
    let mut shutdown = state.shutdown.clone();
    let (sink, cut) = receive(
        state,
        sink,
        req.into_body(),
        row.length,
        hasher.as_mut(),
        &mut guard.wanted,
        &mut shutdown,
    )
    .await?;
    let expires = state.clock.now() + state.config.tus_expiry;

    if let (Some(c), Some(h)) = (&checksum, hasher) {
        // The checksum covers the whole request: keep nothing of one that did
        // not arrive whole, or does not match.
        let matched = cut.is_none() && h.matches(&c.digest);
        if !matched {
            sink.discard().await;
            return Err(match cut {
                None => AppError::new(
                    status(CHECKSUM_MISMATCH),
                    "Checksum Mismatch: the request's bytes do not match its Upload-Checksum; nothing of it was stored.",
                ),
                Some(c) => cut_error(&c),
            });
        }
    }

    let reached = sink.bytes_received();
    let mut row = row;
    // The last byte arrived: the upload becomes a file, or a file's new content.
    let completes = (reached == row.length).then(|| super::replacing(&row));
    match completes {
        Some(Some((target, keep))) => {
            let change = Replacement {
                filename: (!keep).then(|| row.filename.clone()),
                content_type: row.content_type.clone(),
                now: state.clock.now(),
            };
            let commit = async {
                let completed = sink.complete_replace(target.clone(), change, expires).await;
                completed.map_err(|e| store_error(STORE_FAILED, e))
            };
            let metrics = &state.metrics;
            crate::http::uploads::finish(metrics, &target, "resumable replacement", commit).await?;
            row.completed = true;
        }
        Some(None) => {
            let entry = NewEntry {
                filename: row.filename.clone(),
                content_type: row.content_type.clone(),
                upload_time: state.clock.now(),
                expiration: row.expiration,
                note: row.note.clone(),
                guest_link_id: row.guest_link_id.clone(),
                // Stored with the upload's row when it was created.
                limits: None,
            };
            let commit = async {
                let completed = sink.complete(entry, expires).await;
                completed.map_err(|e| store_error(STORE_FAILED, e))
            };
            let metrics = &state.metrics;
            crate::http::uploads::finish(metrics, &row.entry_id, "resumable upload", commit)
                .await?;
            row.completed = true;
        }
        None => {
            sink.save(expires)
                .await
                .map_err(|e| store_error("failed to record the upload's progress", e))?;
            row.expires = expires;
        }
    }
    row.offset = reached;
    match cut {
        None => Ok(Written {
            offset: reached,
            row,
        }),
        Some(c) => Err(cut_error(&c)),
    }
}

/// Maps a storage failure while bytes were being stored. A full disk keeps
/// what was stored before it: the client can resume once space is freed.
fn store_error(public: &str, e: crate::store::StoreError) -> AppError {
    match e {
        crate::store::StoreError::DiskFull => AppError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "The server's disk is full: the upload stopped, and what was stored so far is kept. \
             Free some space (or ask the server's owner), then resume.",
        ),
        other => AppError::store(public, other),
    }
}

fn cut_error(cut: &Cut) -> AppError {
    match cut {
        Cut::TakenOver => AppError::new(
            StatusCode::CONFLICT,
            "Another request continued this upload; this one stopped.",
        ),
        Cut::ShuttingDown => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is restarting; what arrived is saved. Resume in a moment.",
        ),
        Cut::BodyFailed => AppError::bad_request(
            "The request body broke off; what arrived is saved. Resume from the upload's offset.",
        ),
        Cut::TooLong => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request carried more bytes than the upload's declared length; the extra bytes were not stored.",
        ),
    }
}

/// Streams a body into `sink` until it ends, the upload's length is reached,
/// or something cuts it short.
async fn receive(
    state: &AppState,
    mut sink: TusSink,
    body: Body,
    length: u64,
    mut hasher: Option<&mut Hasher>,
    wanted: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(TusSink, Option<Cut>), AppError> {
    let mut stream = body.into_data_stream();
    let m = &state.metrics;
    if *shutdown.borrow() {
        return Ok((sink, Some(Cut::ShuttingDown)));
    }
    loop {
        let t = Instant::now();
        let next = tokio::select! {
            biased;
            _ = wanted.changed() => return Ok((sink, Some(Cut::TakenOver))),
            _ = shutdown.changed() => return Ok((sink, Some(Cut::ShuttingDown))),
            next = stream.next() => next,
        };
        let mut bytes = match next {
            None => return Ok((sink, None)),
            Some(Err(_)) => return Ok((sink, Some(Cut::BodyFailed))),
            Some(Ok(b)) => b,
        };
        HttpMetrics::add(&m.upload_receive_ns, t.elapsed().as_nanos() as u64);
        let left = length - sink.bytes_received();
        let too_long = bytes.len() as u64 > left;
        if too_long {
            bytes.truncate(left as usize);
        }
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&bytes);
        }
        HttpMetrics::add(&m.upload_bytes, bytes.len() as u64);
        let t = Instant::now();
        sink.write(bytes)
            .await
            .map_err(|e| store_error("failed to store the upload's bytes", e))?;
        HttpMetrics::add(&m.upload_store_wait_ns, t.elapsed().as_nanos() as u64);
        if too_long {
            return Ok((sink, Some(Cut::TooLong)));
        }
    }
}
