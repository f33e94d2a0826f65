//! Resumable (tus) uploads on the scale-out store.
//!
//! An upload's bytes go into one S3 multipart upload for the entry's object.
//! Every part but the last has the upload's part size, so part numbers
//! follow from offsets: the part holding byte `o` is `o / part_size + 1`.
//! Stored parts are listed with their ETags in `picoshare_tus_parts`; bytes
//! after the last full part wait in the row's `tail` between requests.
//!
//! A writing session holds a lease on the row (`lease_owner`, renewed while
//! bytes arrive, lost `PS_TUS_LEASE_SECS` (30) seconds after they stop). Every record of progress
//! is conditional on the lease, so a session that lost it (another server
//! took the upload over) can never record anything. Within one server a new
//! request takes over at once (see `http::uploads::tus`); across servers it gets 423
//! Locked until the old session's lease runs out.

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::multipart::PartId;
use object_store::ObjectStore;

use super::entries::insert_entry;
use super::guest_links::{SlotLease, DELETE_SLOT};
use super::upload::{PartSink, RemoteTusSink, TusSession};
use super::RemoteStore;
use crate::ids::{EntryId, TusUploadId};
use crate::store::model::sql::{signed, Row};
use crate::store::model::time::{db_time, expiration_to_db};
use crate::store::model::tus::{tus_columns, INSERT_TUS};
use crate::store::model::{NewEntry, NewTusUpload, Pieces, Replacement, TusUpload};
use crate::store::stats::Counters;
use crate::store::StoreError;

/// The columns [`from_row`] reads: [`TusUpload::decode`]'s, then the
/// multipart upload's ID.
macro_rules! upload_columns {
    () => {
        concat!(tus_columns!(), ", multipart_id")
    };
}

/// Reads a row of [`upload_columns!`].
fn from_row(r: &tokio_postgres::Row) -> Result<(TusUpload, Option<String>), StoreError> {
    Ok((TusUpload::decode(r)?, r.opt_text(15)?))
}

