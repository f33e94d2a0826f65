//! File data on the scale-out store: uploads into multipart uploads, ranged
//! reads, deletion and garbage collection.
//!
//! Memory: an upload holds at most `PS_S3_PARALLEL_PARTS` parts being sent
//! plus the one being filled. The next part waits for the oldest in flight,
//! so a slow bucket pushes back on the uploading client as a slow disk does.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, MultipartId, ObjectStore, PutPayload};
use tokio::task::JoinHandle;

use super::super::gc::GcOutcome;
use super::super::stats::Counters;
use super::super::{expiration_to_db, Entry, NewEntry, StoreError};
use super::{RemoteStore, INSTANCE_TIMEOUT_SQL, MAX_PARTS};
use crate::ids::{EntryId, TusUploadId};
use crate::validate::db_time;

/// A writing session on a resumable upload.
pub(super) struct TusSession {
    /// The upload.
    pub upload_id: TusUploadId,
    /// The lease this session holds on the upload's row.
    pub lease: String,
    /// Record each part (and the offset it reaches) as soon as it is stored.
    pub track: bool,
    /// Parts stored but not yet recorded (when not tracking): (number, ETag).
    pub unrecorded: Vec<(i64, String)>,
    /// When the lease was last renewed.
    pub renewed: Instant,
    /// Expiry to record with progress.
    pub expires: String,
    /// The upload's declared length: the offset that reaches it is only
    /// recorded with the entry row, when the upload completes.
    pub length: u64,
}

/// A part upload in flight: its 0-based index, its length and the task sending it.
type Inflight = (usize, u64, JoinHandle<Result<PartId, StoreError>>);

/// Receives the bytes of one upload and sends them to object storage in parts.
///
/// Dropping it before [`RemoteSink::finish`] abandons the upload: the
/// multipart upload is aborted (or the object deleted) and nothing is visible.
pub struct RemoteSink {
    pub(super) store: RemoteStore,
    pub(super) id: EntryId,
    pub(super) path: ObjectPath,
    pub(super) part_size: usize,
    pub(super) buf: BytesMut,
    pub(super) bytes: u64,
    pub(super) multipart: Option<MultipartId>,
    /// Index of the next part to send.
    pub(super) next_part: usize,
    /// Parts of a plain upload, in order.
    pub(super) parts: Vec<PartId>,
    /// Parts being sent, oldest first.
    pub(super) inflight: std::collections::VecDeque<Inflight>,
    /// Whether the `picoshare_pending_uploads` row exists.
    pub(super) registered: bool,
    pub(super) tus: Option<TusSession>,
    pub(super) done: bool,
    /// A guest-link slot to delete with the entry's insertion.
    pub(crate) slot: Option<String>,
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

    /// Starts an upload of a new entry (see [`super::super::Store::begin_upload`]).
    pub fn begin_upload(&self, id: EntryId, expected_len: Option<u64>) -> RemoteSink {
        let part_size = self.part_size_for(expected_len);
        Counters::add(&self.inner.counters.in_progress, 1);
        RemoteSink {
            store: self.clone(),
            path: self.object_path(&id),
            id,
            part_size,
            buf: BytesMut::new(),
            bytes: 0,
            multipart: None,
            next_part: 0,
            parts: Vec::new(),
            inflight: std::collections::VecDeque::new(),
            registered: false,
            tus: None,
            done: false,
            slot: None,
        }
    }

    /// Opens bytes `start..=end` of `entry` (one ranged GET, sent when first read).
    pub fn read_range(&self, entry: &Entry, start: u64, end: u64) -> RemoteRange {
        RemoteRange {
            store: self.clone(),
            path: self.object_path(&entry.id),
            start,
            end,
            stream: None,
            finished: entry.size == 0 || start > end,
        }
    }

