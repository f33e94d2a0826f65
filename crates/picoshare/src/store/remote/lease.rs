//! Instance leases: how the scale-out store fences a server instance that
//! is alive but stalled (a paused VM, a long GC pause, a slow or cut
//! database link), and retries what must eventually happen.
//!
//! # Why heartbeats are not enough
//!
//! An instance holds things in PostgreSQL: guest-link upload slots, download
//! reservations, uploads in progress (`picoshare_pending_uploads`). If it
//! crashes, the others must take them back, so they can only ever tell a
//! dead instance by its silence; but a stalled instance is silent too, and
//! wakes up still believing it holds what the others took back. Deciding by
//! the age of its heartbeat alone let both sides act: a collected upload
//! was acknowledged with its object deleted, a one-shot file was served
//! twice, a guest link got more uploads than its limit.
//!
//! # The lease, and how it fences
//!
//! Each instance registers under a random ID in `picoshare_instances` with a
//! lease (`lease_until`, `PS_INSTANCE_LEASE_SECS` ahead, renewed six times
//! per period). What it holds are rows that name it: slot and reservation
//! rows reference its row (a foreign key, `ON DELETE CASCADE`), pending
//! upload rows carry its ID. The rules:
//!
//! 1. **Only a row's deletion takes a lease back.** Another instance that
//!    finds a lease run out *deletes* the instance row (its slots and
//!    reservations go with it) and queues the object of each of its pending
//!    uploads for deletion, in one transaction ([`RemoteStore::revoke_expired`],
//!    [`RemoteStore::queue_orphaned_uploads`]). Time only says *when* this may
//!    happen; whether something was taken back is a fact in the database.
//! 2. **A lease, once taken back, never comes back.** Renewing is an
//!    `UPDATE` of the instance's own row, so it fails once the row is gone;
//!    the instance then registers again under a new ID, and everything held
//!    under the old one is lost to it for good.
//! 3. **Every commit that depends on something held consumes the row that
//!    holds it, in the commit's own transaction, and fails if the row is
//!    gone** ([`StoreError::LeaseLost`]): an upload's entry is inserted in
//!    the transaction that deletes its pending row; a guest upload's entry
//!    (or resumable upload) in the one that deletes its slot row; a used
//!    download is counted in the one that decrements its reservation row.
//!    Row locks decide between such a commit and a revocation: exactly one
//!    of them finds the row, so garbage collection and a commit can never
//!    both win, and an instance whose lease was taken back answers an
//!    error, never a 200.
//! 4. **Counts revoke first.** A slot or reservation is decided in a
//!    transaction that first takes back every lease that ran out, then
//!    counts every remaining row: what a count leaves out has been taken
//!    back, and cannot be used any more (rule 3). New rows are inserted
//!    under the foreign key, so an instance cannot take anything under a
//!    lease it lost (the insert fails, and the request is tried once more
//!    under a new registration).
//!
//! So correctness never depends on clocks or timing: a stall of any length
//! costs at most the work the stalled instance had in flight (its uploads
//! fail with a 503, its downloads are cut before their last byte), never an
//! acknowledged file or a limit. A PostgreSQL restart is not a stall: a
//! lease is not taken back until a full lease period after the database
//! started (`pg_postmaster_start_time()`), which gives every instance time
//! to renew first.
//!
//! # Clean-ups that must happen
//!
//! Giving back a download reservation or a guest slot, and abandoning an
//! upload, are retried in the background until they succeed (or the store
//! stops, when the lease's end takes care of them):
//! [`RemoteStore::retry_until_done`]. Every instance also runs the
//! revocation and drains the object deletion queue every half lease, so a
//! crashed instance's multipart uploads are aborted within about a lease,
//! without waiting for garbage collection.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RemoteStore;
use crate::store::StoreError;

/// Statements that use the lease's length take it as `$1`, in seconds.
const LEASE: &str = "make_interval(secs => $1::BIGINT)";

