//! The scale-out store: metadata in PostgreSQL, file data in S3-compatible
//! object storage. Several server processes may share one database and one
//! bucket and behave as one server.
//!
//! Layout:
//! - every entry is one object, `{prefix}entries/{entry id}`, written by a
//!   multipart upload (or one PUT when it is smaller than a part); its row in
//!   `entries` is inserted only after the object is complete, so a file is
//!   visible only when all of its bytes are stored;
//! - uploads in progress are recorded in `picoshare_pending_uploads` (entry,
//!   multipart upload ID, server instance) before the first byte goes out, so
//!   that the multipart upload of a server that crashed is aborted by garbage
//!   collection on any instance;
//! - deleting an entry deletes its rows and queues its object in
//!   `picoshare_deleted_objects` in one transaction; the object is deleted
//!   right after, and the queue is retried by garbage collection, so a crash
//!   never leaves an object that nothing refers to for good;
//! - rules that must hold across instances are single transactions that lock
//!   the row they count against (`SELECT … FOR UPDATE`): a guest link's upload
//!   slots, an entry's remaining downloads. Slots and download reservations
//!   are rows owned by an instance; every instance writes a heartbeat, and the
//!   rows of an instance whose heartbeat stopped no longer count.
//!
//! Times are stored as text in the same format as in SQLite, so the queries
//! and the migration from SQLite carry every value over unchanged.
//!
//! Each area has its file, named as its counterpart in `sqlite/` (see
//! ARCHITECTURE.md); this one opens the store, runs the heartbeat, and holds
//! what they share. `connect.rs` builds the clients, `migrate.rs` is
//! `--copy-to-remote`.

mod connect;
mod entries;
mod gc;
mod guest_links;
mod history;
mod limits;
pub(crate) mod migrate;
mod reader;
mod schema;
mod sessions;
mod settings;
mod shares;
mod tokens;
mod tus;
mod upload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;

use connect::{pg_pool, s3_client};
pub(crate) use guest_links::SlotLease;
pub(crate) use reader::RemoteRange;
pub(crate) use upload::{RemoteSink, RemoteTusSink};

use super::model::sql::Row;
use tokio_postgres::Row as PgRow;

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];
use super::stats::Counters;
use super::{StoreError, StoreStats};
use crate::ids::EntryId;

/// Smallest part S3 accepts (except the last).
pub(crate) const MIN_PART_SIZE: usize = 5 << 20;
/// Most parts one multipart upload may have.
pub(crate) const MAX_PARTS: u64 = 10_000;

