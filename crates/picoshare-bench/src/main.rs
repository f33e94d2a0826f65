//! `picoshare-bench`: the performance test suite for PicoShare-compatible servers.
//!
//! Subcommands: `run` (measure a matrix and write results, report and charts),
//! `calibrate` (what this machine lets the bench see: A/A and a planted
//! slowdown), `load` (many parallel clients for a bounded time), `report`
//! (rebuild report and charts from a result file), `compare` (two result
//! files) and `doctor` (check the machine before measuring).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use picoshare_bench::results::{CalibrationRecord, ConfigKey};
use picoshare_bench::runner::{self, Blocks, Order, RunOptions, Workload};
use picoshare_bench::{
    calibrate, cgroup, compare, disk, doctor, files, load, plan::units, report, results, variants,
};

#[derive(Parser)]
#[command(
    name = "picoshare-bench",
    version,
    about = "Performance test suite for PicoShare-compatible servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
struct Common {
    /// The default build (for `args:` variants); built with cargo if missing.
    #[arg(long, default_value = "target/release/picoshare")]
    binary: PathBuf,
    /// Workloads to measure (uploads always run: the others need the file).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "upload,download"
    )]
    workloads: Vec<Workload>,
    /// Warm-up blocks per configuration (recorded, excluded from statistics).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Before each unit, wait up to this long (`30s`, `0` for never) for a
    /// quarter second in which the machine's CPUs are at most 10 % busy, so
    /// that bursts of other work on a shared machine do not land in a unit.
    #[arg(long, default_value = "30s")]
    wait_idle: String,
    /// On a virtual machine: a block whose units lost unequal shares of the
    /// machine's CPU time to the hypervisor (steal, given to the host's other
    /// guests), the most and the least apart by more than this many percentage
    /// points, is recorded, left out and run again; `none` keeps every block.
    #[arg(long, default_value = "4")]
    steal_gap: String,
    /// Order of variants in each block.
    #[arg(long, value_enum, default_value = "randomized")]
    order: Order,
    /// Seed for every random choice (default: from the clock, and recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Where test files and server data go: put it on the disk you care about.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
    /// Where results go (default: bench-results/<date-time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run even if the doctor reports a failure.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// A variant, NAME=SPEC, repeatable; the first is the baseline. SPEC is
    /// `args:ARGS` (default build with extra arguments; `NAME=` for none),
    /// `bin:PATH [ARGS]`, `git:REV [ARGS]`, `url:http://HOST:PORT`, or
    /// `tus:[MIB] [ARGS]` (default build, uploads sent with the tus protocol in
    /// one PATCH or in PATCHes of MIB MiB).
    #[arg(long = "variant", value_name = "NAME=SPEC")]
    variants: Vec<String>,
    #[command(flatten)]
    common: Common,
    /// File sizes (MiB-based: 100M, 1G = 1024 MiB).
    #[arg(long, value_delimiter = ',', default_value = "100M,500M,1G,2G,5G")]
    sizes: Vec<String>,
    /// Server memory limits in MiB, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    memory_limits: Vec<String>,
    /// Server disk bandwidth limits in MB/s (reads and writes each), or `none`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    disk_limits: Vec<String>,
    /// More configurations, `SIZES/MEMORY/DISK` (each a comma-separated
    /// list, e.g. `100M,1G/none/50,200`), run after the main matrix; repeatable.
    #[arg(long = "extra-matrix", value_name = "SIZES/MEMORY/DISK")]
    extra_matrix: Vec<String>,
    /// Blocks per configuration (without --target-mde).
    #[arg(long, default_value_t = 10)]
    iterations: u32,
    /// Adaptive stopping: add blocks until every comparison's paired MDE is
    /// below PCT percent, or it is decided beyond ±PCT %.
    #[arg(long, value_name = "PCT")]
    target_mde: Option<f64>,
    /// With --target-mde: the fewest blocks per configuration.
    #[arg(long, default_value_t = 3)]
    min_iterations: u32,
    /// With --target-mde: the most blocks per configuration.
    #[arg(long, default_value_t = 30)]
    max_iterations: u32,
    /// Time budget of the timed blocks (`90s`, `20m`, `1h`), shared among
    /// the configurations; every configuration still gets its fewest blocks.
    #[arg(long)]
    max_time: Option<String>,
    /// Also count the server's work: instructions (valgrind) and system
    /// calls (strace) per MiB uploaded and downloaded, start-up separated.
    #[arg(long)]
    count_instructions: bool,
    /// Counted blocks per variant.
    #[arg(long, default_value_t = 3)]
    count_blocks: u32,
    /// Only the counted runs: no timed blocks (implies --count-instructions).
    #[arg(long)]
    count_only: bool,
    /// File size of counted runs (MiB-based).
    #[arg(long, default_value = "64M")]
    count_size: String,
    /// Add the sensitivity self-check to the run: an A/A twin of the
    /// baseline and a planted slowdown of it (see `calibrate`).
    #[arg(long)]
    self_check: bool,
    /// Size of the planted slowdown in percent.
    #[arg(long, default_value_t = 5.0)]
    plant: f64,
    /// Parallel clients per measurement.
    #[arg(long, default_value_t = 1)]
    concurrency: u32,
    /// Passphrase of `url:` variants.
    #[arg(long, env = "PICOSHARE_BENCH_PASSPHRASE")]
    url_passphrase: Option<String>,
    /// Ranged reads per `range` measurement.
    #[arg(long, default_value_t = 64)]
    range_count: u32,
    /// Size of each ranged read (MiB-based, e.g. 1M).
    #[arg(long, default_value = "1M")]
    range_size: String,
    /// Delete the test files at the end (they are kept for reuse by default).
    #[arg(long)]
    remove_files: bool,
}

