//! The raw command line: every flag with its environment variable, default
//! and help text (clap), and the original's `-db` spelling. Nothing here is
//! checked; `Config::from_cli` and `remote_config` do that.

use std::path::PathBuf;

use clap::Parser;

use crate::store::JournalMode;

/// `--journal-mode`: the command line's spelling of [`JournalMode`] (the
/// store's types know nothing of the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum JournalModeArg {
    /// Write-ahead log: readers never wait for the writer; works with Litestream.
    Wal,
    /// Rollback journal: fewer bytes written, but readers wait while the writer commits.
    Delete,
}

impl From<JournalModeArg> for JournalMode {
    fn from(arg: JournalModeArg) -> Self {
        match arg {
            JournalModeArg::Wal => JournalMode::Wal,
            JournalModeArg::Delete => JournalMode::Delete,
        }
    }
}

/// Raw command line.
#[derive(Debug, Parser)]
#[command(
    name = "picoshare",
    version,
    about = "A minimalist, self-hosted file-sharing server"
)]
pub struct Cli {
    /// What to do instead of serving (none: serve).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path of the SQLite database (created with its folders if missing).
    #[arg(
        long = "db",
        value_name = "PATH",
        default_value = "data/store.db",
        global = true
    )]
    pub db: PathBuf,

    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4001)]
    pub(super) port: u16,

    /// Address to listen on: an IP (with PORT) or IP:PORT. Default: all interfaces.
    #[arg(long, env = "PS_LISTEN", value_name = "ADDR")]
    pub(super) listen: Option<String>,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "PS_SHUTDOWN_GRACE", default_value_t = 30)]
    pub(super) shutdown_grace: u64,

    /// Seconds between garbage collections of expired files (also run at start-up).
    #[arg(long, env = "PS_GC_INTERVAL", default_value_t = 3600)]
    pub(super) gc_interval: u64,

    /// Hours an unfinished resumable upload is kept after its last bytes arrived.
    #[arg(long, env = "PS_TUS_EXPIRY_HOURS", default_value_t = 24)]
    pub(super) tus_expiry_hours: u64,

    /// MiB per request the web page sends a resumable upload in (0: the rest
    /// of the file in one request). The default keeps what a proxy's late
    /// 413 or a restart wastes small; set it below a reverse proxy's body
    /// limit (the page halves it by itself on a proxy's 413).
    #[arg(long, env = "PS_TUS_REQUEST_MIB", default_value_t = 32)]
    pub(super) tus_request_mib: u64,
    /// Seconds a client may take to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    #[arg(long, env = "PS_HEADER_TIMEOUT", default_value_t = 10)]
    pub(super) header_timeout: u64,

    /// Seconds a request body may send nothing before the request is cut off
    /// (an idle timeout: a slow but moving upload is never cut).
    #[arg(long, env = "PS_BODY_IDLE_TIMEOUT", default_value_t = 60)]
    pub(super) body_idle_timeout: u64,

    /// Bytes per second a request body must arrive at on average, over the
    /// time the server waits for it, once it has waited the body idle
    /// timeout (0: no minimum). A body trickled slower is cut off with 408.
    #[arg(long, env = "PS_BODY_MIN_RATE", default_value_t = 1024)]
    pub(super) body_min_rate: u64,

    /// Seconds a response may wait for a client that reads nothing before the
    /// connection is closed (an idle timeout, like the one on request bodies).
    #[arg(long, env = "PS_SEND_TIMEOUT", default_value_t = 60)]
    pub(super) send_timeout: u64,

    /// The reverse proxies in front of the server: IP addresses and networks
    /// (`10.0.0.0/8`), separated by commas. Only connections from them are
    /// taken to come through a proxy, and their addresses are skipped when
    /// the client's address is read from the right of `X-Forwarded-For`
    /// (implies PS_BEHIND_PROXY).
    #[arg(long, env = "PS_TRUSTED_PROXIES", value_name = "NETWORKS")]
    pub(super) trusted_proxies: Option<String>,

    /// The one header a trusted proxy gives the client's address in:
    /// `X-Forwarded-For`, `X-Real-IP` or `Forwarded` (default: the first of
    /// them that the request has, in that order).
    #[arg(long, env = "PS_CLIENT_IP_HEADER", value_name = "HEADER")]
    pub(super) client_ip_header: Option<String>,

    /// Answer a public page or download that a proxy says came over plain
    /// HTTP (`X-Forwarded-Proto: http`) with a 301 to https://, as the
    /// original does (0: serve it, for sites without HTTPS).
    #[arg(long, env = "PS_HTTPS_REDIRECT", default_value_t = 1)]
    pub(super) https_redirect: u8,

    /// Convert databases without incremental auto-vacuum at start-up (0 to skip).
    #[arg(long, env = "PS_CONVERT_DB", default_value_t = 1)]
    pub(super) convert_db: u8,

    /// Log line format on stderr: `text` for people, `json` (one object per
    /// line) for log collectors.
    #[arg(long, env = "PS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Testing aid: read "now" from this file (RFC 3339) instead of the system clock.
    #[arg(long, env = "PS_CLOCK_FILE", hide = true)]
    pub(super) clock_file: Option<PathBuf>,

    /// Testing aid: sizes and offsets from which share ZIPs use ZIP64 records
    /// (0 forces them on every archive).
    #[arg(long, env = "PS_ZIP64_THRESHOLD", hide = true)]
    pub(super) zip64_threshold: Option<u64>,

    /// Testing aid: keys each rate limit holds at most (client addresses,
    /// files).
    #[arg(long, env = "PS_LIMITER_CAPACITY", hide = true)]
    pub(super) limiter_capacity: Option<usize>,

    /// Bytes per stored chunk for new uploads.
    #[arg(long, env = "PS_CHUNK_SIZE", default_value_t = crate::store::DEFAULT_CHUNK_SIZE, help_heading = "Storage tuning")]
    pub(super) chunk_size: usize,

    /// SQLite page size for newly created databases.
    #[arg(
        long,
        env = "PS_PAGE_SIZE",
        default_value_t = crate::store::DEFAULT_PAGE_SIZE,
        help_heading = "Storage tuning"
    )]
    pub(super) page_size: u32,

    /// SQLite journal mode (wal keeps Litestream working and never blocks readers).
    #[arg(
        long,
        env = "PS_JOURNAL_MODE",
        value_enum,
        default_value = "wal",
        help_heading = "Storage tuning"
    )]
    pub(super) journal_mode: JournalModeArg,

    /// Commit the upload transaction every this many MiB.
    #[arg(
        long,
        env = "PS_COMMIT_MIB",
        default_value_t = 64,
        help_heading = "Storage tuning"
    )]
    pub(super) commit_mib: u64,

    /// SQLite page cache of the writer, in KiB.
    #[arg(
        long,
        env = "PS_CACHE_KIB",
        default_value_t = 1024,
        help_heading = "Storage tuning"
    )]
    pub(super) cache_kib: u32,

    /// SQLite page cache of each reader (downloads), in KiB.
    #[arg(
        long,
        env = "PS_READER_CACHE_KIB",
        default_value_t = 4096,
        help_heading = "Storage tuning"
    )]
    pub(super) reader_cache_kib: u32,

    /// Start disk writeback of new data early (0 to disable).
    #[arg(
        long,
        env = "PS_EARLY_WRITEBACK",
        default_value_t = 1,
        help_heading = "Storage tuning"
    )]
    pub(super) early_writeback: u8,

    /// Checkpoint the WAL from a background thread (0: inside commits).
    #[arg(
        long,
        env = "PS_BACKGROUND_CHECKPOINT",
        default_value_t = 1,
        help_heading = "Storage tuning"
    )]
    pub(super) background_checkpoint: u8,

    /// With background checkpoints: WAL size (MiB) at which the writer waits for them.
    #[arg(
        long,
        env = "PS_WAL_LIMIT_MIB",
        default_value_t = 256,
        help_heading = "Storage tuning"
    )]
    pub(super) wal_limit_mib: u64,

    /// WAL pages that trigger an automatic checkpoint (inline checkpoints only).
    #[arg(
        long,
        env = "PS_WAL_AUTOCHECKPOINT",
        default_value_t = 1000,
        help_heading = "Storage tuning"
    )]
    pub(super) wal_autocheckpoint: u32,

    /// PostgreSQL URL for the metadata (postgres://user:password@host:port/db).
    /// Setting it moves file data to the S3 bucket PS_S3_BUCKET; --db is then
    /// not used (except by --copy-to-remote).
    #[arg(
        long,
        env = "PS_POSTGRES_URL",
        hide_env_values = true,
        help_heading = "Scale-out storage"
    )]
    pub(super) postgres_url: Option<String>,

    /// PostgreSQL schema for the tables (created if missing). Default: public.
    #[arg(long, env = "PS_POSTGRES_SCHEMA", help_heading = "Scale-out storage")]
    pub(super) postgres_schema: Option<String>,

    /// PEM file of the CA that signed PostgreSQL's certificate (for
    /// `sslmode=require` in the URL; default: the system's trusted roots).
    #[arg(long, env = "PS_POSTGRES_CA_FILE", help_heading = "Scale-out storage")]
    pub(super) postgres_ca_file: Option<PathBuf>,

    /// PostgreSQL connections per server process.
    #[arg(
        long,
        env = "PS_POSTGRES_POOL",
        default_value_t = 16,
        help_heading = "Scale-out storage"
    )]
    pub(super) postgres_pool: usize,

    /// S3 endpoint URL (Garage, MinIO, Ceph, R2…); unset for AWS S3 itself.
    #[arg(long, env = "PS_S3_ENDPOINT", help_heading = "Scale-out storage")]
    pub(super) s3_endpoint: Option<String>,

    /// S3 bucket for file data (must exist).
    #[arg(long, env = "PS_S3_BUCKET", help_heading = "Scale-out storage")]
    pub(super) s3_bucket: Option<String>,

    /// S3 region (Garage's default is `garage`).
    #[arg(
        long,
        env = "PS_S3_REGION",
        default_value = "us-east-1",
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_region: String,

    /// S3 access key ID (default: AWS_ACCESS_KEY_ID).
    #[arg(long, env = "PS_S3_ACCESS_KEY_ID", help_heading = "Scale-out storage")]
    pub(super) s3_access_key_id: Option<String>,

    /// S3 secret access key (default: AWS_SECRET_ACCESS_KEY).
    #[arg(
        long,
        env = "PS_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_secret_access_key: Option<String>,

    /// Prefix of every object key, such as `picoshare/`.
    #[arg(
        long,
        env = "PS_S3_PREFIX",
        default_value = "",
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_prefix: String,

    /// Use virtual-hosted-style requests (bucket.host) instead of path-style (1 or 0).
    #[arg(
        long,
        env = "PS_S3_VIRTUAL_HOSTED",
        default_value_t = 0,
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_virtual_hosted: u8,

    /// MiB per part of the multipart uploads that carry file data (5 to 5120).
    #[arg(
        long,
        env = "PS_S3_PART_MIB",
        default_value_t = 8,
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_part_mib: usize,

    /// Sign S3 requests without hashing their bodies: `1`, `0`, or `auto`
    /// (unsigned over https:// and to loopback addresses, where nothing on
    /// the way can change the bytes; signed otherwise). Saves hashing every byte.
    #[arg(
        long,
        env = "PS_S3_UNSIGNED_PAYLOAD",
        default_value = "auto",
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_unsigned_payload: String,

    /// Parts of one upload sent to the bucket at once (1 to 16); each holds
    /// one part of memory.
    #[arg(
        long,
        env = "PS_S3_PARALLEL_PARTS",
        default_value_t = 2,
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_parallel_parts: usize,

    /// Seconds a request to the S3 bucket may go without an answer, retries
    /// included, before it fails (a part upload gets one more second per
    /// MiB; a download, between two pieces of its body).
    #[arg(
        long,
        env = "PS_S3_TIMEOUT_SECS",
        default_value_t = 30,
        help_heading = "Scale-out storage"
    )]
    pub(super) s3_timeout_secs: u64,

    /// Seconds a server instance's lease lasts without renewal (it renews it
    /// six times per period): after a crash or a stall this long, other
    /// instances take back what it held (upload slots, download
    /// reservations, uploads in progress).
    #[arg(
        long,
        env = "PS_INSTANCE_LEASE_SECS",
        default_value_t = 30,
        help_heading = "Scale-out storage"
    )]
    pub(super) instance_lease_secs: u64,

    /// SMTP server that sends the e-mail notifications (host name or IP
    /// address). Unset: no e-mail destinations can be added.
    #[arg(long, env = "PS_SMTP_HOST", help_heading = "E-mail notifications")]
    pub(super) smtp_host: Option<String>,

    /// SMTP port (default: 587 with starttls, 465 with tls, 25 with none).
    #[arg(long, env = "PS_SMTP_PORT", help_heading = "E-mail notifications")]
    pub(super) smtp_port: Option<u16>,

    /// How the connection to the SMTP server is encrypted: `starttls`
    /// (required, never skipped), `tls` (from the first byte) or `none`.
    #[arg(
        long,
        env = "PS_SMTP_TLS",
        default_value = "starttls",
        help_heading = "E-mail notifications"
    )]
    pub(super) smtp_tls: String,

    /// User name to log in to the SMTP server with (with a password).
    #[arg(long, env = "PS_SMTP_USERNAME", help_heading = "E-mail notifications")]
    pub(super) smtp_username: Option<String>,

    /// The SMTP password (PS_SMTP_PASSWORD_FILE: a file that holds it).
    #[arg(
        long,
        env = "PS_SMTP_PASSWORD",
        hide_env_values = true,
        help_heading = "E-mail notifications"
    )]
    pub(super) smtp_password: Option<String>,

    /// The sender of the e-mails: `picoshare@example.com` or
    /// `PicoShare <picoshare@example.com>`.
    #[arg(long, env = "PS_SMTP_FROM", help_heading = "E-mail notifications")]
    pub(super) smtp_from: Option<String>,

    /// PEM file of the CA that signed the SMTP server's certificate
    /// (default: the system's trusted roots).
    #[arg(long, env = "PS_SMTP_CA_FILE", help_heading = "E-mail notifications")]
    pub(super) smtp_ca_file: Option<PathBuf>,

    /// Seconds a resumable upload stays reserved for the server that received
    /// its last bytes (another server answers 423 until then). For tests.
    #[arg(long, env = "PS_TUS_LEASE_SECS", default_value_t = 30, hide = true)]
    pub(super) tus_lease_secs: u64,

    /// Copy the SQLite database at --db (ours or the original PicoShare's)
    /// into PostgreSQL and object storage, check every file's SHA-256, then exit.
    #[arg(long, help_heading = "Scale-out storage")]
    pub copy_to_remote: bool,
}

