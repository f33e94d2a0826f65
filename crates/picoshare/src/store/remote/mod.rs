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

mod data;
mod meta;
pub mod migrate;
mod schema;
mod tus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::ClientOptions;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use data::{RemoteRange, RemoteSink};

use super::stats::Counters;
use super::{StoreError, StoreStats};
use crate::ids::{EntryId, GuestLinkId};

/// Seconds between an instance's heartbeats.
const HEARTBEAT_SECS: u64 = 5;
/// An instance whose last heartbeat is older than this is gone: its guest
/// slots and download reservations no longer count.
pub(crate) const INSTANCE_TIMEOUT_SQL: &str = "interval '30 seconds'";
/// Smallest part S3 accepts (except the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// Most parts one multipart upload may have.
pub const MAX_PARTS: u64 = 10_000;

/// Where the metadata and the file data live.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// PostgreSQL connection URL (`postgres://user:password@host:port/database`).
    pub postgres_url: String,
    /// PostgreSQL schema for the tables (created if missing); `None`: `public`.
    pub postgres_schema: Option<String>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// PEM file of the certificate authority that signed PostgreSQL's
    /// certificate (else the system's trusted roots). TLS itself follows the
    /// URL's `sslmode` (`disable`, `prefer`, the default, or `require`).
    pub postgres_ca_file: Option<std::path::PathBuf>,
    /// Object storage.
    pub s3: S3Config,
    /// Bytes per multipart-upload part (the size grows for files that would
    /// need more than 10,000 parts, when their length is known up front).
    pub part_size: usize,
    /// Parts of one upload sent at once.
    pub parallel_parts: usize,
    /// Seconds a resumable upload's writing session keeps its lease after
    /// its last sign of progress (renewed every third of it while bytes arrive).
    pub tus_lease_secs: u64,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:3900`); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (`garage` for Garage; `us-east-1` for most others).
    pub region: String,
    /// Access key ID (else taken from `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret access key (else taken from `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// Prefix of every object key (`picoshare/`), may be empty.
    pub prefix: String,
    /// Virtual-hosted-style requests (`bucket.host`) instead of path-style.
    pub virtual_hosted: bool,
    /// Sign requests without hashing their bodies (`UNSIGNED-PAYLOAD`):
    /// saves hashing every byte; use it over TLS or a trusted network.
    pub unsigned_payload: bool,
}

/// Handle to the scale-out store; cheap to clone.
#[derive(Clone)]
pub struct RemoteStore {
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

/// Builds the object-store client for `cfg`.
///
/// # Errors
/// An invalid endpoint or missing credentials.
pub fn s3_client(cfg: &S3Config) -> Result<AmazonS3, StoreError> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_virtual_hosted_style_request(cfg.virtual_hosted)
        .with_unsigned_payload(cfg.unsigned_payload)
        // Downloads stream for as long as the client reads: no overall
        // request timeout, only one for connecting.
        .with_client_options(
            ClientOptions::new()
                .with_timeout_disabled()
                .with_connect_timeout(Duration::from_secs(10))
                .with_allow_http(
                    cfg.endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://")),
                ),
        );
    if let Some(ep) = &cfg.endpoint {
        b = b.with_endpoint(ep);
    }
    if let Some(k) = &cfg.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &cfg.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    Ok(b.build()?)
}

/// Builds the PostgreSQL pool for `cfg` (connections are opened lazily).
///
/// # Errors
/// An invalid URL or schema name.
pub fn pg_pool(cfg: &RemoteConfig) -> Result<Pool, StoreError> {
    let mut pg: tokio_postgres::Config =
        cfg.postgres_url
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                StoreError::Schema(format!("invalid PostgreSQL URL: {e}"))
            })?;
    if let Some(schema) = &cfg.postgres_schema {
        check_schema_name(schema)?;
        pg.options(format!("-c search_path={schema}"));
    }
    pg.application_name("picoshare");
    let verify = cfg.postgres_ca_file.is_some()
        || matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    let tls = postgres_tls(cfg.postgres_ca_file.as_deref(), verify)?;
    let mgr = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(cfg.pool_size.max(2))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Schema(format!("PostgreSQL pool: {e}")))
}

/// The TLS set-up for PostgreSQL connections (rustls). Whether TLS is used
/// is the URL's `sslmode`. With `verify` (`sslmode=require`, or a CA file
/// given) the server's certificate must check out against the CA file or the
/// system's trusted roots; otherwise (`prefer`, the default) the connection
/// is encrypted when the server offers TLS but, as with libpq's `prefer`,
/// its certificate is not checked (servers often run with a self-signed one).
fn postgres_tls(
    ca_file: Option<&std::path::Path>,
    verify: bool,
) -> Result<MakeRustlsConnect, StoreError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    if !verify {
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Schema(format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Unverified(provider)))
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::Schema(format!(
                    "cannot read PS_POSTGRES_CA_FILE {}: {e}",
                    path.display()
                ))
            })?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            let certs: Vec<_> = rustls_pemfile_certs(&mut reader);
            if certs.is_empty() {
                return Err(StoreError::Schema(format!(
                    "PS_POSTGRES_CA_FILE {} holds no PEM certificate",
                    path.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    StoreError::Schema(format!("PS_POSTGRES_CA_FILE {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system certificate rustls cannot parse is skipped.
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Schema(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Accepts any certificate (signatures are still checked): the encryption of
/// `sslmode=prefer`, which guards against eavesdropping, not impersonation.
#[derive(Debug)]
struct Unverified(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The certificates in a PEM stream.
fn rustls_pemfile_certs(
    reader: &mut dyn std::io::BufRead,
) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let mut all = Vec::new();
    let mut text = Vec::new();
    if reader.read_to_end(&mut text).is_err() {
        return all;
    }
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&text).flatten() {
        all.push(cert);
    }
    all
}

/// Schema names go into a connection option and a `CREATE SCHEMA`: letters,
/// digits and underscores only.
fn check_schema_name(s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "invalid PostgreSQL schema name {s:?}: use letters, digits and underscores"
        )))
    }
}

impl RemoteStore {
    /// Connects to PostgreSQL and the bucket, creates or upgrades the tables,
    /// registers this instance and starts its heartbeat.
    ///
    /// # Errors
    /// Either service cannot be reached or used.
    pub async fn open(cfg: RemoteConfig) -> Result<RemoteStore, StoreError> {
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
        let handle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(HEARTBEAT_SECS)).await;
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

    /// The object holding an entry's bytes.
    fn object_path(&self, id: &EntryId) -> ObjectPath {
        object_path(&self.inner.cfg.s3.prefix, id)
    }

    async fn beat(&self) -> Result<(), StoreError> {
        self.pg()
            .await?
            .execute(
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
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pg().await?.query_one("SELECT 1", &[]).await?;
        self.ping_bucket().await
    }

    /// The store's counters, for metrics.
    pub fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    /// Stops the heartbeat and gives up this instance's slots and reservations.
    pub async fn shutdown(&self) {
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

    /// Takes one of a guest link's `max` upload slots: counts its files, its
    /// unfinished resumable uploads and the slots held by live instances,
    /// under a lock on the link's row, so that two instances can never both
    /// take the last slot. `None` when all are taken.
    ///
    /// # Errors
    /// PostgreSQL failures.
    pub async fn reserve_guest_slot(
        &self,
        link: &GuestLinkId,
        max: u64,
    ) -> Result<Option<SlotLease>, StoreError> {
        let mut client = self.pg().await?;
        let tx = client.transaction().await?;
        let locked = tx
            .query_opt(
                "SELECT 1 FROM guest_links WHERE id = $1 FOR UPDATE",
                &[&link.as_str()],
            )
            .await?;
        if locked.is_none() {
            return Ok(None);
        }
        let used: i64 = tx
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM entries WHERE guest_link_id = $1)
                      + (SELECT count(*) FROM picoshare_tus_uploads
                            WHERE guest_link_id = $1 AND completed = 0)
                      + (SELECT count(*) FROM picoshare_guest_slots s
                            JOIN picoshare_instances i ON i.id = s.instance_id
                            WHERE s.guest_link_id = $1
                              AND i.heartbeat > now() - {INSTANCE_TIMEOUT_SQL})"
                ),
                &[&link.as_str()],
            )
            .await?
            .get(0);
        if used.max(0) as u64 >= max {
            return Ok(None);
        }
        let slot = crate::ids::random_token(16);
        tx.execute(
            "INSERT INTO picoshare_guest_slots (id, guest_link_id, instance_id, created)
             VALUES ($1, $2, $3, now())",
            &[&slot, &link.as_str(), &self.instance()],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(SlotLease {
            store: self.clone(),
            id: slot,
        }))
    }
}

/// The object key of an entry under `prefix`.
pub fn object_path(prefix: &str, id: &EntryId) -> ObjectPath {
    ObjectPath::from(format!("{prefix}entries/{}", id.as_str()))
}

/// A guest-link upload slot held in the database; dropping it gives it back.
pub struct SlotLease {
    store: RemoteStore,
    id: String,
}

impl SlotLease {
    /// The slot's row ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        let store = self.store.clone();
        let id = std::mem::take(&mut self.id);
        let release = async move {
            let done = async {
                store
                    .pg()
                    .await?
                    .execute("DELETE FROM picoshare_guest_slots WHERE id = $1", &[&id])
                    .await?;
                Ok::<_, StoreError>(())
            };
            if let Err(e) = done.await {
                // The slot stops counting when this instance stops.
                tracing::warn!(error = %e, "could not release a guest upload slot");
            }
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(release);
        }
    }
}
