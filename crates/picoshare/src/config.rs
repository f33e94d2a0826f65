//! Command-line flags and environment variables.
//!
//! The original's configuration carries over unchanged: `-db PATH` (also `--db`),
//! `PORT`, `PS_SHARED_SECRET` / `PS_SHARED_SECRET_FILE` and `PS_BEHIND_PROXY`.
//! New: `--listen` to choose the bind address, the timeouts that protect against
//! slow and stalled clients, and storage tuning flags that the bench suite uses
//! to compare settings of one build.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

use crate::store::{JournalMode, StoreConfig};

/// Raw command line.
#[derive(Debug, Parser)]
#[command(
    name = "picoshare",
    version,
    about = "A minimalist, self-hosted file-sharing server"
)]
pub struct Cli {
    /// Path of the SQLite database (created with its folders if missing).
    #[arg(long = "db", value_name = "PATH", default_value = "data/store.db")]
    pub db: PathBuf,

    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4001)]
    pub(crate) port: u16,

    /// Address to listen on: an IP (with PORT) or IP:PORT. Default: all interfaces.
    #[arg(long, env = "PS_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "PS_SHUTDOWN_GRACE", default_value_t = 30)]
    pub(crate) shutdown_grace: u64,

    /// Seconds between garbage collections of expired files (also run at start-up).
    #[arg(long, env = "PS_GC_INTERVAL", default_value_t = 3600)]
    pub(crate) gc_interval: u64,

    /// Hours an unfinished resumable upload is kept after its last bytes arrived.
    #[arg(long, env = "PS_TUS_EXPIRY_HOURS", default_value_t = 24)]
    tus_expiry_hours: u64,

    /// MiB per request the web page sends a resumable upload in (0: as few
    /// requests as possible). Set it below a reverse proxy's body limit.
    #[arg(long, env = "PS_TUS_REQUEST_MIB", default_value_t = 0)]
    tus_request_mib: u64,
    /// Seconds a client may take to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "PS_HEADER_TIMEOUT", default_value_t = 10)]
    pub(crate) header_timeout: u64,

    /// Seconds a request body may send nothing before the request is cut off
    /// (an idle timeout: a slow but moving upload is never cut).
    #[arg(long, env = "PS_BODY_IDLE_TIMEOUT", default_value_t = 60)]
    pub(crate) body_idle_timeout: u64,

    /// Seconds a response may wait for a client that reads nothing before the
    /// connection is closed (an idle timeout, like the one on request bodies).
    #[arg(long, env = "PS_SEND_TIMEOUT", default_value_t = 60)]
    pub(crate) send_timeout: u64,

    /// Convert databases without incremental auto-vacuum at start-up (0 to skip).
    #[arg(long, env = "PS_CONVERT_DB", default_value_t = 1)]
    convert_db: u8,

    /// Log line format on stderr: `text` for people, `json` (one object per
    /// line) for log collectors.
    #[arg(long, env = "PS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Testing aid: read "now" from this file (RFC 3339) instead of the system clock.
    #[arg(long, env = "PS_CLOCK_FILE", hide = true)]
    pub(crate) clock_file: Option<PathBuf>,

    /// Testing aid: sizes and offsets from which share ZIPs use ZIP64 records
    /// (0 forces them on every archive).
    #[arg(long, env = "PS_ZIP64_THRESHOLD", hide = true, default_value_t = crate::http::proto::zipstream::ZIP64_LIMIT)]
    pub(crate) zip64_threshold: u64,

    /// Bytes per stored chunk for new uploads.
    #[arg(long, env = "PS_CHUNK_SIZE", default_value_t = crate::store::DEFAULT_CHUNK_SIZE, help_heading = "Storage tuning")]
    pub(crate) chunk_size: usize,

    /// SQLite page size for newly created databases.
    #[arg(
        long,
        env = "PS_PAGE_SIZE",
        default_value_t = 65536,
        help_heading = "Storage tuning"
    )]
    pub(crate) page_size: u32,

    /// SQLite journal mode (wal keeps Litestream working and never blocks readers).
    #[arg(
        long,
        env = "PS_JOURNAL_MODE",
        value_enum,
        default_value = "wal",
        help_heading = "Storage tuning"
    )]
    pub(crate) journal_mode: JournalMode,

    /// Commit the upload transaction every this many MiB.
    #[arg(
        long,
        env = "PS_COMMIT_MIB",
        default_value_t = 64,
        help_heading = "Storage tuning"
    )]
    commit_mib: u64,

    /// SQLite page cache of the writer, in KiB.
    #[arg(
        long,
        env = "PS_CACHE_KIB",
        default_value_t = 256,
        help_heading = "Storage tuning"
    )]
    pub(crate) cache_kib: u32,

    /// SQLite page cache of each reader (downloads), in KiB.
    #[arg(
        long,
        env = "PS_READER_CACHE_KIB",
        default_value_t = 4096,
        help_heading = "Storage tuning"
    )]
    pub(crate) reader_cache_kib: u32,

    /// Start disk writeback of new data early (0 to disable).
    #[arg(
        long,
        env = "PS_EARLY_WRITEBACK",
        default_value_t = 1,
        help_heading = "Storage tuning"
    )]
    pub(crate) early_writeback: u8,

    /// Checkpoint the WAL from a background thread (0: inside commits).
    #[arg(
        long,
        env = "PS_BACKGROUND_CHECKPOINT",
        default_value_t = 1,
        help_heading = "Storage tuning"
    )]
    pub(crate) background_checkpoint: u8,

    /// With background checkpoints: WAL size (MiB) at which the writer waits for them.
    #[arg(
        long,
        env = "PS_WAL_LIMIT_MIB",
        default_value_t = 256,
        help_heading = "Storage tuning"
    )]
    wal_limit_mib: u64,

    /// WAL pages that trigger an automatic checkpoint (inline checkpoints only).
    #[arg(
        long,
        env = "PS_WAL_AUTOCHECKPOINT",
        default_value_t = 1000,
        help_heading = "Storage tuning"
    )]
    pub(crate) wal_autocheckpoint: u32,

    /// PostgreSQL URL for the metadata (postgres://user:password@host:port/db).
    /// Setting it moves file data to the S3 bucket PS_S3_BUCKET; --db is then
    /// not used (except by --copy-to-remote).
    #[arg(
        long,
        env = "PS_POSTGRES_URL",
        hide_env_values = true,
        help_heading = "Scale-out storage"
    )]
    pub(crate) postgres_url: Option<String>,

    /// PostgreSQL schema for the tables (created if missing). Default: public.
    #[arg(long, env = "PS_POSTGRES_SCHEMA", help_heading = "Scale-out storage")]
    pub(crate) postgres_schema: Option<String>,

    /// PEM file of the CA that signed PostgreSQL's certificate (for
    /// `sslmode=require` in the URL; default: the system's trusted roots).
    #[arg(long, env = "PS_POSTGRES_CA_FILE", help_heading = "Scale-out storage")]
    pub(crate) postgres_ca_file: Option<PathBuf>,

    /// PostgreSQL connections per server process.
    #[arg(
        long,
        env = "PS_POSTGRES_POOL",
        default_value_t = 16,
        help_heading = "Scale-out storage"
    )]
    postgres_pool: usize,

    /// S3 endpoint URL (Garage, MinIO, Ceph, R2…); unset for AWS S3 itself.
    #[arg(long, env = "PS_S3_ENDPOINT", help_heading = "Scale-out storage")]
    s3_endpoint: Option<String>,

    /// S3 bucket for file data (must exist).
    #[arg(long, env = "PS_S3_BUCKET", help_heading = "Scale-out storage")]
    s3_bucket: Option<String>,

    /// S3 region (Garage's default is `garage`).
    #[arg(
        long,
        env = "PS_S3_REGION",
        default_value = "us-east-1",
        help_heading = "Scale-out storage"
    )]
    s3_region: String,

    /// S3 access key ID (default: AWS_ACCESS_KEY_ID).
    #[arg(long, env = "PS_S3_ACCESS_KEY_ID", help_heading = "Scale-out storage")]
    s3_access_key_id: Option<String>,

    /// S3 secret access key (default: AWS_SECRET_ACCESS_KEY).
    #[arg(
        long,
        env = "PS_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        help_heading = "Scale-out storage"
    )]
    s3_secret_access_key: Option<String>,

    /// Prefix of every object key, such as `picoshare/`.
    #[arg(
        long,
        env = "PS_S3_PREFIX",
        default_value = "",
        help_heading = "Scale-out storage"
    )]
    s3_prefix: String,

    /// Use virtual-hosted-style requests (bucket.host) instead of path-style (1 or 0).
    #[arg(
        long,
        env = "PS_S3_VIRTUAL_HOSTED",
        default_value_t = 0,
        help_heading = "Scale-out storage"
    )]
    s3_virtual_hosted: u8,

    /// MiB per part of the multipart uploads that carry file data (5 to 5120).
    #[arg(
        long,
        env = "PS_S3_PART_MIB",
        default_value_t = 8,
        help_heading = "Scale-out storage"
    )]
    s3_part_mib: usize,

    /// Sign S3 requests without hashing their bodies: `1`, `0`, or `auto`
    /// (unsigned over https:// and to loopback addresses, where nothing on
    /// the way can change the bytes; signed otherwise). Saves hashing every byte.
    #[arg(
        long,
        env = "PS_S3_UNSIGNED_PAYLOAD",
        default_value = "auto",
        help_heading = "Scale-out storage"
    )]
    s3_unsigned_payload: String,

    /// Parts of one upload sent to the bucket at once (1 to 16); each holds
    /// one part of memory.
    #[arg(
        long,
        env = "PS_S3_PARALLEL_PARTS",
        default_value_t = 2,
        help_heading = "Scale-out storage"
    )]
    s3_parallel_parts: usize,

    /// Seconds a resumable upload stays reserved for the server that received
    /// its last bytes (another server answers 423 until then). For tests.
    #[arg(long, env = "PS_TUS_LEASE_SECS", default_value_t = 30, hide = true)]
    pub(crate) tus_lease_secs: u64,

    /// Copy the SQLite database at --db (ours or the original PicoShare's)
    /// into PostgreSQL and object storage, check every file's SHA-256, then exit.
    #[arg(long, help_heading = "Scale-out storage")]
    pub copy_to_remote: bool,
}

