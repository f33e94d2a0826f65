//! Uploads into object storage, on the request's side: [`RemoteSink`]
//! receives the bytes of a new entry, [`RemoteTusSink`] those of one writing
//! session on a resumable upload (its own methods are in `tus.rs`). Both
//! send the bytes as the parts of one S3 multipart upload (or one PUT when
//! the file is smaller than a part) for the entry's object.
//!
//! Memory: an upload holds at most `PS_S3_PARALLEL_PARTS` parts being sent
//! plus the one being filled. The next part waits for the oldest in flight,
//! so a slow bucket pushes back on the uploading client as a slow disk does.
//!
//! A plain upload is registered in `picoshare_pending_uploads` under this
//! instance's lease before its first byte goes out. That row is the upload's
//! claim on its object: the entry is inserted in the transaction that
//! deletes it, and nothing else deletes the object unless it deletes the row
//! first (another instance taking back a lost lease, or this one abandoning
//! the upload), so an entry is never committed for an object that was
//! collected (see `lease.rs`). Abandoning is retried until PostgreSQL
//! answers, and the object's deletion is queued before it is tried, so an
//! upload cut by an outage leaves nothing behind once the services are back.

use std::time::Instant;

use bytes::Bytes;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartId, ObjectStore, PutPayload};
use tokio::task::JoinHandle;

use super::entries::insert_entry;
use super::guest_links::{SlotLease, DELETE_SLOT};
use super::{RemoteStore, MAX_PARTS};
use crate::ids::{EntryId, TusUploadId};
use crate::store::model::{NewEntry, Pieces};
use crate::store::stats::Counters;
use crate::store::StoreError;

/// A writing session on a resumable upload.
pub(super) struct TusSession {
    /// The upload.
    pub(crate) upload_id: TusUploadId,
    /// The lease this session holds on the upload's row.
    pub(crate) lease: String,
    /// Record each part (and the offset it reaches) as soon as it is stored.
    pub(crate) track: bool,
    /// Parts stored but not yet recorded (when not tracking): (number, ETag).
    pub(crate) unrecorded: Vec<(i64, String)>,
    /// When the lease was last renewed.
    pub(crate) renewed: Instant,
    /// Expiry to record with progress.
    pub(crate) expires: String,
    /// The upload's declared length: the offset that reaches it is only
    /// recorded with the entry row, when the upload completes.
    pub(crate) length: u64,
}

/// A part upload in flight: its 0-based index, its length and the task sending it.
type Inflight = (usize, u64, JoinHandle<Result<PartId, StoreError>>);

/// Receives the bytes of an upload and sends them to object storage in
/// parts: the common part of [`RemoteSink`] and [`RemoteTusSink`].
///
/// Dropping it unfinished abandons a plain upload (the multipart upload is
/// aborted, or the object deleted, and nothing is visible) and gives up a
/// resumable session's lease (what it recorded stays).
pub(super) struct PartSink {
    pub(super) store: RemoteStore,
    pub(super) id: EntryId,
    pub(super) path: ObjectPath,
    /// The bytes cut into parts.
    pub(super) pieces: Pieces,
    pub(super) bytes: u64,
    pub(super) multipart: Option<MultipartId>,
    /// Index of the next part to send.
    pub(super) next_part: usize,
    /// Parts of a plain upload, in order.
    pub(super) parts: Vec<PartId>,
    /// Parts being sent, oldest first.
    pub(super) inflight: std::collections::VecDeque<Inflight>,
    /// The registration (instance ID) under which the upload's
    /// `picoshare_pending_uploads` row was written, once it was.
    pub(super) registered: Option<String>,
    /// Whether the object is complete (the multipart upload completed, or
    /// the one PUT done): from then on only the queue may delete it.
    pub(super) stored: bool,
    pub(super) tus: Option<TusSession>,
    pub(super) done: bool,
    /// A guest-link slot a plain upload holds until its entry is inserted
    /// (its row is deleted in that transaction).
    pub(super) slot: Option<SlotLease>,
}