/// What `small` and `entries` share.
#[derive(clap::Args)]
struct BlockArgs {
    /// A variant, NAME=SPEC as for `run` (repeatable; the first is the
    /// baseline; `url:` only for `small`).
    #[arg(long = "variant", value_name = "NAME=SPEC")]
    variants: Vec<String>,
    /// The default build (for `args:` variants).
    #[arg(long, default_value = "target/release/picoshare")]
    binary: PathBuf,
    /// Measured blocks.
    #[arg(long, default_value_t = 5)]
    blocks: u32,
    /// Warm-up blocks (recorded, not counted).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Before each unit, wait up to this long for a quiet machine (`0`: never).
    #[arg(long, default_value = "30s")]
    wait_idle: String,
    /// Seed of every random choice (default: from the clock, and recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Where server data goes.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
    /// Where results go (default: bench-results/<kind>-<date-time>).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SmallArgs {
    #[command(flatten)]
    common: BlockArgs,
    /// File sizes (binary units: 4K, 64K, 1M).
    #[arg(long, value_delimiter = ',', default_value = "4K,64K,1M")]
    sizes: Vec<String>,
    /// Keep-alive connections of each phase.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    connections: Vec<u32>,
    /// Seconds each phase sends requests.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Passphrase of `url:` variants.
    #[arg(long, env = "PICOSHARE_BENCH_PASSPHRASE")]
    url_passphrase: Option<String>,
    /// A block whose units lost unequal shares of the CPU to the host
    /// (steal), more than this many percentage points apart, is left out
    /// and run again; `none` keeps every block.
    #[arg(long, default_value = "4")]
    steal_gap: String,
}

#[derive(clap::Args)]
struct EntriesArgs {
    #[command(flatten)]
    common: BlockArgs,
    /// Numbers of entries (1k, 10k, 100k…).
    #[arg(long, value_delimiter = ',', default_value = "1k,10k,100k")]
    counts: Vec<String>,
    /// Downloads recorded for the newest file (its history page is timed).
    #[arg(long, default_value = "1m")]
    history: String,
}

