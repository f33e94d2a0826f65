//! The command line: every subcommand and its options (clap). Parsing the
//! values of options into a plan is `crate::plan`'s; running a subcommand
//! is [`crate::cmd`]'s.
//!
//! The doc comments here are the `--help` text, read by people in a
//! terminal: `<date-time>` in them is a placeholder, not an HTML tag.
//!
//! Options that several subcommands take (`--binary`, `--warmup` and
//! `--wait-idle`, `--steal-gap`, `--seed`, `--data-dir` and `--out`,
//! `--force` and `--quiet`) are declared once, in the small structs below,
//! and flattened into each subcommand's options; where a subcommand words an
//! option's help its own way, a `mut_arg` on that subcommand's struct says
//! so.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::plan::options::{Order, Workload};

/// The whole command line.
#[derive(Parser)]
#[command(
    name = "picoshare-bench",
    version,
    about = "Performance test suite for PicoShare-compatible servers"
)]
pub struct Cli {
    /// The subcommand and its options.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Measure uploads and downloads over a matrix of sizes, memory limits,
    /// disk limits and variants.
    Run(RunArgs),
    /// Measure what this machine lets the bench see: the base server against
    /// an A/A twin and a planted slowdown of known size, repeated.
    Calibrate(CalibrateArgs),
    /// Many parallel uploading and downloading clients for a bounded time:
    /// errors, server peak memory and latency percentiles.
    Load(LoadArgs),
    /// Rebuild the report, CSV files and charts from a results.json.
    Report {
        /// The result file.
        results: PathBuf,
        /// Output directory (default: the result file's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two result files (for example two branches, or before and after).
    Compare {
        /// Baseline result file.
        a: PathBuf,
        /// Result file to compare with it.
        b: PathBuf,
        /// Write the Markdown here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Many small files over keep-alive connections: uploads, downloads
    /// and a trivial request at several connection counts, paired blocks.
    Small(SmallArgs),
    /// Many entries: start-up, the file list, garbage collection and a long
    /// download history, at several numbers of files, paired blocks.
    Entries(EntriesArgs),
    /// How long downloads stall while a large upload runs: gaps between
    /// 64 KiB pieces of downloads, on a quiet server and during the upload.
    Stall(StallArgs),
    /// Check the machine for what makes measurements noisy or impossible.
    Doctor {
        /// The directory the bench would use for data.
        #[arg(long, default_value = "bench-data")]
        data_dir: PathBuf,
        /// Free space the run will need, e.g. 20G.
        #[arg(long, default_value = "1G")]
        need: String,
    },
}

/// What `run` and `calibrate` share: variants, where data goes, order, seed.
#[derive(clap::Args)]
#[command(
    mut_arg("binary", |a| a.help("The default build (for `args:` variants); built with cargo if missing")),
    mut_arg("seed", |a| a.help("Seed for every random choice (default: from the clock, and recorded)")),
    mut_arg("out", |a| a.help("Where results go (default: bench-results/<date-time>)")),
)]
pub struct Common {
    #[command(flatten)]
    pub(crate) binary: ServerBinary,
    /// Workloads to measure (uploads always run: the others need the file).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "upload,download"
    )]
    pub(crate) workloads: Vec<Workload>,
    #[command(flatten)]
    pub(crate) pacing: Pacing,
    #[command(flatten)]
    pub(crate) steal_gap: StealGap,
    /// Order of variants in each block.
    #[arg(long, value_enum, default_value = "randomized")]
    pub(crate) order: Order,
    #[command(flatten)]
    pub(crate) seed: Seed,
    #[command(flatten)]
    pub(crate) places: Places,
    #[command(flatten)]
    pub(crate) guard: Guard,
}

/// The path of the default build, which the bench builds with cargo when it
/// is missing.
pub(crate) const DEFAULT_BINARY: &str = "target/release/picoshare";

/// The server build (`--binary`).
#[derive(clap::Args)]
pub struct ServerBinary {
    /// The server binary; built with cargo if it is the default and missing.
    #[arg(long, default_value = DEFAULT_BINARY)]
    pub(crate) binary: PathBuf,
}

