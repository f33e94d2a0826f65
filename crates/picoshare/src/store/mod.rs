//! The SQLite store: entries, their chunked file data, download history and sessions.
//!
//! This is the only module that knows SQL, chunk sizes and pragmas. The HTTP layer
//! sees a narrow interface: begin an upload and stream bytes into it, look up an
//! entry, read a range of chunks, and a few metadata operations.
//!
//! Concurrency design (see ARCHITECTURE.md):
//! - **One writer thread** owns the only write connection. Every change goes to it
//!   through a bounded channel, so writes never contend for SQLite's lock, memory
//!   stays bounded, and a slow disk pushes back on the uploading clients.
//!   It batches chunk inserts into large transactions and group-commits.
//! - **Readers** use a small pool of read-only connections on blocking threads.
//!   In WAL mode they never wait for the writer, and each read is a short
//!   transaction, so a slow downloader never pins the WAL or holds a lock.

pub mod api_tokens;
mod checkpoint;
mod convert;
mod facade;
pub mod gc;
pub mod guest_links;
pub mod history;
pub mod limits;
mod reader;
pub mod remote;
pub mod schema;
pub mod settings;
pub mod shares;
mod stats;
pub mod tus;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

pub use facade::{Store, UploadSink};
pub use stats::StoreStats;
pub use writer::SqliteSink;

use crate::ids::EntryId;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk (or the database's size limit) is full.
    #[error("the disk is full")]
    DiskFull,
    /// The database is not one this server can open.
    #[error("{0}")]
    Schema(String),
    /// The writer thread has stopped (the server is shutting down).
    #[error("the database writer has stopped")]
    WriterGone,
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// The stored data is inconsistent (for example a missing chunk).
    #[error("corrupt entry data: {0}")]
    Corrupt(String),
    /// An I/O error outside SQLite.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any PostgreSQL failure (scale-out store).
    #[error("PostgreSQL error: {0}")]
    Postgres(String),
    /// Any object-storage failure (scale-out store).
    #[error("object storage error: {0}")]
    Object(String),
    /// Another server instance is writing to this resumable upload.
    #[error("another server is writing to this upload")]
    Busy,
    /// The file is larger than the storage can hold in one object.
    #[error("{0}")]
    TooLarge(String),
}

impl StoreError {
    /// Maps SQLite's "disk full" result to [`StoreError::DiskFull`].
    fn classify(e: rusqlite::Error) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::DiskFull
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

/// SQLite journal mode for the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JournalMode {
    /// Write-ahead log: readers never wait for the writer; works with Litestream.
    Wal,
    /// Rollback journal: fewer bytes written, but readers wait while the writer commits.
    Delete,
}

/// Storage tuning. The defaults are the measured best (docs/benchmarks.md); the
/// other values exist so the bench suite can compare variants of one build.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Database file path.
    pub path: PathBuf,
    /// Bytes per chunk row for new uploads (existing entries keep theirs).
    pub chunk_size: usize,
    /// Page size for newly created databases.
    pub page_size: u32,
    /// Journal mode.
    pub journal_mode: JournalMode,
    /// Commit the running write transaction after this many bytes of file data.
    pub commit_bytes: u64,
    /// SQLite page cache of the writing connections, in KiB.
    pub cache_kib: u32,
    /// SQLite page cache of each reading connection, in KiB.
    pub reader_cache_kib: u32,
    /// Start writing dirty file pages back to disk early, from a side thread,
    /// so that commits and checkpoints find little left to flush.
    pub early_writeback: bool,
    /// WAL size in pages that triggers a checkpoint (inline checkpoints only).
    pub wal_autocheckpoint: u32,
    /// Checkpoint from a separate thread instead of inside the writer's commits.
    pub background_checkpoint: bool,
    /// Leave all checkpoints to an outside process (Litestream): the server never
    /// checkpoints, as the original does when `LITESTREAM_BUCKET` is set.
    pub external_checkpoints: bool,
    /// Convert existing databases without incremental auto-vacuum at start-up.
    pub convert_existing: bool,
    /// With background checkpoints: WAL bytes after which the writer waits for
    /// the checkpointer to catch up, so the WAL restarts instead of growing.
    pub wal_limit_bytes: u64,
}

impl StoreConfig {
    /// The defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            page_size: 65536,
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

/// The original's chunk size (320 KiB).
pub const DEFAULT_CHUNK_SIZE: usize = 327_680;

/// Metadata of a stored file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its ID.
    pub id: EntryId,
    /// Filename shown to downloaders.
    pub filename: String,
    /// Content type as uploaded (may be empty).
    pub content_type: String,
    /// Upload time (UTC, whole seconds).
    pub upload_time: DateTime<Utc>,
    /// Expiration, `None` if it never expires.
    pub expiration: Option<DateTime<Utc>>,
    /// Owner's note.
    pub note: Option<String>,
    /// Guest link it came through.
    pub guest_link_id: Option<String>,
    /// Total size in bytes.
    pub size: u64,
    /// Size of every chunk but the last.
    pub chunk_size: u64,
}