impl RemoteStore {
    /// This instance's current registration (the fencing token of
    /// everything it takes from now on).
    pub(super) fn instance(&self) -> String {
        self.inner
            .instance
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The lease's length in seconds, as a statement parameter.
    pub(super) fn lease_secs(&self) -> i64 {
        i64::try_from(self.inner.cfg.instance_lease_secs).unwrap_or(i64::MAX)
    }

    /// Registers `id` with a fresh lease.
    async fn insert_instance(&self, id: &str) -> Result<(), StoreError> {
        self.execute(
            &format!(
                "INSERT INTO picoshare_instances (id, started, heartbeat, lease_until)
                 VALUES ($2, now(), now(), clock_timestamp() + {LEASE})"
            ),
            &[&self.lease_secs(), &id],
        )
        .await?;
        Ok(())
    }

    /// Registers this instance (at start-up).
    pub(super) async fn register(&self) -> Result<(), StoreError> {
        self.insert_instance(&self.instance()).await
    }

    /// Registers this instance again under a new ID after it found that
    /// `lost`, its registration, was taken back; nothing if another request
    /// already did.
    pub(super) async fn reregister(&self, lost: &str) -> Result<(), StoreError> {
        let _one = self.inner.reregistering.lock().await;
        if self.instance() != lost {
            return Ok(());
        }
        let fresh = crate::ids::random_token(16);
        self.insert_instance(&fresh).await?;
        *self
            .inner
            .instance
            .write()
            .unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        tracing::warn!(
            lost,
            instance = %fresh,
            "this server's lease was taken back by another instance (it was stopped, \
             paused or cut off from PostgreSQL for longer than PS_INSTANCE_LEASE_SECS): \
             what it held is lost, and it continues under a new registration"
        );
        Ok(())
    }

    /// Renews this instance's lease; registers it again if it was taken back.
    async fn renew(&self) -> Result<(), StoreError> {
        let me = self.instance();
        let n = self
            .execute(
                &format!(
                    "UPDATE picoshare_instances
                     SET heartbeat = now(), lease_until = clock_timestamp() + {LEASE}
                     WHERE id = $2"
                ),
                &[&self.lease_secs(), &me],
            )
            .await?;
        if n == 0 {
            self.reregister(&me).await?;
        }
        // The replaced objects this instance's downloads still read. A
        // failure is retried at the next renewal, well within the lease.
        if let Err(e) = self.renew_holds(self.lease_secs()).await {
            tracing::warn!(error = %e, "could not postpone the deletion of replaced files' old contents still being downloaded");
        }
        Ok(())
    }

    /// Takes back the leases that ran out, in the caller's transaction:
    /// deletes those instances' rows, and with them (`ON DELETE CASCADE`)
    /// their guest slots and download reservations. Their pending uploads
    /// are left to [`RemoteStore::queue_orphaned_uploads`]. A lease is not
    /// taken back within a lease period of PostgreSQL's start, so that a
    /// database restart does not cost every instance its lease. Returns how
    /// many were taken back.
    pub(super) async fn revoke_expired(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<usize, StoreError> {
        let gone = tx
            .query(
                &format!(
                    "DELETE FROM picoshare_instances
                     WHERE greatest(lease_until, pg_postmaster_start_time() + {LEASE})
                           < clock_timestamp()
                     RETURNING id, (clock_timestamp() - heartbeat)::TEXT"
                ),
                &[&self.lease_secs()],
            )
            .await?;
        for row in &gone {
            let id: &str = row.get(0);
            let silent: &str = row.get(1);
            tracing::warn!(
                instance = id,
                silent,
                "took back the lease of an instance that stopped renewing it (crashed, \
                 stopped, paused or cut off): its upload slots, download reservations \
                 and uploads in progress are released"
            );
        }
        Ok(gone.len())
    }

    /// Queues for deletion what the uploads in progress of instances that
    /// no longer exist may have stored, in the caller's transaction, and
    /// deletes their rows. Returns how many there were.
    pub(super) async fn queue_orphaned_uploads(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<usize, StoreError> {
        let orphans = tx
            .query(
                "DELETE FROM picoshare_pending_uploads p
                 WHERE NOT EXISTS (SELECT 1 FROM picoshare_instances i WHERE i.id = p.instance_id)
                 RETURNING entry_id, multipart_id",
                &[],
            )
            .await?;
        for row in &orphans {
            self.queue_abandoned(tx, row, None).await?;
        }
        Ok(orphans.len())
    }

    /// Takes back leases that ran out and queues their uploads, in a
    /// transaction of its own. Returns how many uploads were queued.
    pub(super) async fn reclaim(&self) -> Result<usize, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        self.revoke_expired(&tx).await?;
        let queued = self.queue_orphaned_uploads(&tx).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// One round of upkeep: the lease taken back from instances that
    /// stopped renewing theirs, their uploads queued, the object deletion
    /// queue drained.
    async fn upkeep(&self) -> Result<(), StoreError> {
        self.reclaim().await?;
        self.drain_deletions(None).await;
        // Destinations changed through another instance, and events left by
        // an instance that stopped, are seen here at the latest.
        self.refresh_hooks().await?;
        Ok(())
    }

    /// Starts the task that renews this instance's lease (six times per
    /// period) and runs the upkeep (every half period), until the store stops.
    pub(super) fn start_lease_task(&self) {
        let weak = Arc::downgrade(&self.inner);
        let period = Duration::from_secs(self.inner.cfg.instance_lease_secs);
        let handle = tokio::spawn(async move {
            let mut last_renewal = Instant::now();
            let mut beats = 0u64;
            let mut warned = false;
            loop {
                tokio::time::sleep(period / 6).await;
                let Some(inner) = weak.upgrade() else { return };
                let s = RemoteStore { inner };
                if s.inner.stopping.load(Ordering::Relaxed) {
                    return;
                }
                match s.renew().await {
                    Ok(()) => {
                        if warned {
                            tracing::info!("this server renews its lease again");
                        }
                        last_renewal = Instant::now();
                        warned = false;
                    }
                    Err(e) if !warned => {
                        tracing::warn!(error = %e, "could not renew this server's lease; retrying");
                        warned = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, since = ?last_renewal.elapsed(), "could not renew this server's lease");
                    }
                }
                beats += 1;
                if beats % 3 == 0 {
                    if let Err(e) = s.upkeep().await {
                        tracing::debug!(error = %e, "upkeep failed; will run again");
                    }
                }
            }
        });
        *self
            .inner
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    /// Runs `job` on a task of its own until it succeeds, waiting a little
    /// longer after each failure (up to 5 s); the first failure is logged
    /// ("could not {what}"). Stops trying when the store stops: then the
    /// end of this instance's registration releases what the job would have.
    pub(super) fn retry_until_done<F, Fut>(&self, what: &'static str, job: F)
    where
        F: Fn(RemoteStore) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let store = self.clone();
        let run = async move {
            let mut wait = Duration::from_millis(200);
            let mut failures = 0u32;
            loop {
                match job(store.clone()).await {
                    Ok(()) => {
                        if failures > 0 {
                            tracing::info!(attempts = failures + 1, "{what}: done");
                        }
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            tracing::warn!(error = %e, "could not {what}; retrying until it succeeds");
                        }
                        if store.inner.stopping.load(Ordering::Relaxed) {
                            tracing::warn!("could not {what} before stopping");
                            return;
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
        };
        self.spawn_background(what, async move {
            run.await;
            Ok(())
        });
    }

    /// Runs `job` in the background (failures are logged); shutdown waits
    /// for it.
    pub(super) fn spawn_background<Fut>(&self, what: &'static str, job: Fut)
    where
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        crate::store::detached(what, job, Some(&self.inner.background));
    }
}
