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
//! request takes over at once (see `http::tus`); across servers it gets 423
//! Locked until the old session's lease runs out.

use std::time::Instant;

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use object_store::multipart::PartId;
use object_store::ObjectStore;

use super::data::{insert_entry, queue_deletion, RemoteSink, TusSession};
use super::RemoteStore;
use crate::ids::{EntryId, TusUploadId};
use crate::store::stats::Counters;
use crate::store::tus::{NewTusUpload, TusUpload};
use crate::store::{db_time_to_utc, expiration_from_db, expiration_to_db, NewEntry, StoreError};
use crate::validate::db_time;

const SELECT: &str = "SELECT id, entry_id, guest_link_id, upload_length, upload_offset, chunk_size,
        tail, filename, content_type, note, expiration_time, metadata, created_time,
        expires_time, completed, multipart_id
    FROM picoshare_tus_uploads";

fn from_row(r: &tokio_postgres::Row) -> Result<(TusUpload, Option<String>), StoreError> {
    let id: String = r.get(0);
    let entry_id: String = r.get(1);
    let (Ok(id), Ok(entry_id)) = (TusUploadId::parse(&id), EntryId::parse(&entry_id)) else {
        return Err(StoreError::Corrupt(format!(
            "resumable upload {id:?} has a malformed ID"
        )));
    };
    let int = |i| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
    Ok((
        TusUpload {
            id,
            entry_id,
            guest_link_id: r.get(2),
            length: int(3),
            offset: int(4),
            chunk_size: int(5).max(1),
            tail: r.get::<_, Option<Vec<u8>>>(6).unwrap_or_default(),
            filename: r.get(7),
            content_type: r.get(8),
            note: r.get(9),
            expiration: expiration_from_db(r.get(10)),
            metadata: r.get(11),
            created: db_time_to_utc(&r.get::<_, String>(12)),
            expires: db_time_to_utc(&r.get::<_, String>(13)),
            completed: r.get::<_, i64>(14) != 0,
        },
        r.get(15),
    ))
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl RemoteStore {
    /// Creates a resumable upload. Durable when it returns.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn tus_create(&self, new: NewTusUpload) -> Result<TusUpload, StoreError> {
        let row = TusUpload {
            id: TusUploadId::generate(),
            entry_id: EntryId::generate(),
            guest_link_id: new.guest_link_id.map(|g| g.as_str().to_owned()),
            length: new.length,
            offset: 0,
            chunk_size: self.part_size_for(Some(new.length)) as u64,
            tail: Vec::new(),
            filename: new.filename,
            content_type: new.content_type,
            note: new.note,
            expiration: new.expiration,
            metadata: new.metadata,
            created: new.created,
            expires: new.expires,
            completed: false,
        };
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO picoshare_tus_uploads (id, entry_id, guest_link_id, upload_length,
                upload_offset, chunk_size, tail, filename, content_type, note, expiration_time,
                metadata, created_time, expires_time, completed)
             VALUES ($1, $2, $3, $4, 0, $5, NULL, $6, $7, $8, $9, $10, $11, $12, 0)",
            &[
                &row.id.as_str(),
                &row.entry_id.as_str(),
                &row.guest_link_id,
                &big(row.length),
                &big(row.chunk_size),
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
        if let Some(l) = &new.limits {
            super::meta::insert_limits(&tx, row.entry_id.as_str(), l).await?;
        }
        if let Some(slot) = &new.guest_slot {
            // The row now counts as one of the link's uploads.
            tx.execute("DELETE FROM picoshare_guest_slots WHERE id = $1", &[slot])
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Looks up a resumable upload (its last recorded state).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn tus_upload(&self, id: &TusUploadId) -> Result<Option<TusUpload>, StoreError> {
        let row = self
            .pg()
            .await?
            .query_opt(&format!("{SELECT} WHERE id = $1"), &[&id.as_str()])
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
    pub async fn tus_open(
        &self,
        id: &TusUploadId,
        track: bool,
    ) -> Result<Option<(TusUpload, Option<RemoteSink>)>, StoreError> {
        let lease = format!("{}:{}", self.instance(), crate::ids::random_token(12));
        let client = self.pg().await?;
        // Sessions of this server may take over at once: within one server,
        // requests hand an upload over among themselves (http::tus).
        let taken = client
            .query_opt(
                &format!(
                    "UPDATE picoshare_tus_uploads
                     SET lease_owner = $2, lease_until = {}
                     WHERE id = $1 AND completed = 0
                       AND (lease_owner IS NULL OR lease_until < now() OR split_part(lease_owner, ':', 1) = $3)
                     RETURNING {}",
                    self.lease_until_sql(),
                    SELECT
                        .trim_start_matches("SELECT ")
                        .trim_end_matches("FROM picoshare_tus_uploads")
                        .trim()
                ),
                &[&id.as_str(), &lease, &self.instance()],
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
        let mut buf = BytesMut::with_capacity(part_size);
        buf.extend_from_slice(&upload.tail);
        Counters::add(&self.inner.counters.in_progress, 1);
        let sink = RemoteSink {
            store: self.clone(),
            id: upload.entry_id.clone(),
            path: self.object_path(&upload.entry_id),
            part_size,
            buf,
            bytes: upload.offset,
            multipart,
            next_part: usize::try_from(upload.offset / upload.chunk_size).unwrap_or(usize::MAX),
            parts: Vec::new(),
            inflight: std::collections::VecDeque::new(),
            registered: false,
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
        };
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
        let meta = match self.s3().head(&path).await {
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
        tx.execute(
            "DELETE FROM picoshare_tus_parts WHERE upload_id = $1",
            &[&upload.id.as_str()],
        )
        .await?;
        insert_entry(
            &tx,
            &upload.entry_id,
            &entry,
            upload.length,
            upload.chunk_size,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(entry_id = %upload.entry_id, "recorded a resumable upload whose object was already complete");
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
    pub async fn tus_terminate(&self, id: &TusUploadId) -> Result<bool, StoreError> {
        let key;
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM picoshare_tus_uploads WHERE id = $1
                     RETURNING entry_id, multipart_id, completed",
                    &[&id.as_str()],
                )
                .await?
            else {
                return Ok(false);
            };
            tx.execute(
                "DELETE FROM picoshare_tus_parts WHERE upload_id = $1",
                &[&id.as_str()],
            )
            .await?;
            let entry_id: String = row.get(0);
            let multipart: Option<String> = row.get(1);
            let completed: i64 = row.get(2);
            key = format!("{}entries/{entry_id}", self.inner.cfg.s3.prefix);
            if completed == 0 {
                tx.execute(
                    "DELETE FROM picoshare_entry_limits WHERE entry_id = $1",
                    &[&entry_id],
                )
                .await?;
                if let Some(m) = multipart {
                    queue_deletion(&tx, &key, &m).await?;
                }
            }
            tx.commit().await?;
        }
        self.drain_deletions(Some(key)).await;
        Ok(true)
    }
}

/// Every stored part of an upload in order, with the ones not yet recorded.
pub(super) async fn all_parts(
    store: &RemoteStore,
    upload: &TusUploadId,
    unrecorded: &[(i64, String)],
) -> Result<Vec<PartId>, StoreError> {
    let rows = store
        .pg()
        .await?
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
            .pg()
            .await?
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
        tracing::warn!(upload_id = %t.upload_id, error = %e, "could not release an upload's lease");
    }
}

impl RemoteSink {
    fn session(&self) -> Result<&TusSession, StoreError> {
        self.tus
            .as_ref()
            .ok_or_else(|| StoreError::Task("not a resumable upload".into()))
    }

    /// Ends a resumable upload's session: records the parts stored and the
    /// offset reached, keeps the bytes after the last full part as the
    /// row's tail, and gives up the lease.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Busy`] if the lease was lost.
    pub async fn tus_save(mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let result = self.save_inner(expires).await;
        self.finish_session();
        result
    }

    async fn save_inner(&mut self, expires: DateTime<Utc>) -> Result<(), StoreError> {
        self.wait_inflight().await?;
        let t = self.session()?;
        let mut client = self.store.pg().await?;
        let tx = client.transaction().await?;
        let tail = self.buf.to_vec();
        let n = tx
            .execute(
                "UPDATE picoshare_tus_uploads
                 SET upload_offset = $3, tail = $4, expires_time = $5,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
                &[
                    &t.upload_id.as_str(),
                    &t.lease,
                    &big(self.bytes),
                    &tail,
                    &db_time(expires),
                ],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::Busy);
        }
        for (number, etag) in &t.unrecorded {
            tx.execute(
                "INSERT INTO picoshare_tus_parts (upload_id, part_number, etag) VALUES ($1, $2, $3)
                 ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag",
                &[&t.upload_id.as_str(), number, etag],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Completes a resumable upload whose last byte has arrived: the last
    /// part, the object, then the entry row with the upload marked complete.
    ///
    /// # Errors
    /// Storage failures; the upload keeps its last recorded offset.
    pub async fn tus_complete(
        mut self,
        entry: NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self.complete_inner(&entry, expires).await;
        self.finish_session();
        result
    }

    async fn complete_inner(
        &mut self,
        entry: &NewEntry,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store_object().await?;
        let t = self.session()?;
        let mut client = self.store.pg().await?;
        let tx = client.transaction().await?;
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
        tx.execute(
            "DELETE FROM picoshare_tus_parts WHERE upload_id = $1",
            &[&t.upload_id.as_str()],
        )
        .await?;
        insert_entry(&tx, &self.id, entry, self.bytes, self.part_size as u64).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a resumable upload's session without recording anything it
    /// stored (a checksum mismatch): the upload keeps its previous offset.
    /// Parts it sent are overwritten when those bytes arrive again.
    pub async fn tus_discard(mut self) {
        for (_, _, h) in self.inflight.drain(..) {
            h.abort();
        }
        if let Some(t) = self.tus.take() {
            release_lease(&self.store, &t).await;
        }
        self.finish_session();
    }

    fn finish_session(&mut self) {
        if !self.done {
            self.done = true;
            Counters::add(&self.store.inner.counters.in_progress, u64::MAX);
        }
    }
}
