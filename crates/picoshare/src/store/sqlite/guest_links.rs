//! Guest links on SQLite (`guest_links`), and the upload slots of guest
//! uploads in progress, counted in this process's memory.
//!
//! A link with `maxFileUploads` has room for another upload while
//! `stored files + uploads in progress < maxFileUploads`. The stored count
//! comes from the database (deleting a guest's file frees its slot, as in
//! the original), the in-progress count from [`Slots`]: an upload holds its
//! slot ([`LocalSlot`]) until what counts in its place (its entry row, or its
//! resumable upload's row) is committed, then gives it back; in between it is
//! counted twice, which only errs on the side of refusing. One SQLite file
//! has one server, so memory is the right place for them (the scale-out
//! store keeps them as rows, see `remote/guest_links.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection};

use super::{query_all, query_opt, SqliteStore};
use crate::ids::GuestLinkId;
use crate::store::model::guest_links::{
    COUNT_LINK_UPLOADS, DELETE_GUEST_LINK, FORGET_GUEST_LINK, GUEST_LINK, GUEST_LINKS,
    INSERT_GUEST_LINK, SET_GUEST_LINK_DISABLED,
};
use crate::store::model::sql::{signed, unsigned};
use crate::store::model::time::{db_time, expiration_to_db};
use crate::store::model::{GuestLink, NewGuestLink};
use crate::store::StoreError;

/// Attempts before giving up on a reservation. Each retry needs another upload
/// to finish exactly while the count is read, so a second attempt is rare and
/// running out of them means something is badly wrong.
const RESERVE_ATTEMPTS: usize = 20;

/// Upload slots taken by guest uploads in progress, per link.
///
/// The catch is the database read: it happens outside the lock (a
/// `std::sync::Mutex`, never held across an await), so an upload that commits and
/// releases its slot while the count is being read could be missed by both
/// numbers. Every release therefore bumps a counter, and a reservation whose
/// read overlapped a release reads again.
#[derive(Debug, Default)]
pub(super) struct Slots {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Uploads in progress per link; links with none are absent.
    in_progress: HashMap<GuestLinkId, u64>,
    /// Releases so far, of any link.
    releases: u64,
}

/// The outcome of one reservation attempt.
enum Attempt {
    Granted(LocalSlot),
    Full,
    /// A slot was released since the count was read: read it again.
    Stale,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // The state stays consistent even if a holder panicked: every update is
        // a single field change.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The release counter; read it before reading a link's stored count.
    fn releases(&self) -> u64 {
        self.lock().releases
    }

    fn try_reserve(
        self: &Arc<Self>,
        link: &GuestLinkId,
        max: u64,
        stored: u64,
        releases_before_read: u64,
    ) -> Attempt {
        let mut st = self.lock();
        if st.releases != releases_before_read {
            return Attempt::Stale;
        }
        let in_progress = st.in_progress.entry(link.clone()).or_insert(0);
        if stored.saturating_add(*in_progress) >= max {
            if *in_progress == 0 {
                st.in_progress.remove(link);
            }
            return Attempt::Full;
        }
        *in_progress += 1;
        Attempt::Granted(LocalSlot {
            slots: self.clone(),
            link: link.clone(),
        })
    }

    fn release(&self, link: &GuestLinkId) {
        let mut st = self.lock();
        if let Some(n) = st.in_progress.get_mut(link) {
            *n -= 1;
            if *n == 0 {
                st.in_progress.remove(link);
            }
        }
        st.releases += 1;
    }
}

/// A guest-link upload slot held by one upload; dropping it gives it back.
#[derive(Debug)]
pub(crate) struct LocalSlot {
    slots: Arc<Slots>,
    link: GuestLinkId,
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        self.slots.release(&self.link);
    }
}

/// The number of files that count against link `id` (see the model).
fn count_uploads(conn: &Connection, id: &GuestLinkId) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(COUNT_LINK_UPLOADS.sqlite(), [id.as_str()], |r| r.get(0))?;
    Ok(unsigned(n))
}

