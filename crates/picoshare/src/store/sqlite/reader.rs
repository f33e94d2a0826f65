//! Reading on SQLite: the pool of read-only connections, chunk reads, and
//! [`SqliteRange`], which reads a byte range of a file in batches of whole
//! chunks, each batch in its own short read transaction.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};

use super::{configure_connection, stats, SqliteStore, StoreConfig};
use crate::ids::EntryId;
use crate::store::model::entries::ContentPin;
use crate::store::model::time::db_time;
use crate::store::model::Entry;
use crate::store::StoreError;

/// Idle connections kept for reuse; more are opened on demand under load.
const MAX_IDLE: usize = 8;
/// Readers whose page cache is kept warm between reads.
const WARM_READERS: usize = 2;

/// A small pool of read-only connections.
pub(super) struct Pool {
    cfg: StoreConfig,
    idle: Mutex<Vec<Connection>>,
    /// Connections currently lent out.
    in_use: AtomicUsize,
}

/// A connection borrowed from the pool; returned on drop.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Invariant: `conn` is only taken in `drop`.
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A warm page cache doubles download speed (docs/benchmarks.md), but
            // each connection's costs up to `reader_cache_kib`. Keep the caches
            // of the first two readers; when more read at once, the others hand
            // their memory back, so memory stays bounded under many downloads.
            let others = self.pool.in_use.fetch_sub(1, Ordering::Relaxed) - 1;
            if others >= WARM_READERS {
                let _ = conn.execute_batch("PRAGMA shrink_memory");
            }
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

impl Pool {
    pub(super) fn new(cfg: StoreConfig) -> Self {
        Self {
            cfg,
            idle: Mutex::new(Vec::new()),
            in_use: AtomicUsize::new(0),
        }
    }

    pub(super) fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match reused {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.cfg.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure_connection(&c, &self.cfg)?;
                // A read batch must fit in the cache: below that, downloads ran at
                // half speed (docs/benchmarks.md).
                c.execute_batch(&format!(
                    "PRAGMA query_only = ON; PRAGMA cache_size = -{};",
                    self.cfg.reader_cache_kib
                ))?;
                c
            }
        };
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
        })
    }
}

/// Reads chunks `first..=last` of entry `id` in one short read transaction.
pub(super) fn read_chunks(
    conn: &Connection,
    id: &str,
    first: u64,
    last: u64,
) -> Result<Vec<Bytes>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT chunk_index, chunk FROM entries_data
         WHERE id = ?1 AND chunk_index BETWEEN ?2 AND ?3 ORDER BY chunk_index",
    )?;
    let mut rows = stmt.query(rusqlite::params![id, first as i64, last as i64])?;
    let mut out = Vec::with_capacity((last - first + 1) as usize);
    let mut expect = first;
    while let Some(row) = rows.next()? {
        let index: i64 = row.get(0)?;
        if index as u64 != expect {
            return Err(StoreError::Corrupt(format!(
                "entry {id}: chunk {expect} is missing"
            )));
        }
        let blob = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        out.push(Bytes::copy_from_slice(blob));
        expect += 1;
    }
    if expect != last + 1 {
        return Err(StoreError::Corrupt(format!(
            "entry {id}: chunk {expect} is missing"
        )));
    }
    Ok(out)
}

/// Where the chunks of version `version` (its upload time) of entry `id`
/// are: under the entry's id while it is current, under the id its content
/// was retired to once replaced (`content.rs`).
///
/// # Errors
/// [`StoreError::Corrupt`] if that version's chunks were freed, which no
/// download holding its pin sees; SQLite failures.
fn version_content(conn: &Connection, id: &EntryId, version: &str) -> Result<String, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT old_content_id FROM picoshare_replacements
         WHERE entry_id = ?1 AND old_upload_time = ?2",
    )?;
    let mut rows = stmt.query([id.as_str(), version])?;
    match rows.next()? {
        None => Ok(id.as_str().to_owned()),
        Some(row) => row.get::<_, Option<String>>(0)?.ok_or_else(|| {
            StoreError::Corrupt(format!("entry {id}: the version being read was freed"))
        }),
    }
}

impl SqliteStore {
    /// Reads chunks `first..=last` of version `version` of entry `id`, in order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a chunk is missing; SQLite failures.
    async fn read_chunks(
        &self,
        id: &EntryId,
        version: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<Bytes>, StoreError> {
        let id = id.clone();
        let version = version.to_owned();
        let counters = self.inner.counters.clone();
        self.read(move |conn| {
            let started = std::time::Instant::now();
            // One snapshot for where the version is and its chunks.
            let txn = conn.unchecked_transaction()?;
            let content = version_content(&txn, &id, &version)?;
            let chunks = read_chunks(&txn, &content, first, last)?;
            stats::Counters::add(&counters.read_ns, started.elapsed().as_nanos() as u64);
            Ok(chunks)
        })
        .await
    }

    /// Opens bytes `start..=end` of `entry` for reading in batches.
    pub(crate) fn read_range(&self, entry: &Entry, start: u64, end: u64) -> SqliteRange {
        SqliteRange {
            store: self.clone(),
            id: entry.id.clone(),
            version: db_time(entry.upload_time),
            _pin: entry.pin.clone(),
            chunk_size: entry.chunk_size.max(1),
            next: start,
            end,
        }
    }
}

/// Reads one byte range of a file: batches of whole chunks, each read in
/// its own short read transaction, cut to the range at both ends.
pub(crate) struct SqliteRange {
    store: SqliteStore,
    id: EntryId,
    /// The version read: the entry's upload time as the download saw it.
    version: String,
    /// Keeps that version's chunks while the download runs.
    _pin: Option<ContentPin>,
    chunk_size: u64,
    next: u64,
    end: u64,
}

impl SqliteRange {
    /// The next pieces of the range (whole chunks but at its ends, about
    /// `batch_bytes` of them), or `None` at its end.
    ///
    /// # Errors
    /// SQLite failures, or a missing chunk.
    pub(crate) async fn next(
        &mut self,
        batch_bytes: u64,
    ) -> Result<Option<Vec<Bytes>>, StoreError> {
        if self.next > self.end {
            return Ok(None);
        }
        let cs = self.chunk_size;
        let first = self.next / cs;
        let last_chunk = self.end / cs;
        let per_batch = (batch_bytes / cs).max(1);
        let last = (first + per_batch - 1).min(last_chunk);
        let chunks = self
            .store
            .read_chunks(&self.id, &self.version, first, last)
            .await?;
        let mut out = Vec::with_capacity(chunks.len());
        for (i, data) in chunks.into_iter().enumerate() {
            let base = (first + i as u64) * cs;
            let from = self.next.saturating_sub(base) as usize;
            let to = ((self.end + 1 - base) as usize).min(data.len());
            if from < to {
                out.push(data.slice(from..to));
            }
        }
        self.next = (last + 1) * cs;
        Ok(Some(out))
    }
}
