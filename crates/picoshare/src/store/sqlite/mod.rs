//! The SQLite store: entries, their chunked file data, download history and
//! everything else in one SQLite file, in the original PicoShare's schema.
//!
//! Concurrency design (see ARCHITECTURE.md):
//! - **One writer thread** owns the only write connection. Every change goes to it
//!   through a bounded channel, so writes never contend for SQLite's lock, memory
//!   stays bounded, and a slow disk pushes back on the uploading clients.
//!   It batches chunk inserts into large transactions and group-commits.
//! - **Readers** use a small pool of read-only connections on blocking threads.
//!   In WAL mode they never wait for the writer, and each read is a short
//!   transaction, so a slow downloader never pins the WAL or holds a lock.
//!
//! Each area has its file, named as its counterpart in `remote/` (see
//! ARCHITECTURE.md); this one opens the database and holds what they share.

pub(crate) mod backup;
mod checkpoint;
mod content;
mod convert;
mod entries;
mod files;
mod gc;
mod guest_links;
mod history;
pub(crate) mod hooks;
mod limits;
mod reader;
pub(crate) mod rollback;
pub(crate) mod schema;
mod sessions;
mod settings;
mod shares;
mod tokens;
mod tus;
mod upload;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Params};

pub(crate) use guest_links::LocalSlot;
pub(crate) use reader::SqliteRange;
pub(crate) use upload::{SqliteSink, SqliteTusSink};

use super::model::sql::Row;
use super::stats::{self, StoreStats};
use super::StoreError;

/// SQLite journal mode for the database file. (The command line's
/// `--journal-mode` is `config::cli::JournalModeArg`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalMode {
    /// Write-ahead log: readers never wait for the writer; works with Litestream.
    Wal,
    /// Rollback journal: fewer bytes written, but readers wait while the writer commits.
    Delete,
}

/// Storage tuning. The defaults are the measured best (docs/benchmarks.md); the
/// other values exist so the bench suite can compare variants of one build.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    /// Database file path.
    pub(crate) path: PathBuf,
    /// Bytes per chunk row for new uploads (existing entries keep theirs).
    pub(crate) chunk_size: usize,
    /// Page size for newly created databases.
    pub(crate) page_size: u32,
    /// Journal mode.
    pub(crate) journal_mode: JournalMode,
    /// Commit the running write transaction after this many bytes of file data.
    pub(crate) commit_bytes: u64,
    /// SQLite page cache of the writing connections, in KiB.
    pub(crate) cache_kib: u32,
    /// SQLite page cache of each reading connection, in KiB.
    pub(crate) reader_cache_kib: u32,
    /// Start writing dirty file pages back to disk early, from a side thread,
    /// so that commits and checkpoints find little left to flush.
    pub(crate) early_writeback: bool,
    /// WAL size in pages that triggers a checkpoint (inline checkpoints only).
    pub(crate) wal_autocheckpoint: u32,
    /// Checkpoint from a separate thread instead of inside the writer's commits.
    pub(crate) background_checkpoint: bool,
    /// Leave all checkpoints to an outside process (Litestream): the server never
    /// checkpoints, as the original does when `LITESTREAM_BUCKET` is set.
    pub(crate) external_checkpoints: bool,
    /// Convert existing databases without incremental auto-vacuum at start-up.
    pub(crate) convert_existing: bool,
    /// With background checkpoints: WAL bytes after which the writer waits for
    /// the checkpointer to catch up, so the WAL restarts instead of growing.
    pub(crate) wal_limit_bytes: u64,
}

impl StoreConfig {
    /// The size SQLite cuts the WAL file back to when it restarts the WAL
    /// (`journal_size_limit`). With background checkpoints the writer
    /// restarts the WAL each time it reaches [`Self::wal_limit_bytes`], so the
    /// file is kept at that size plus one transaction: the next round then
    /// overwrites pages already in the page cache instead of extending the
    /// file, which made the kernel zero the uncovered part of each new
    /// block of every WAL frame (a WAL frame is a 24-byte header plus a
    /// page, never block-aligned): 12 % of the server's CPU time in a 1 GiB
    /// upload with 16 KiB pages, 3 % with 32 KiB (`perf`, docs/benchmarks.md
    /// "The WAL file kept at its size"). The space goes back to the file
    /// system when the writer is idle (`Writer::idle` truncates the WAL).
    /// With checkpoints left to Litestream the WAL's size is Litestream's
    /// business: 64 MiB as before.
    pub(crate) fn journal_size_limit(&self) -> i64 {
        const BEFORE: u64 = 64 << 20;
        let limit = if self.background_checkpoint && !self.external_checkpoints {
            self.wal_limit_bytes
                .saturating_add(self.commit_bytes)
                .max(BEFORE)
        } else {
            BEFORE
        };
        i64::try_from(limit).unwrap_or(i64::MAX)
    }

