//! The files: each of the source's entries copied into a new object and
//! read back to compare checksums ([`copy_entries`]), and those the source
//! deleted removed; with what the copy did ([`Summary`]).

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use bytes::Bytes;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::tables::{read_rows, Row};
use super::{human, RemoteStore};
use crate::ids::{hex, EntryId};
use crate::store::model::time::{db_time, db_time_to_utc, expiration_from_db, expiration_to_db};
use crate::store::model::{Entry, NewEntry};
use crate::store::sqlite::open_read_only;

/// What the copy did.
#[derive(Debug, Default)]
pub(super) struct Summary {
    copied: u64,
    bytes: u64,
    skipped_present: u64,
    /// Files already copied whose details (name, note, expiration…) changed.
    updated: u64,
    /// Files deleted from the source since the last copy.
    removed: u64,
    skipped_empty: u64,
    pub(super) failed: u64,
}

/// What became of one of the source's files.
enum Outcome {
    /// Copied and verified, this many bytes.
    Copied(u64),
    /// Copied before; `true` if its details were updated.
    Present(bool),
    /// It has no data.
    Empty,
    Failed,
}

impl Summary {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Copied(bytes) => {
                self.copied += 1;
                self.bytes += bytes;
            }
            Outcome::Present(updated) => {
                self.skipped_present += 1;
                self.updated += u64::from(updated);
            }
            Outcome::Empty => self.skipped_empty += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    pub(super) fn tell(&self, started: Instant) {
        eprintln!(
            "done in {:.1} s: {} files copied ({}), {} already there ({} updated), {} removed, \
             {} without data skipped, {} failed",
            started.elapsed().as_secs_f64(),
            self.copied,
            human(self.bytes),
            self.skipped_present,
            self.updated,
            self.removed,
            self.skipped_empty,
            self.failed
        );
    }
}

/// The columns of the source's entries [`copy_one`] reads.
const ENTRIES: &str = "SELECT e.id, e.filename, e.content_type, e.upload_time, e.expiration_time,
        e.note, e.guest_link_id,
        (SELECT coalesce(sum(length(chunk)), 0) FROM entries_data d WHERE d.id = e.id)
     FROM entries e ORDER BY e.upload_time, e.rowid";

/// Deletes the files the source no longer has, then copies each of the
/// source's files not copied yet (updating the details of those that are).
pub(super) async fn copy_entries(
    db: &Path,
    src: &Connection,
    store: &RemoteStore,
) -> anyhow::Result<Summary> {
    let entries = read_rows(src, ENTRIES)?;
    let total = entries.len();
    let mut summary = Summary {
        removed: remove_deleted_entries(store, &entries).await?,
        ..Summary::default()
    };
    for (n, row) in entries.iter().enumerate() {
        let place = format!("[{}/{total}]", n + 1);
        summary.add(copy_one(db, store, row, &place).await?);
    }
    Ok(summary)
}

/// Copies one row of [`ENTRIES`] unless it is there already, saying what
/// became of it; `place` is its place in the list, for the log.
async fn copy_one(
    db: &Path,
    store: &RemoteStore,
    row: &Row,
    place: &str,
) -> anyhow::Result<Outcome> {
    let text = |i: usize| match &row[i] {
        rusqlite::types::Value::Text(t) => Some(t.clone()),
        _ => None,
    };
    let id_text = text(0).unwrap_or_default();
    let Ok(id) = EntryId::parse(&id_text) else {
        eprintln!("  {place} skipped {id_text:?}: not a valid entry ID");
        return Ok(Outcome::Failed);
    };
    let size = match row[7] {
        rusqlite::types::Value::Integer(i) => u64::try_from(i).unwrap_or(0),
        _ => 0,
    };
    let filename = text(1).unwrap_or_default();
    let label = format!("{place} {id} {filename:?} ({})", human(size));
    if size == 0 {
        // The server treats entries without data as missing.
        eprintln!("  {label}: skipped, it has no data");
        return Ok(Outcome::Empty);
    }
    let entry = NewEntry {
        filename,
        content_type: text(2).unwrap_or_default(),
        upload_time: db_time_to_utc(&text(3).unwrap_or_default()),
        expiration: expiration_from_db(text(4)),
        note: text(5),
        guest_link_id: text(6).filter(|g| !g.is_empty()),
        limits: None,
    };
    if let Some(hash) = store.copied_sha256(&id).await? {
        let updated = store.update_copied_entry(&id, &entry).await?;
        let also = if updated { ", details updated" } else { "" };
        eprintln!("  {label}: already copied (sha256 {}){also}", &hash[..16]);
        return Ok(Outcome::Present(updated));
    }
    Ok(match copy_entry(db, store, &id, entry, size).await {
        Ok(hash) => {
            eprintln!("  {label}: copied, sha256 {} verified", &hash[..16]);
            Outcome::Copied(size)
        }
        Err(e) => {
            eprintln!("  {label}: FAILED: {e:#}");
            Outcome::Failed
        }
    })
}

