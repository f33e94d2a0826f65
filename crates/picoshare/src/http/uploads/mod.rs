//! Uploads, streamed into the store as they arrive: the owner's
//! ([`owner`]: multipart and raw), a guest's through a guest link
//! ([`guest`]), and resumable uploads of both ([`tus`]); [`multipart`] reads
//! the multipart bodies, and [`receive`] is the loop all of them stream
//! their bytes into the store with.

pub(crate) mod guest;
pub(crate) mod multipart;
pub(crate) mod owner;
pub(crate) mod receive;
pub(crate) mod replace;
pub(crate) mod tus;

use std::future::Future;
use std::time::Instant;

use crate::http::layers::metrics::HttpMetrics;
use crate::ids::EntryId;

/// The public part of the reply when storing a finished upload failed.
pub(crate) const STORE_FAILED: &str = "failed to insert file into database";

/// Finishes an upload whose last byte has arrived: runs `commit` (the store
/// call that makes its entry durable, its errors already mapped to the
/// reply), times it, and once it succeeded counts the upload and logs it as
/// `stored {what}` with its entry ID. How a client that goes away meanwhile
/// is handled is `commit`'s own (a guest upload's runs in a task of its own,
/// so that its slot outlives the commit).
pub(crate) async fn finish<T, E>(
    metrics: &HttpMetrics,
    entry_id: &EntryId,
    what: &str,
    commit: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let stored = commit.await;
    HttpMetrics::add(
        &metrics.upload_finish_ns,
        started.elapsed().as_nanos() as u64,
    );
    if stored.is_ok() {
        HttpMetrics::add(&metrics.uploads, 1);
        tracing::info!(entry = %crate::ids::log_ref(entry_id.as_str()), "stored {what}");
        tracing::debug!(entry_id = %entry_id, "stored {what}");
    }
    stored
}