/// Whether S3 request bodies go unhashed (`UNSIGNED-PAYLOAD`): `auto`
/// chooses it where the bytes cannot be changed on the way: over TLS (AWS
/// itself, or an https:// endpoint) and to a loopback address.
fn unsigned_payload(setting: &str, endpoint: Option<&str>) -> anyhow::Result<bool> {
    match setting.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        "auto" | "" => Ok(match endpoint.filter(|e| !e.is_empty()) {
            None => true,
            Some(e) if e.starts_with("https://") => true,
            Some(e) => {
                let host = e
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }),
        other => bail!("PS_S3_UNSIGNED_PAYLOAD must be 1, 0 or auto, not {other:?}"),
    }
}

/// The scale-out storage settings, if PS_POSTGRES_URL or PS_S3_BUCKET is set.
///
/// # Errors
/// One of the two set without the other, or a value out of range.
pub fn remote_config(cli: &Cli) -> anyhow::Result<Option<crate::store::remote::RemoteConfig>> {
    use crate::store::remote::{RemoteConfig, S3Config};
    let url = cli.postgres_url.clone().filter(|s| !s.is_empty());
    let bucket = cli.s3_bucket.clone().filter(|s| !s.is_empty());
    let (postgres_url, bucket) = match (url, bucket) {
        (None, None) => return Ok(None),
        (Some(u), Some(b)) => (u, b),
        (Some(_), None) => bail!(
            "PS_POSTGRES_URL is set but PS_S3_BUCKET is not: with PostgreSQL for metadata, file data goes to an S3 bucket"
        ),
        (None, Some(_)) => bail!(
            "PS_S3_BUCKET is set but PS_POSTGRES_URL is not: file data in S3 needs PostgreSQL for metadata"
        ),
    };
    if !(5..=5120).contains(&cli.s3_part_mib) {
        bail!("PS_S3_PART_MIB must be between 5 and 5120");
    }
    if !(1..=16).contains(&cli.s3_parallel_parts) {
        bail!("PS_S3_PARALLEL_PARTS must be between 1 and 16");
    }
    Ok(Some(RemoteConfig {
        postgres_url,
        postgres_schema: cli.postgres_schema.clone().filter(|s| !s.is_empty()),
        pool_size: cli.postgres_pool.clamp(2, 1000),
        postgres_ca_file: cli.postgres_ca_file.clone(),
        s3: S3Config {
            endpoint: cli.s3_endpoint.clone().filter(|s| !s.is_empty()),
            bucket,
            region: cli.s3_region.clone(),
            access_key_id: cli.s3_access_key_id.clone().filter(|s| !s.is_empty()),
            secret_access_key: cli.s3_secret_access_key.clone().filter(|s| !s.is_empty()),
            prefix: cli.s3_prefix.clone(),
            virtual_hosted: cli.s3_virtual_hosted != 0,
            unsigned_payload: unsigned_payload(
                &cli.s3_unsigned_payload,
                cli.s3_endpoint.as_deref(),
            )?,
        },
        part_size: cli.s3_part_mib << 20,
        parallel_parts: cli.s3_parallel_parts,
        tus_lease_secs: cli.tus_lease_secs.clamp(1, 3600),
    }))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// Whether `listen` is the default (all interfaces), which falls back to
    /// IPv4 only where IPv6 is unavailable.
    pub(crate) listen_is_default: bool,
    /// The admin passphrase.
    pub(crate) shared_secret: String,
    /// Whether a reverse proxy sits in front (trust its forwarding headers,
    /// see `http::proto::proxy`).
    pub(crate) behind_proxy: bool,
    /// Storage settings.
    pub(crate) store: StoreConfig,
    /// Scale-out storage (PostgreSQL + S3) instead of SQLite, when set.
    pub(crate) remote: Option<crate::store::remote::RemoteConfig>,
    /// Grace period for shutdown.
    pub(crate) shutdown_grace: std::time::Duration,
    /// Serve `/metrics` without a session.
    pub(crate) metrics_public: bool,
    /// Testing aid: the file the clock reads "now" from.
    pub(crate) clock_file: Option<PathBuf>,
    /// Sizes and offsets from which share ZIPs use ZIP64 records.
    pub(crate) zip64_threshold: u64,
    /// Time between garbage collections.
    pub(crate) gc_interval: std::time::Duration,
    /// How long an unfinished resumable upload lives without progress.
    pub(crate) tus_expiry: chrono::Duration,
    /// Bytes per request of the web page's resumable uploads (0: unlimited).
    pub(crate) tus_request_bytes: u64,
    /// Time a client may take to send a request head (and idle keep-alive time).
    pub(crate) header_timeout: std::time::Duration,
    /// Time a request body may send nothing.
    pub(crate) body_idle_timeout: std::time::Duration,
    /// Time a response may wait for a client that reads nothing.
    pub(crate) send_timeout: std::time::Duration,
}