/// A new entry's metadata, written when its upload completes.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Filename.
    pub filename: String,
    /// Content type, verbatim from the client.
    pub content_type: String,
    /// Upload time.
    pub upload_time: DateTime<Utc>,
    /// Expiration, `None` for never.
    pub expiration: Option<DateTime<Utc>>,
    /// Note.
    pub note: Option<String>,
    /// Guest link.
    pub guest_link_id: Option<String>,
    /// Download limit and password, stored with the entry row.
    pub limits: Option<limits::NewLimits>,
}

/// One row of download history.
#[derive(Debug, Clone)]
pub struct DownloadRecord {
    /// Entry downloaded.
    pub entry_id: EntryId,
    /// When.
    pub time: DateTime<Utc>,
    /// Client IP.
    pub client_ip: String,
    /// Client User-Agent.
    pub user_agent: String,
}

/// Handle to the SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    counters: Arc<stats::Counters>,
    shared: Arc<writer::Shared>,
    cfg: StoreConfig,
    readers: reader::Pool,
    writer: writer::WriterHandle,
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
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};",
        cfg.cache_kib
    ))?;
    Ok(())
}

fn db_time_to_utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn expiration_from_db(s: Option<String>) -> Option<DateTime<Utc>> {
    match s.as_deref() {
        None | Some(crate::validate::NEVER_EXPIRE) => None,
        Some(t) => Some(db_time_to_utc(t)),
    }
}

fn expiration_to_db(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || crate::validate::NEVER_EXPIRE.to_owned(),
        crate::validate::db_time,
    )
}