/// Tasks the binary runs instead of serving; `--db` may come before or
/// after them.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Copy the SQLite database (at --db) into one consistent, checked file,
    /// also while the server runs and receives uploads.
    Backup(BackupArgs),
    /// Before going back to the original PicoShare: list the files it would
    /// serve to anyone (without their password or download limit) and the
    /// data it ignores (API tokens, shares, unfinished resumable uploads,
    /// sessions). Reads the SQLite database at --db only.
    RollbackCheck,
}

/// `picoshare backup`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BackupArgs {
    /// The file to write (replaced only once the new copy is complete and
    /// checked), or an existing folder to write `picoshare-DATE-TIME.db` in.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,

    /// No progress bar; only the summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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

/// The command line of `args` (the program name added), for tests.
#[cfg(test)]
pub(super) fn parse(args: &[&str]) -> Cli {
    let args = normalize_args(
        std::iter::once("picoshare".to_owned()).chain(args.iter().map(|s| s.to_string())),
    );
    Cli::try_parse_from(args).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_takes_the_database_before_or_after_it() {
        for args in [
            &["-db", "x/y.db", "backup", "out.db"][..],
            &["backup", "out.db", "-db", "x/y.db"][..],
            &["backup", "--db=x/y.db", "-q", "out.db"][..],
        ] {
            let cli = parse(args);
            assert_eq!(cli.db, PathBuf::from("x/y.db"), "{args:?}");
            match cli.command {
                Some(Command::Backup(b)) => assert_eq!(b.dest, PathBuf::from("out.db")),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(parse(&[]).command.is_none());
    }

    #[test]
    fn rollback_check_takes_the_database_before_or_after() {
        for args in [
            &["-db", "x.db", "rollback-check"][..],
            &["rollback-check", "-db", "x.db"],
            &["rollback-check", "--db=x.db"],
        ] {
            let cli = parse(args);
            assert_eq!(cli.command, Some(Command::RollbackCheck), "{args:?}");
            assert_eq!(cli.db, PathBuf::from("x.db"), "{args:?}");
        }
        let cli = parse(&["rollback-check"]);
        assert_eq!(cli.db, PathBuf::from("data/store.db"));
        assert_eq!(parse(&[]).command, None);
    }

    #[test]
    fn single_dash_db_is_accepted() {
        assert_eq!(parse(&["-db", "x/y.db"]).db, PathBuf::from("x/y.db"));
        assert_eq!(parse(&["-db=z.db"]).db, PathBuf::from("z.db"));
        assert_eq!(parse(&[]).db, PathBuf::from("data/store.db"));
    }
}