#[derive(clap::Args)]
struct CalibrateArgs {
    /// The base variant, NAME=SPEC as for `run` (default: the default build).
    #[arg(long = "variant", value_name = "NAME=SPEC", default_value = "base=")]
    variant: String,
    #[command(flatten)]
    common: Common,
    /// File size (MiB-based).
    #[arg(long, default_value = "1G")]
    size: String,
    /// Size of the planted slowdown in percent.
    #[arg(long, default_value_t = 5.0)]
    plant: f64,
    /// Target MDE in percent (adaptive stopping).
    #[arg(long, default_value_t = 3.0)]
    target_mde: f64,
    /// Fewest blocks per run.
    #[arg(long, default_value_t = 6)]
    min_iterations: u32,
    /// Most blocks per run.
    #[arg(long, default_value_t = 15)]
    max_iterations: u32,
    /// Server disk bandwidth limit in MB/s, or `none`.
    #[arg(long, default_value = "none")]
    disk_limit: String,
    /// Independent calibration runs, to measure how often the plant is
    /// called and how often A/A stays clean.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The server binary; built with cargo if it is the default and missing.
    #[arg(long, default_value = "target/release/picoshare")]
    binary: PathBuf,
    /// Extra server arguments, separated by spaces (e.g. `--server-args
    /// "--reader-cache-kib 256"`).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    server_args: String,
    /// Parallel uploading clients.
    #[arg(long, default_value_t = 32)]
    uploaders: u32,
    /// Parallel downloading clients.
    #[arg(long, default_value_t = 64)]
    downloaders: u32,
    /// How long new requests start (`60s`, `2m`, or seconds); transfers in
    /// flight then finish.
    #[arg(long, default_value = "60s")]
    duration: String,
    /// Size mix of uploads: NAME=SIZE[-SIZE]:WEIGHT, comma-separated (K, M, G
    /// are binary units). The first class with the smallest sizes and the one
    /// with the largest are compared in the latency table.
    #[arg(
        long,
        default_value = "small=4K-1M:85,medium=16M-64M:13,large=256M-512M:2"
    )]
    mix: String,
    /// Entries uploaded before the clock starts (the classes in turn).
    #[arg(long, default_value_t = 8)]
    preload: u32,
    /// Stop starting uploads after this many (downloads go on while uploads run).
    #[arg(long)]
    max_uploads: Option<u32>,
    /// Seed of every random choice (default: from the clock, and recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Where test files and server data go.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
    /// Where load.json and load.md go (default: bench-results/load-<date-time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Free space the run needs, checked by the doctor (e.g. 20G).
    #[arg(long, default_value = "4G")]
    need: String,
    /// Run even if the doctor reports a failure.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `--steal-gap`: percentage points in (0, 100], or `none`; as a fraction.
fn parse_steal_gap(raw: &str) -> anyhow::Result<Option<f64>> {
    let s = raw.trim().trim_end_matches('%');
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(pct) if pct > 0.0 && pct <= 100.0 => Ok(Some(pct / 100.0)),
        _ => bail!("--steal-gap wants percentage points above 0 and at most 100 (like 4), or `none`; got {raw:?}"),
    }
}

/// `--wait-idle`: a duration, or `0` for no wait.
fn parse_wait(raw: &str) -> anyhow::Result<std::time::Duration> {
    if raw.trim().trim_end_matches('s') == "0" {
        Ok(std::time::Duration::ZERO)
    } else {
        units::parse_duration(raw)
    }
}

