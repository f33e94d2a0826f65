//! Garbage collection on the scale-out store, and the deletion of objects.
//!
//! Objects are deleted through a queue (`picoshare_deleted_objects`): an
//! entry's object, or an abandoned multipart upload, is queued in the
//! transaction that deletes what refers to it, deleted right after, and
//! retried by every instance's upkeep (every half lease, `lease.rs`) and
//! every collection, so neither a crash nor an outage of the bucket leaves
//! an object that nothing refers to for good.
//!
//! An upload's object is queued only by whoever deletes its row in
//! `picoshare_pending_uploads` (its claim on the object): the instance that
//! abandons it, or one that took back its instance's lease. The entry is
//! inserted in the transaction that deletes that same row, so an object is
//! never both queued for deletion and recorded as a file.
//!
//! Multipart uploads that no row knows of (an instance that died between
//! starting one and recording its ID, a moment) are left to the bucket's
//! lifecycle rule for incomplete multipart uploads (see the README).

use chrono::{DateTime, Utc};
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::limits::DELETE_LIMITS;
use crate::store::model::time::db_time;
use crate::store::model::GcOutcome;
use crate::store::StoreError;

impl RemoteStore {
    /// Deletes queued objects (only `only` if given), and their queue rows;
    /// a replaced content waits for its `not_before` (`replace.rs`).
    /// Failures are logged; the queue keeps them for the next collection.
    /// Returns how many were deleted.
    pub(super) async fn drain_deletions(&self, only: Option<String>) -> u64 {
        let rows = async {
            let client = self.pg().await?;
            let rows = match &only {
                Some(k) => client
                    .query(
                        "SELECT key, multipart_id FROM picoshare_deleted_objects
                         WHERE key = $1 AND (not_before IS NULL OR not_before <= clock_timestamp())",
                        &[k],
                    )
                    .await?,
                None => {
                    client
                        .query(
                            "SELECT key, multipart_id FROM picoshare_deleted_objects
                             WHERE not_before IS NULL OR not_before <= clock_timestamp()
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
                self.s3_call(self.s3().delete(&path)).await
            } else {
                self.s3_call(self.s3().abort_multipart(&path, &multipart))
                    .await
            };
            match result {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(key, error = %e, "could not delete an object; will retry");
                    continue;
                }
            }
            let forget = async {
                self.execute(
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
    pub(crate) async fn collect_garbage(
        &self,
        now: DateTime<Utc>,
    ) -> Result<GcOutcome, StoreError> {
        let now_text = db_time(now);
        let mut outcome = GcOutcome::default();
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            super::hooks::expiring(&tx, now).await?;
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
                let content = super::entries::delete_entry_rows(&tx, &id).await?;
                queue_deletion(&tx, &self.object_key(&content), "").await?;
                outcome.expired_entries += 1;
            }
            let uploads = tx
                .query(
                    "DELETE FROM picoshare_tus_uploads WHERE id IN (SELECT id FROM picoshare_tus_uploads
                        WHERE expires_time < $1 FOR UPDATE SKIP LOCKED)
                     RETURNING id, entry_id, multipart_id, completed",
                    &[&now_text],
                )
                .await?;
            for row in &uploads {
                self.forget_tus_upload(&tx, row).await?;
                outcome.expired_uploads += 1;
            }
            // Uploads of instances that stopped (crashed) before finishing
            // them: their leases are taken back first.
            self.revoke_expired(&tx).await?;
            outcome.orphan_chunks += self.queue_orphaned_uploads(&tx).await? as u64;
            tx.commit().await?;
            self.hooks_written();
        }
        self.drain_deletions(None).await;
        Ok(outcome)
    }

    /// Aborts this instance's uploads that are still registered (at shutdown,
    /// once no request runs: their sinks' own clean-up may not have run).
    pub(super) async fn abandon_own_uploads(&self) -> Result<(), StoreError> {
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
                self.queue_abandoned(&tx, row, None).await?;
            }
            tx.commit().await?;
            if rows.is_empty() {
                return Ok(());
            }
        }
        self.drain_deletions(None).await;
        Ok(())
    }

    /// Queues what an abandoned upload (a row `entry_id, multipart_id` of
    /// `picoshare_pending_uploads`, just deleted) may have stored: its
    /// multipart upload (and `also`, one its instance started but could not
    /// record), and its object (complete if the entry could not be
    /// recorded; a small upload stores it in one PUT).
    pub(super) async fn queue_abandoned(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        row: &tokio_postgres::Row,
        also: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = self.object_key(row.try_get(0)?);
        let recorded = row.try_get::<_, Option<&str>>(1)?;
        for m in [recorded, also].into_iter().flatten() {
            queue_deletion(tx, &key, m).await?;
        }
        queue_deletion(tx, &key, "").await
    }

    /// Abandons this instance's upload of `id`, registered under
    /// `instance`: deletes its claim and queues what it may have stored
    /// (`multipart`: its multipart upload, if it started one), then tries
    /// the deletions. Nothing if the claim is gone: the entry was committed,
    /// or another instance took the claim back and queued the object.
    ///
    /// # Errors
    /// PostgreSQL failures (the caller retries).
    pub(super) async fn abandon_upload(
        &self,
        id: &EntryId,
        instance: &str,
        multipart: Option<&str>,
    ) -> Result<(), StoreError> {
        {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1 AND instance_id = $2
                     RETURNING entry_id, multipart_id",
                    &[&id.as_str(), &instance],
                )
                .await?
            else {
                return Ok(());
            };
            self.queue_abandoned(&tx, &row, multipart).await?;
            tx.commit().await?;
        }
        self.drain_deletions(Some(self.object_key(id.as_str())))
            .await;
        Ok(())
    }

    /// Deletes what hangs off a resumable upload whose row was just deleted
    /// (`RETURNING id, entry_id, multipart_id, completed`), in the caller's
    /// transaction: its parts and, unless it completed, its entry-to-be's
    /// limits, with its multipart upload queued for deletion. Returns the
    /// object's key.
    pub(super) async fn forget_tus_upload(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        row: &tokio_postgres::Row,
    ) -> Result<String, StoreError> {
        let id: &str = row.try_get(0)?;
        let entry_id: &str = row.try_get(1)?;
        let multipart: Option<&str> = row.try_get(2)?;
        let completed: i64 = row.try_get(3)?;
        tx.execute(super::tus::DELETE_PARTS, &[&id]).await?;
        let key = self.object_key(entry_id);
        if completed == 0 {
            tx.execute(DELETE_LIMITS.pg(), &[&entry_id]).await?;
            if let Some(m) = multipart {
                queue_deletion(tx, &key, m).await?;
            }
        }
        Ok(key)
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
