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
//! - replacing an entry's content uploads the new bytes to an object of
//!   their own and points the entry at it (`entries.content_id`) in one
//!   transaction; the old object is deleted once no download reads it
//!   (`replace.rs`);
//! - deleting an entry deletes its rows and queues its object in
//!   `picoshare_deleted_objects` in one transaction; the object is deleted
//!   right after, and the queue is retried by garbage collection, so a crash
//!   never leaves an object that nothing refers to for good;
//! - rules that must hold across instances are single transactions that lock
//!   the row they count against (`SELECT … FOR UPDATE`): a guest link's upload
//!   slots, an entry's remaining downloads. Slots, download reservations and
//!   uploads in progress are rows held by an instance under a lease; another
//!   instance takes them back only by deleting them once the lease has run
//!   out, and a commit that relies on one consumes it in its own transaction,
//!   so a stalled instance can never act on what was taken back (`lease.rs`).
//!
//! Times are stored as text in the same format as in SQLite, so the queries
//! and the migration from SQLite carry every value over unchanged.
//!
//! Each area has its file, named as its counterpart in `sqlite/` (see
//! ARCHITECTURE.md); this one opens the store and holds what they share.
//! `connect.rs` builds the clients, `lease.rs` holds the instance's lease
//! (fencing, upkeep, retried clean-ups), `migrate.rs` is `--copy-to-remote`.

mod connect;
mod entries;
mod gc;
mod guest_links;
mod history;
pub(crate) mod hooks;
mod lease;
mod limits;
pub(crate) mod migrate;
mod reader;
mod replace;
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

