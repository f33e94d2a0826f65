//! Command-line flags and environment variables.
//!
//! The original's configuration carries over unchanged: `-db PATH` (also `--db`),
//! `PORT`, `PS_SHARED_SECRET` / `PS_SHARED_SECRET_FILE` and `PS_BEHIND_PROXY`.
//! New: `--listen` to choose the bind address, the timeouts that protect against
//! slow and stalled clients, and storage tuning flags that the bench suite uses
//! to compare settings of one build.
//!
//! - `cli.rs`: the raw command line ([`Cli`]), as clap reads it;
//! - `remote.rs`: the scale-out storage settings ([`remote_config`]);
//! - `smtp.rs`: the SMTP server of e-mail notifications (`SmtpConfig`);
//! - here: [`Config`], the settings checked and resolved, the one value the
//!   server is built from.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::store::StoreConfig;
use proxy::{ClientHeader, ProxyTrust};

mod cli;
pub(crate) mod proxy;
mod remote;
mod smtp;

pub use cli::{normalize_args, BackupArgs, Cli, Command, LogFormat};
pub use remote::remote_config;
pub(crate) use smtp::{SmtpConfig, SmtpTls};

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
    /// The reverse proxy in front, whose forwarding headers are believed
    /// (`PS_BEHIND_PROXY`, `PS_TRUSTED_PROXIES`, `PS_CLIENT_IP_HEADER`; see
    /// `http::proto::proxy`); `None` without one.
    pub(crate) proxy: Option<ProxyTrust>,
    /// Send public pages and downloads that a proxy says came over plain
    /// HTTP to https:// (see `http::layers::redirects`).
    pub(crate) https_redirect: bool,
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
    /// Sizes and offsets from which share ZIPs use ZIP64 records, when
    /// lower than the format's own limit (testing aid; `None`: that limit).
    pub(crate) zip64_threshold: Option<u64>,
    /// Keys each rate limit holds at most (testing aid; `None`: the
    /// limiter's default).
    pub(crate) limiter_capacity: Option<usize>,
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
    /// Bytes per second a request body must average (0: no minimum).
    pub(crate) body_min_rate: u64,
    /// Time a response may wait for a client that reads nothing.
    pub(crate) send_timeout: std::time::Duration,
    /// The SMTP server of e-mail notifications (`PS_SMTP_*`), if set.
    pub(crate) smtp: Option<SmtpConfig>,
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