/// Receives the bytes of one new entry and sends them to object storage.
///
/// Dropping it before [`RemoteSink::finish`] abandons the upload: the
/// multipart upload is aborted (or the object deleted) and nothing is visible.
pub(crate) struct RemoteSink(pub(super) PartSink);

/// One writing session on a resumable upload, holding its lease; its
/// methods are in `tus.rs`. Dropping it gives up the lease, keeping what
/// the session recorded.
pub(crate) struct RemoteTusSink(pub(super) PartSink);

/// Counts a part (or a whole small object) stored since `started`.
fn count_stored(store: &RemoteStore, started: Instant, len: u64) {
    let c = &store.inner.counters;
    Counters::add(&c.insert_ns, started.elapsed().as_nanos() as u64);
    Counters::add(&c.chunks, 1);
    Counters::add(&c.bytes, len);
}

impl RemoteStore {
    /// The part size for an upload of about `expected_len` bytes: the
    /// configured size, or larger when the file would need more than 9,000
    /// parts (S3 allows 10,000), rounded up to whole MiB.
    pub(super) fn part_size_for(&self, expected_len: Option<u64>) -> usize {
        let base = self.inner.cfg.part_size.max(super::MIN_PART_SIZE) as u64;
        let needed = expected_len.map_or(0, |l| l.div_ceil(9_000));
        let size = base.max(needed.div_ceil(1 << 20) << 20);
        usize::try_from(size).unwrap_or(usize::MAX)
    }

    /// Starts an upload of a new entry (see
    /// [`Store::begin_upload`](crate::store::Store::begin_upload)).
    pub(crate) fn begin_upload(&self, id: EntryId, expected_len: Option<u64>) -> RemoteSink {
        let part_size = self.part_size_for(expected_len);
        Counters::add(&self.inner.counters.in_progress, 1);
        RemoteSink(PartSink {
            store: self.clone(),
            path: self.object_path(&id),
            id,
            pieces: Pieces::new(part_size, &[]),
            bytes: 0,
            multipart: None,
            next_part: 0,
            parts: Vec::new(),
            inflight: std::collections::VecDeque::new(),
            registered: None,
            stored: false,
            tus: None,
            done: false,
            slot: None,
        })
    }

    /// Registers an upload in progress (before its first byte is stored)
    /// under this instance's current registration, which it returns.
    async fn register_pending(&self, id: &EntryId) -> Result<String, StoreError> {
        let me = self.instance();
        self.execute(
            "INSERT INTO picoshare_pending_uploads (entry_id, instance_id, started)
                 VALUES ($1, $2, now())",
            &[&id.as_str(), &me],
        )
        .await?;
        Ok(me)
    }
}

impl RemoteSink {
    /// The ID the entry will have.
    pub(crate) fn id(&self) -> &EntryId {
        &self.0.id
    }

    /// Bytes received so far.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.0.bytes
    }

    /// Appends bytes; sends each full part, waiting for the one before it.
    ///
    /// # Errors
    /// Object-storage or PostgreSQL failures.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.0.write(data).await
    }

    /// Holds a guest-link upload slot until the entry is inserted: its row
    /// is deleted in that transaction, so no count sees both.
    pub(crate) fn hold_guest_slot(&mut self, slot: SlotLease) {
        self.0.slot = Some(slot);
    }

    /// Stores the rest and the entry row; returns once both are durable.
    ///
    /// # Errors
    /// Storage failures; nothing is visible then.
    pub(crate) async fn finish(mut self, entry: NewEntry) -> Result<(), StoreError> {
        let entry = &entry;
        self.0
            .commit_content(async |sink, tx| {
                if let Some(slot) = &sink.slot {
                    // What counts in the slot's place from now on is the
                    // entry; a slot taken back may have gone to another upload.
                    if tx.execute(DELETE_SLOT, &[&slot.id()]).await? != 1 {
                        return Err(StoreError::LeaseLost);
                    }
                }
                let part_size = sink.pieces.size() as u64;
                insert_entry(tx, &sink.id, entry, sink.bytes, part_size).await?;
                Ok(true)
            })
            .await?;
        // On failure, Drop aborts the multipart upload or deletes the object.
        self.0.store.hooks_written();
        Ok(())
    }
}

