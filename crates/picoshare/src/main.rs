//! The `picoshare` binary: parse configuration, start logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use picoshare::config::{normalize_args, Cli, Command, Config, LogFormat};
use picoshare::server::{shutdown_signal, Application};

fn main() -> ExitCode {
    // Before any thread exists, so that every thread shares the same arenas.
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("picoshare: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main())
}

/// glibc gives each thread that allocates its own memory arena (up to eight per
/// core), and memory freed in one arena is not reused by another. Download
/// batches are read on blocking threads and freed on the runtime's threads,
/// so with many parallel transfers the process kept far more memory than it
/// used: eight 1 GiB uploads beside eight downloads peaked at 102 MiB with the
/// default, 76 MiB with two arenas (docs/reliability.md). `PS_MALLOC_ARENAS`
/// (default 2; 0 keeps glibc's default) and glibc's own `MALLOC_ARENA_MAX`
/// override it.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let arenas = std::env::var("PS_MALLOC_ARENAS")
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(2);
        if arenas > 0 {
            // SAFETY: called before any other thread exists; mallopt only
            // changes allocator tuning.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, arenas);
            }
        }
    }
}

/// With object storage, every upload holds multipart parts of several MiB.
/// glibc raises its mmap threshold after such a buffer is freed, after which
/// the next ones come from the heap and fragment it: one 1 GiB upload peaked
/// at 78 MiB. A fixed 1 MiB threshold keeps them mmap'd and returned to the
/// system when freed: 39 MiB, same throughput (docs/benchmarks.md).
fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return;
        }
        // SAFETY: mallopt only changes allocator tuning; it takes the
        // allocator's own locks.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("picoshare: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::Backup(args)) => {
            if picoshare::config::remote_config(&cli)?.is_some() {
                anyhow::bail!(
                    "`picoshare backup` copies the SQLite database; with PostgreSQL and object storage, \
                     back up those with their own tools (pg_dump, the bucket's versioning or replication)"
                );
            }
            let (db, args) = (cli.db.clone(), args.clone());
            return tokio::task::spawn_blocking(move || picoshare::backup::run(&db, &args)).await?;
        }
        Some(Command::RollbackCheck) => {
            // SQLite reads, off the async threads.
            let db = cli.db.clone();
            let report =
                tokio::task::spawn_blocking(move || picoshare::rollback_check(&db)).await??;
            print!("{report}");
            return Ok(());
        }
        None => {}
    }
    if cli.copy_to_remote {
        let Some(remote) = picoshare::config::remote_config(&cli)? else {
            anyhow::bail!(
                "--copy-to-remote needs the destination: set PS_POSTGRES_URL and PS_S3_BUCKET (and PS_S3_ENDPOINT and credentials)"
            );
        };
        map_large_buffers();
        return picoshare::copy_to_remote(&cli.db, remote).await;
    }
    let config = Config::from_cli(cli)?;
    if config.uses_remote_store() {
        map_large_buffers();
    }
    let app = Application::build(config).await?;
    // Tests and scripts wait for this exact line on stdout.
    println!("picoshare listening on http://{}", app.local_addr()?);
    app.run_until_stopped(shutdown_signal()).await
}

/// Logs to stderr, filtered by `RUST_LOG` (default: info for this crate), as
/// text or as one JSON object per line.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "picoshare=info,tower_http=info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
