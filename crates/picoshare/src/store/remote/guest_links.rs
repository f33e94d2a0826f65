//! Guest links on the scale-out store (`guest_links`), and the upload slots
//! of guest uploads in progress, kept as rows (`picoshare_guest_slots`)
//! because several server instances share a link.
//!
//! A slot row belongs to the instance that took it; the rows of an instance
//! whose heartbeat stopped no longer count. A slot is taken under a lock on
//! the link's row, counting the link's uploads ([`link_uploads!`]) and the
//! live slots, so two instances can never both take the last one. It is
//! deleted in the transaction that inserts what counts in its place (the
//! entry, or the resumable upload's row), so no count ever sees both.

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
    /// unfinished resumable uploads and the slots held by live instances,
    /// under a lock on the link's row, so that two instances can never both
    /// take the last slot. `None` when all are taken.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<SlotLease>, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let locked = tx
            .query_opt(
                "SELECT 1 FROM guest_links WHERE id = $1 FOR UPDATE",
                &[&link.as_str()],
            )
            .await?;
        if locked.is_none() {
            return Ok(None);
        }
        let used: i64 = tx
            .query_one(
                &format!(
                    concat!(
                        "SELECT ",
                        link_uploads!("$1"),
                        " + (SELECT count(*) FROM picoshare_guest_slots s
                            JOIN picoshare_instances i ON i.id = s.instance_id
                            WHERE s.guest_link_id = $1
                              AND i.heartbeat > now() - {timeout})"
                    ),
                    timeout = self.instance_timeout_sql()
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
            &[&slot, &link.as_str(), &self.instance()],
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
        let store = self.store.clone();
        let id = std::mem::take(&mut self.id);
        // If this fails, the slot stops counting when this instance stops.
        crate::store::detached("release a guest upload slot", async move {
            store.execute(DELETE_SLOT, &[&id]).await?;
            Ok(())
        });
    }
}