/// Warm-up blocks and the wait for a quiet machine before each unit.
#[derive(clap::Args)]
pub struct Pacing {
    /// Warm-up blocks per configuration (recorded, excluded from statistics).
    #[arg(long, default_value_t = 1)]
    pub(crate) warmup: u32,
    /// Before each unit, wait up to this long (`30s`, `0` for never) for a
    /// quarter second in which the machine's CPUs are at most 10 % busy, so
    /// that bursts of other work on a shared machine do not land in a unit.
    #[arg(long, default_value = "30s")]
    pub(crate) wait_idle: String,
}

/// Blocks left out for unequal steal (`--steal-gap`).
#[derive(clap::Args)]
pub struct StealGap {
    /// On a virtual machine: a block whose units lost unequal shares of the
    /// machine's CPU time to the hypervisor (steal, given to the host's other
    /// guests), the most and the least apart by more than this many percentage
    /// points, is recorded, left out and run again; `none` keeps every block.
    #[arg(long, default_value = "4")]
    pub(crate) steal_gap: String,
}

/// The seed of every random choice (`--seed`).
#[derive(clap::Args)]
pub struct Seed {
    /// Seed of every random choice (default: from the clock, and recorded).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
}

/// Where data and results go (`--data-dir`, `--out`).
#[derive(clap::Args)]
pub struct Places {
    /// Where test files and server data go: put it on the disk you care about.
    #[arg(long, default_value = "bench-data")]
    pub(crate) data_dir: PathBuf,
    /// Where results go (default: bench-results/<kind>-<date-time>).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// The doctor's check before a run (`--force`, `--quiet`).
#[derive(clap::Args)]
pub struct Guard {
    /// Run even if the doctor reports a failure.
    #[arg(long)]
    pub(crate) force: bool,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Options of `run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A variant, NAME=SPEC, repeatable; the first is the baseline. SPEC is
    /// `args:ARGS` (default build with extra arguments; `NAME=` for none),
    /// `bin:PATH [ARGS]`, `git:REV [ARGS]`, `url:http://HOST:PORT`, or
    /// `tus:[MIB] [ARGS]` (default build, uploads sent with the tus protocol in
    /// one PATCH or in PATCHes of MIB MiB), or `ref:` (the machine's
    /// reference: write + fsync for uploads, a static file server for
    /// downloads; no limits, ranges or concurrency).
    #[arg(long = "variant", value_name = "NAME=SPEC")]
    pub(crate) variants: Vec<String>,
    #[command(flatten)]
    pub(crate) common: Common,
    /// File sizes (MiB-based: 100M, 1G = 1024 MiB).
    #[arg(long, value_delimiter = ',', default_value = "100M,500M,1G,2G,5G")]
    pub(crate) sizes: Vec<String>,
    /// Server memory limits in MiB, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub(crate) memory_limits: Vec<String>,
    /// Server disk bandwidth limits in MB/s (reads and writes each), or `none`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub(crate) disk_limits: Vec<String>,
    /// More configurations, `SIZES/MEMORY/DISK` (each a comma-separated
    /// list, e.g. `100M,1G/none/50,200`), run after the main matrix; repeatable.
    #[arg(long = "extra-matrix", value_name = "SIZES/MEMORY/DISK")]
    pub(crate) extra_matrix: Vec<String>,
    /// Blocks per configuration (without --target-mde).
    #[arg(long, default_value_t = 10)]
    pub(crate) iterations: u32,
    /// Adaptive stopping: add blocks until every comparison's paired MDE is
    /// below PCT percent, or it is decided beyond ±PCT %.
    #[arg(long, value_name = "PCT")]
    pub(crate) target_mde: Option<f64>,
    /// With --target-mde: the fewest blocks per configuration.
    #[arg(long, default_value_t = 3)]
    pub(crate) min_iterations: u32,
    /// With --target-mde: the most blocks per configuration.
    #[arg(long, default_value_t = 30)]
    pub(crate) max_iterations: u32,
    /// Time budget of the timed blocks (`90s`, `20m`, `1h`), shared among
    /// the configurations; every configuration still gets its fewest blocks.
    #[arg(long)]
    pub(crate) max_time: Option<String>,
    /// Also count the server's work: instructions (valgrind) and system
    /// calls (strace) per MiB uploaded and downloaded, start-up separated.
    #[arg(long)]
    pub(crate) count_instructions: bool,
    /// Counted blocks per variant.
    #[arg(long, default_value_t = 3)]
    pub(crate) count_blocks: u32,
    /// Only the counted runs: no timed blocks (implies --count-instructions).
    #[arg(long)]
    pub(crate) count_only: bool,
    /// File size of counted runs (MiB-based).
    #[arg(long, default_value = "64M")]
    pub(crate) count_size: String,
    /// Add the sensitivity self-check to the run: an A/A twin of the
    /// baseline and a planted slowdown of it (see `calibrate`).
    #[arg(long)]
    pub(crate) self_check: bool,
    /// Size of the planted slowdown in percent.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) plant: f64,
    /// Parallel clients per measurement.
    #[arg(long, default_value_t = 1)]
    pub(crate) concurrency: u32,
    /// Passphrase of `url:` variants.
    #[arg(long, env = "PICOSHARE_BENCH_PASSPHRASE")]
    pub(crate) url_passphrase: Option<String>,
    /// Ranged reads per `range` measurement.
    #[arg(long, default_value_t = 64)]
    pub(crate) range_count: u32,
    /// Size of each ranged read (MiB-based, e.g. 1M).
    #[arg(long, default_value = "1M")]
    pub(crate) range_size: String,
    /// Delete the test files at the end (they are kept for reuse by default).
    #[arg(long)]
    pub(crate) remove_files: bool,
}

/// What `small` and `entries` share.
#[derive(clap::Args)]
#[command(
    mut_arg("binary", |a| a.help("The default build (for `args:` variants)")),
    mut_arg("warmup", |a| a.help("Warm-up blocks (recorded, not counted)")),
    mut_arg("wait_idle", |a| a.help("Before each unit, wait up to this long for a quiet machine (`0`: never)")),
    mut_arg("data_dir", |a| a.help("Where server data goes")),
)]
pub struct BlockArgs {
    /// A variant, NAME=SPEC as for `run` (repeatable; the first is the
    /// baseline; `url:` only for `small`).
    #[arg(long = "variant", value_name = "NAME=SPEC")]
    pub(crate) variants: Vec<String>,
    #[command(flatten)]
    pub(crate) binary: ServerBinary,
    /// Measured blocks.
    #[arg(long, default_value_t = 5)]
    pub(crate) blocks: u32,
    #[command(flatten)]
    pub(crate) pacing: Pacing,
    #[command(flatten)]
    pub(crate) seed: Seed,
    #[command(flatten)]
    pub(crate) places: Places,
}

