//! Server settings on the scale-out store (the one-row `settings` table).

use super::RemoteStore;
use crate::store::model::settings::{SAVE_SETTINGS, SETTINGS};
use crate::store::model::Settings;
use crate::store::StoreError;

impl RemoteStore {
    /// The settings; the defaults if there is no settings row.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn settings(&self) -> Result<Settings, StoreError> {
        let row = self.query_opt(SETTINGS.pg(), &[]).await?;
        Ok(Settings::from_db(row.map(|r| r.get(0))))
    }

    /// Saves the settings.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn update_settings(&self, settings: Settings) -> Result<(), StoreError> {
        self.execute(SAVE_SETTINGS.pg(), &[&settings.default_lifetime.to_db()])
            .await?;
        Ok(())
    }
}