    /// The defaults for a database at `path`.
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            page_size: DEFAULT_PAGE_SIZE,
            journal_mode: JournalMode::Wal,
            commit_bytes: 64 << 20,
            cache_kib: 256,
            reader_cache_kib: 4096,
            early_writeback: true,
            wal_autocheckpoint: 1000,
            background_checkpoint: true,
            external_checkpoints: false,
            convert_existing: true,
            wal_limit_bytes: 256 << 20,
        }
    }
}

/// The page size of new databases (32 KiB). A commit writes every page it
/// changed whole, and a small upload changes one page in each of about
/// seven B-trees (the entry row, its ID, guest-link and upload-time indexes,
/// the chunk row, its key and the chunk-length index): 476 KB per 4 KiB
/// upload with 64 KiB pages, 248 KB with 32 KiB. Against 64 KiB pages,
/// 32 KiB measured the same CPU per GiB for 1 GiB uploads and downloads and
/// 12-44 % less per small upload (small uploads 1.05-1.9 times as fast at
/// 8 connections in three runs, downloads of 64 KiB to 1 MiB files 6-21 %
/// slower, still over 4 times the original's); 16 KiB cost 23 % more CPU per GiB uploaded
/// and 4.4 times the system calls; 4 KiB halved large transfers
/// (docs/benchmarks.md, issues 2 and 21). Existing databases keep theirs.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 32_768;

/// The original's chunk size (320 KiB).
pub(crate) const DEFAULT_CHUNK_SIZE: usize = 327_680;

/// Handle to the SQLite store; cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    counters: Arc<stats::Counters>,
    shared: Arc<writer::Shared>,
    cfg: StoreConfig,
    readers: reader::Pool,
    writer: writer::WriterHandle,
    /// Guest-link upload slots held by uploads in progress.
    slots: Arc<guest_links::Slots>,
    /// Download records waiting to be handed to the writer together
    /// (`entries.rs`, `record_download`).
    downloads: Arc<std::sync::Mutex<Vec<crate::store::model::DownloadRecord>>>,
    /// How many download records the last of those jobs wrote: many make
    /// the next gathering longer (`entries.rs`, `gather_for`).
    downloads_last_batch: std::sync::atomic::AtomicUsize,
    /// The device and inode of the database file when the store opened it,
    /// for the health check (`ping`).
    file_id: Option<(u64, u64)>,
    /// Whether every entry row had data at start-up (`history.rs`,
    /// `every_entry_has_data`): the file list then counts and filters
    /// without looking up each entry's chunks.
    every_entry_has_data: bool,
    /// Downloads whose body was sent whole, waiting with the records for
    /// their notifications (`hooks.rs`).
    completed_downloads: Arc<std::sync::Mutex<Vec<crate::store::model::DownloadRecord>>>,
    /// Sessions found valid, so that most session checks need no database
    /// read (`sessions.rs`, whose header says why it is safe).
    sessions: sessions::SessionCache,
}

/// Applies the pragmas every connection needs.
fn configure_connection(conn: &Connection, cfg: &StoreConfig) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    if cfg.external_checkpoints {
        // Closing the last connection would otherwise checkpoint the WAL.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    // Temporary files (the sub-journal of a job's savepoint, sorts) stay in
    // memory: on disk, every download record created, filled with two large
    // pages and unlinked one in the system's temp folder.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{};",
        cfg.cache_kib
    ))?;
    Ok(())
}