/// Where the metadata and the file data live.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// PostgreSQL connection URL (`postgres://user:password@host:port/database`).
    pub(crate) postgres_url: String,
    /// PostgreSQL schema for the tables (created if missing); `None`: `public`.
    pub(crate) postgres_schema: Option<String>,
    /// Connections in the pool.
    pub(crate) pool_size: usize,
    /// PEM file of the certificate authority that signed PostgreSQL's
    /// certificate (else the system's trusted roots). TLS itself follows the
    /// URL's `sslmode` (`disable`, `prefer`, the default, or `require`).
    pub(crate) postgres_ca_file: Option<std::path::PathBuf>,
    /// Object storage.
    pub(crate) s3: S3Config,
    /// Bytes per multipart-upload part (the size grows for files that would
    /// need more than 10,000 parts, when their length is known up front).
    pub(crate) part_size: usize,
    /// Parts of one upload sent at once.
    pub(crate) parallel_parts: usize,
    /// Seconds a resumable upload's writing session keeps its lease after
    /// its last sign of progress (renewed every third of it while bytes arrive).
    pub(crate) tus_lease_secs: u64,
    /// Seconds an instance's heartbeat may stop before its guest slots and
    /// download reservations no longer count.
    pub(crate) instance_lease_secs: u64,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub(crate) struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:3900`); `None` for AWS itself.
    pub(crate) endpoint: Option<String>,
    /// Bucket name.
    pub(crate) bucket: String,
    /// Region (`garage` for Garage; `us-east-1` for most others).
    pub(crate) region: String,
    /// Access key ID (else taken from `AWS_ACCESS_KEY_ID`).
    pub(crate) access_key_id: Option<String>,
    /// Secret access key (else taken from `AWS_SECRET_ACCESS_KEY`).
    pub(crate) secret_access_key: Option<String>,
    /// Prefix of every object key (`picoshare/`), may be empty.
    pub(crate) prefix: String,
    /// Virtual-hosted-style requests (`bucket.host`) instead of path-style.
    pub(crate) virtual_hosted: bool,
    /// Sign requests without hashing their bodies (`UNSIGNED-PAYLOAD`):
    /// saves hashing every byte; use it over TLS or a trusted network.
    pub(crate) unsigned_payload: bool,
}

/// Handle to the scale-out store; cheap to clone.
#[derive(Clone)]
pub(crate) struct RemoteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    s3: Arc<AmazonS3>,
    cfg: RemoteConfig,
    /// This process's ID in `picoshare_instances`.
    instance: String,
    counters: Arc<Counters>,
    stopping: AtomicBool,
    heartbeat: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The error's own text is only "db error" for errors the server reported.
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!(
                "{} ({}){}",
                db.message(),
                db.code().code(),
                db.detail().map(|d| format!(": {d}")).unwrap_or_default()
            )),
            None => StoreError::Postgres(with_causes(&e)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Postgres(with_causes(&e))
    }
}

/// An error's text followed by its causes': the outer texts are often
/// generic ("error performing TLS handshake"), the causes say why.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        StoreError::Object(e.to_string())
    }
}

impl RemoteStore {
    /// Connects to PostgreSQL and the bucket, creates or upgrades the tables,
    /// registers this instance and starts its heartbeat.
    ///
    /// # Errors
    /// Either service cannot be reached or used.
    pub(crate) async fn open(cfg: RemoteConfig) -> Result<RemoteStore, StoreError> {
        let pool = pg_pool(&cfg)?;
        {
            let mut client = pool.get().await?;
            schema::migrate(&mut client, cfg.postgres_schema.as_deref()).await?;
        }
        let s3 = Arc::new(s3_client(&cfg.s3)?);
        let instance = crate::ids::random_token(16);
        let store = RemoteStore {
            inner: Arc::new(Inner {
                pool,
                s3,
                cfg,
                instance,
                counters: Arc::default(),
                stopping: AtomicBool::new(false),
                heartbeat: std::sync::Mutex::new(None),
            }),
        };
        store.beat().await?;
        store.ping_bucket().await?;
        let weak = Arc::downgrade(&store.inner);
        let beat_every = Duration::from_millis(store.inner.cfg.instance_lease_secs * 1000 / 6);
        let handle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(beat_every).await;
                let Some(inner) = weak.upgrade() else { return };
                let s = RemoteStore { inner };
                if s.inner.stopping.load(Ordering::Relaxed) {
                    return;
                }
                if let Err(e) = s.beat().await {
                    tracing::warn!(error = %e, "could not record this server's heartbeat");
                }
            }
        });
        *store
            .inner
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle);
        tracing::info!(instance = %store.inner.instance, "using PostgreSQL and object storage");
        Ok(store)
    }

    /// A pooled PostgreSQL connection.
    async fn pg(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs one statement on a pooled connection; returns the rows it changed.
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        Ok(self.pg().await?.execute(sql, params).await?)
    }

    /// Runs one query on a pooled connection.
    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<PgRow>, StoreError> {
        Ok(self.pg().await?.query(sql, params).await?)
    }

    /// Runs one query on a pooled connection; its row, if there is one.
    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<PgRow>, StoreError> {
        Ok(self.pg().await?.query_opt(sql, params).await?)
    }

    /// Runs one query that returns exactly one row on a pooled connection.
    async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<PgRow, StoreError> {
        Ok(self.pg().await?.query_one(sql, params).await?)
    }

    fn s3(&self) -> &Arc<AmazonS3> {
        &self.inner.s3
    }

    fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// `now() + <lease>` in SQL (a whole number of seconds, never user text).
    fn lease_until_sql(&self) -> String {
        format!(
            "now() + interval '{} seconds'",
            self.inner.cfg.tus_lease_secs.max(1)
        )
    }

    /// `interval '<lease> seconds'` in SQL: how long an instance's heartbeat
    /// may stop before what it holds stops counting.
    fn instance_timeout_sql(&self) -> String {
        format!("interval '{} seconds'", self.inner.cfg.instance_lease_secs)
    }

    /// The object holding an entry's bytes.
    fn object_path(&self, id: &EntryId) -> ObjectPath {
        object_path(&self.inner.cfg.s3.prefix, id)
    }

    /// The key of the object holding the bytes of entry `entry_id`.
    fn object_key(&self, entry_id: &str) -> String {
        format!("{}entries/{entry_id}", self.inner.cfg.s3.prefix)
    }

    async fn beat(&self) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO picoshare_instances (id, started, heartbeat) VALUES ($1, now(), now())
                 ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
            &[&self.instance()],
        )
        .await?;
        Ok(())
    }

    async fn ping_bucket(&self) -> Result<(), StoreError> {
        use object_store::ObjectStore;
        let probe = ObjectPath::from(format!("{}healthz-probe", self.inner.cfg.s3.prefix));
        match self.s3().head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::Object(format!(
                "the bucket {:?} cannot be used: {e}",
                self.inner.cfg.s3.bucket
            ))),
        }
    }

    /// Whether PostgreSQL and the bucket both answer.
    ///
    /// # Errors
    /// Either cannot be reached.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.query_one("SELECT 1", &[]).await?;
        self.ping_bucket().await
    }

    /// The store's counters, for metrics.
    pub(crate) fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    /// Stops the heartbeat and gives up this instance's slots and reservations.
    pub(crate) async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        let handle = self
            .inner
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            h.abort();
        }
        if let Err(e) = self.abandon_own_uploads().await {
            tracing::warn!(error = %e, "could not abort this server's unfinished uploads");
        }
        if let Err(e) = self.forget_instance().await {
            tracing::warn!(error = %e, "could not unregister this server from PostgreSQL");
        }
    }

    async fn forget_instance(&self) -> Result<(), StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let me = self.instance();
        tx.execute(
            "DELETE FROM picoshare_guest_slots WHERE instance_id = $1",
            &[&me],
        )
        .await?;
        tx.execute(
            "DELETE FROM picoshare_download_reservations WHERE instance_id = $1",
            &[&me],
        )
        .await?;
        tx.execute("DELETE FROM picoshare_instances WHERE id = $1", &[&me])
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The object key of an entry under `prefix`.
pub(crate) fn object_path(prefix: &str, id: &EntryId) -> ObjectPath {
    ObjectPath::from(format!("{prefix}entries/{}", id.as_str()))
}

impl Row for tokio_postgres::Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get(i)?)
    }
}
