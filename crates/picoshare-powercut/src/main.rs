//! `picoshare-powercut`: the power-cut test as a command, for soaks longer
//! than the one `cargo test` runs (see the crate's documentation and
//! docs/reliability.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Records a workload against the real server on a recorded disk, then
/// checks the server's data at many power-cut points.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The picoshare binary under test.
    #[arg(long, default_value = "target/release/picoshare")]
    server: PathBuf,
    /// Cut points to check.
    #[arg(long, default_value_t = 2000)]
    cuts: usize,
    /// Seeds the files' bytes and the choice of cut points.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cuts checked at once.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Size of the recorded disk in MiB.
    #[arg(long, default_value_t = 512)]
    image_mib: u64,
    /// Size of the large upload in MiB (at least 128).
    #[arg(long, default_value_t = 136)]
    big_mib: u64,
    /// Keep the run's directory (about 1 GiB: journal, base image, server
    /// logs) to look into a failure.
    #[arg(long)]
    keep_dir: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut opts = picoshare_powercut::Options::new(cli.server, cli.cuts, cli.seed);
    opts.workers = cli.workers;
    opts.image_mib = cli.image_mib;
    opts.big_mib = cli.big_mib;
    opts.keep_dir = cli.keep_dir;
    let started = std::time::Instant::now();
    match picoshare_powercut::run(&opts, &|line| eprintln!("{line}")) {
        Ok(report) => {
            println!("{}", report.summary());
            println!("total {:.1} s", started.elapsed().as_secs_f64());
            if report.failures().is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in report.failures() {
                    println!("FAILED {}:\n  {}", f.description, f.problems.join("\n  "));
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("picoshare-powercut: {e:#}");
            ExitCode::from(2)
        }
    }
}