/// The proxy settings: a proxy is trusted with `PS_BEHIND_PROXY` (any
/// non-empty value, as the original) or `PS_TRUSTED_PROXIES`.
fn proxy_trust(cli: &Cli, behind_proxy: Option<String>) -> anyhow::Result<Option<ProxyTrust>> {
    let networks = match cli.trusted_proxies.as_deref() {
        Some(raw) => ProxyTrust::parse_networks(raw).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let client_header = ClientHeader::parse(cli.client_ip_header.as_deref().unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    let enabled = behind_proxy.is_some_and(|v| !v.is_empty()) || !networks.is_empty();
    Ok(enabled.then_some(ProxyTrust {
        networks,
        client_header,
    }))
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
        let smtp = smtp::smtp_config(&cli, std::env::var("PS_SMTP_PASSWORD_FILE").ok())?;
        Self::from_parts(
            cli,
            std::env::var("PS_SHARED_SECRET").ok(),
            std::env::var("PS_SHARED_SECRET_FILE").ok(),
            std::env::var("PS_BEHIND_PROXY").ok(),
            std::env::var("LITESTREAM_BUCKET").ok(),
        )
        .map(|mut c| {
            c.metrics_public = std::env::var("PS_METRICS_PUBLIC").is_ok_and(|v| !v.is_empty());
            c.smtp = smtp;
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
        let proxy = proxy_trust(&cli, behind_proxy)?;
        let mut store = StoreConfig::new(cli.db);
        store.chunk_size = cli.chunk_size;
        store.page_size = cli.page_size;
        store.journal_mode = cli.journal_mode.into();
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
            proxy,
            https_redirect: cli.https_redirect != 0,
            store,
            remote,
            shutdown_grace: std::time::Duration::from_secs(cli.shutdown_grace),
            metrics_public: false,
            clock_file: cli.clock_file,
            zip64_threshold: cli.zip64_threshold,
            limiter_capacity: cli.limiter_capacity,
            gc_interval: std::time::Duration::from_secs(cli.gc_interval.max(1)),
            tus_expiry: chrono::Duration::hours(
                i64::try_from(cli.tus_expiry_hours.clamp(1, 24 * 365)).unwrap_or(24),
            ),
            tus_request_bytes: cli.tus_request_mib.saturating_mul(1 << 20),
            header_timeout: positive_secs("--header-timeout", cli.header_timeout)?,
            body_idle_timeout: positive_secs("--body-idle-timeout", cli.body_idle_timeout)?,
            body_min_rate: cli.body_min_rate,
            send_timeout: positive_secs("--send-timeout", cli.send_timeout)?,
            smtp: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cli::parse;
    use super::*;

    #[test]
    fn secret_is_required_and_file_wins() {
        let err = Config::from_parts(parse(&[]), None, None, None, None).unwrap_err();
        assert!(err.to_string().contains("PS_SHARED_SECRET"));
        let err =
            Config::from_parts(parse(&[]), Some(String::new()), None, None, None).unwrap_err();
        assert!(err.to_string().contains("PS_SHARED_SECRET"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\r\n").unwrap();
        let c = Config::from_parts(
            parse(&[]),
            Some("env".into()),
            Some(f.display().to_string()),
            Some("true".into()),
            Some("bucket".into()),
        )
        .unwrap();
        assert_eq!(c.shared_secret, "from-file");
        assert_eq!(c.proxy, Some(ProxyTrust::default()));
        assert!(c.store.external_checkpoints);
    }

    #[test]
    fn timeouts_have_defaults_and_must_be_positive() {
        let c = Config::from_parts(parse(&[]), Some("s".into()), None, None, None).unwrap();
        assert_eq!(c.header_timeout.as_secs(), 10);
        assert_eq!(c.body_idle_timeout.as_secs(), 60);
        assert_eq!(c.body_min_rate, 1024);
        assert_eq!(c.send_timeout.as_secs(), 60);
        let c = Config::from_parts(
            parse(&[
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
            let err = Config::from_parts(parse(&[flag, "0"]), Some("s".into()), None, None, None)
                .unwrap_err();
            assert!(err.to_string().contains(flag), "{err}");
        }
    }

    #[test]
    fn proxy_settings() {
        let with = |args: &[&str], behind: Option<&str>| {
            Config::from_parts(
                parse(args),
                Some("s".into()),
                None,
                behind.map(str::to_owned),
                None,
            )
        };
        assert_eq!(with(&[], None).unwrap().proxy, None);
        assert_eq!(with(&[], Some("")).unwrap().proxy, None);
        let listed = with(&["--trusted-proxies", "10.0.0.0/8,192.0.2.1"], None)
            .unwrap()
            .proxy
            .unwrap();
        assert_eq!(listed.networks.len(), 2);
        let named = with(&["--client-ip-header", "x-real-ip"], Some("yes"))
            .unwrap()
            .proxy
            .unwrap();
        assert_eq!(named.client_header, ClientHeader::XRealIp);
        let err = with(&["--trusted-proxies", "proxy.example"], None).unwrap_err();
        assert!(err.to_string().contains("PS_TRUSTED_PROXIES"), "{err}");
        let err = with(&["--client-ip-header", "X-Client-IP"], Some("1")).unwrap_err();
        assert!(err.to_string().contains("PS_CLIENT_IP_HEADER"), "{err}");
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