/// Options of `small`.
#[derive(clap::Args)]
#[command(mut_arg("steal_gap", |a| a.help("A block whose units lost unequal shares of the CPU to the host (steal), more than this many percentage points apart, is left out and run again; `none` keeps every block")))]
pub struct SmallArgs {
    #[command(flatten)]
    pub(crate) common: BlockArgs,
    /// File sizes (binary units: 4K, 64K, 1M).
    #[arg(long, value_delimiter = ',', default_value = "4K,64K,1M")]
    pub(crate) sizes: Vec<String>,
    /// Keep-alive connections of each phase.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub(crate) connections: Vec<u32>,
    /// Seconds each phase sends requests.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) seconds: f64,
    /// Passphrase of `url:` variants.
    #[arg(long, env = "PICOSHARE_BENCH_PASSPHRASE")]
    pub(crate) url_passphrase: Option<String>,
    #[command(flatten)]
    pub(crate) steal_gap: StealGap,
}

/// Options of `entries`.
#[derive(clap::Args)]
pub struct EntriesArgs {
    #[command(flatten)]
    pub(crate) common: BlockArgs,
    /// Numbers of entries (1k, 10k, 100k…).
    #[arg(long, value_delimiter = ',', default_value = "1k,10k,100k")]
    pub(crate) counts: Vec<String>,
    /// Downloads recorded for the newest file (its history page is timed).
    #[arg(long, default_value = "1m")]
    pub(crate) history: String,
}