impl SqliteStore {
    /// Creates a guest link with a new random ID and returns the ID.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn create_guest_link(
        &self,
        link: NewGuestLink,
    ) -> Result<GuestLinkId, StoreError> {
        let id = GuestLinkId::generate();
        let stored_id = id.clone();
        self.write(move |conn| {
            conn.execute(
                INSERT_GUEST_LINK.sqlite(),
                params![
                    stored_id.as_str(),
                    link.label,
                    link.max_file_bytes.map(signed),
                    link.max_file_uploads.map(signed),
                    db_time(link.creation_time),
                    expiration_to_db(link.url_expiration),
                    link.file_lifetime.to_string(),
                ],
            )
            .map_err(StoreError::classify)?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    /// Looks up a guest link, with its live upload count.
    ///
    /// # Errors
    /// Storage failures, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub(crate) async fn guest_link(
        &self,
        id: &GuestLinkId,
    ) -> Result<Option<GuestLink>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            query_opt(conn, GUEST_LINK.sqlite(), [id.as_str()], |r| {
                GuestLink::decode(r)
            })
        })
        .await
    }

    /// Every guest link, newest first.
    ///
    /// # Errors
    /// Storage failures, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub(crate) async fn guest_links(&self) -> Result<Vec<GuestLink>, StoreError> {
        self.read(|conn| query_all(conn, GUEST_LINKS.sqlite(), [], |r| GuestLink::decode(r)))
            .await
    }

    /// The number of files that count against guest link `id`: stored files
    /// plus unfinished resumable uploads (not the uploads in progress).
    ///
    /// # Errors
    /// Storage failures.
    async fn guest_link_files_uploaded(&self, id: &GuestLinkId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.read(move |conn| count_uploads(conn, &id)).await
    }

    /// Takes one of guest link `link`'s `max` upload slots until the returned
    /// slot is dropped; `None` when every slot is taken.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::Contended`] if the count kept
    /// changing while it was read.
    pub(crate) async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<LocalSlot>, StoreError> {
        let slots = &self.inner.slots;
        for _ in 0..RESERVE_ATTEMPTS {
            // Read before the stored count is; see `Slots`.
            let releases = slots.releases();
            let stored = self.guest_link_files_uploaded(link).await?;
            match slots.try_reserve(link, max, stored, releases) {
                Attempt::Granted(slot) => return Ok(Some(slot)),
                Attempt::Full => return Ok(None),
                Attempt::Stale => {}
            }
        }
        Err(StoreError::Contended)
    }

    /// Deletes a guest link (nothing if absent). Files uploaded through it stay;
    /// they only lose the reference to it, in the same transaction.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn delete_guest_link(&self, id: &GuestLinkId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute(FORGET_GUEST_LINK.sqlite(), [id.as_str()])
                .map_err(StoreError::classify)?;
            conn.execute(DELETE_GUEST_LINK.sqlite(), [id.as_str()])
                .map_err(StoreError::classify)?;
            Ok(())
        })
        .await
    }

    /// Disables or re-enables a guest link. Returns whether it exists; setting
    /// the state it already has is not an error.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) async fn set_guest_link_disabled(
        &self,
        id: &GuestLinkId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    SET_GUEST_LINK_DISABLED.sqlite(),
                    params![id.as_str(), i64::from(disabled)],
                )
                .map_err(StoreError::classify)?;
            Ok(n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EntryId;
    use crate::store::model::{GuestFileLifetime, NewEntry};
    use crate::store::sqlite::StoreConfig;
    use bytes::Bytes;

    #[test]
    fn slots_are_counted_with_stored_files_and_released() {
        let slots = Arc::new(Slots::default());
        let link = GuestLinkId::generate();
        let r0 = slots.releases();
        let Attempt::Granted(a) = slots.try_reserve(&link, 3, 1, r0) else {
            panic!("first slot refused");
        };
        let Attempt::Granted(_b) = slots.try_reserve(&link, 3, 1, r0) else {
            panic!("second slot refused");
        };
        assert!(matches!(slots.try_reserve(&link, 3, 1, r0), Attempt::Full));
        drop(a);
        // A release since the count was read: the count must be read again.
        assert!(matches!(slots.try_reserve(&link, 3, 1, r0), Attempt::Stale));
        assert_eq!(slots.releases(), r0 + 1);
        assert!(matches!(
            slots.try_reserve(&link, 3, 1, r0 + 1),
            Attempt::Granted(_)
        ));
    }

    /// The store's guest-link calls against a real database: create, read back,
    /// count uploads, list, disable, and delete (which keeps the files).
    #[tokio::test]
    async fn guest_links_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(StoreConfig::new(dir.path().join("store.db"))).unwrap();
        let now = crate::validate::rfc3339("2030-01-01T00:00:00Z").unwrap();
        let id = store
            .create_guest_link(NewGuestLink {
                label: "For Maurice".into(),
                max_file_bytes: Some(1 << 20),
                max_file_uploads: Some(2),
                creation_time: now,
                url_expiration: None,
                file_lifetime: GuestFileLifetime::parse_go("168h").unwrap(),
            })
            .await
            .unwrap();
        let link = store.guest_link(&id).await.unwrap().unwrap();
        assert_eq!(link.label, "For Maurice");
        assert_eq!(link.max_file_bytes, Some(1 << 20));
        assert_eq!(link.max_file_uploads, Some(2));
        assert_eq!(link.creation_time, now);
        assert_eq!(link.url_expiration, None);
        assert_eq!(link.file_lifetime.to_string(), "168h0m0s");
        assert_eq!(link.files_uploaded, 0);
        assert!(link.is_active(now));

        let entry = EntryId::generate();
        let mut sink = store.begin_upload(entry.clone());
        sink.write(Bytes::from_static(b"hello")).await.unwrap();
        sink.finish(NewEntry {
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
            upload_time: now,
            expiration: None,
            note: None,
            guest_link_id: Some(id.as_str().to_owned()),
            limits: None,
        })
        .await
        .unwrap();
        assert_eq!(store.guest_link_files_uploaded(&id).await.unwrap(), 1);
        // One of the two uploads is used: one slot is left, until it is given back.
        let slot = store.reserve_guest_slot(&id, 2).await.unwrap();
        assert!(slot.is_some());
        assert!(store.reserve_guest_slot(&id, 2).await.unwrap().is_none());
        drop(slot);
        assert!(store.reserve_guest_slot(&id, 2).await.unwrap().is_some());
        let listed = store.guest_links().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].files_uploaded, 1);

        assert!(store.set_guest_link_disabled(&id, true).await.unwrap());
        assert!(store.set_guest_link_disabled(&id, true).await.unwrap());
        let link = store.guest_link(&id).await.unwrap().unwrap();
        assert!(link.is_disabled && !link.is_active(now));
        let unknown = GuestLinkId::generate();
        assert!(!store
            .set_guest_link_disabled(&unknown, false)
            .await
            .unwrap());

        store.delete_guest_link(&id).await.unwrap();
        store.delete_guest_link(&id).await.unwrap();
        assert_eq!(store.guest_link(&id).await.unwrap(), None);
        let kept = store.entry(&entry).await.unwrap().expect("the file stays");
        assert_eq!(kept.guest_link_id, None);
        store.shutdown().await;
    }
}
