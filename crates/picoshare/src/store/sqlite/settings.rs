//! Server settings on SQLite (the one-row `settings` table).

use rusqlite::OptionalExtension;

use super::SqliteStore;
use crate::store::model::settings::{SAVE_SETTINGS, SETTINGS};
use crate::store::model::Settings;
use crate::store::StoreError;

impl SqliteStore {
    /// The current settings; the defaults if the database has no settings row.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn settings(&self) -> Result<Settings, StoreError> {
        self.read(|conn| {
            let row: Option<Option<i64>> = conn
                .query_row(SETTINGS.sqlite(), [], |r| r.get(0))
                .optional()?;
            Ok(Settings::from_db(row))
        })
        .await
    }

    /// Saves the settings, durably.
    ///
    /// # Errors
    /// SQLite failures.
    pub(crate) async fn update_settings(&self, settings: Settings) -> Result<(), StoreError> {
        let days = settings.default_lifetime.to_db();
        self.write(move |conn| {
            conn.execute(SAVE_SETTINGS.sqlite(), [days])?;
            Ok(())
        })
        .await
    }
}