impl RemoteStore {
    /// Creates a resumable upload. Durable when it returns. A guest
    /// upload's `slot` row is deleted in the transaction that inserts the
    /// upload's row, which counts in its place from then on.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn tus_create(
        &self,
        new: NewTusUpload,
        slot: Option<SlotLease>,
    ) -> Result<TusUpload, StoreError> {
        let length = new.length;
        let (row, limits) = new.into_row(self.part_size_for(Some(length)) as u64);
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(
            INSERT_TUS.pg(),
            &[
                &row.id.as_str(),
                &row.entry_id.as_str(),
                &row.guest_link_id,
                &signed(row.length),
                &signed(row.chunk_size),
                &row.filename,
                &row.content_type,
                &row.note,
                &expiration_to_db(row.expiration),
                &row.metadata,
                &db_time(row.created),
                &db_time(row.expires),
            ],
        )
        .await?;
        if let Some(l) = &limits {
            super::limits::insert_limits(&tx, row.entry_id.as_str(), l).await?;
        }
        if let Some(slot) = &slot {
            // The slot is consumed here: if it was taken back meanwhile (see
            // `lease.rs`), another upload may have it, and this one must not count.
            if tx.execute(DELETE_SLOT, &[&slot.id()]).await? != 1 {
                return Err(StoreError::LeaseLost);
            }
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Looks up a resumable upload (its last recorded state).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn tus_upload(
        &self,
        id: &TusUploadId,
    ) -> Result<Option<TusUpload>, StoreError> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    upload_columns!(),
                    " FROM picoshare_tus_uploads WHERE id = $1"
                ),
                &[&id.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (upload, multipart) = from_row(&row)?;
        if !upload.completed && multipart.is_some() {
            // A server may have completed the object and stopped before
            // recording it: then the upload is complete (see `tus_open`).
            if let Some(done) = self.finish_if_stored(&upload, None).await? {
                return Ok(Some(done));
            }
        }
        Ok(Some(upload))
    }

    /// Starts writing to a resumable upload: takes its lease and returns its
    /// row and a sink continuing from its offset (none if it is complete).
    ///
    /// # Errors
    /// [`StoreError::Busy`] while another server's session holds the lease;
    /// PostgreSQL failures.
    pub(crate) async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<RemoteTusSink>)>, StoreError> {
        let lease = format!("{}:{}", self.inner.process, crate::ids::random_token(12));
        let client = self.pg().await?;
        // Sessions of this server may take over at once: within one server,
        // requests hand an upload over among themselves (http::uploads::tus).
        let taken = client
            .query_opt(
                &format!(
                    "UPDATE picoshare_tus_uploads
                     SET lease_owner = $2, lease_until = {}
                     WHERE id = $1 AND completed = 0
                       AND (lease_owner IS NULL OR lease_until < now() OR split_part(lease_owner, ':', 1) = $3)
                     RETURNING {}",
                    self.lease_until_sql(),
                    upload_columns!()
                ),
                &[&id.as_str(), &lease, &self.inner.process],
            )
            .await?;
        let Some(r) = taken else {
            let Some(upload) = self.tus_upload(id).await? else {
                return Ok(None);
            };
            if upload.completed {
                return Ok(Some((upload, None)));
            }
            return Err(StoreError::Busy);
        };
        let (upload, multipart) = from_row(&r)?;
        if multipart.is_some() {
            if let Some(done) = self.finish_if_stored(&upload, Some(&lease)).await? {
                return Ok(Some((done, None)));
            }
        }
        let part_size = usize::try_from(upload.chunk_size).unwrap_or(usize::MAX);
        Counters::add(&self.inner.counters.in_progress, 1);
        let sink = RemoteTusSink(PartSink {
            store: self.clone(),
            id: upload.entry_id.clone(),
            path: self.object_path(&upload.entry_id),
            pieces: Pieces::new(part_size, &upload.tail),
            bytes: upload.offset,
            multipart,
            next_part: usize::try_from(upload.offset / upload.chunk_size).unwrap_or(usize::MAX),
            parts: Vec::new(),
            inflight: std::collections::VecDeque::new(),
            registered: None,
            stored: false,
            slot: None,
            tus: Some(TusSession {
                upload_id: upload.id.clone(),
                lease,
                track,
                unrecorded: Vec::new(),
                renewed: Instant::now(),
                expires: db_time(upload.expires),
                length: upload.length,
            }),
            done: false,
        });
        Ok(Some((upload, Some(sink))))
    }

    /// Completes an upload whose object already holds all its bytes: the
    /// server that sent the multipart upload's completion stopped before it
    /// could record it (the entry row is written after the object exists).
    /// Returns the completed row, or `None` if the object is not there.
    async fn finish_if_stored(
        &self,
        upload: &TusUpload,
        lease: Option<&str>,
    ) -> Result<Option<TusUpload>, StoreError> {
        let path = self.object_path(&upload.entry_id);
        let meta = match self.s3_call(self.s3().head(&path)).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.size != upload.length {
            return Ok(None);
        }
        let entry = NewEntry {
            filename: upload.filename.clone(),
            content_type: upload.content_type.clone(),
            upload_time: Utc::now(),
            expiration: upload.expiration,
            note: upload.note.clone(),
            guest_link_id: upload.guest_link_id.clone(),
            // Stored with the upload's row when it was created.
            limits: None,
        };
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        // With a lease: only while it is ours. Without (a lookup): whoever
        // writes, the object is whole, so nothing they could add matters.
        let n = tx
            .execute(
                "UPDATE picoshare_tus_uploads
                 SET upload_offset = upload_length, tail = NULL, completed = 1,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND completed = 0 AND ($2::TEXT IS NULL OR lease_owner = $2)",
                &[&upload.id.as_str(), &lease],
            )
            .await?;
        if n == 0 {
            return match lease {
                Some(_) => Err(StoreError::Busy),
                None => Ok(None),
            };
        }
        tx.execute(DELETE_PARTS, &[&upload.id.as_str()]).await?;
        insert_entry(
            &tx,
            &upload.entry_id,
            &entry,
            upload.length,
            upload.chunk_size,
        )
        .await?;
        tx.commit().await?;
        self.hooks_written();
        tracing::info!(entry = %crate::ids::log_ref(upload.entry_id.as_str()), "recorded a resumable upload whose object was already complete");
        let mut done = upload.clone();
        done.offset = upload.length;
        done.completed = true;
        done.tail = Vec::new();
        Ok(Some(done))
    }

    /// Deletes a resumable upload and, unless it completed, its multipart
    /// upload. Returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError> {
        let key = {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM picoshare_tus_uploads WHERE id = $1
                     RETURNING id, entry_id, multipart_id, completed",
                    &[&id.as_str()],
                )
                .await?
            else {
                return Ok(false);
            };
            let key = self.forget_tus_upload(&tx, &row).await?;
            tx.commit().await?;
            key
        };
        self.drain_deletions(Some(key)).await;
        Ok(true)
    }
}