/// Streams one entry's chunks into a new object (computing its SHA-256),
/// writes its row and download history, reads the object back and compares
/// checksums. On a mismatch the entry is deleted again. Returns the hex SHA-256.
async fn copy_entry(
    db: &Path,
    store: &RemoteStore,
    id: &EntryId,
    entry: NewEntry,
    size: u64,
) -> anyhow::Result<String> {
    // Chunks are read on a blocking thread, a few at a time (bounded memory).
    let (tx, rx) = flume::bounded::<anyhow::Result<Bytes>>(4);
    let path = db.to_owned();
    let id_text = id.as_str().to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let run = || -> anyhow::Result<()> {
            let conn = open_read_only(&path)?;
            let mut stmt =
                conn.prepare("SELECT chunk FROM entries_data WHERE id = ?1 ORDER BY chunk_index")?;
            let mut rows = stmt.query([&id_text])?;
            while let Some(r) = rows.next()? {
                let chunk: Vec<u8> = r.get(0)?;
                if tx.send(Ok(Bytes::from(chunk))).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            let _ = tx.send(Err(e));
        }
    });
    store.clear_interrupted_copy(id).await?;
    let mut sink = store.begin_upload(id.clone(), Some(size));
    let mut hasher = Sha256::new();
    while let Ok(chunk) = rx.recv_async().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        sink.write(chunk).await?;
    }
    reader.await?;
    if sink.bytes_received() != size {
        bail!(
            "read {} bytes but the database says {size}",
            sink.bytes_received()
        );
    }
    let source_hash = hex(&hasher.finalize());
    let upload_time = entry.upload_time;
    sink.finish(entry).await?;

    // Read the object back.
    let stored = Entry {
        id: id.clone(),
        filename: String::new(),
        content_type: String::new(),
        upload_time,
        expiration: None,
        note: None,
        guest_link_id: None,
        size,
        chunk_size: 0,
        pin: None,
    };
    let mut range = store.read_range(&stored, 0, size - 1);
    let mut check = Sha256::new();
    let mut read = 0u64;
    while let Some(b) = range.next().await? {
        read += b.len() as u64;
        check.update(&b);
    }
    let stored_hash = hex(&check.finalize());
    if read != size || stored_hash != source_hash {
        store.delete_entry(id).await?;
        bail!("the stored object differs from the database (sha256 {stored_hash} after the copy, {source_hash} before); it was removed");
    }
    store.set_copied_sha256(id, &source_hash).await?;
    Ok(source_hash)
}

/// Deletes the files of the destination that the source no longer has
/// (deleted since the last copy): their rows, and their objects. Returns
/// how many.
async fn remove_deleted_entries(store: &RemoteStore, source: &[Row]) -> anyhow::Result<u64> {
    let keep: Vec<String> = source
        .iter()
        .filter_map(|r| match &r[0] {
            rusqlite::types::Value::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let gone = store
        .query("SELECT id FROM entries WHERE id <> ALL($1)", &[&keep])
        .await?;
    for row in &gone {
        let id: String = row.get(0);
        let Ok(id) = EntryId::parse(&id) else {
            continue;
        };
        store.delete_entry(&id).await?;
        eprintln!("  {id}: removed, it was deleted from the source");
    }
    Ok(gone.len() as u64)
}

impl RemoteStore {
    /// The recorded SHA-256 of an entry the migration already copied.
    async fn copied_sha256(&self, id: &EntryId) -> anyhow::Result<Option<String>> {
        let row = self
            .query_opt("SELECT sha256 FROM entries WHERE id = $1", &[&id.as_str()])
            .await?;
        match row {
            None => Ok(None),
            Some(r) => match r.get::<_, Option<String>>(0) {
                Some(h) => Ok(Some(h)),
                // Present but never verified (an earlier run stopped between
                // the copy and the check): copy it again.
                None => {
                    self.delete_entry(id).await?;
                    Ok(None)
                }
            },
        }
    }

    /// Gives a copied entry the details its source has now (stored as a
    /// new entry's are); returns whether any changed.
    async fn update_copied_entry(&self, id: &EntryId, e: &NewEntry) -> anyhow::Result<bool> {
        let n = self
            .execute(
                "UPDATE entries SET filename = $2, content_type = $3, upload_time = $4,
                    expiration_time = $5, note = $6, guest_link_id = $7
                 WHERE id = $1 AND (filename, content_type, upload_time, expiration_time, note,
                    guest_link_id) IS DISTINCT FROM ($2, $3, $4, $5, $6, $7)",
                &[
                    &id.as_str(),
                    &e.filename,
                    &e.content_type,
                    &db_time(e.upload_time),
                    &expiration_to_db(e.expiration),
                    &e.note,
                    &e.guest_link_id,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    /// Clears what an interrupted earlier run left of its copy of `id`
    /// before it is copied again under the same ID: its upload's row (its
    /// multipart upload is aborted) and a queued deletion of its object,
    /// which would otherwise delete the new copy.
    async fn clear_interrupted_copy(&self, id: &EntryId) -> anyhow::Result<()> {
        let key = self.object_key(id.as_str());
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "DELETE FROM picoshare_pending_uploads WHERE entry_id = $1 RETURNING multipart_id",
                &[&id.as_str()],
            )
            .await?;
        tx.execute(
            "DELETE FROM picoshare_deleted_objects WHERE key = $1 AND multipart_id = ''",
            &[&key],
        )
        .await?;
        for row in &rows {
            if let Some(m) = row.get::<_, Option<&str>>(0) {
                super::super::gc::queue_deletion(&tx, &key, m).await?;
            }
        }
        tx.commit().await?;
        drop(client);
        if !rows.is_empty() {
            self.drain_deletions(Some(key)).await;
        }
        Ok(())
    }

    async fn set_copied_sha256(&self, id: &EntryId, hash: &str) -> anyhow::Result<()> {
        self.execute(
            "UPDATE entries SET sha256 = $2 WHERE id = $1",
            &[&id.as_str(), &hash],
        )
        .await?;
        Ok(())
    }
}
