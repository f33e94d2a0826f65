//! The `picoshare` binary: parse configuration, start logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use picoshare::config::{normalize_args, Cli, Config, LogFormat};
use picoshare::server::{shutdown_signal, Application};

#[tokio::main]
async fn main() -> ExitCode {
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
    let config = Config::from_cli(cli)?;
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