/// The writer's page cache, in KiB, while it frees pages: deleting chunks
/// (walking their overflow chains and recording every freed page in the
/// freelist and the pointer map) and returning free pages to the filesystem
/// (incremental vacuum). A vacuum step takes pages off the freelist as if
/// allocating them, which makes them dirty; if they stay in the cache until
/// the step commits, SQLite drops them with the end of the file, but with the
/// writer's usual cache, sized for streaming chunks, they
/// are spilled to the WAL first: returning a deleted 100 MiB file's space
/// wrote 98 MiB. So the cache holds a whole step
/// ([`VACUUM_STEP_BYTES`](writer::VACUUM_STEP_BYTES)) and a margin for the
/// freelist, pointer-map and parent pages (docs/benchmarks.md). It is not the
/// writer's usual size: a 4 MiB cache during uploads raised the peak memory
/// of a 1 GiB upload from 38 to 98 MiB.
const FREEING_CACHE_KIB: i64 = (writer::VACUUM_STEP_BYTES >> 10) * 3 / 2;

/// Runs `f`, which frees pages, with a page cache of at least
/// [`FREEING_CACHE_KIB`], then restores the connection's own size.
///
/// # Errors
/// Those of `f`, and SQLite's if the cache size cannot be read or set.
pub(super) fn freeing_pages<T, E>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E>
where
    E: From<rusqlite::Error>,
{
    let before: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    // A negative size is in KiB, a positive one in pages.
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let kib = if before < 0 {
        -before
    } else {
        before * page / 1024
    };
    if kib >= FREEING_CACHE_KIB {
        return f();
    }
    conn.execute_batch(&format!("PRAGMA cache_size = -{FREEING_CACHE_KIB}"))?;
    let result = f();
    conn.execute_batch(&format!("PRAGMA cache_size = {before}"))?;
    result
}

