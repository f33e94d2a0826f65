//! Replacing a file's content on the scale-out store, and keeping the old
//! content for the downloads that still read it.
//!
//! **The switch.** The new bytes are uploaded like a new file's, to an
//! object of their own (`entries/{T}`, `T` a fresh ID, claimed in
//! `picoshare_pending_uploads` as any upload). Then one transaction, fenced
//! by the instance's lease like an upload's commit, locks the entry row,
//! points it at `T` (`entries.content_id`), sets the new name, type, size and
//! an upload time strictly later than the old one (the version stamp behind
//! `ETag` and `Last-Modified`, as on SQLite), records the replacement in
//! `picoshare_replacements`, and queues the old object for deletion with a
//! `not_before` one lease ahead. Deleting the entry later queues its current
//! object (`DELETE … RETURNING content_id`, so a deletion racing a switch
//! queues whichever content won).
//!
//! **Readers.** A download looks the entry up once and reads the object key
//! it found, with ranged GETs, so it reads one version whatever happens
//! after; a multi-range reply and a share's ZIP use the `Entry` they looked
//! up for every read.
//!
//! **Freeing the old object** must wait for the downloads that still read
//! it, on any instance. A download pins its object key in its instance's
//! memory ([`ObjectHold`], in the `Entry`, taken when the entry row is
//! read) until it ends. The switch's `not_before` gives every instance one
//! lease period to notice; each instance, when it renews its lease (six
//! times per period), pushes `not_before` one lease further for every
//! queued object one of its downloads holds ([`RemoteStore::renew_holds`]).
//! The deletion queue skips rows whose `not_before` is ahead. So the old
//! object goes a lease after the switch when nobody reads it, and a lease
//! after the last download that read it ended, however long that took.
//! Chosen over a fixed grace delay (a download slower than any delay would be
//! cut) and over a row per download (a write per download, for a rare
//! event). It relies on the lease's own bound: an instance that cannot
//! renew for a whole lease is fenced, and its downloads may then be cut,
//! as everything else it held is taken back (`lease.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::upload::RemoteSink;
use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::entries::ContentPin;
use crate::store::model::sql::signed;
use crate::store::model::time::{db_time, db_time_to_utc};
use crate::store::model::Replacement;
use crate::store::StoreError;

/// The object keys this instance's downloads read, with how many read each.
#[derive(Default)]
pub(super) struct Holds(Mutex<HashMap<String, usize>>);

/// One download's hold on the object holding the version of a file it
/// looked up: an [`Entry`](crate::store::model::Entry)'s `pin` on this
/// store. Dropping the last clone of the entry lets the object go.
pub(super) struct ObjectHold {
    holds: Arc<Holds>,
    /// The object's key.
    pub(super) key: String,
}

impl Holds {
    /// A hold on object `key`.
    pub(super) fn hold(self: &Arc<Self>, key: String) -> ContentPin {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default() += 1;
        Arc::new(ObjectHold {
            holds: self.clone(),
            key,
        })
    }

    /// The keys held now.
    fn keys(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for ObjectHold {
    fn drop(&mut self) {
        let mut map = self.holds.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// The object key an entry's pin holds, if it is this store's.
pub(super) fn held_key(pin: Option<&ContentPin>) -> Option<&str> {
    pin.and_then(|p| p.downcast_ref::<ObjectHold>())
        .map(|h| h.key.as_str())
}

impl RemoteStore {
    /// A hold on the object of content `content_id` (an entry's own ID for
    /// its first content), for the `Entry` being read.
    pub(super) fn hold_content(&self, content_id: &str) -> ContentPin {
        self.inner.holds.hold(self.object_key(content_id))
    }

    /// Pushes back, by one lease, the deletion of every queued object that
    /// a download of this instance still reads (part of renewing the lease).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(super) async fn renew_holds(&self, lease_secs: i64) -> Result<(), StoreError> {
        let keys = self.inner.holds.keys();
        if keys.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE picoshare_deleted_objects
             SET not_before = greatest(not_before, clock_timestamp() + make_interval(secs => $1::BIGINT))
             WHERE key = ANY($2) AND not_before IS NOT NULL",
            &[&lease_secs, &keys],
        )
        .await?;
        Ok(())
    }
}

impl RemoteSink {
    /// Makes the bytes received the new content of entry `target` (see the
    /// module header); `false`, storing nothing, if the entry is gone.
    ///
    /// # Errors
    /// Storage failures; the entry keeps its old content then.
    pub(crate) async fn finish_replace(
        mut self,
        target: EntryId,
        change: Replacement,
    ) -> Result<bool, StoreError> {
        // Fenced by the lease as a new file's commit is; unless it commits,
        // Drop abandons the upload: its object is queued and deleted.
        let (target, change) = (&target, &change);
        self.0
            .commit_content(async |sink, tx| {
                let content = Content {
                    id: &sink.id,
                    size: sink.bytes,
                    part_size: sink.pieces.size() as u64,
                };
                switch_content(&sink.store, tx, &content, target, change).await
            })
            .await
    }
}

/// A content just stored in object `entries/{id}`.
pub(super) struct Content<'a> {
    pub(super) id: &'a EntryId,
    pub(super) size: u64,
    pub(super) part_size: u64,
}

/// The switch (see the module header), in the caller's transaction:
/// `false`, changing nothing, if entry `target` is gone.
pub(super) async fn switch_content(
    store: &RemoteStore,
    tx: &tokio_postgres::Transaction<'_>,
    content: &Content<'_>,
    target: &EntryId,
    change: &Replacement,
) -> Result<bool, StoreError> {
    let Some(old) = tx
        .query_opt(
            "SELECT filename, upload_time, size, coalesce(content_id, id)
             FROM entries WHERE id = $1 FOR UPDATE",
            &[&target.as_str()],
        )
        .await?
    else {
        return Ok(false);
    };
    let old_filename: String = old.try_get(0)?;
    let old_time: String = old.try_get(1)?;
    let old_size: i64 = old.try_get(2)?;
    let old_content: String = old.try_get(3)?;
    // Strictly later than the old upload time: it names the version.
    let new_time = db_time(
        change
            .now
            .max(db_time_to_utc(&old_time) + chrono::Duration::seconds(1)),
    );
    let filename = change.filename.clone().unwrap_or(old_filename.clone());
    let new_size = signed(content.size);
    tx.execute(
        "UPDATE entries SET filename = $2, content_type = $3, upload_time = $4, size = $5,
            part_size = $6, content_id = $7, sha256 = NULL
         WHERE id = $1",
        &[
            &target.as_str(),
            &filename,
            &change.content_type,
            &new_time,
            &new_size,
            &signed(content.part_size),
            &content.id.as_str(),
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO picoshare_replacements (entry_id, replaced_time, old_upload_time,
            old_filename, old_size, new_filename, new_size, old_content_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &target.as_str(),
            &db_time(change.now),
            &old_time,
            &old_filename,
            &old_size,
            &filename,
            &new_size,
            &old_content,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO picoshare_deleted_objects (key, multipart_id, not_before)
         VALUES ($1, '', clock_timestamp() + make_interval(secs => $2::BIGINT))
         ON CONFLICT (key, multipart_id) DO UPDATE SET not_before = EXCLUDED.not_before",
        &[&store.object_key(&old_content), &store.lease_secs()],
    )
    .await?;
    Ok(true)
}