impl SqliteStore {
    /// Opens (creating if needed) the database, upgrades its schema, reclaims the
    /// chunks of uploads that a previous run left unfinished, and starts the writer.
    ///
    /// # Errors
    /// Any failure to open or upgrade the database.
    pub fn open(cfg: StoreConfig) -> Result<SqliteStore, StoreError> {
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
            64 << 20
        ))?;
        // No upload can be in progress before the writer starts: every chunk
        // without an entry belongs to an upload that a previous run never finished.
        // Unfinished resumable uploads keep their chunks, except any stored
        // past their recorded offset by a session that never ended.
        let orphans = conn.execute(
            "DELETE FROM entries_data WHERE id NOT IN (SELECT id FROM entries)
                AND id NOT IN (SELECT entry_id FROM picoshare_tus_uploads WHERE completed = 0)",
            [],
        )? + conn.execute(
            "DELETE FROM entries_data WHERE rowid IN (
                SELECT d.rowid FROM picoshare_tus_uploads t JOIN entries_data d ON d.id = t.entry_id
                WHERE t.completed = 0 AND d.chunk_index >= t.upload_offset / t.chunk_size)",
            [],
        )?;
        if orphans > 0 {
            tracing::info!(chunks = orphans, "reclaimed chunks of unfinished uploads");
        }
        // Nothing is being downloaded before the server starts.
        limits::reset_reservations(&conn)?;
        let free_pages: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let counters = Arc::new(stats::Counters::default());
        let shared = Arc::new(writer::Shared::default());
        if free_pages > 0 {
            shared
                .vacuum_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let writer = writer::spawn(conn, cfg.clone(), counters.clone(), shared.clone())?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                counters,
                shared,
                readers: reader::Pool::new(cfg.clone()),
                cfg,
                writer,
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.cfg
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
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

    /// Starts an upload of a new entry with ID `id`. Nothing is visible until
    /// [`UploadSink::finish`] returns; dropping the sink abandons the upload and
    /// reclaims its chunks.
    pub fn begin_upload(&self, id: EntryId) -> SqliteSink {
        self.inner
            .writer
            .begin_upload(id, self.inner.cfg.chunk_size)
    }

    /// Whether the database file at the configured path still answers a
    /// trivial query, through a connection of its own (not a pooled one, which
    /// would keep answering from a file deleted or replaced under it). For
    /// health checks: one open and one read of the schema page.
    ///
    /// # Errors
    /// The database cannot be opened or read.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let path = self.path().to_owned();
        tokio::task::spawn_blocking(move || {
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
    pub fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    /// Looks up an entry's metadata and size. Entries without any data are
    /// treated as missing, as in the original.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn entry(&self, id: &EntryId) -> Result<Option<Entry>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    "SELECT filename, content_type, upload_time, expiration_time, note, guest_link_id,
                        (SELECT sum(length(chunk)) FROM entries_data d WHERE d.id = e.id),
                        (SELECT length(chunk) FROM entries_data d WHERE d.id = e.id AND d.chunk_index = 0)
                     FROM entries e WHERE e.id = ?1",
                    [id.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                        ))
                    },
                )
                .optional()?;
            let Some((filename, content_type, upload, exp, note, guest, size, chunk)) = row else {
                return Ok(None);
            };
            let (Some(size), Some(chunk)) = (size, chunk) else {
                return Ok(None);
            };
            Ok(Some(Entry {
                id,
                filename,
                content_type,
                upload_time: db_time_to_utc(&upload),
                expiration: expiration_from_db(exp),
                note,
                guest_link_id: guest.filter(|g| !g.is_empty()),
                size: size as u64,
                chunk_size: chunk as u64,
            }))
        })
        .await
    }

    /// Reads chunks `first..=last` of entry `id`, in order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a chunk is missing; SQLite failures.
    pub async fn read_chunks(
        &self,
        id: &EntryId,
        first: u64,
        last: u64,
    ) -> Result<Vec<Bytes>, StoreError> {
        let id = id.clone();
        let counters = self.inner.counters.clone();
        self.read(move |conn| {
            let started = std::time::Instant::now();
            let chunks = reader::read_chunks(conn, id.as_str(), first, last)?;
            stats::Counters::add(&counters.read_ns, started.elapsed().as_nanos() as u64);
            let n: usize = chunks.iter().map(Bytes::len).sum();
            stats::Counters::add(&counters.read_bytes, n as u64);
            Ok(chunks)
        })
        .await
    }

    /// Changes an entry's filename, expiration and note. Returns whether it exists.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn update_entry(
        &self,
        id: &EntryId,
        filename: String,
        expiration: Option<DateTime<Utc>>,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE entries SET filename = ?2, expiration_time = ?3, note = ?4 WHERE id = ?1",
                params![id.as_str(), filename, expiration_to_db(expiration), note],
            )?;
            Ok(n > 0)
        })
        .await
    }

    /// Deletes an entry with its data and download history (nothing if absent).
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn delete_entry(&self, id: &EntryId) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            conn.execute("DELETE FROM downloads WHERE entry_id = ?1", [id.as_str()])?;
            conn.execute("DELETE FROM entries_data WHERE id = ?1", [id.as_str()])?;
            conn.execute("DELETE FROM entries WHERE id = ?1", [id.as_str()])?;
            limits::delete_for_entry(conn, id.as_str())?;
            shares::delete_for_entry(conn, id.as_str())?;
            Ok(())
        })
        .await?;
        self.inner
            .shared
            .vacuum_wanted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Records a download. Fire-and-forget: the reply does not wait for it.
    pub fn record_download(&self, rec: DownloadRecord) {
        self.inner.writer.exec_detached(move |conn| {
            conn.execute(
                "INSERT INTO downloads (entry_id, download_timestamp, client_ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    rec.entry_id.as_str(),
                    crate::validate::db_time(rec.time),
                    rec.client_ip,
                    rec.user_agent
                ],
            )?;
            Ok(())
        });
    }

    /// Stores a new login session by the SHA-256 of its token.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn create_session(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM picoshare_sessions WHERE expiration_time < ?1",
                [crate::validate::db_time(now)],
            )?;
            conn.execute(
                "INSERT INTO picoshare_sessions (token_sha256, created_time, expiration_time)
                 VALUES (?1, ?2, ?3)",
                params![
                    token_sha256,
                    crate::validate::db_time(now),
                    crate::validate::db_time(expires)
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a session with this token hash exists and has not expired.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn session_valid(
        &self,
        token_sha256: String,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |conn| {
            let found: Option<String> = conn
                .query_row(
                    "SELECT expiration_time FROM picoshare_sessions WHERE token_sha256 = ?1",
                    [token_sha256],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(found.is_some_and(|t| db_time_to_utc(&t) > now))
        })
        .await
    }

    /// Revokes a session.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn delete_session(&self, token_sha256: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM picoshare_sessions WHERE token_sha256 = ?1",
                [token_sha256],
            )?;
            Ok(())
        })
        .await
    }

    /// Stops the writer after it has committed everything queued, abandoning
    /// (and reclaiming) uploads that are still unfinished.
    pub async fn shutdown(&self) {
        self.inner.writer.shutdown().await;
    }
}

/// Opens a read-only connection for tools and tests.
///
/// # Errors
/// SQLite failures.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}
