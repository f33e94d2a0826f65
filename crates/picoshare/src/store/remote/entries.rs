//! Entries on the scale-out store: looking one up (its size is a column),
//! editing, deleting its rows and then its object, download records, and the
//! entry row a finished upload writes.

use chrono::{DateTime, Utc};

use super::RemoteStore;
use crate::ids::EntryId;
use crate::store::model::entries::{DELETE_DOWNLOADS, INSERT_DOWNLOAD, UPDATE_ENTRY};
use crate::store::model::limits::DELETE_LIMITS;
use crate::store::model::shares::{DELETE_SHARE_IF_EMPTY, LEAVE_SHARES, SHARES_OF_ENTRY};
use crate::store::model::sql::signed;
use crate::store::model::time::{db_time, expiration_to_db};
use crate::store::model::{DownloadRecord, Entry, NewEntry};
use crate::store::StoreError;

/// The columns [`Entry::decode`] reads, of `entries e`, and a tenth: the ID
/// of the object holding its content ([`RemoteStore::decode_entry`]).
macro_rules! entry_columns {
    () => {
        "e.id, e.filename, e.content_type, e.upload_time, e.expiration_time, e.note,
         e.guest_link_id, e.size, e.part_size, coalesce(e.content_id, e.id)"
    };
}
pub(super) use entry_columns;

/// Deletes every row of an entry (not its object), in the caller's transaction:
/// the entry, its download history and replacements, limits and
/// reservations, and its places in shares (with a share left empty).
/// Returns the ID of the object holding its content (its own ID if it has
/// no row): the one to queue for deletion.
pub(super) async fn delete_entry_rows(
    tx: &tokio_postgres::Transaction<'_>,
    id: &str,
) -> Result<String, StoreError> {
    tx.execute(DELETE_DOWNLOADS.pg(), &[&id]).await?;
    // The content a replacement committed just before is the one deleted
    // (the row lock orders the two).
    let content: String = tx
        .query_opt(
            "DELETE FROM entries WHERE id = $1 RETURNING coalesce(content_id, id)",
            &[&id],
        )
        .await?
        .map_or_else(|| Ok(id.to_owned()), |r| r.try_get(0))?;
    tx.execute(
        "DELETE FROM picoshare_replacements WHERE entry_id = $1",
        &[&id],
    )
    .await?;
    tx.execute(DELETE_LIMITS.pg(), &[&id]).await?;
    tx.execute(
        "DELETE FROM picoshare_download_reservations WHERE entry_id = $1",
        &[&id],
    )
    .await?;
    let shares: Vec<String> = tx
        .query(SHARES_OF_ENTRY.pg(), &[&id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if shares.is_empty() {
        return Ok(content);
    }
    // The shares are locked (always before their entry rows, in ID order)
    // before the entry leaves them: otherwise two transactions deleting a
    // share's last two entries would each still see the other's entry, and
    // neither would delete the share left empty.
    tx.execute(
        "SELECT 1 FROM picoshare_shares WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&shares],
    )
    .await?;
    tx.execute(LEAVE_SHARES.pg(), &[&id]).await?;
    for share in &shares {
        tx.execute(DELETE_SHARE_IF_EMPTY.pg(), &[share]).await?;
    }
    Ok(content)
}

/// Inserts an entry's row (and its limits), in the caller's transaction.
pub(super) async fn insert_entry(
    tx: &tokio_postgres::Transaction<'_>,
    id: &EntryId,
    entry: &NewEntry,
    size: u64,
    part_size: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO entries (id, filename, content_type, upload_time, expiration_time,
            guest_link_id, note, size, part_size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &id.as_str(),
            &entry.filename,
            &entry.content_type,
            &db_time(entry.upload_time),
            &expiration_to_db(entry.expiration),
            &entry.guest_link_id,
            &entry.note,
            &signed(size),
            &signed(part_size),
        ],
    )
    .await?;
    if let Some(l) = &entry.limits {
        super::limits::insert_limits(tx, id.as_str(), l).await?;
    }
    super::hooks::entry_inserted(tx, id, entry).await
}

impl RemoteStore {
    /// Looks up an entry's metadata and size.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        let row = self
            .query_opt(
                concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM entries e WHERE e.id = $1"
                ),
                &[&id.as_str()],
            )
            .await?;
        Ok(row.map(|r| self.decode_entry(&r, 0)).transpose()?.flatten())
    }

    /// [`Entry::decode`] of the columns of `entry_columns!` from `at`, with
    /// a hold on the object it was read with (`replace.rs`).
    ///
    /// # Errors
    /// As [`Entry::decode`].
    pub(super) fn decode_entry(
        &self,
        r: &tokio_postgres::Row,
        at: usize,
    ) -> Result<Option<Entry>, StoreError> {
        let Some(mut entry) = Entry::decode(r, at)? else {
            return Ok(None);
        };
        let content: &str = r.try_get(at + 9)?;
        entry.pin = Some(self.hold_content(content));
        Ok(Some(entry))
    }

    /// Changes an entry's filename, expiration and note. Returns whether it exists.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub(crate) async fn update_entry(
        &self,
        id: &EntryId,
        filename: String,
        expiration: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                UPDATE_ENTRY.pg(),
                &[
                    &id.as_str(),
                    &filename,
                    &expiration_to_db(expiration),
                    &note,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// Deletes an entry: its rows and, once they are gone, its object.
    ///
    /// # Errors
    /// PostgreSQL failures (the object is deleted later by garbage
    /// collection if only its deletion fails).
    pub(crate) async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError> {
        let key = {
            let mut client = self.pg().await?;
            let tx = client.transaction().await?;
            let key = self.object_key(&delete_entry_rows(&tx, id.as_str()).await?);
            super::gc::queue_deletion(&tx, &key, "").await?;
            tx.commit().await?;
            key
        };
        self.drain_deletions(Some(key)).await;
        Ok(())
    }

    /// Records a download. Fire-and-forget.
    pub(crate) fn record_download(&self, rec: DownloadRecord) {
        let store = self.clone();
        self.spawn_background("record a download", async move {
            store
                .execute(
                    INSERT_DOWNLOAD.pg(),
                    &[
                        &rec.entry_id.as_str(),
                        &db_time(rec.time),
                        &rec.client_ip,
                        &rec.user_agent,
                    ],
                )
                .await?;
            Ok(())
        });
    }
}
