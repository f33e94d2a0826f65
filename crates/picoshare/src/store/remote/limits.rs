//! Download limits and passwords on the scale-out store
//! (`picoshare_entry_limits`), and the server's keys (`picoshare_server_keys`).
//!
//! Downloads in progress are rows of `picoshare_download_reservations`, one
//! per entry and instance, held under the instance's lease (a foreign key to
//! its registration, so a lease taken back deletes them: `lease.rs`). A
//! reservation is decided and taken under a lock on the entry's limits row,
//! after the leases that ran out are taken back, counting every reservation
//! row left, so instances never hand out more downloads than remain between
//! them. A download is counted by decrementing its reservation in the
//! transaction that increments `downloads_used`, which fails if the
//! reservation was taken back (then its last byte is not sent). Giving a
//! reservation back is retried until PostgreSQL answers, so a download cut
//! during an outage never leaves its file "in progress" (409) for good.

use std::collections::HashMap;

use rand::RngCore;

use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::limits::{CHANGE_LIMITS, SERVER_KEY};
use crate::store::model::sql::{signed, unsigned, Row};
use crate::store::model::{Change, EntryLimits, NewLimits, Reservation};
use crate::store::StoreError;

/// Stores an entry's download limit and password (replacing any).
pub(super) async fn insert_limits(
    tx: &tokio_postgres::Transaction<'_>,
    entry_id: &str,
    l: &NewLimits,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO picoshare_entry_limits
            (entry_id, max_downloads, downloads_used, reserved, password_hash)
         VALUES ($1, $2, 0, 0, $3)
         ON CONFLICT (entry_id) DO UPDATE SET max_downloads = excluded.max_downloads,
            downloads_used = 0, reserved = 0, password_hash = excluded.password_hash",
        &[&entry_id, &l.max_downloads.map(signed), &l.password_hash],
    )
    .await?;
    Ok(())
}

/// Downloads in progress of an entry, under leases that have not run out.
fn live_reservations_sql(entry: &str) -> String {
    format!(
        "(SELECT coalesce(sum(r.count), 0)::BIGINT FROM picoshare_download_reservations r
            JOIN picoshare_instances i ON i.id = r.instance_id
          WHERE r.entry_id = {entry} AND i.lease_until > clock_timestamp())"
    )
}