impl PartSink {
    /// The commit that makes the object a file's content (a new entry's, a
    /// replacement's): stores the rest of the object, then, in one
    /// transaction, passes the fence ([`PartSink::consume_claim`]) and runs
    /// `rows`, which writes the rows; commits when `rows` returns `true` (the
    /// upload is then done and counted), rolls back when it returns `false`
    /// or fails (the claim stays, and Drop abandons the upload).
    ///
    /// # Errors
    /// Storage failures, the fence's, `rows`'s.
    pub(super) async fn commit_content(
        &mut self,
        rows: impl AsyncFnOnce(&PartSink, &tokio_postgres::Transaction<'_>) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        self.store_object().await?;
        let store = self.store.clone();
        let started = Instant::now();
        let mut client = store.pg().await?;
        let tx = client.transaction().await?;
        self.consume_claim(&tx).await?;
        if !rows(self, &tx).await? {
            return Ok(false);
        }
        tx.commit().await?;
        let c = &store.inner.counters;
        Counters::add(&c.commits, 1);
        Counters::add(&c.commit_ns, started.elapsed().as_nanos() as u64);
        self.finish_session();
        Ok(true)
    }

    /// Marks the upload done (Drop then leaves it alone), once: it no
    /// longer counts as in progress.
    pub(super) fn finish_session(&mut self) {
        if !self.done {
            self.done = true;
            Counters::add(&self.store.inner.counters.in_progress, u64::MAX);
        }
    }

    /// The fence (see `lease.rs`), in the transaction that stores the
    /// upload's object as a file's content (a new entry, or a replacement):
    /// the registration the upload was claimed under must still exist (held
    /// until the commit, so that it cannot be taken back half-way), and the
    /// upload's claim on its object is consumed here. If either is gone,
    /// another instance took this one's lease back and queued the object for
    /// deletion: [`StoreError::LeaseLost`], nothing is stored.
    pub(super) async fn consume_claim(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        if tx
            .query_opt(
                "SELECT 1 FROM picoshare_instances WHERE id = $1 FOR KEY SHARE",
                &[&self.registered],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::LeaseLost);
        }
        let claimed = tx
            .execute(
                "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1 AND instance_id = $2",
                &[&self.id.as_str(), &self.registered],
            )
            .await?;
        if claimed != 1 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    /// Registers a plain upload as in progress (before its first byte is
    /// stored), once; a resumable upload's row registers it already.
    async fn ensure_registered(&mut self) -> Result<(), StoreError> {
        if self.tus.is_none() && self.registered.is_none() {
            self.registered = Some(self.store.register_pending(&self.id).await?);
        }
        Ok(())
    }

    /// Appends bytes; sends each full part, waiting for the one before it.
    ///
    /// # Errors
    /// Object-storage or PostgreSQL failures; [`StoreError::Busy`] when a
    /// resumable upload's session lost its lease.
    pub(super) async fn write(&mut self, mut data: Bytes) -> Result<(), StoreError> {
        if !data.is_empty() {
            // Recorded from the first byte on, so that an upload in progress
            // is visible (and, if its instance dies, collectable) at once.
            self.ensure_registered().await?;
        }
        self.bytes += data.len() as u64;
        while let Some(part) = self.pieces.next(&mut data) {
            self.send_part(part).await?;
        }
        self.renew_lease_if_due().await
    }

    /// Starts the multipart upload if it does not exist yet.
    async fn ensure_multipart(&mut self) -> Result<MultipartId, StoreError> {
        if let Some(m) = &self.multipart {
            return Ok(m.clone());
        }
        self.ensure_registered().await?;
        let store = self.store.clone();
        let m = store
            .s3_call(store.s3().create_multipart(&self.path))
            .await?;
        let client = store.pg().await?;
        match &self.tus {
            None => {
                // Known to the clean-up from now on, even if it cannot be recorded.
                self.multipart = Some(m.clone());
                let n = client
                    .execute(
                        "UPDATE picoshare_pending_uploads SET multipart_id = $2
                         WHERE entry_id = $1 AND instance_id = $3",
                        &[&self.id.as_str(), &m, &self.registered],
                    )
                    .await?;
                if n == 0 {
                    // The claim was taken back before the multipart upload
                    // could be recorded with it.
                    return Err(StoreError::LeaseLost);
                }
            }
            Some(t) => {
                let n = client
                    .execute(
                        "UPDATE picoshare_tus_uploads SET multipart_id = $3
                         WHERE id = $1 AND lease_owner = $2",
                        &[&t.upload_id.as_str(), &t.lease, &m],
                    )
                    .await?;
                if n == 0 {
                    let _ = store
                        .s3_call(store.s3().abort_multipart(&self.path, &m))
                        .await;
                    return Err(StoreError::Busy);
                }
            }
        }
        self.multipart = Some(m.clone());
        Ok(m)
    }

    /// Sends one full part (or the last one) after the one in flight.
    async fn send_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        let index = self.next_part;
        if index as u64 >= MAX_PARTS {
            return Err(StoreError::TooLarge(format!(
                "the file is too large for object storage in {} MiB parts; raise PS_S3_PART_MIB",
                self.pieces.size() >> 20
            )));
        }
        let m = self.ensure_multipart().await?;
        while self.inflight.len() >= self.store.inner.cfg.parallel_parts.max(1) {
            self.wait_oldest().await?;
        }
        self.next_part += 1;
        let store = self.store.clone();
        let path = self.path.clone();
        let len = data.len() as u64;
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let part = store
                .s3_send(
                    len,
                    store
                        .s3()
                        .put_part(&path, &m, index, PutPayload::from_bytes(data)),
                )
                .await?;
            count_stored(&store, started, len);
            Ok(part)
        });
        self.inflight.push_back((index, len, handle));
        Ok(())
    }

    /// Waits for every part in flight, recording each in order.
    pub(super) async fn wait_inflight(&mut self) -> Result<(), StoreError> {
        while !self.inflight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    /// Waits for the oldest part in flight and records it.
    async fn wait_oldest(&mut self) -> Result<(), StoreError> {
        let Some((index, len, handle)) = self.inflight.pop_front() else {
            return Ok(());
        };
        let part = handle
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        match &mut self.tus {
            None => self.parts.push(part),
            Some(t) => {
                let number = index as i64 + 1;
                let reached = index as u64 * self.pieces.size() as u64 + len;
                if t.track && reached < t.length {
                    // The offset this part reaches is durable before the next part starts.
                    record_parts(&self.store, t, &[(number, part.content_id)], Some(reached))
                        .await?;
                    t.renewed = Instant::now();
                } else {
                    t.unrecorded.push((number, part.content_id));
                }
            }
        }
        Ok(())
    }

    async fn renew_lease_if_due(&mut self) -> Result<(), StoreError> {
        let Some(t) = &mut self.tus else {
            return Ok(());
        };
        if t.renewed.elapsed().as_secs() < (self.store.inner.cfg.tus_lease_secs / 3).max(1) {
            return Ok(());
        }
        let n = self
            .store
            .execute(
                &format!(
                    "UPDATE picoshare_tus_uploads SET lease_until = {}
                     WHERE id = $1 AND lease_owner = $2",
                    self.store.lease_until_sql()
                ),
                &[&t.upload_id.as_str(), &t.lease],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Busy);
        }
        t.renewed = Instant::now();
        Ok(())
    }

    /// Sends what is buffered and completes the object: the last part and
    /// the multipart upload's completion, or one PUT for a file smaller than
    /// a part.
    pub(super) async fn store_object(&mut self) -> Result<(), StoreError> {
        if self.multipart.is_none() {
            self.ensure_registered().await?;
            let data = self.pieces.take_rest();
            let len = data.len() as u64;
            let started = Instant::now();
            self.store
                .s3_send(
                    len,
                    self.store
                        .s3()
                        .put(&self.path, PutPayload::from_bytes(data)),
                )
                .await?;
            self.stored = true;
            count_stored(&self.store, started, len);
            return Ok(());
        }
        let last = self.pieces.take_rest();
        if !last.is_empty() {
            self.send_part(last).await?;
        }
        self.wait_inflight().await?;
        let Some(m) = self.multipart.clone() else {
            return Err(StoreError::Invariant("multipart upload missing"));
        };
        let parts = match &self.tus {
            None => std::mem::take(&mut self.parts),
            Some(t) => super::tus::all_parts(&self.store, &t.upload_id, &t.unrecorded).await?,
        };
        let started = Instant::now();
        self.store
            .s3_call(self.store.s3().complete_multipart(&self.path, &m, parts))
            .await?;
        self.stored = true;
        Counters::add(
            &self.store.inner.counters.commit_ns,
            started.elapsed().as_nanos() as u64,
        );
        Ok(())
    }
}

