//! `picoshare-bench`: the performance test suite for PicoShare-compatible servers.
//!
//! Subcommands: `run` (measure a matrix and write results, report and charts),
//! `load` (many parallel clients for a bounded time), `report` (rebuild report
//! and charts from a result file), `compare` (two result files) and `doctor`
//! (check the machine before measuring).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use picoshare_bench::runner::{self, Order, RunOptions, Workload};
use picoshare_bench::{cgroup, compare, doctor, files, load, report, results, variants};

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
    /// Measure uploads and downloads over a matrix of sizes, memory limits and variants.
    Run(RunArgs),
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

#[derive(clap::Args)]
struct RunArgs {
    /// A variant, NAME=SPEC, repeatable; the first is the baseline. SPEC is
    /// `args:ARGS` (default build with extra arguments; `NAME=` for none),
    /// `bin:PATH [ARGS]`, `git:REV [ARGS]`, `url:http://HOST:PORT`, or
    /// `tus:[MIB] [ARGS]` (default build, uploads sent with the tus protocol in
    /// one PATCH or in PATCHes of MIB MiB).
    #[arg(long = "variant", value_name = "NAME=SPEC")]
    variants: Vec<String>,
    /// The default build (for `args:` variants); built with cargo if missing.
    #[arg(long, default_value = "target/release/picoshare")]
    binary: PathBuf,
    /// File sizes (MiB-based: 100M, 1G = 1024 MiB).
    #[arg(long, value_delimiter = ',', default_value = "100M,500M,1G,2G,5G")]
    sizes: Vec<String>,
    /// Server memory limits in MiB, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    memory_limits: Vec<String>,
    /// Workloads to measure (uploads always run: the others need the file).
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "upload,download"
    )]
    workloads: Vec<Workload>,
    /// Measured iterations per configuration.
    #[arg(long, default_value_t = 10)]
    iterations: u32,
    /// Warm-up iterations per configuration (recorded, excluded from statistics).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Parallel clients per measurement.
    #[arg(long, default_value_t = 1)]
    concurrency: u32,
    /// Order of variants in each block.
    #[arg(long, value_enum, default_value = "interleaved")]
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
    /// Run even if the doctor reports a failure.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
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

/// Parses `90`, `90s`, `2m` into a duration.
fn parse_duration(raw: &str) -> anyhow::Result<std::time::Duration> {
    let s = raw.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let secs: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad duration {raw:?}: use seconds or e.g. 30s, 2m"))?;
    anyhow::ensure!(
        secs.is_finite() && secs > 0.0,
        "duration must be positive: {raw:?}"
    );
    Ok(std::time::Duration::from_secs_f64(secs * mult))
}

async fn run_load(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let duration = parse_duration(&a.duration)?;
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
    let need = load::parse_bytes(&a.need)?;
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
        Cmd::Load(args) => run_load(args).await,
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
    let need = files::parse_size_mib(need)? << 20;
    let env = doctor::inspect(data_dir, need);
    print!("{}", doctor::print(&env));
    Ok(if doctor::has_failures(&env) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn parse_limits(raw: &[String]) -> anyhow::Result<Vec<Option<u64>>> {
    raw.iter()
        .map(|l| {
            let l = l.trim();
            if l.eq_ignore_ascii_case("none") || l.eq_ignore_ascii_case("unlimited") {
                Ok(None)
            } else {
                let mib: u64 = l
                    .trim_end_matches(['M', 'm'])
                    .parse()
                    .with_context(|| format!("bad memory limit {l:?}: MiB or `none`"))?;
                anyhow::ensure!(
                    mib >= 16,
                    "memory limit {mib} MiB is too small to start a server"
                );
                Ok(Some(mib))
            }
        })
        .collect()
}

async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let sizes: Vec<u64> = a
        .sizes
        .iter()
        .map(|s| files::parse_size_mib(s))
        .collect::<anyhow::Result<_>>()?;
    let limits = parse_limits(&a.memory_limits)?;
    let range_len = files::parse_size_mib(&a.range_size)? << 20;
    if a.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
    let data_dir = a.data_dir.canonicalize()?;

    let specs = if a.variants.is_empty() {
        vec!["default=".to_owned()]
    } else {
        a.variants.clone()
    };
    let needs_default = specs.iter().any(|s| {
        let spec = s.split_once('=').map_or("", |(_, v)| v.trim());
        !(spec.starts_with("bin:") || spec.starts_with("git:") || spec.starts_with("url:"))
    });
    if needs_default && !a.binary.exists() {
        eprintln!("{} is missing: building it with cargo", a.binary.display());
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "-p", "picoshare"])
            .status()
            .context("cannot run cargo")?;
        if !status.success() || !a.binary.exists() {
            bail!("could not build {}", a.binary.display());
        }
    }
    let binary = a.binary.canonicalize().unwrap_or(a.binary.clone());
    let mut vs = Vec::new();
    for spec in &specs {
        let mut v = variants::parse(spec, &binary, &data_dir)?;
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
    if vs.iter().any(|v| v.info.kind == "url") && a.url_passphrase.is_none() {
        bail!("url: variants need --url-passphrase (or PICOSHARE_BENCH_PASSPHRASE)");
    }

    let biggest = sizes.iter().copied().max().unwrap_or(0);
    let files_bytes: u64 = sizes
        .iter()
        .filter(|s| !files::path_for(&data_dir.join("files"), **s).exists())
        .map(|s| s << 20)
        .sum();
    let need = runner::space_needed(biggest, a.concurrency) + files_bytes;
    let environment = doctor::inspect(&data_dir, need);
    eprint!("{}", doctor::print(&environment));
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
        PathBuf::from("bench-results").join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    // Also without limits: a cgroup without a limit still accounts memory.
    let limit_method = cgroup::detect();
    let opts = RunOptions {
        variants: vs,
        sizes_mib: sizes.clone(),
        memory_limits: limits,
        workloads: a.workloads.clone(),
        iterations: a.iterations,
        warmup: a.warmup,
        concurrency: a.concurrency.max(1),
        order: a.order,
        seed,
        data_dir: data_dir.clone(),
        out_dir: out.clone(),
        url_passphrase: a.url_passphrase.clone(),
        range_count: a.range_count.max(1),
        range_len,
        command: std::env::args().collect(),
        environment,
        limit_method,
        progress: !a.quiet,
    };
    let results = runner::run(opts).await?;
    let written = report::write_all(&results, &out)?;
    if a.remove_files {
        for s in &sizes {
            let _ = std::fs::remove_file(files::path_for(&data_dir.join("files"), *s));
        }
    }
    let failed = results.samples.iter().filter(|s| !s.ok).count();
    eprintln!(
        "{} samples ({} failed){}; wrote:",
        results.samples.len(),
        failed,
        if results.interrupted {
            ", interrupted"
        } else {
            ""
        }
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
