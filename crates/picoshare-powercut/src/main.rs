//! `picoshare-powercut`: the power-cut test as a command, for soaks longer
//! than the one `cargo test` runs (see the crate's documentation and
//! docs/reliability.md, "Power cuts").

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

/// Records a workload against the real server on a recorded disk, then
/// checks the server's data at many power-cut points.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The picoshare binary under test.
    #[arg(long, default_value = "target/release/picoshare")]
    server: PathBuf,
    /// Cut points to check, in all.
    #[arg(long, default_value_t = 2000)]
    cuts: usize,
    /// Seeds the files' bytes and the choice of cut points (recording `i`
    /// uses seed + i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Workloads recorded, one after another, the cuts shared among them:
    /// each recording's timing differs, so its writes and flushes do too.
    #[arg(long, default_value_t = 1)]
    recordings: usize,
    /// Cuts checked at once.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Size of the recorded disk in MiB.
    #[arg(long, default_value_t = 512)]
    image_mib: u64,
    /// Size of the large upload in MiB (at least 128).
    #[arg(long, default_value_t = 136)]
    big_mib: u64,
    /// Keep each run's directory (about 1 GiB: journal, base image, server
    /// logs) to look into a failure.
    #[arg(long)]
    keep_dir: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = Instant::now();
    let recordings = cli.recordings.max(1);
    let (mut checked, mut failed) = (0usize, 0usize);
    for i in 0..recordings {
        let cuts = cli.cuts / recordings + usize::from(i < cli.cuts % recordings);
        let mut opts =
            picoshare_powercut::Options::new(cli.server.clone(), cuts, cli.seed + i as u64);
        opts.workers = cli.workers;
        opts.image_mib = cli.image_mib;
        opts.big_mib = cli.big_mib;
        opts.keep_dir = cli.keep_dir;
        match picoshare_powercut::run(&opts, &|line| eprintln!("{line}")) {
            Ok(report) => {
                println!("recording {} of {recordings}: {}", i + 1, report.summary());
                for f in report.failures() {
                    println!("FAILED {}:\n  {}", f.description, f.problems.join("\n  "));
                }
                checked += report.outcomes.len();
                failed += report.failures().len();
            }
            Err(e) => {
                eprintln!("picoshare-powercut: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "{checked} cut points checked over {recordings} recordings in {:.1} s; {failed} failed",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