/// Records stored parts of a resumable upload and, with `offset`, the offset
/// they reach, if the session still holds its lease.
pub(super) async fn record_parts(
    store: &RemoteStore,
    t: &TusSession,
    parts: &[(i64, String)],
    offset: Option<u64>,
) -> Result<(), StoreError> {
    let mut client = store.pg().await?;
    let tx = client.transaction().await?;
    let n = match offset {
        Some(o) => {
            tx.execute(
                &format!(
                    "UPDATE picoshare_tus_uploads
                     SET upload_offset = $3, tail = NULL, lease_until = {},
                         expires_time = $4
                     WHERE id = $1 AND lease_owner = $2",
                    store.lease_until_sql()
                ),
                &[
                    &t.upload_id.as_str(),
                    &t.lease,
                    &i64::try_from(o).unwrap_or(i64::MAX),
                    &t.expires,
                ],
            )
            .await?
        }
        None => {
            tx.execute(
                &format!(
                    "UPDATE picoshare_tus_uploads SET lease_until = {}
                     WHERE id = $1 AND lease_owner = $2",
                    store.lease_until_sql()
                ),
                &[&t.upload_id.as_str(), &t.lease],
            )
            .await?
        }
    };
    if n == 0 {
        return Err(StoreError::Busy);
    }
    super::tus::insert_parts(&tx, &t.upload_id, parts).await?;
    tx.commit().await?;
    Counters::add(&store.inner.counters.commits, 1);
    Ok(())
}