async fn run_load(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let duration = units::parse_duration(&a.duration)?;
    let mix = load::parse_mix(&a.mix)?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
    let data_dir = a.data_dir.canonicalize()?;
    if !a.binary.exists() && a.binary == Path::new("target/release/picoshare") {
        eprintln!("{} is missing: building it with cargo", a.binary.display());
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "-p", "picoshare"])
            .status()
            .context("cannot run cargo")?;
        anyhow::ensure!(status.success(), "could not build {}", a.binary.display());
    }
    anyhow::ensure!(a.binary.exists(), "{} does not exist", a.binary.display());
    let binary = a.binary.canonicalize()?;
    let need = units::parse_size(&a.need, units::Bare::Bytes)?;
    let environment = doctor::inspect(&data_dir, need);
    if !a.quiet {
        eprint!("{}", doctor::print(&environment));
    }
    if doctor::has_failures(&environment) && !a.force {
        bail!("the doctor found a problem that makes this run impossible or meaningless (see above); fix it, or pass --force");
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(format!(
            "load-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let result = load::run(load::LoadOptions {
        binary,
        server_args: a.server_args.split_whitespace().map(String::from).collect(),
        uploaders: a.uploaders,
        downloaders: a.downloaders,
        duration,
        mix,
        preload: a.preload,
        max_uploads: a.max_uploads,
        seed,
        data_dir,
        out_dir: out.clone(),
        command: std::env::args().collect(),
        environment,
        progress: !a.quiet,
    })
    .await?;
    print!("{}", load::markdown(&result));
    eprintln!(
        "wrote {} and {}",
        out.join("load.json").display(),
        out.join("load.md").display()
    );
    Ok(if !result.completed {
        ExitCode::from(130)
    } else if result.error_count > 0 || !result.server_alive_at_end {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run(args).await,
        Cmd::Calibrate(args) => run_calibrate(args).await,
        Cmd::Load(args) => run_load(args).await,
        Cmd::Small(args) => run_small(args).await,
        Cmd::Entries(args) => run_entries(args).await,
        Cmd::Report { results, out } => rebuild_report(&results, out),
        Cmd::Compare { a, b, out } => compare_files(&a, &b, out),
        Cmd::Doctor { data_dir, need } => run_doctor(&data_dir, &need),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picoshare-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Variants, the machine and where results go, for `small` and `entries`.
struct BlockSetup {
    variants: Vec<variants::Variant>,
    data_dir: PathBuf,
    environment: results::Environment,
    seed: u64,
    out: PathBuf,
    wait_idle: std::time::Duration,
}

fn block_setup(c: &BlockArgs, kind: &str) -> anyhow::Result<BlockSetup> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("cannot create {}", c.data_dir.display()))?;
    let data_dir = c.data_dir.canonicalize()?;
    let specs = if c.variants.is_empty() {
        vec!["default=".to_owned()]
    } else {
        c.variants.clone()
    };
    let variants = parse_variants(&specs, &c.binary, &data_dir)?;
    anyhow::ensure!(c.blocks >= 1, "--blocks must be at least 1");
    let environment = doctor::inspect(&data_dir, 1 << 30);
    let out = c.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(format!(
            "{kind}-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    Ok(BlockSetup {
        variants,
        data_dir,
        environment,
        seed: seed_or_clock(c.seed),
        out,
        wait_idle: parse_wait(&c.wait_idle)?,
    })
}

async fn run_small(a: SmallArgs) -> anyhow::Result<ExitCode> {
    let sizes = a
        .sizes
        .iter()
        .map(|s| units::parse_size(s, units::Bare::Bytes))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        a.connections.iter().all(|&c| c >= 1),
        "--connections are at least 1"
    );
    anyhow::ensure!(
        a.seconds > 0.0 && a.seconds.is_finite(),
        "--seconds must be positive"
    );
    let setup = block_setup(&a.common, "small")?;
    if setup.variants.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }
    let results = picoshare_bench::small::run(picoshare_bench::small::SmallOptions {
        variants: setup.variants,
        sizes,
        connections: a.connections.clone(),
        phase: std::time::Duration::from_secs_f64(a.seconds),
        blocks: a.common.blocks,
        warmup: a.common.warmup,
        wait_idle: setup.wait_idle,
        steal_gap: parse_steal_gap(&a.steal_gap)?,
        seed: setup.seed,
        data_dir: setup.data_dir,
        out_dir: setup.out.clone(),
        url_passphrase: a.url_passphrase.clone(),
        command: std::env::args().collect(),
        environment: setup.environment,
        progress: true,
    })
    .await?;
    finish_block_run(&results, &setup.out)
}