impl RemoteStore {
    /// An entry's limits; `reserved` counts downloads in progress on live instances.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn entry_limits(
        &self,
        id: &EntryId,
    ) -> Result<Option<EntryLimits>, StoreError> {
        let row = self
            .query_opt(
                &format!(
                    "SELECT max_downloads, downloads_used, {}, password_hash
                     FROM picoshare_entry_limits l WHERE entry_id = $1",
                    live_reservations_sql("l.entry_id")
                ),
                &[&id.as_str()],
            )
            .await?;
        row.as_ref().map(EntryLimits::decode).transpose()
    }

    /// The limits of every entry that has any, by entry ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn all_limits(&self) -> Result<HashMap<String, EntryLimits>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT max_downloads, downloads_used, {}, password_hash, entry_id
                     FROM picoshare_entry_limits l",
                    live_reservations_sql("l.entry_id")
                ),
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.text(4)?, EntryLimits::decode(r)?)))
            .collect()
    }

    /// Changes an entry's download limit and password; returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn update_limits(
        &self,
        id: &EntryId,
        max_downloads: Change<u64>,
        password_hash: Change<String>,
    ) -> Result<bool, StoreError> {
        let (set_max, max) = max_downloads.assignment();
        let (set_hash, hash) = password_hash.assignment();
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let id = id.as_str();
        // Locked so that the entry cannot be deleted before the limits are
        // written, which would leave a limits row without its entry.
        if tx
            .query_opt("SELECT 1 FROM entries WHERE id = $1 FOR SHARE", &[&id])
            .await?
            .is_none()
        {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO picoshare_entry_limits (entry_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&id],
        )
        .await?;
        tx.execute(
            CHANGE_LIMITS.pg(),
            &[&id, &set_max, &max.map(signed), &set_hash, &hash],
        )
        .await?;
        tx.execute(
            "DELETE FROM picoshare_entry_limits WHERE entry_id = $1
                AND max_downloads IS NULL AND password_hash IS NULL
                AND NOT EXISTS (SELECT 1 FROM picoshare_download_reservations WHERE entry_id = $1)",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes one of an entry's remaining downloads for a full download about
    /// to start, under a lock on its limits row, so that instances never hand
    /// out more downloads than remain between them.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn reserve_download(&self, id: &EntryId) -> Result<Reservation, StoreError> {
        let me = self.instance();
        match self.try_reserve_download(id, &me).await {
            // This instance's lease was taken back: once more under a new one.
            Err(StoreError::LeaseLost) => {
                self.reregister(&me).await?;
                self.try_reserve_download(id, &self.instance()).await
            }
            other => other,
        }
    }

    /// [`RemoteStore::reserve_download`] under registration `me`.
    async fn try_reserve_download(
        &self,
        id: &EntryId,
        me: &str,
    ) -> Result<Reservation, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        // Every reservation row left after this counts (see `lease.rs`).
        self.revoke_expired(&tx).await?;
        let Some(row) = tx
            .query_opt(
                "SELECT max_downloads, downloads_used, 0::BIGINT, password_hash
                 FROM picoshare_entry_limits WHERE entry_id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await?
        else {
            return Ok(Reservation::Unlimited);
        };
        let mut limits = EntryLimits::decode(&row)?;
        // Counted once the lock is held, by a statement of its own: it then
        // sees the reservations of whoever held the lock before.
        let reserved = tx
            .query_one(
                "SELECT coalesce(sum(count), 0)::BIGINT FROM picoshare_download_reservations
                 WHERE entry_id = $1",
                &[&id.as_str()],
            )
            .await?;
        limits.reserved = unsigned(reserved.int(0)?);
        let decision = limits.reservation();
        if decision != Reservation::Reserved {
            return Ok(decision);
        }
        tx.execute(
            "INSERT INTO picoshare_download_reservations (entry_id, instance_id, count)
             VALUES ($1, $2, 1)
             ON CONFLICT (entry_id, instance_id)
             DO UPDATE SET count = picoshare_download_reservations.count + 1",
            &[&id.as_str(), &me],
        )
        .await?;
        tx.commit().await?;
        Ok(decision)
    }

    /// Turns a reserved download into a used one; committed (PostgreSQL
    /// commits are durable) before this returns.
    ///
    /// The reservation used is one of this instance's current registration
    /// for the entry: if its lease was taken back meanwhile, the download's
    /// reservation went with it (and may have been given to another
    /// download), and this fails.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when this instance holds no reservation of
    /// the entry any more; PostgreSQL failures.
    pub(crate) async fn count_download(&self, id: &EntryId) -> Result<(), StoreError> {
        self.end_reservation(id, true).await
    }

    /// Releases a reserved download; retried in the background until
    /// PostgreSQL answers.
    pub(crate) fn release_download(&self, id: &EntryId) {
        let id = id.clone();
        self.retry_until_done("release a limited download", move |store| {
            let id = id.clone();
            async move {
                match store.end_reservation(&id, false).await {
                    // Taken back with the lease: nothing left to release.
                    Err(StoreError::LeaseLost) => Ok(()),
                    other => other,
                }
            }
        });
    }

    /// Ends one of this instance's reservations of `id`: with `used`, it
    /// becomes a used download. [`StoreError::LeaseLost`] (and nothing
    /// changed) if this instance holds none.
    async fn end_reservation(&self, id: &EntryId, used: bool) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let me = self.instance();
        // This instance's registration, held until the commit so that it
        // cannot be taken back half-way (see `lease.rs`); gone: so are its
        // reservations.
        if tx
            .query_opt(
                "SELECT 1 FROM picoshare_instances WHERE id = $1 FOR KEY SHARE",
                &[&me],
            )
            .await?
            .is_none()
        {
            return Err(StoreError::LeaseLost);
        }
        // The limits row first, as `reserve_download` and
        // `delete_entry_rows` lock it, then the reservation: locking them
        // in the other order deadlocks against a reservation of the same
        // entry on this instance.
        tx.execute(
            "SELECT 1 FROM picoshare_entry_limits WHERE entry_id = $1 FOR UPDATE",
            &[&id.as_str()],
        )
        .await?;
        let held = tx
            .execute(
                "UPDATE picoshare_download_reservations SET count = count - 1
                 WHERE entry_id = $1 AND instance_id = $2 AND count >= 1",
                &[&id.as_str(), &me],
            )
            .await?;
        if held != 1 {
            return Err(StoreError::LeaseLost);
        }
        tx.execute(
            "DELETE FROM picoshare_download_reservations
             WHERE entry_id = $1 AND instance_id = $2 AND count <= 0",
            &[&id.as_str(), &me],
        )
        .await?;
        if used {
            tx.execute(
                "UPDATE picoshare_entry_limits SET downloads_used = downloads_used + 1
                 WHERE entry_id = $1",
                &[&id.as_str()],
            )
            .await?;
            super::hooks::download_counted(&tx, id).await?;
        }
        tx.commit().await?;
        if used {
            self.hooks_written();
        }
        Ok(())
    }

    /// The server's key called `name`, created on first use; instances
    /// starting together agree on one.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn server_key(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let client = self.pg().await?;
        client
            .execute(
                "INSERT INTO picoshare_server_keys (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )
            .await?;
        let row = client.query_one(SERVER_KEY.pg(), &[&name]).await?;
        Ok(row.get(0))
    }
}
