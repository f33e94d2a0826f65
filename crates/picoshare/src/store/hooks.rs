//! Notifications through the [`Store`] handle (see `model/hooks/` for the
//! events and formats, `sqlite/hooks.rs` for the outbox).
//!
//! Both stores have them: the same tables, in SQLite and in PostgreSQL (where
//! instances claim the events they send with `FOR UPDATE SKIP LOCKED`).

use super::model::hooks::{Attempt, Due, HookState};
use super::model::hooks::{Destination, DestinationSpec};
use super::model::DownloadRecord;
use super::{Store, StoreError};

impl Store {
    /// The state the delivery task waits on.
    pub(crate) fn hook_state(&self) -> &HookState {
        match self {
            Store::Sqlite(s) => s.hook_state(),
            Store::Remote(s) => s.hook_state(),
        }
    }

    /// Notes that download `rec`'s body was sent whole: a "download" event
    /// for the destinations that want it, written with the download
    /// history. Fire-and-forget; nothing at all when none wants downloads.
    pub(crate) fn download_completed(&self, rec: DownloadRecord) {
        match self {
            Store::Sqlite(s) => s.download_completed(rec),
            Store::Remote(s) => s.download_completed(rec),
        }
    }

    /// Whether some destination wants downloads (so that a download need
    /// not be watched to its end when none does).
    pub(crate) fn downloads_wanted(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.downloads_wanted(),
            Store::Remote(s) => s.downloads_wanted(),
        }
    }

    /// Re-reads the destinations' filters kept in memory.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn refresh_hooks(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.refresh_hooks().await,
            Store::Remote(s) => s.refresh_hooks().await,
        }
    }

    /// Every destination with its delivery state.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn hook_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        match self {
            Store::Sqlite(s) => s.hook_destinations().await,
            Store::Remote(s) => s.hook_destinations().await,
        }
    }

    /// Adds a destination; its ID.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn create_hook_destination(
        &self,
        spec: DestinationSpec,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(s) => s.create_hook_destination(spec, now).await,
            Store::Remote(s) => s.create_hook_destination(spec, now).await,
        }
    }

    /// Changes a destination; false if there is none.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn update_hook_destination(
        &self,
        id: String,
        spec: DestinationSpec,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.update_hook_destination(id, spec).await,
            Store::Remote(s) => s.update_hook_destination(id, spec).await,
        }
    }

    /// Deletes a destination and its queued events; false if there is none.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn delete_hook_destination(&self, id: String) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_hook_destination(id).await,
            Store::Remote(s) => s.delete_hook_destination(id).await,
        }
    }

    /// Queues a test event for one destination: its event ID, or `None`
    /// if there is no such destination.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn send_hook_test(&self, id: String) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.send_hook_test(id).await,
            Store::Remote(s) => s.send_hook_test(id).await,
        }
    }

    /// Events due for delivery now, at most `limit`; on the scale-out store
    /// claimed for `claim` (no other instance sends them meanwhile).
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn hooks_due(
        &self,
        limit: usize,
        claim: std::time::Duration,
    ) -> Result<Vec<Due>, StoreError> {
        match self {
            Store::Sqlite(s) => s.hooks_due(limit).await,
            Store::Remote(s) => s.hooks_due(limit, claim).await,
        }
    }

    /// When the next undelivered event is due (ms since the epoch).
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn hooks_next_due(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.hooks_next_due().await,
            Store::Remote(s) => s.hooks_next_due().await,
        }
    }

    /// Records how delivery attempts went, durably.
    ///
    /// # Errors
    /// Database failures.
    pub(crate) async fn record_hook_attempts(
        &self,
        attempts: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record_hook_attempts(attempts).await,
            Store::Remote(s) => s.record_hook_attempts(attempts).await,
        }
    }
}