/// Deletes the list of upload `$1`'s parts.
pub(super) const DELETE_PARTS: &str = "DELETE FROM picoshare_tus_parts WHERE upload_id = $1";

/// Records stored parts (number, ETag) of `upload`, in the caller's
/// transaction; a part stored again replaces its earlier ETag.
pub(super) async fn insert_parts(
    tx: &tokio_postgres::Transaction<'_>,
    upload: &TusUploadId,
    parts: &[(i64, String)],
) -> Result<(), StoreError> {
    for (number, etag) in parts {
        tx.execute(
            "INSERT INTO picoshare_tus_parts (upload_id, part_number, etag) VALUES ($1, $2, $3)
             ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag",
            &[&upload.as_str(), number, etag],
        )
        .await?;
    }
    Ok(())
}

/// Every stored part of an upload in order, with the ones not yet recorded.
pub(super) async fn all_parts(
    store: &RemoteStore,
    upload: &TusUploadId,
    unrecorded: &[(i64, String)],
) -> Result<Vec<PartId>, StoreError> {
    let rows = store
        .query(
            "SELECT part_number, etag FROM picoshare_tus_parts WHERE upload_id = $1
             ORDER BY part_number",
            &[&upload.as_str()],
        )
        .await?;
    let mut parts: std::collections::BTreeMap<i64, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (n, etag) in unrecorded {
        parts.insert(*n, etag.clone());
    }
    // Part numbers must run 1..=n without a gap.
    for (expected, n) in (1..).zip(parts.keys()) {
        if *n != expected {
            return Err(StoreError::Corrupt(format!(
                "resumable upload {upload} is missing part {expected}"
            )));
        }
    }
    Ok(parts
        .into_values()
        .map(|content_id| PartId { content_id })
        .collect())
}

/// Gives up a session's lease (its recorded progress stays).
pub(super) async fn release_lease(store: &RemoteStore, t: &TusSession) {
    let result = async {
        store
            .execute(
                "UPDATE picoshare_tus_uploads SET lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[&t.upload_id.as_str(), &t.lease],
            )
            .await?;
        Ok::<_, StoreError>(())
    };
    if let Err(e) = result.await {
        // The lease runs out by itself.
        tracing::warn!(upload = %crate::ids::log_ref(t.upload_id.as_str()), error = %e, "could not release an upload's lease");
    }
}

impl RemoteTusSink {
    fn session(&self) -> Result<&TusSession, StoreError> {
        // Always there: a resumable sink is only made with its session.
        self.0
            .tus
            .as_ref()
            .ok_or_else(|| StoreError::Invariant("the upload's session is gone"))
    }

    /// The upload's offset: bytes stored before this session and received in it.
    pub(crate) fn bytes_received(&self) -> u64 {
        self.0.bytes
    }