/// How long shutdown waits for background writes and clean-ups.
const BACKGROUND_WAIT: Duration = Duration::from_secs(10);

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
    /// Seconds an instance's lease lasts without renewal: what it holds is
    /// taken back by the others after that (`lease.rs`).
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
    /// Seconds a request may go without an answer, retries included (a
    /// part upload gets one more per MiB it sends; a download, between two
    /// pieces of its body).
    pub(crate) timeout_secs: u64,
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
    /// This instance's current registration in `picoshare_instances`: a
    /// new one after its lease was taken back (see `lease.rs`).
    instance: std::sync::RwLock<String>,
    /// Held while registering again, so that requests that all find the
    /// lease lost register once.
    reregistering: tokio::sync::Mutex<()>,
    /// This process's ID in resumable uploads' leases (it stays the same
    /// when the instance registers again).
    process: String,
    counters: Arc<Counters>,
    /// Object keys this instance's downloads read (`replace.rs`).
    holds: Arc<replace::Holds>,
    stopping: AtomicBool,
    heartbeat: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Background writes and clean-ups a request left behind (a download's
    /// record, an abandoned upload's deletions): shutdown waits for them.
    background: tokio_util::task::TaskTracker,
    /// Notifications: the delivery task's wake-up (`hooks.rs`).
    hooks: crate::store::model::hooks::HookState,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A slot or reservation taken under a registration that no longer
        // exists (its lease was taken back): see `lease.rs`.
        if let Some(db) = e.as_db_error() {
            if db.code() == &tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION
                && db.constraint().is_some_and(|c| c.ends_with("_instance_fk"))
            {
                return StoreError::LeaseLost;
            }
        }
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
    /// registers this instance and starts renewing its lease, for a server:
    /// the store is marked as used by one (`--copy-to-remote` then refuses
    /// to copy into it again).
    ///
    /// # Errors
    /// Either service cannot be reached or used.
    pub(crate) async fn open(cfg: RemoteConfig) -> Result<RemoteStore, StoreError> {
        let store = Self::open_for_copy(cfg).await?;
        store
            .execute(
                "UPDATE picoshare_store_state SET served_since = now() WHERE served_since IS NULL",
                &[],
            )
            .await?;
        Ok(store)
    }

    /// [`RemoteStore::open`] for `--copy-to-remote`, which does not mark
    /// the store as used by a server.
    ///
    /// # Errors
    /// Either service cannot be reached or used.
    pub(crate) async fn open_for_copy(cfg: RemoteConfig) -> Result<RemoteStore, StoreError> {
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
                process: instance.clone(),
                instance: std::sync::RwLock::new(instance),
                reregistering: tokio::sync::Mutex::new(()),
                counters: Arc::default(),
                holds: Arc::default(),
                stopping: AtomicBool::new(false),
                heartbeat: std::sync::Mutex::new(None),
                background: tokio_util::task::TaskTracker::new(),
                hooks: Default::default(),
            }),
        };
        store.register().await?;
        store.ping_bucket().await?;
        store.start_lease_task();
        tracing::info!(instance = %store.instance(), "using PostgreSQL and object storage");
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

    /// Runs one request to the bucket, failing it if no answer comes within
    /// `PS_S3_TIMEOUT_SECS` (a hung object store otherwise holds a request
    /// forever: its port still accepts connections).
    async fn s3_call<T>(
        &self,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        self.s3_within(self.s3_timeout(), request).await
    }

    /// [`RemoteStore::s3_call`] for a request that sends `len` bytes: one
    /// more second per MiB.
    async fn s3_send<T>(
        &self,
        len: u64,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        let limit = self.s3_timeout() + Duration::from_secs(len >> 20);
        self.s3_within(limit, request).await
    }

    /// How long a request to the bucket may go without an answer.
    fn s3_timeout(&self) -> Duration {
        Duration::from_secs(self.inner.cfg.s3.timeout_secs)
    }

    async fn s3_within<T>(
        &self,
        limit: Duration,
        request: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        match tokio::time::timeout(limit, request).await {
            Ok(result) => result,
            Err(_) => Err(object_store::Error::Generic {
                store: "S3",
                source: format!("no answer within {} s", limit.as_secs()).into(),
            }),
        }
    }

    /// `now() + <lease>` in SQL (a whole number of seconds, never user text).
    fn lease_until_sql(&self) -> String {
        format!(
            "now() + interval '{} seconds'",
            self.inner.cfg.tus_lease_secs.max(1)
        )
    }

    /// The object holding an entry's bytes.
    fn object_path(&self, id: &EntryId) -> ObjectPath {
        object_path(&self.inner.cfg.s3.prefix, id)
    }

    /// The key of the object holding the bytes of entry `entry_id`.
    fn object_key(&self, entry_id: &str) -> String {
        format!("{}entries/{entry_id}", self.inner.cfg.s3.prefix)
    }

    async fn ping_bucket(&self) -> Result<(), StoreError> {
        use object_store::ObjectStore;
        let probe = ObjectPath::from(format!("{}healthz-probe", self.inner.cfg.s3.prefix));
        match self.s3_call(self.s3().head(&probe)).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::Object(format!(
                "the bucket {:?} cannot be used: {e}",
                self.inner.cfg.s3.bucket
            ))),
        }
    }

    /// Whether PostgreSQL and the bucket both answer, each within 4 s
    /// (asked at the same time, so that each failure is named).
    ///
    /// # Errors
    /// [`StoreError::Postgres`] or [`StoreError::Object`] for the one that
    /// failed, [`StoreError::Unavailable`] with both if both did.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        const WITHIN: Duration = Duration::from_secs(4);
        let no_answer = || format!("no answer within {} s", WITHIN.as_secs());
        let (pg, bucket) = tokio::join!(
            tokio::time::timeout(WITHIN, self.query_one("SELECT 1", &[])),
            tokio::time::timeout(WITHIN, self.ping_bucket()),
        );
        let pg = match pg {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(StoreError::Postgres(no_answer())),
        };
        let bucket = bucket.unwrap_or_else(|_| Err(StoreError::Object(no_answer())));
        match (pg, bucket) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(StoreError::Unavailable(vec![a, b])),
        }
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
        // The clean-ups of requests the grace period cut short run first:
        // an abandoned upload's own deletions would otherwise race the ones
        // below, and be cut short by the exit.
        let background = &self.inner.background;
        background.close();
        if tokio::time::timeout(BACKGROUND_WAIT, background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = background.len(),
                "background writes still running at exit; the next garbage collection finishes their clean-ups"
            );
        }
        if let Err(e) = self.abandon_own_uploads().await {
            tracing::warn!(error = %e, "could not abort this server's unfinished uploads");
        }
        if let Err(e) = self.forget_instance().await {
            tracing::warn!(error = %e, "could not unregister this server from PostgreSQL");
        }
    }

    /// Ends this instance's registration; its guest slots and download
    /// reservations go with it (`ON DELETE CASCADE`).
    async fn forget_instance(&self) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM picoshare_instances WHERE id = $1",
            &[&self.instance()],
        )
        .await?;
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
