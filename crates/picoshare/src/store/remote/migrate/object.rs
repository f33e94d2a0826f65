//! One file copied into a new object and read back: its chunks streamed
//! from the read-only source, its SHA-256 compared before and after.

use std::path::Path;

use anyhow::bail;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::RemoteStore;
use crate::ids::{hex, EntryId};
use crate::store::model::{Entry, NewEntry};
use crate::store::sqlite::open_read_only;

/// Streams one entry's chunks into a new object (computing its SHA-256),
/// writes its row and download history, reads the object back and compares
/// checksums. On a mismatch the entry is deleted again. Returns the hex SHA-256.
pub(super) async fn copy_entry(
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
