//! Read-only reports for the admin pages on the scale-out store: an entry's
//! download history, the file list with sizes and download counts, and the
//! space PostgreSQL and the bucket use.

use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::entries::ENTRY_EXISTS;
use crate::store::model::history::REPLACEMENTS;
use crate::store::model::sql::unsigned;
use crate::store::model::{DatabaseSpace, Download, EntrySummary, ReplacementRecord, StorageUsage};
use crate::store::StoreError;

impl RemoteStore {
    /// An entry's download history, newest first; `None` if it does not exist.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn downloads(
        &self,
        id: &EntryId,
    ) -> Result<Option<Vec<Download>>, StoreError> {
        let mut client = self.pg().await?;
        // One snapshot for both reads.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let exists = tx.query_opt(ENTRY_EXISTS.pg(), &[&id.as_str()]).await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = tx
            .query(
                "SELECT download_timestamp, client_ip, user_agent FROM downloads
                 WHERE entry_id = $1 ORDER BY download_timestamp DESC, seq DESC",
                &[&id.as_str()],
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(Download::decode)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Entry `id`'s content replacements, newest first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn replacements(
        &self,
        id: &EntryId,
    ) -> Result<Vec<ReplacementRecord>, StoreError> {
        self.query(REPLACEMENTS.pg(), &[&id.as_str()])
            .await?
            .iter()
            .map(ReplacementRecord::decode)
            .collect()
    }

    /// Every entry with its size and number of downloads, newest upload first.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn entries(&self) -> Result<Vec<EntrySummary>, StoreError> {
        let rows = self
            .query(
                "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
                    e.note, e.guest_link_id, e.size, coalesce(d.n, 0)
                 FROM entries e
                 LEFT JOIN (SELECT entry_id, count(*) AS n FROM downloads GROUP BY entry_id) d
                    ON d.entry_id = e.id
                 ORDER BY e.upload_time DESC, e.seq DESC",
                &[],
            )
            .await?;
        rows.iter().map(EntrySummary::decode).collect()
    }

    /// Stored bytes and the metadata database's size. Object storage has no
    /// fixed capacity and the server has no local disk of data, so the
    /// filesystem figures (`fs_*`) are 0, and nothing is reclaimable: a
    /// deleted object's space is the storage service's to give back.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn usage(&self) -> Result<StorageUsage, StoreError> {
        let row = self
            .query_one(
                "SELECT pg_database_size(current_database()),
                    (SELECT coalesce(sum(size), 0)::BIGINT FROM entries)",
                &[],
            )
            .await?;
        Ok(StorageUsage {
            fs_total: 0,
            fs_used: 0,
            fs_free: 0,
            database: unsigned(row.get(0)),
            stored_files: unsigned(row.get(1)),
            reclaimable: 0,
            local_disk: false,
        })
    }

    /// The metadata database's size (nothing reclaimable, see [`Self::usage`]).
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn database_space(&self) -> Result<DatabaseSpace, StoreError> {
        let row = self
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(DatabaseSpace {
            database: unsigned(row.get(0)),
            reclaimable: 0,
        })
    }
}