impl Drop for PartSink {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let store = self.store.clone();
        Counters::add(&store.inner.counters.in_progress, u64::MAX);
        Counters::add(&store.inner.counters.aborted, 1);
        for (_, _, h) in self.inflight.drain(..) {
            h.abort();
        }
        if let Some(t) = self.tus.take() {
            // A resumable upload keeps what was recorded; only the lease goes.
            let owner = store.clone();
            store.spawn_background("release a resumable upload's lease", async move {
                super::tus::release_lease(&owner, &t).await;
                Ok(())
            });
            return;
        }
        let Some(instance) = self.registered.take() else {
            // Nothing was stored.
            return;
        };
        let path = self.path.clone();
        let multipart = self.multipart.take();
        let stored = self.stored;
        let id = self.id.clone();
        if let (Some(m), false) = (multipart.clone(), stored) {
            // An unfinished multipart upload can never become an entry:
            // aborting it at once is safe, and gives its space back sooner.
            let (s3, path) = (store.clone(), path.clone());
            store.spawn_background("abort an abandoned multipart upload", async move {
                match s3.s3_call(s3.s3().abort_multipart(&path, &m)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            });
        }
        // The object itself (complete, if the entry could not be recorded)
        // is only deleted through the queue, once this upload's claim on
        // it is deleted here: if the claim is gone, the entry was committed
        // after all, or another instance queued the object already.
        store.retry_until_done("clean up an abandoned upload", move |store| {
            let (id, instance, multipart) = (id.clone(), instance.clone(), multipart.clone());
            async move {
                store
                    .abandon_upload(&id, &instance, multipart.as_deref())
                    .await
            }
        });
    }
}