    /// Deletes an entry: its rows and, once they are gone, its object.
    ///
    /// # Errors
    /// PostgreSQL failures (the object is deleted later by garbage
    /// collection if only its deletion fails).
    pub async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError> {
        let key = self.object_path(id).to_string();
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            super::meta::delete_entry_rows(&tx, id.as_str()).await?;
            queue_deletion(&tx, &key, "").await?;
            tx.commit().await?;
        }
        self.drain_deletions(Some(key)).await;
        Ok(())
    }

    /// Deletes queued objects (only `only` if given), and their queue rows.
    /// Failures are logged; the queue keeps them for the next collection.
    /// Returns how many were deleted.
    pub(super) async fn drain_deletions(&self, only: Option<String>) -> u64 {
        let rows = async {
            let client = self.pg().await?;
            let rows = match &only {
                Some(k) => client
                    .query(
                        "SELECT key, multipart_id FROM picoshare_deleted_objects WHERE key = $1",
                        &[k],
                    )
                    .await?,
                None => {
                    client
                        .query(
                            "SELECT key, multipart_id FROM picoshare_deleted_objects
                             ORDER BY since LIMIT 10000",
                            &[],
                        )
                        .await?
                }
            };
            Ok::<_, StoreError>(rows)
        }
        .await;
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the object deletion queue");
                return 0;
            }
        };
        let mut deleted = 0;
        for row in rows {
            let key: String = row.get(0);
            let multipart: String = row.get(1);
            let path = ObjectPath::from(key.as_str());
            let result = if multipart.is_empty() {
                self.s3().delete(&path).await
            } else {
                self.s3().abort_multipart(&path, &multipart).await
            };
            match result {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(key, error = %e, "could not delete an object; will retry");
                    continue;
                }
            }
            let forget = async {
                self.pg()
                    .await?
                    .execute(
                        "DELETE FROM picoshare_deleted_objects WHERE key = $1 AND multipart_id = $2",
                        &[&key, &multipart],
                    )
                    .await?;
                Ok::<_, StoreError>(())
            };
            if let Err(e) = forget.await {
                tracing::warn!(key, error = %e, "could not update the object deletion queue");
            } else {
                deleted += 1;
            }
        }
        deleted
    }

    /// Deletes expired entries and resumable uploads, aborts the uploads of
    /// instances that stopped without finishing them, and deletes queued
    /// objects. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so instances
    /// collecting at the same time each take different rows; deleting an
    /// object twice is harmless.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GcOutcome, StoreError> {
        let now_text = db_time(now);
        let mut outcome = GcOutcome::default();
        let prefix = self.inner.cfg.s3.prefix.clone();
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let expired = tx
                .query(
                    "SELECT id FROM entries
                     WHERE expiration_time IS NOT NULL AND expiration_time <> $2
                       AND expiration_time < $1
                     FOR UPDATE SKIP LOCKED",
                    &[&now_text, &crate::validate::NEVER_EXPIRE],
                )
                .await?;
            for row in &expired {
                let id: String = row.get(0);
                super::meta::delete_entry_rows(&tx, &id).await?;
                queue_deletion(&tx, &format!("{prefix}entries/{id}"), "").await?;
                outcome.expired_entries += 1;
            }
            let uploads = tx
                .query(
                    "SELECT id, entry_id, multipart_id, completed FROM picoshare_tus_uploads
                     WHERE expires_time < $1 FOR UPDATE SKIP LOCKED",
                    &[&now_text],
                )
                .await?;
            for row in &uploads {
                let id: String = row.get(0);
                let entry_id: String = row.get(1);
                let multipart: Option<String> = row.get(2);
                let completed: i64 = row.get(3);
                tx.execute(
                    "DELETE FROM picoshare_tus_parts WHERE upload_id = $1",
                    &[&id],
                )
                .await?;
                tx.execute("DELETE FROM picoshare_tus_uploads WHERE id = $1", &[&id])
                    .await?;
                if completed == 0 {
                    tx.execute(
                        "DELETE FROM picoshare_entry_limits WHERE entry_id = $1",
                        &[&entry_id],
                    )
                    .await?;
                    let key = format!("{prefix}entries/{entry_id}");
                    if let Some(m) = multipart {
                        queue_deletion(&tx, &key, &m).await?;
                    }
                }
                outcome.expired_uploads += 1;
            }
            // Uploads whose instance stopped (crashed) before finishing them.
            let abandoned = tx
                .query(
                    &format!(
                        "DELETE FROM picoshare_pending_uploads p
                         WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i
                            WHERE i.id = p.instance_id AND i.heartbeat > now() - {INSTANCE_TIMEOUT_SQL})
                         RETURNING entry_id, multipart_id"
                    ),
                    &[],
                )
                .await?;
            for row in &abandoned {
                let entry_id: String = row.get(0);
                let multipart: Option<String> = row.get(1);
                let key = format!("{prefix}entries/{entry_id}");
                if let Some(m) = multipart {
                    queue_deletion(&tx, &key, &m).await?;
                }
                // A small upload may have stored its object in one PUT.
                queue_deletion(&tx, &key, "").await?;
                outcome.orphan_chunks += 1;
            }
            // Instances gone for an hour, with whatever they still held.
            tx.batch_execute(
                "DELETE FROM picoshare_guest_slots s WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i
                    WHERE i.id = s.instance_id AND i.heartbeat > now() - interval '1 hour');
                 DELETE FROM picoshare_download_reservations r WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i
                    WHERE i.id = r.instance_id AND i.heartbeat > now() - interval '1 hour');
                 DELETE FROM picoshare_instances WHERE heartbeat < now() - interval '1 hour';",
            )
            .await?;
            tx.commit().await?;
        }
        self.drain_deletions(None).await;
        Ok(outcome)
    }

    /// Aborts this instance's uploads that are still registered (at shutdown,
    /// once no request runs: their sinks' own clean-up may not have run).
    pub(super) async fn abandon_own_uploads(&self) -> Result<(), StoreError> {
        let prefix = self.inner.cfg.s3.prefix.clone();
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "DELETE FROM picoshare_pending_uploads WHERE instance_id = $1
                     RETURNING entry_id, multipart_id",
                    &[&self.instance()],
                )
                .await?;
            for row in &rows {
                let entry_id: String = row.get(0);
                let multipart: Option<String> = row.get(1);
                let key = format!("{prefix}entries/{entry_id}");
                if let Some(m) = multipart {
                    queue_deletion(&tx, &key, &m).await?;
                }
                queue_deletion(&tx, &key, "").await?;
            }
            tx.commit().await?;
            if rows.is_empty() {
                return Ok(());
            }
        }
        self.drain_deletions(None).await;
        Ok(())
    }

    /// Registers an upload in progress (before its first byte is stored).
    async fn register_pending(&self, id: &EntryId) -> Result<(), StoreError> {
        self.pg()
            .await?
            .execute(
                "INSERT INTO picoshare_pending_uploads (entry_id, instance_id, started)
                 VALUES ($1, $2, now()) ON CONFLICT (entry_id) DO NOTHING",
                &[&id.as_str(), &self.instance()],
            )
            .await?;
        Ok(())
    }
}

