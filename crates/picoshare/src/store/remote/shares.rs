//! Shares on the scale-out store (`picoshare_shares`,
//! `picoshare_share_entries`). A share's row is locked before its entries'
//! rows, here as in `entries::delete_entry_rows`, so that concurrent deletes
//! of a share's last entries never leave it behind empty.

use super::entries::entry_columns;
use super::RemoteStore;
use crate::ids::{EntryId, ShareId};
use crate::store::model::shares::{
    DELETE_SHARE, INSERT_SHARE, INSERT_SHARE_ENTRY, SHARE, SHARE_IDS,
};
use crate::store::model::sql::signed;
use crate::store::model::time::db_time;
use crate::store::model::{CreateOutcome, NewShare, Share, ShareFile};
use crate::store::StoreError;

impl RemoteStore {
    /// Creates a share of existing entries.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn create_share(&self, share: NewShare) -> Result<CreateOutcome, StoreError> {
        let id = ShareId::generate();
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        for (entry, _) in &share.files {
            // Locked so that the entry cannot be deleted before the share exists.
            if tx
                .query_opt(
                    "SELECT 1 FROM entries WHERE id = $1 FOR SHARE",
                    &[&entry.as_str()],
                )
                .await?
                .is_none()
            {
                return Ok(CreateOutcome::UnknownEntry(entry.clone()));
            }
        }
        tx.execute(
            INSERT_SHARE.pg(),
            &[
                &id.as_str(),
                &share.title,
                &db_time(share.created),
                &share.note,
            ],
        )
        .await?;
        for (i, (entry, path)) in share.files.iter().enumerate() {
            tx.execute(
                INSERT_SHARE_ENTRY.pg(),
                &[&id.as_str(), &entry.as_str(), &signed(i as u64), path],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(CreateOutcome::Created(id))
    }

    async fn load_share(
        &self,
        client: &tokio_postgres::Client,
        id: &str,
    ) -> Result<Option<Share>, StoreError> {
        let Some(row) = client.query_opt(SHARE.pg(), &[&id]).await? else {
            return Ok(None);
        };
        let rows = client
            .query(
                concat!(
                    "SELECT se.path, ",
                    entry_columns!(),
                    " FROM picoshare_share_entries se JOIN entries e ON e.id = se.entry_id
                     WHERE se.share_id = $1 ORDER BY se.position"
                ),
                &[&id],
            )
            .await?;
        let mut files = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(mut file) = ShareFile::decode(r)? {
                // Holds the object it was read with (`replace.rs`).
                let content: &str = r.try_get(10)?;
                file.entry.pin = Some(self.hold_content(content));
                files.push(file);
            }
        }
        Share::decode(id, &row, files).map(Some)
    }

    /// One share with its files in order.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn share(&self, id: &ShareId) -> Result<Option<Share>, StoreError> {
        let client = self.pg().await?;
        self.load_share(&client, id.as_str()).await
    }

    /// Every share, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn shares(&self) -> Result<Vec<Share>, StoreError> {
        let client = self.pg().await?;
        let ids = client.query(SHARE_IDS.pg(), &[]).await?;
        let mut out = Vec::with_capacity(ids.len());
        for row in ids {
            let id: String = row.get(0);
            out.extend(self.load_share(&client, &id).await?);
        }
        Ok(out)
    }

    /// Deletes a share, and with `with_files` its entries; returns whether it existed.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn delete_share(
        &self,
        id: &ShareId,
        with_files: bool,
    ) -> Result<bool, StoreError> {
        let (found, entries) = {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            // The share's row first: `delete_entry_rows` locks a share
            // before its entry rows too.
            let found = tx.execute(DELETE_SHARE.pg(), &[&id.as_str()]).await? > 0;
            let entries: Vec<String> = tx
                .query(
                    "DELETE FROM picoshare_share_entries WHERE share_id = $1 RETURNING entry_id",
                    &[&id.as_str()],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().await?;
            (found, entries)
        };
        if with_files {
            for entry in entries {
                if let Ok(entry) = EntryId::parse(&entry) {
                    self.delete_entry(&entry).await?;
                }
            }
        }
        Ok(found)
    }
}