/// Options of `calibrate`.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// The base variant, NAME=SPEC as for `run` (default: the default build).
    #[arg(long = "variant", value_name = "NAME=SPEC", default_value = "base=")]
    pub(crate) variant: String,
    #[command(flatten)]
    pub(crate) common: Common,
    /// File size (MiB-based).
    #[arg(long, default_value = "1G")]
    pub(crate) size: String,
    /// Size of the planted slowdown in percent.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) plant: f64,
    /// Target MDE in percent (adaptive stopping).
    #[arg(long, default_value_t = 3.0)]
    pub(crate) target_mde: f64,
    /// Fewest blocks per run.
    #[arg(long, default_value_t = 6)]
    pub(crate) min_iterations: u32,
    /// Most blocks per run.
    #[arg(long, default_value_t = 15)]
    pub(crate) max_iterations: u32,
    /// Server disk bandwidth limit in MB/s, or `none`.
    #[arg(long, default_value = "none")]
    pub(crate) disk_limit: String,
    /// Independent calibration runs, to measure how often the plant is
    /// called and how often A/A stays clean.
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: u32,
}

/// Options of `load`.
#[derive(clap::Args)]
#[command(
    mut_arg("data_dir", |a| a.help("Where test files and server data go")),
    mut_arg("out", |a| a.help("Where load.json and load.md go (default: bench-results/load-<date-time>)")),
    mut_arg("quiet", |a| a.help("No progress bar")),
)]
pub struct LoadArgs {
    #[command(flatten)]
    pub(crate) binary: ServerBinary,
    /// Extra server arguments, separated by spaces (e.g. `--server-args
    /// "--reader-cache-kib 256"`).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub(crate) server_args: String,
    /// Parallel uploading clients.
    #[arg(long, default_value_t = 32)]
    pub(crate) uploaders: u32,
    /// Parallel downloading clients.
    #[arg(long, default_value_t = 64)]
    pub(crate) downloaders: u32,
    /// How long new requests start (`60s`, `2m`, or seconds); transfers in
    /// flight then finish.
    #[arg(long, default_value = "60s")]
    pub(crate) duration: String,
    /// Size mix of uploads: NAME=SIZE[-SIZE]:WEIGHT, comma-separated (K, M, G
    /// are binary units). The first class with the smallest sizes and the one
    /// with the largest are compared in the latency table.
    #[arg(
        long,
        default_value = "small=4K-1M:85,medium=16M-64M:13,large=256M-512M:2"
    )]
    pub(crate) mix: String,
    /// Entries uploaded before the clock starts (the classes in turn).
    #[arg(long, default_value_t = 8)]
    pub(crate) preload: u32,
    /// Stop starting uploads after this many (downloads go on while uploads run).
    #[arg(long)]
    pub(crate) max_uploads: Option<u32>,
    #[command(flatten)]
    pub(crate) seed: Seed,
    #[command(flatten)]
    pub(crate) places: Places,
    /// Free space the run needs, checked by the doctor (e.g. 20G).
    #[arg(long, default_value = "4G")]
    pub(crate) need: String,
    #[command(flatten)]
    pub(crate) guard: Guard,
}

/// Options of `stall`.
#[derive(clap::Args)]
#[command(
    mut_arg("out", |a| a.help("Where results go (default: bench-results/stall-<date-time>)")),
    mut_arg("quiet", |a| a.help("Do not print the doctor's findings")),
)]
pub struct StallArgs {
    #[command(flatten)]
    pub(crate) binary: ServerBinary,
    /// Extra server arguments, separated by spaces (e.g. `--server-args
    /// "--journal-mode delete"`).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub(crate) server_args: String,
    /// Size of the large upload (`1G`; a bare number is MiB).
    #[arg(long, default_value = "1G")]
    pub(crate) upload_size: String,
    /// Size of the file downloaded again and again (a bare number is MiB).
    #[arg(long, default_value = "64M")]
    pub(crate) download_size: String,
    #[command(flatten)]
    pub(crate) places: Places,
    #[command(flatten)]
    pub(crate) guard: Guard,
}