/// Queues an object (or, with `multipart`, a multipart upload) for deletion.
pub(super) async fn queue_deletion(
    tx: &tokio_postgres::Transaction<'_>,
    key: &str,
    multipart: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO picoshare_deleted_objects (key, multipart_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        &[&key, &multipart],
    )
    .await?;
    Ok(())
}

/// Inserts an entry's row (and its limits), in the caller's transaction.
pub(super) async fn insert_entry(
    tx: &tokio_postgres::Transaction<'_>,
    id: &EntryId,
    entry: &NewEntry,
    size: u64,
    part_size: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO entries (id, filename, content_type, upload_time, expiration_time,
            guest_link_id, note, size, part_size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &id.as_str(),
            &entry.filename,
            &entry.content_type,
            &db_time(entry.upload_time),
            &expiration_to_db(entry.expiration),
            &entry.guest_link_id,
            &entry.note,
            &i64::try_from(size).unwrap_or(i64::MAX),
            &i64::try_from(part_size).unwrap_or(i64::MAX),
        ],
    )
    .await?;
    if let Some(l) = &entry.limits {
        super::meta::insert_limits(tx, id.as_str(), l).await?;
    }
    Ok(())
}

impl RemoteSink {
    /// The ID the entry will have.
    pub fn id(&self) -> &EntryId {
        &self.id
    }