    /// Appends bytes; sends each full part, waiting for the one before it.
    ///
    /// # Errors
    /// Object-storage or PostgreSQL failures; [`StoreError::Busy`] when the
    /// session lost its lease.
    pub(crate) async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.0.write(data).await
    }

    /// Ends the session: records the parts stored and the offset reached,
    /// keeps the bytes after the last full part as the row's tail, and gives
    /// up the lease.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Busy`] if the lease was lost.
    pub(crate) async fn save(mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self.save_inner(expires).await;
        self.0.finish_session();
        result
    }

    async fn save_inner(&mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.wait_inflight().await?;
        let t = self.session()?;
        let mut client = self.0.store.pg().await?;
        let tx = client.transaction().await?;
        let tail = self.0.pieces.rest().to_vec();
        let n = tx
            .execute(
                "UPDATE picoshare_tus_uploads
                 SET upload_offset = $3, tail = $4, expires_time = $5,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[
                    &t.upload_id.as_str(),
                    &t.lease,
                    &signed(self.0.bytes),
                    &tail,
                    &db_time(expires),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Busy);
        }
        insert_parts(&tx, &t.upload_id, &t.unrecorded).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Completes the upload, whose last byte has arrived: the last part,
    /// the object, then the entry row with the upload marked complete.
    ///
    /// # Errors
    /// Storage failures; the upload keeps its last recorded offset.
    pub(crate) async fn complete(
        mut self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self.complete_inner(&entry, expires).await;
        self.0.finish_session();
        result
    }

    async fn complete_inner(
        &mut self,
        entry: &NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.0.store_object().await?;
        let t = self.session()?;
        let mut client = self.0.store.pg().await?;
        let tx = client.transaction().await?;
        mark_complete(&tx, t, expires).await?;
        let sink = &self.0;
        insert_entry(&tx, &sink.id, entry, sink.bytes, sink.pieces.size() as u64).await?;
        tx.commit().await?;
        sink.store.hooks_written();
        Ok(())
    }

    /// Completes the upload as the new content of entry `target` (a
    /// resumable upload created to replace it): the last part, the object,
    /// then the switch (`replace.rs`) with the upload marked complete.
    ///
    /// # Errors
    /// Storage failures, the upload keeping its last recorded offset;
    /// [`StoreError::EntryGone`] if the entry was deleted: the upload is
    /// dropped and its object deleted.
    pub(crate) async fn complete_replace(
        mut self,
        target: EntryId,
        change: Replacement,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self.complete_replace_inner(&target, &change, expires).await;
        self.0.finish_session();
        result
    }

    async fn complete_replace_inner(
        &mut self,
        target: &EntryId,
        change: &Replacement,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.0.store_object().await?;
        let t = self.session()?;
        let store = self.0.store.clone();
        let mut client = store.pg().await?;
        let tx = client.transaction().await?;
        mark_complete(&tx, t, expires).await?;
        let sink = &self.0;
        let content = super::replace::Content {
            id: &sink.id,
            size: sink.bytes,
            part_size: sink.pieces.size() as u64,
        };
        if super::replace::switch_content(&store, &tx, &content, target, change).await? {
            tx.commit().await?;
            return Ok(());
        }
        // The entry is gone: so is the upload, its object queued.
        tx.rollback().await?;
        let key = store.object_key(sink.id.as_str());
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM picoshare_tus_uploads WHERE id = $1",
            &[&t.upload_id.as_str()],
        )
        .await?;
        tx.execute(DELETE_PARTS, &[&t.upload_id.as_str()]).await?;
        super::gc::queue_deletion(&tx, &key, "").await?;
        tx.commit().await?;
        store.drain_deletions(Some(key)).await;
        Err(StoreError::EntryGone)
    }

    /// Ends the session without recording anything it stored (a checksum
    /// mismatch): the upload keeps its previous offset. Parts it sent are
    /// overwritten when those bytes arrive again.
    pub(crate) async fn discard(mut self) {
        for (_, _, h) in self.0.inflight.drain(..) {
            h.abort();
        }
        if let Some(t) = self.0.tus.take() {
            release_lease(&self.0.store, &t).await;
        }
        self.0.finish_session();
    }
}

/// Marks the upload of session `t` complete (to be kept until `expires`)
/// and deletes its recorded parts, in `tx`, if its lease is still ours.
///
/// # Errors
/// [`StoreError::Busy`] when another request took the upload over;
/// PostgreSQL failures.
async fn mark_complete(
    tx: &tokio_postgres::Transaction<'_>,
    t: &TusSession,
    expires: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "UPDATE picoshare_tus_uploads
             SET upload_offset = upload_length, tail = NULL, completed = 1, expires_time = $3,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
            &[&t.upload_id.as_str(), &t.lease, &db_time(expires)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Busy);
    }
    tx.execute(DELETE_PARTS, &[&t.upload_id.as_str()]).await?;
    Ok(())
}