async fn run_entries(a: EntriesArgs) -> anyhow::Result<ExitCode> {
    let counts = a
        .counts
        .iter()
        .map(|s| picoshare_bench::entries::parse_count(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(counts.iter().all(|&n| n >= 10), "--counts are at least 10");
    let history = picoshare_bench::entries::parse_count(&a.history)?;
    let setup = block_setup(&a.common, "entries")?;
    let results = picoshare_bench::entries::run(picoshare_bench::entries::EntriesOptions {
        variants: setup.variants,
        counts,
        history,
        blocks: a.common.blocks,
        warmup: a.common.warmup,
        wait_idle: setup.wait_idle,
        seed: setup.seed,
        data_dir: setup.data_dir,
        out_dir: setup.out.clone(),
        command: std::env::args().collect(),
        environment: setup.environment,
    })
    .await?;
    finish_block_run(&results, &setup.out)
}

/// Writes the report of a `small` or `entries` run and prints its tables.
fn finish_block_run(results: &results::ResultFile, out: &Path) -> anyhow::Result<ExitCode> {
    let written = report::write_all(results, out)?;
    print!(
        "{}{}",
        picoshare_bench::small::report::small_markdown(results),
        picoshare_bench::small::report::entries_markdown(results)
    );
    eprintln!("wrote:");
    for p in written {
        eprintln!("  {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn load(path: &PathBuf) -> anyhow::Result<results::ResultFile> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a result file", path.display()))
}

fn rebuild_report(path: &PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let results = load(path)?;
    let dir = out.unwrap_or_else(|| path.parent().map(PathBuf::from).unwrap_or_default());
    for p in report::write_all(&results, &dir)? {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn compare_files(a: &PathBuf, b: &PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let md = compare::compare_files(&load(a)?, &load(b)?);
    match out {
        Some(p) => {
            std::fs::write(&p, md).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn run_doctor(data_dir: &PathBuf, need: &str) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir)?;
    let need = units::parse_size_mib(need)? << 20;
    let env = doctor::inspect(data_dir, need);
    print!("{}", doctor::print(&env));
    Ok(if doctor::has_failures(&env) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Parses limits: numbers (MiB or MB/s; a unit suffix of `M`, `MB/s` or
/// `MiB` is allowed) or `none`, each at least `min`.
fn parse_limits(raw: &[String], what: &str, min: u64) -> anyhow::Result<Vec<Option<u64>>> {
    raw.iter()
        .map(|l| {
            let l = l.trim();
            if l.eq_ignore_ascii_case("none") || l.eq_ignore_ascii_case("unlimited") {
                Ok(None)
            } else {
                let n: u64 = l
                    .trim_end_matches("/s")
                    .trim_end_matches(['B', 'b', 'i'])
                    .trim_end_matches(['M', 'm'])
                    .parse()
                    .with_context(|| format!("bad {what} {l:?}: a number or `none`"))?;
                anyhow::ensure!(
                    n >= min,
                    "{what} {n} is below the smallest that works ({min})"
                );
                Ok(Some(n))
            }
        })
        .collect()
}

fn parse_memory_limits(raw: &[String]) -> anyhow::Result<Vec<Option<u64>>> {
    parse_limits(raw, "memory limit (MiB)", 16)
}

fn parse_disk_limits(raw: &[String]) -> anyhow::Result<Vec<Option<u64>>> {
    parse_limits(raw, "disk limit (MB/s)", 1)
}

/// Sizes × memory limits × disk limits, in that nesting order.
fn matrix(sizes: &[u64], memory: &[Option<u64>], disk: &[Option<u64>]) -> Vec<ConfigKey> {
    let mut out = Vec::new();
    for &size_mib in sizes {
        for &memory_limit_mib in memory {
            for &disk_limit_mbps in disk {
                out.push(ConfigKey {
                    size_mib,
                    memory_limit_mib,
                    disk_limit_mbps,
                });
            }
        }
    }
    out
}

/// Parses `SIZES/MEMORY/DISK`.
fn parse_extra_matrix(raw: &str) -> anyhow::Result<Vec<ConfigKey>> {
    let parts: Vec<&str> = raw.split('/').collect();
    anyhow::ensure!(
        parts.len() == 3,
        "--extra-matrix {raw:?}: write SIZES/MEMORY/DISK, e.g. 100M,1G/none/50,200"
    );
    let list = |p: &str| p.split(',').map(str::to_owned).collect::<Vec<_>>();
    let sizes = list(parts[0])
        .iter()
        .map(|s| units::parse_size_mib(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(matrix(
        &sizes,
        &parse_memory_limits(&list(parts[1]))?,
        &parse_disk_limits(&list(parts[2]))?,
    ))
}

fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}

/// Builds the default binary with cargo when it is the default path and missing.
fn ensure_default_binary(binary: &Path) -> anyhow::Result<PathBuf> {
    if !binary.exists() {
        eprintln!("{} is missing: building it with cargo", binary.display());
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "-p", "picoshare"])
            .status()
            .context("cannot run cargo")?;
        if !status.success() || !binary.exists() {
            bail!("could not build {}", binary.display());
        }
    }
    Ok(binary.canonicalize().unwrap_or(binary.to_owned()))
}

/// Parses variant specs (building the default binary or git revisions as needed).
fn parse_variants(
    specs: &[String],
    binary: &Path,
    data_dir: &Path,
) -> anyhow::Result<Vec<variants::Variant>> {
    let needs_default = specs.iter().any(|s| {
        let spec = s.split_once('=').map_or("", |(_, v)| v.trim());
        !(spec.starts_with("bin:") || spec.starts_with("git:") || spec.starts_with("url:"))
    });
    let binary = if needs_default {
        ensure_default_binary(binary)?
    } else {
        binary.to_owned()
    };
    let mut vs = Vec::new();
    for spec in specs {
        let mut v = variants::parse(spec, &binary, data_dir)?;
        if let variants::Target::Binary { path, .. } = &v.target {
            v.info.version = variants::binary_version(path);
            if v.info.kind == "settings" {
                v.info.git_revision = variants::current_revision();
            }
        }
        if vs
            .iter()
            .any(|o: &variants::Variant| o.info.name == v.info.name)
        {
            bail!("two variants are named {}", v.info.name);
        }
        vs.push(v);
    }
    Ok(vs)
}

/// The calibration record kept in a data directory, if any.
fn calibration_path(data_dir: &Path) -> PathBuf {
    data_dir.join("calibration.json")
}

fn load_calibration(data_dir: &Path) -> Option<CalibrationRecord> {
    let text = std::fs::read(calibration_path(data_dir)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// What a run or a calibration needs besides its variants and configurations.
struct Prepared {
    data_dir: PathBuf,
    environment: results::Environment,
    limit_method: cgroup::LimitMethod,
    disk_method: disk::DiskMethod,
    seed: u64,
    out: PathBuf,
}

/// Checks the machine (doctor) and finds how limits are enforced.
fn prepare(common: &Common, need: u64, any_limit: bool) -> anyhow::Result<Prepared> {
    std::fs::create_dir_all(&common.data_dir)
        .with_context(|| format!("cannot create {}", common.data_dir.display()))?;
    let data_dir = common.data_dir.canonicalize()?;
    let mut environment = doctor::inspect(&data_dir, need);
    // Also without limits: a cgroup without a limit still accounts memory.
    let limit_method = cgroup::detect();
    let disk_method = disk::detect(&data_dir, &limit_method);
    environment.disk_limit_method = disk_method.label();
    eprint!("{}", doctor::print(&environment));
    if any_limit && !disk_method.enforces() {
        eprintln!(
            "note: disk limits will be recorded as not enforced: {}",
            disk_method.label()
        );
    }
    if doctor::has_failures(&environment) && !common.force {
        bail!("the doctor found a problem that makes this run impossible or meaningless (see above); fix it, or pass --force");
    }
    let out = common.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    Ok(Prepared {
        data_dir,
        environment,
        limit_method,
        disk_method,
        seed: seed_or_clock(common.seed),
        out,
    })
}

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let sizes: Vec<u64> = a
        .sizes
        .iter()
        .map(|s| units::parse_size_mib(s))
        .collect::<anyhow::Result<_>>()?;
    let mut configs = matrix(
        &sizes,
        &parse_memory_limits(&a.memory_limits)?,
        &parse_disk_limits(&a.disk_limits)?,
    );
    for extra in &a.extra_matrix {
        for c in parse_extra_matrix(extra)? {
            if !configs.contains(&c) {
                configs.push(c);
            }
        }
    }
    let range_len = units::parse_size_mib(&a.range_size)? << 20;
    let count_size_mib = units::parse_size_mib(&a.count_size)?;
    let blocks = match a.target_mde {
        Some(pct) => {
            anyhow::ensure!(
                pct > 0.0 && pct < 100.0,
                "--target-mde is a percentage between 0 and 100"
            );
            anyhow::ensure!(
                a.min_iterations >= 2 && a.max_iterations >= a.min_iterations,
                "--min-iterations must be at least 2 and at most --max-iterations"
            );
            Blocks::Adaptive {
                target: pct / 100.0,
                min: a.min_iterations,
                max: a.max_iterations,
            }
        }
        None => {
            anyhow::ensure!(a.iterations >= 1, "--iterations must be at least 1");
            Blocks::Fixed(a.iterations)
        }
    };
    let max_time = a
        .max_time
        .as_deref()
        .map(units::parse_duration)
        .transpose()?;
    anyhow::ensure!(
        a.plant > 0.0 && a.plant < 50.0,
        "--plant is a percentage between 0 and 50"
    );

    let biggest = configs.iter().map(|c| c.size_mib).max().unwrap_or(0);
    std::fs::create_dir_all(&a.common.data_dir)
        .with_context(|| format!("cannot create {}", a.common.data_dir.display()))?;
    let files_dir = a.common.data_dir.join("files");
    let mut all_sizes: Vec<u64> = configs.iter().map(|c| c.size_mib).collect();
    all_sizes.sort_unstable();
    all_sizes.dedup();
    let files_bytes: u64 = all_sizes
        .iter()
        .filter(|s| !files::path_for(&files_dir, **s).exists())
        .map(|s| s << 20)
        .sum();
    let need = runner::space_needed(biggest, a.concurrency) + files_bytes;
    let any_disk_limit = configs.iter().any(|c| c.disk_limit_mbps.is_some());
    let p = prepare(&a.common, need, any_disk_limit)?;

    let specs = if a.variants.is_empty() {
        vec!["default=".to_owned()]
    } else {
        a.variants.clone()
    };
    let mut vs = parse_variants(&specs, &a.common.binary, &p.data_dir)?;
    if vs.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }
    if a.self_check {
        let twins = variants::self_check(&vs[0], a.plant / 100.0);
        vs.extend(twins);
    }
    if a.count_only {
        configs.clear();
    }
    let opts = RunOptions {
        variants: vs,
        configs,
        workloads: a.common.workloads.clone(),
        blocks,
        max_time,
        warmup: a.common.warmup,
        wait_idle: parse_wait(&a.common.wait_idle)?,
        steal_gap: parse_steal_gap(&a.common.steal_gap)?,
        concurrency: a.concurrency.max(1),
        order: a.common.order,
        seed: p.seed,
        data_dir: p.data_dir.clone(),
        out_dir: p.out.clone(),
        url_passphrase: a.url_passphrase.clone(),
        range_count: a.range_count.max(1),
        range_len,
        count_blocks: if a.count_instructions || a.count_only {
            a.count_blocks.max(1)
        } else {
            0
        },
        count_size_mib,
        command: std::env::args().collect(),
        environment: p.environment,
        limit_method: p.limit_method,
        disk_method: p.disk_method,
        calibration: load_calibration(&p.data_dir),
        progress: !a.common.quiet,
    };
    let started = std::time::Instant::now();
    let results = runner::run(opts).await?;
    let written = report::write_all(&results, &p.out)?;
    if a.remove_files {
        for s in &all_sizes {
            let _ = std::fs::remove_file(files::path_for(&p.data_dir.join("files"), *s));
        }
    }
    let failed = results.samples.iter().filter(|s| !s.ok).count();
    eprintln!(
        "{} samples ({} failed){} in {:.0} s; wrote:",
        results.samples.len(),
        failed,
        if results.interrupted {
            ", interrupted"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    for p in written {
        eprintln!("  {}", p.display());
    }
    Ok(if results.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_calibrate(a: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let size = units::parse_size_mib(&a.size)?;
    let disk = parse_disk_limits(std::slice::from_ref(&a.disk_limit))?[0];
    anyhow::ensure!(
        a.plant > 0.0 && a.plant < 50.0,
        "--plant is a percentage between 0 and 50"
    );
    anyhow::ensure!(a.repeat >= 1, "--repeat must be at least 1");
    anyhow::ensure!(
        a.min_iterations >= 2 && a.max_iterations >= a.min_iterations,
        "--min-iterations must be at least 2 and at most --max-iterations"
    );
    let files_dir = a.common.data_dir.join("files");
    let need = runner::space_needed(size, 1)
        + if files::path_for(&files_dir, size).exists() {
            0
        } else {
            size << 20
        };
    let p = prepare(&a.common, need, disk.is_some())?;
    let base = parse_variants(
        std::slice::from_ref(&a.variant),
        &a.common.binary,
        &p.data_dir,
    )?
    .remove(0);
    if base.info.kind == "url" {
        bail!("calibrate starts its own servers: give a build (args:, bin: or git:), not a url:");
    }
    let twins = variants::self_check(&base, a.plant / 100.0);
    let variants = vec![base, twins[0].clone(), twins[1].clone()];
    let command: Vec<String> = std::env::args().collect();
    let started = std::time::Instant::now();
    let mut repeats = Vec::new();
    for k in 1..=a.repeat {
        eprintln!("calibration run {k} of {}", a.repeat);
        let out = p.out.join(format!("run-{k}"));
        let run_started = std::time::Instant::now();
        let opts = RunOptions {
            variants: variants.clone(),
            configs: vec![ConfigKey {
                size_mib: size,
                memory_limit_mib: None,
                disk_limit_mbps: disk,
            }],
            workloads: a.common.workloads.clone(),
            blocks: Blocks::Adaptive {
                target: a.target_mde / 100.0,
                min: a.min_iterations,
                max: a.max_iterations,
            },
            max_time: None,
            warmup: a.common.warmup,
            wait_idle: parse_wait(&a.common.wait_idle)?,
            steal_gap: parse_steal_gap(&a.common.steal_gap)?,
            concurrency: 1,
            order: a.common.order,
            seed: p.seed.wrapping_add(u64::from(k)),
            data_dir: p.data_dir.clone(),
            out_dir: out.clone(),
            url_passphrase: None,
            range_count: 64,
            range_len: 1 << 20,
            count_blocks: 0,
            count_size_mib: 0,
            command: command.clone(),
            environment: p.environment.clone(),
            limit_method: p.limit_method.clone(),
            disk_method: p.disk_method.clone(),
            calibration: None,
            progress: !a.common.quiet,
        };
        let results = runner::run(opts).await?;
        report::write_all(&results, &out)?;
        let interrupted = results.interrupted;
        repeats.push((results, run_started.elapsed().as_secs_f64()));
        if interrupted {
            break;
        }
    }
    let summary = calibrate::summarize(
        &repeats,
        a.plant / 100.0,
        command,
        started.elapsed().as_secs_f64(),
    );
    std::fs::create_dir_all(&p.out)?;
    let md = calibrate::markdown(&summary);
    std::fs::write(p.out.join("calibration.md"), &md)?;
    std::fs::write(
        p.out.join("calibration.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    std::fs::write(
        calibration_path(&p.data_dir),
        serde_json::to_string_pretty(&summary.record)? + "\n",
    )?;
    print!("{md}");
    eprintln!(
        "wrote {} and {} (and {} for later reports)",
        p.out.join("calibration.md").display(),
        p.out.join("calibration.json").display(),
        calibration_path(&p.data_dir).display()
    );
    Ok(if repeats.iter().any(|(r, _)| r.interrupted) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_gap_is_percentage_points_or_none() {
        assert_eq!(parse_steal_gap("4").unwrap(), Some(0.04));
        assert_eq!(parse_steal_gap(" 2.5% ").unwrap(), Some(0.025));
        assert_eq!(parse_steal_gap("100").unwrap(), Some(1.0));
        assert_eq!(parse_steal_gap("none").unwrap(), None);
        assert_eq!(parse_steal_gap("None").unwrap(), None);
        for bad in ["0", "-1", "101", "four", ""] {
            let e = parse_steal_gap(bad).unwrap_err().to_string();
            assert!(e.contains("--steal-gap"), "{bad}: {e}");
        }
    }
}