    /// Bytes received so far (for a resumable upload: its offset).
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Appends bytes; sends each full part, waiting for the one before it.
    ///
    /// # Errors
    /// Object-storage or PostgreSQL failures; [`StoreError::Busy`] when a
    /// resumable upload's session lost its lease.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), StoreError> {
        if self.tus.is_none() && !self.registered && !data.is_empty() {
            // Recorded from the first byte on, so that an upload in progress
            // is visible (and, if its instance dies, collectable) at once.
            self.store.register_pending(&self.id).await?;
            self.registered = true;
        }
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.part_size {
                let part = data.split_to(self.part_size);
                self.send_part(part).await?;
                continue;
            }
            if self.buf.capacity() < self.part_size {
                self.buf.reserve(self.part_size - self.buf.len());
            }
            let take = (self.part_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data.split_to(take));
            if self.buf.len() == self.part_size {
                let part = self.buf.split().freeze();
                self.send_part(part).await?;
            }
        }
        self.renew_lease_if_due().await
    }

    /// Starts the multipart upload if it does not exist yet.
    async fn ensure_multipart(&mut self) -> Result<MultipartId, StoreError> {
        if let Some(m) = &self.multipart {
            return Ok(m.clone());
        }
        let store = self.store.clone();
        if self.tus.is_none() && !self.registered {
            store.register_pending(&self.id).await?;
            self.registered = true;
        }
        let m = store.s3().create_multipart(&self.path).await?;
        let client = store.pg().await?;
        match &self.tus {
            None => {
                client
                    .execute(
                        "UPDATE picoshare_pending_uploads SET multipart_id = $2 WHERE entry_id = $1",
                        &[&self.id.as_str(), &m],
                    )
                    .await?;
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
                    let _ = store.s3().abort_multipart(&self.path, &m).await;
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
                self.part_size >> 20
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
                .s3()
                .put_part(&path, &m, index, PutPayload::from_bytes(data))
                .await?;
            let c = &store.inner.counters;
            Counters::add(&c.insert_ns, started.elapsed().as_nanos() as u64);
            Counters::add(&c.chunks, 1);
            Counters::add(&c.bytes, len);
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
                let reached = index as u64 * self.part_size as u64 + len;
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
            .pg()
            .await?
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

    /// Stores the rest and the entry row; returns once both are durable.
    ///
    /// # Errors
    /// Storage failures; nothing is visible then.
    pub async fn finish(mut self, entry: NewEntry) -> Result<(), StoreError> {
        let result = self.finish_inner(&entry).await;
        if result.is_ok() {
            self.done = true;
            Counters::add(&self.store.inner.counters.in_progress, u64::MAX);
        }
        // On failure, Drop aborts the multipart upload or deletes the object.
        result
    }

    async fn finish_inner(&mut self, entry: &NewEntry) -> Result<(), StoreError> {
        self.store_object().await?;
        let store = self.store.clone();
        let started = Instant::now();
        let mut client = store.pg().await?;
        let tx = client.transaction().await?;
        insert_entry(&tx, &self.id, entry, self.bytes, self.part_size as u64).await?;
        tx.execute(
            "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1",
            &[&self.id.as_str()],
        )
        .await?;
        if let Some(slot) = &self.slot {
            tx.execute("DELETE FROM picoshare_guest_slots WHERE id = $1", &[slot])
                .await?;
        }
        tx.commit().await?;
        let c = &store.inner.counters;
        Counters::add(&c.commits, 1);
        Counters::add(&c.commit_ns, started.elapsed().as_nanos() as u64);
        Ok(())
    }

    /// Sends what is buffered and completes the object: the last part and
    /// the multipart upload's completion, or one PUT for a file smaller than
    /// a part.
    pub(super) async fn store_object(&mut self) -> Result<(), StoreError> {
        if self.multipart.is_none() {
            if self.tus.is_none() && !self.registered {
                self.store.register_pending(&self.id).await?;
                self.registered = true;
            }
            let data = self.buf.split().freeze();
            let len = data.len() as u64;
            let started = Instant::now();
            self.store
                .s3()
                .put(&self.path, PutPayload::from_bytes(data))
                .await?;
            let c = &self.store.inner.counters;
            Counters::add(&c.insert_ns, started.elapsed().as_nanos() as u64);
            Counters::add(&c.chunks, 1);
            Counters::add(&c.bytes, len);
            return Ok(());
        }
        if !self.buf.is_empty() {
            let last = self.buf.split().freeze();
            self.send_part(last).await?;
        }
        self.wait_inflight().await?;
        let Some(m) = self.multipart.clone() else {
            return Err(StoreError::Task("multipart upload missing".into()));
        };
        let parts = match &self.tus {
            None => std::mem::take(&mut self.parts),
            Some(t) => super::tus::all_parts(&self.store, &t.upload_id, &t.unrecorded).await?,
        };
        let started = Instant::now();
        self.store
            .s3()
            .complete_multipart(&self.path, &m, parts)
            .await?;
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
    for (number, etag) in parts {
        tx.execute(
            "INSERT INTO picoshare_tus_parts (upload_id, part_number, etag) VALUES ($1, $2, $3)
             ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag",
            &[&t.upload_id.as_str(), number, etag],
        )
        .await?;
    }
    tx.commit().await?;
    Counters::add(&store.inner.counters.commits, 1);
    Ok(())
}

impl Drop for RemoteSink {
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
        let path = self.path.clone();
        let multipart = self.multipart.take();
        let id = self.id.clone();
        let registered = self.registered;
        let tus = self.tus.take();
        let cleanup = async move {
            if let Some(t) = tus {
                // A resumable upload keeps what was recorded; only the lease goes.
                super::tus::release_lease(&store, &t).await;
                return;
            }
            let result = async {
                if let Some(m) = &multipart {
                    match store.s3().abort_multipart(&path, m).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(StoreError::from(e)),
                    }
                }
                // The object itself exists if the upload failed after it was
                // completed (the entry row could not be written).
                if registered {
                    match store.s3().delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(StoreError::from(e)),
                    }
                }
                if registered {
                    store
                        .pg()
                        .await?
                        .execute(
                            "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1",
                            &[&id.as_str()],
                        )
                        .await?;
                }
                Ok(())
            };
            if let Err(e) = result.await {
                // The pending row stays; garbage collection finishes the job.
                tracing::warn!(entry_id = %id, error = %e, "could not clean up an abandoned upload");
            }
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(cleanup);
        }
    }
}

