//! Notifications through the [`Store`] handle (see `model/hooks.rs` for the
//! events and formats, `sqlite/hooks.rs` for the outbox).
//!
//! Only the SQLite store has them so far: on the scale-out store
//! [`Store::supports_hooks`] is false, the settings API answers 501, no
//! events are written and no delivery task runs.

use super::model::hooks::{Destination, DestinationSpec};
use super::model::DownloadRecord;
use super::sqlite::hooks::{Attempt, Due, HookState};
use super::sqlite::SqliteStore;
use super::{Store, StoreError};

/// The refusal of the scale-out store, which has no notifications yet.
fn unsupported() -> StoreError {
    StoreError::Task("notifications are not available with the scale-out store".into())
}

impl Store {
    /// Whether this store has notifications.
    pub(crate) fn supports_hooks(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    fn hook_store(&self) -> Result<&SqliteStore, StoreError> {
        match self {
            Store::Sqlite(s) => Ok(s),
            Store::Remote(_) => Err(unsupported()),
        }
    }

    /// The state the delivery task waits on (`None` without notifications).
    pub(crate) fn hook_state(&self) -> Option<&HookState> {
        self.hook_store().ok().map(SqliteStore::hook_state)
    }

    /// Notes that download `rec`'s body was sent whole: a "download" event
    /// for the destinations that want it, written with the download
    /// history. Fire-and-forget; nothing at all when none wants downloads.
    pub(crate) fn download_completed(&self, rec: DownloadRecord) {
        if let Store::Sqlite(s) = self {
            s.download_completed(rec);
        }
    }

    /// Whether some destination wants downloads (so that a download need
    /// not be watched to its end when none does).
    pub(crate) fn downloads_wanted(&self) -> bool {
        matches!(self, Store::Sqlite(s) if s.downloads_wanted())
    }

    /// Re-reads the destinations' filters kept in memory.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn refresh_hooks(&self) -> Result<(), StoreError> {
        self.hook_store()?.refresh_hooks().await
    }

    /// Every destination with its delivery state.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn hook_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        self.hook_store()?.hook_destinations().await
    }

    /// Adds a destination; its ID.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn create_hook_destination(
        &self,
        spec: DestinationSpec,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, StoreError> {
        self.hook_store()?.create_hook_destination(spec, now).await
    }

    /// Changes a destination; false if there is none.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn update_hook_destination(
        &self,
        id: String,
        spec: DestinationSpec,
    ) -> Result<bool, StoreError> {
        self.hook_store()?.update_hook_destination(id, spec).await
    }

    /// Deletes a destination and its queued events; false if there is none.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn delete_hook_destination(&self, id: String) -> Result<bool, StoreError> {
        self.hook_store()?.delete_hook_destination(id).await
    }

    /// Queues a test event for one destination: its event ID, or `None`
    /// if there is no such destination.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn send_hook_test(&self, id: String) -> Result<Option<String>, StoreError> {
        self.hook_store()?.send_hook_test(id).await
    }

    /// Events due for delivery now, at most `limit`.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn hooks_due(&self, limit: usize) -> Result<Vec<Due>, StoreError> {
        self.hook_store()?.hooks_due(limit).await
    }

    /// When the next undelivered event is due (ms since the epoch).
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn hooks_next_due(&self) -> Result<Option<i64>, StoreError> {
        self.hook_store()?.hooks_next_due().await
    }

    /// Records how delivery attempts went, durably.
    ///
    /// # Errors
    /// Database failures; the scale-out store refuses.
    pub(crate) async fn record_hook_attempts(
        &self,
        attempts: Vec<Attempt>,
    ) -> Result<(), StoreError> {
        self.hook_store()?.record_hook_attempts(attempts).await
    }
}
