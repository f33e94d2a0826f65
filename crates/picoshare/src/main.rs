//! The `picoshare` binary: parse configuration, start logging, serve until a signal.

use std::process::ExitCode;

use clap::Parser;
use picoshare::config::{normalize_args, Cli, Config};
use picoshare::server::{shutdown_signal, Application};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "picoshare=info,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(normalize_args(std::env::args()));
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