/// Reads one byte range of an object: one ranged GET, streamed as the
/// network delivers it.
pub struct RemoteRange {
    store: RemoteStore,
    path: ObjectPath,
    start: u64,
    end: u64,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    finished: bool,
}

impl RemoteRange {
    /// The next piece of the range, or `None` at its end.
    ///
    /// # Errors
    /// Object-storage failures, or an object shorter than its entry says.
    pub async fn next(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        if self.stream.is_none() {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(self.start..self.end + 1)),
                ..GetOptions::default()
            };
            let got = self.store.s3().get_opts(&self.path, opts).await?;
            self.stream = Some(got.into_stream());
        }
        let started = Instant::now();
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        match stream.next().await {
            Some(Ok(b)) => {
                let c = &self.store.inner.counters;
                Counters::add(&c.read_ns, started.elapsed().as_nanos() as u64);
                Counters::add(&c.read_bytes, b.len() as u64);
                self.start += b.len() as u64;
                Ok(Some(b))
            }
            Some(Err(e)) => Err(e.into()),
            None => {
                self.finished = true;
                if self.start <= self.end {
                    return Err(StoreError::Corrupt(format!(
                        "object {} ended {} bytes early",
                        self.path,
                        self.end + 1 - self.start
                    )));
                }
                Ok(None)
            }
        }
    }
}
