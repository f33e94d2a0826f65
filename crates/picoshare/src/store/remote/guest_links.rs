//! Guest links on the scale-out store (`guest_links`), and the upload slots
//! of guest uploads in progress, kept as rows (`picoshare_guest_slots`)
//! because several server instances share a link.
//!
//! A slot row is held under the lease of the instance that took it (a
//! foreign key to its registration): when another instance takes that
//! lease back, the slot row is deleted with it (`lease.rs`). A slot is taken
//! under a lock on the link's row, after the leases that ran out are taken
//! back, counting the link's uploads ([`link_uploads!`]) and every slot row
//! left, so two instances can never both take the last one. It is deleted
//! in the transaction that inserts what counts in its place (the entry, or
//! the resumable upload's row), which fails if it is gone (taken back, and
//! maybe given to another upload), so no count ever sees both or neither.
//! Giving a slot back is retried until PostgreSQL answers.

use super::RemoteStore;
use crate::ids::GuestLinkId;
use crate::store::model::guest_links::{
    link_uploads, DELETE_GUEST_LINK, FORGET_GUEST_LINK, GUEST_LINK, GUEST_LINKS, INSERT_GUEST_LINK,
    SET_GUEST_LINK_DISABLED,
};
use crate::store::model::sql::{signed, unsigned};
use crate::store::model::time::{db_time, expiration_to_db};
use crate::store::model::{GuestLink, NewGuestLink};
use crate::store::StoreError;

/// Deletes slot `$1` (given back, or replaced by what counts in its place).
pub(super) const DELETE_SLOT: &str = "DELETE FROM picoshare_guest_slots WHERE id = $1";

impl RemoteStore {
    /// Creates a guest link with a new random ID.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_guest_link(
        &self,
        link: NewGuestLink,
    ) -> Result<GuestLinkId, StoreError> {
        let id = GuestLinkId::generate();
        self.execute(
            INSERT_GUEST_LINK.pg(),
            &[
                &id.as_str(),
                &link.label,
                &link.max_file_bytes.map(signed),
                &link.max_file_uploads.map(signed),
                &db_time(link.creation_time),
                &expiration_to_db(link.url_expiration),
                &link.file_lifetime.to_string(),
            ],
        )
        .await?;
        Ok(id)
    }

    /// Looks up a guest link, with its live upload count.
    ///
    /// # Errors
    /// PostgreSQL failures, or a row that cannot be read.
    pub(crate) async fn guest_link(
        &self,
        id: &GuestLinkId,
    ) -> Result<Option<GuestLink>, StoreError> {
        let row = self.query_opt(GUEST_LINK.pg(), &[&id.as_str()]).await?;
        row.as_ref().map(GuestLink::decode).transpose()
    }

    /// Every guest link, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures, or a row that cannot be read.
    pub(crate) async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError> {
        let rows = self.query(GUEST_LINKS.pg(), &[]).await?;
        rows.iter().map(GuestLink::decode).collect()
    }

    /// Deletes a guest link; files uploaded through it stay.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        tx.execute(FORGET_GUEST_LINK.pg(), &[&id.as_str()]).await?;
        tx.execute(DELETE_GUEST_LINK.pg(), &[&id.as_str()]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables or re-enables a guest link; returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn set_guest_link_disabled(
        &self,
        id: &GuestLinkId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                SET_GUEST_LINK_DISABLED.pg(),
                &[&id.as_str(), &i64::from(disabled)],
            )
            .await?;
        Ok(n > 0)
    }

    /// Takes one of a guest link's `max` upload slots: counts its files, its
    /// unfinished resumable uploads and the slots held under leases that
    /// were not taken back, under a lock on the link's row, so that two
    /// instances can never both take the last slot. `None` when all are taken.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<SlotLease>, StoreError> {
        let me = self.instance();
        match self.try_reserve_guest_slot(link, max, &me).await {
            // This instance's lease was taken back: once more under a new one.
            Err(StoreError::LeaseLost) => {
                self.reregister(&me).await?;
                self.try_reserve_guest_slot(link, max, &self.instance())
                    .await
            }
            other => other,
        }
    }

    /// [`RemoteStore::reserve_guest_slot`] under registration `me`.
    async fn try_reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
        me: &str,
    ) -> Result<Option<SlotLease>, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        // Every slot row left after this counts (see `lease.rs`).
        self.revoke_expired(&tx).await?;
        let locked = tx
            .query_opt(
                "SELECT 1 FROM guest_links WHERE id = $1 FOR UPDATE",
                &[&link.as_str()],
            )
            .await?;
        if locked.is_none() {
            return Ok(None);
        }
        // Counted once the lock is held, by a statement of its own: it then
        // sees what whoever held the lock before committed.
        let used: i64 = tx
            .query_one(
                concat!(
                    "SELECT ",
                    link_uploads!("$1"),
                    " + (SELECT count(*) FROM picoshare_guest_slots s WHERE s.guest_link_id = $1)"
                ),
                &[&link.as_str()],
            )
            .await?
            .get(0);
        if unsigned(used) >= max {
            return Ok(None);
        }
        let slot = crate::ids::random_token(16);
        tx.execute(
            "INSERT INTO picoshare_guest_slots (id, guest_link_id, instance_id, created)
             VALUES ($1, $2, $3, now())",
            &[&slot, &link.as_str(), &me],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(SlotLease {
            store: self.clone(),
            id: slot,
        }))
    }
}

/// A guest-link upload slot held in the database; dropping it gives it back.
pub(crate) struct SlotLease {
    store: RemoteStore,
    id: String,
}

impl SlotLease {
    /// The slot's row ID.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for SlotLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotLease").field("id", &self.id).finish()
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let id = std::mem::take(&mut self.id);
        // Nothing to delete if what counts in its place consumed it already.
        self.store
            .retry_until_done("give back a guest upload slot", move |store| {
                let id = id.clone();
                async move {
                    store.execute(DELETE_SLOT, &[&id]).await?;
                    Ok(())
                }
            });
    }
}