impl SqliteStore {
    /// Opens (creating if needed) the database, upgrades its schema, reclaims the
    /// chunks of uploads that a previous run left unfinished, and starts the writer.
    ///
    /// # Errors
    /// Any failure to open or upgrade the database.
    pub(crate) fn open(cfg: StoreConfig) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = cfg.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        if let Err(e) = convert::convert_if_needed(&cfg) {
            tracing::warn!(error = %e, "could not convert the database to incremental auto-vacuum; continuing with it unchanged");
        }
        let mut conn = Connection::open(&cfg.path)?;
        configure_connection(&conn, &cfg)?;
        schema::migrate(
            &mut conn,
            schema::NewDatabaseOptions {
                page_size: cfg.page_size,
            },
        )?;
        let mode = match cfg.journal_mode {
            JournalMode::Wal => "WAL",
            JournalMode::Delete => "DELETE",
        };
        let got: String =
            conn.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))?;
        if !got.eq_ignore_ascii_case(mode) {
            return Err(StoreError::Schema(format!(
                "could not switch the database to journal mode {mode} (it is {got})"
            )));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
            if cfg.background_checkpoint || cfg.external_checkpoints {
                0
            } else {
                cfg.wal_autocheckpoint
            },
            cfg.journal_size_limit()
        ))?;
        // A resumable upload whose chunks no longer cover its recorded offset
        // starts over from 0: the original's garbage collection deletes
        // chunks without an entry, so after going back to it and returning,
        // an unfinished upload's bytes may be gone. Its client is then told
        // 0 and sends the file again; no file is ever completed with bytes
        // missing. (Its remaining chunks go with the statement below.)
        let restarted = conn.execute(
            "UPDATE picoshare_tus_uploads SET upload_offset = 0, tail = NULL
             WHERE completed = 0 AND upload_offset / chunk_size > (
                SELECT count(*) FROM entries_data d
                WHERE d.id = picoshare_tus_uploads.entry_id
                  AND d.chunk_index < picoshare_tus_uploads.upload_offset / picoshare_tus_uploads.chunk_size)",
            [],
        )?;
        if restarted > 0 {
            tracing::warn!(
                uploads = restarted,
                "resumable uploads whose stored bytes are gone start over from 0"
            );
        }
        // No upload can be in progress before the writer starts: every chunk
        // without an entry belongs to an upload that a previous run never finished.
        // Unfinished resumable uploads keep their chunks, except any stored
        // past their recorded offset by a session that never ended.
        // Nor downloaded: the old contents of replaced files go with them.
        conn.execute(
            "UPDATE picoshare_replacements SET old_content_id = NULL
             WHERE old_content_id IS NOT NULL",
            [],
        )?;
        let orphans = freeing_pages(&conn, || {
            Ok::<_, rusqlite::Error>(
                gc::delete_orphan_chunks(&conn, &[])?
                    + conn.execute(
                        "DELETE FROM entries_data WHERE rowid IN (
                SELECT d.rowid FROM picoshare_tus_uploads t JOIN entries_data d ON d.id = t.entry_id
                WHERE t.completed = 0 AND d.chunk_index >= t.upload_offset / t.chunk_size)",
                        [],
                    )?,
            )
        })?;
        if orphans > 0 {
            tracing::info!(chunks = orphans, "reclaimed chunks of unfinished uploads");
        }
        // Nothing is being downloaded before the server starts.
        limits::reset_reservations(&conn)?;
        let free_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let every_entry_has_data = history::every_entry_has_data(&conn)?;
        let counters = Arc::new(stats::Counters::default());
        let shared = Arc::new(writer::Shared::default());
        if free_pages > 0 {
            shared
                .vacuum_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let writer = writer::spawn(conn, cfg.clone(), counters.clone(), shared.clone())?;
        let opened_file = std::fs::metadata(&cfg.path).ok().map(|m| file_id(&m));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                counters,
                shared,
                readers: reader::Pool::new(cfg.clone()),
                cfg,
                writer,
                slots: Arc::default(),
                downloads: Arc::default(),
                downloads_last_batch: Default::default(),
                file_id: opened_file,
                every_entry_has_data,
                completed_downloads: Arc::default(),
                sessions: sessions::SessionCache::default(),
            }),
        })
    }

    /// Path of the database file.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.cfg.path
    }

    /// Runs `f` on a pooled read-only connection, on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` inside the writer's transaction and waits until it is durably committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.exec(f, true).await
    }

    /// Has the writer give freed pages back to the filesystem when it is idle
    /// (after deletes).
    fn space_freed(&self) {
        self.inner
            .shared
            .vacuum_wanted
            .store(true, Ordering::Relaxed);
    }

    /// Whether the database file at the configured path still answers a
    /// trivial query, through a connection of its own (not a pooled one, which
    /// would keep answering from a file deleted or replaced under it). For
    /// health checks: one open and one read of the schema page.
    ///
    /// # Errors
    /// The database cannot be opened or read.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        let opened = self.inner.file_id;
        tokio::task::spawn_blocking(move || {
            // A file put in the database's place (a careless restore) is
            // told apart by its inode, not by opening it: a new connection
            // would find the old WAL and its index beside it and read the
            // old database's pages from there. `stat` opens nothing, so
            // SQLite's locks are safe (see files.rs).
            if let Some(opened) = opened {
                match std::fs::metadata(&path) {
                    Ok(m) if file_id(&m) != opened => {
                        return Err(StoreError::Schema(format!(
                            "the file at {} was replaced: it is not the database the server opened",
                            path.display()
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Err(StoreError::Schema(format!(
                            "unable to open {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            let conn = open_read_only(&path)?;
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The store's counters, for metrics.
    pub(crate) fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    /// Stops the writer after it has committed everything queued, abandoning
    /// (and reclaiming) uploads that are still unfinished.
    pub(crate) async fn shutdown(&self) {
        // Download records still gathering go in with the final commit.
        self.flush_downloads();
        self.inner.writer.shutdown().await;
    }
}

/// The device and inode of a file.
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Opens a read-only connection for tools and tests.
///
/// # Errors
/// SQLite failures.
pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

impl Row for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(i)?)
    }
}

/// The first row of `sql`, read with `decode` (`None` if there is none).
fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(decode).transpose()
}

/// Every row of `sql`, read with `decode`.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::StoreConfig;

    #[test]
    fn the_wal_file_keeps_the_size_the_writer_lets_it_reach() {
        let mut cfg = StoreConfig::new("unused.db");
        // 256 MiB of WAL and one 64 MiB transaction past it.
        assert_eq!(cfg.journal_size_limit(), 320 << 20);
        cfg.wal_limit_bytes = 1 << 30;
        assert_eq!(cfg.journal_size_limit(), (1 << 30) + (64 << 20));
        // Never under what it was before.
        cfg.wal_limit_bytes = 1 << 20;
        cfg.commit_bytes = 1 << 20;
        assert_eq!(cfg.journal_size_limit(), 64 << 20);
        // Litestream's checkpoints, or SQLite's own: as before.
        cfg.wal_limit_bytes = 1 << 30;
        cfg.external_checkpoints = true;
        assert_eq!(cfg.journal_size_limit(), 64 << 20);
        cfg.external_checkpoints = false;
        cfg.background_checkpoint = false;
        assert_eq!(cfg.journal_size_limit(), 64 << 20);
    }
}