/// Accepts the original's single-dash `-db` spelling alongside `--db`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            if a == "-db" {
                "--db".to_owned()
            } else if let Some(rest) = a.strip_prefix("-db=") {
                format!("--db={rest}")
            } else {
                a
            }
        })
        .collect()
}

fn read_secret(secret: Option<String>, secret_file: Option<String>) -> anyhow::Result<String> {
    let value = match secret_file.filter(|f| !f.is_empty()) {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("could not read PS_SHARED_SECRET_FILE ({path})"))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        None => secret.unwrap_or_default(),
    };
    if value.is_empty() {
        bail!(
            "no admin passphrase: set the PS_SHARED_SECRET environment variable \
             (or PS_SHARED_SECRET_FILE to a file that holds it) to a non-empty value"
        );
    }
    Ok(value)
}

/// A timeout in whole seconds: at least 1 (a zero timeout would cut every
/// request) and at most a day.
fn positive_secs(flag: &str, secs: u64) -> anyhow::Result<std::time::Duration> {
    if !(1..=86_400).contains(&secs) {
        bail!("{flag} must be between 1 and 86400 seconds");
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn listen_addr(listen: Option<&str>, port: u16) -> anyhow::Result<SocketAddr> {
    let Some(raw) = listen.filter(|s| !s.is_empty()) else {
        // All interfaces, IPv6 and (dual-stack) IPv4, like the original.
        return Ok(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    };
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--listen {raw:?} is neither an IP address nor IP:PORT"))?;
    Ok(SocketAddr::new(ip, port))
}

impl Config {
    /// Whether the files are kept in PostgreSQL and object storage rather
    /// than in the SQLite file.
    pub fn uses_remote_store(&self) -> bool {
        self.remote.is_some()
    }

    /// Builds the configuration from the command line and the environment.
    ///
    /// # Errors
    /// A message naming the setting that is missing or wrong.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Config> {
        Self::from_parts(
            cli,
            std::env::var("PS_SHARED_SECRET").ok(),
            std::env::var("PS_SHARED_SECRET_FILE").ok(),
            std::env::var("PS_BEHIND_PROXY").ok(),
            std::env::var("LITESTREAM_BUCKET").ok(),
        )
        .map(|mut c| {
            c.metrics_public = std::env::var("PS_METRICS_PUBLIC").is_ok_and(|v| !v.is_empty());
            c
        })
    }

    fn from_parts(
        cli: Cli,
        secret: Option<String>,
        secret_file: Option<String>,
        behind_proxy: Option<String>,
        litestream_bucket: Option<String>,
    ) -> anyhow::Result<Config> {
        if cli.chunk_size < 4096 || cli.chunk_size > (64 << 20) {
            bail!("--chunk-size must be between 4096 and 67108864 bytes");
        }
        if !cli.page_size.is_power_of_two() || !(512..=65536).contains(&cli.page_size) {
            bail!("--page-size must be a power of two between 512 and 65536");
        }
        let remote = remote_config(&cli)?;
        let mut store = StoreConfig::new(cli.db);
        store.chunk_size = cli.chunk_size;
        store.page_size = cli.page_size;
        store.journal_mode = cli.journal_mode;
        store.commit_bytes = cli.commit_mib.max(1) << 20;
        store.cache_kib = cli.cache_kib.max(64);
        store.reader_cache_kib = cli.reader_cache_kib.max(64);
        store.early_writeback = cli.early_writeback != 0;
        store.wal_autocheckpoint = cli.wal_autocheckpoint;
        store.convert_existing = cli.convert_db != 0;
        store.background_checkpoint = cli.background_checkpoint != 0;
        store.wal_limit_bytes = cli.wal_limit_mib.max(1) << 20;
        // Under Litestream (the original's Docker image sets LITESTREAM_BUCKET),
        // Litestream alone checkpoints, so it never misses WAL frames.
        store.external_checkpoints = litestream_bucket.is_some_and(|v| !v.is_empty());
        Ok(Config {
            listen: listen_addr(cli.listen.as_deref(), cli.port)?,
            listen_is_default: cli.listen.as_deref().is_none_or(str::is_empty),
            shared_secret: read_secret(secret, secret_file)?,
            behind_proxy: behind_proxy.is_some_and(|v| !v.is_empty()),
            store,
            remote,
            shutdown_grace: std::time::Duration::from_secs(cli.shutdown_grace),
            metrics_public: false,
            clock_file: cli.clock_file,
            zip64_threshold: cli
                .zip64_threshold
                .min(crate::http::proto::zipstream::ZIP64_LIMIT),
            gc_interval: std::time::Duration::from_secs(cli.gc_interval.max(1)),
            tus_expiry: chrono::Duration::hours(
                i64::try_from(cli.tus_expiry_hours.clamp(1, 24 * 365)).unwrap_or(24),
            ),
            tus_request_bytes: cli.tus_request_mib.saturating_mul(1 << 20),
            header_timeout: positive_secs("--header-timeout", cli.header_timeout)?,
            body_idle_timeout: positive_secs("--body-idle-timeout", cli.body_idle_timeout)?,
            send_timeout: positive_secs("--send-timeout", cli.send_timeout)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_payload_auto_only_where_bytes_cannot_change() {
        let auto = |e: Option<&str>| unsigned_payload("auto", e).unwrap();
        assert!(auto(None));
        assert!(auto(Some("https://s3.example.com")));
        assert!(auto(Some("http://127.0.0.1:3900")));
        assert!(auto(Some("http://localhost:9000/")));
        assert!(auto(Some("http://[::1]:3900")));
        assert!(!auto(Some("http://10.0.0.5:3900")));
        assert!(!auto(Some("http://garage.internal:3900")));
        assert!(unsigned_payload("1", Some("http://10.0.0.5")).unwrap());
        assert!(!unsigned_payload("0", None).unwrap());
        assert!(unsigned_payload("sometimes", None).is_err());
    }

    fn cli(args: &[&str]) -> Cli {
        let args = normalize_args(
            std::iter::once("picoshare".to_owned()).chain(args.iter().map(|s| s.to_string())),
        );
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn single_dash_db_is_accepted() {
        assert_eq!(cli(&["-db", "x/y.db"]).db, PathBuf::from("x/y.db"));
        assert_eq!(cli(&["-db=z.db"]).db, PathBuf::from("z.db"));
        assert_eq!(cli(&[]).db, PathBuf::from("data/store.db"));
    }

    #[test]
    fn secret_is_required_and_file_wins() {
        let err = Config::from_parts(cli(&[]), None, None, None, None).unwrap_err();
        assert!(err.to_string().contains("PS_SHARED_SECRET"));
        let err = Config::from_parts(cli(&[]), Some(String::new()), None, None, None).unwrap_err();
        assert!(err.to_string().contains("PS_SHARED_SECRET"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\r\n").unwrap();
        let c = Config::from_parts(
            cli(&[]),
            Some("env".into()),
            Some(f.display().to_string()),
            Some("true".into()),
            Some("bucket".into()),
        )
        .unwrap();
        assert_eq!(c.shared_secret, "from-file");
        assert!(c.behind_proxy);
        assert!(c.store.external_checkpoints);
    }

    #[test]
    fn timeouts_have_defaults_and_must_be_positive() {
        let c = Config::from_parts(cli(&[]), Some("s".into()), None, None, None).unwrap();
        assert_eq!(c.header_timeout.as_secs(), 10);
        assert_eq!(c.body_idle_timeout.as_secs(), 60);
        assert_eq!(c.send_timeout.as_secs(), 60);
        let c = Config::from_parts(
            cli(&[
                "--header-timeout",
                "2",
                "--body-idle-timeout",
                "3",
                "--send-timeout",
                "4",
            ]),
            Some("s".into()),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            (
                c.header_timeout.as_secs(),
                c.body_idle_timeout.as_secs(),
                c.send_timeout.as_secs()
            ),
            (2, 3, 4)
        );
        for flag in ["--header-timeout", "--body-idle-timeout", "--send-timeout"] {
            let err = Config::from_parts(cli(&[flag, "0"]), Some("s".into()), None, None, None)
                .unwrap_err();
            assert!(err.to_string().contains(flag), "{err}");
        }
    }

    #[test]
    fn listen_accepts_ip_or_socket_address() {
        assert_eq!(listen_addr(None, 4001).unwrap().to_string(), "[::]:4001");
        assert_eq!(
            listen_addr(Some("127.0.0.1"), 5).unwrap().to_string(),
            "127.0.0.1:5"
        );
        assert_eq!(
            listen_addr(Some("[::1]:7"), 5).unwrap().to_string(),
            "[::1]:7"
        );
        assert_eq!(listen_addr(Some("::1"), 5).unwrap().to_string(), "[::1]:5");
        assert!(listen_addr(Some("nonsense"), 5).is_err());
    }
}
