//! The subcommands: each turns its parsed options ([`crate::cli`]) into a
//! plan (`crate::plan`), runs it (`crate::run`) and writes what it
//! measured and the reports ([`crate::report`]). What several subcommands
//! share (preparing the data directory and the doctor's check, the seed,
//! the variants) is here.

mod calibrate;
mod compare;
pub mod doctor;
mod entries;
mod load;
mod report;
mod run;
mod small;
mod stall;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::{BlockArgs, Cli, Cmd, Common, Guard, Places};
use crate::plan::options::{parse_wait, BlockPlan};
use crate::plan::variants;
use crate::results::{self, CalibrationRecord};
use crate::sut::{cgroup, disk};

/// Runs the subcommand of a parsed command line; its exit code.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Cmd::Run(args) => run::run(args).await,
        Cmd::Calibrate(args) => calibrate::run(args).await,
        Cmd::Load(args) => load::run(args).await,
        Cmd::Small(args) => small::run(args).await,
        Cmd::Entries(args) => entries::run(args).await,
        Cmd::Stall(args) => stall::run(args).await,
        Cmd::Report { results, out } => report::run(&results, out),
        Cmd::Compare { a, b, out } => compare::run(&a, &b, out),
        Cmd::Doctor { data_dir, need } => doctor::run(&data_dir, &need),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picoshare-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The plan of a `small` or `entries` run: variants, blocks, the machine and
/// where results go.
fn block_plan(c: &BlockArgs, kind: &str) -> anyhow::Result<BlockPlan> {
    let data_dir = created_data_dir(&c.places)?;
    let specs = if c.variants.is_empty() {
        vec!["default=".to_owned()]
    } else {
        c.variants.clone()
    };
    let variants = parse_variants(&specs, &c.binary.binary, &data_dir)?;
    no_reference(&variants, kind)?;
    anyhow::ensure!(c.blocks >= 1, "--blocks must be at least 1");
    let environment = doctor::inspect(&data_dir, 1 << 30);
    Ok(BlockPlan {
        variants,
        blocks: c.blocks,
        warmup: c.pacing.warmup,
        wait_idle: parse_wait(&c.pacing.wait_idle)?,
        seed: seed_or_clock(c.seed.seed),
        data_dir,
        out_dir: out_dir(&c.places, kind),
        command: std::env::args().collect(),
        environment,
    })
}

/// Writes the report of a `small` or `entries` run and prints its tables.
fn finish_block_run(results: &results::ResultFile, out: &Path) -> anyhow::Result<ExitCode> {
    let written = crate::report::write_all(results, out)?;
    print!(
        "{}{}",
        crate::report::small::small_markdown(results),
        crate::report::small::entries_markdown(results)
    );
    eprintln!("wrote:");
    for p in written {
        eprintln!("  {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a result file.
fn read_results(path: &PathBuf) -> anyhow::Result<results::ResultFile> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a result file", path.display()))
}

/// The data directory of `--data-dir`, created if missing, made absolute.
fn created_data_dir(places: &Places) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&places.data_dir)
        .with_context(|| format!("cannot create {}", places.data_dir.display()))?;
    Ok(places.data_dir.canonicalize()?)
}

/// Where results go: `--out`, or `bench-results/<kind>-<date-time>`.
fn out_dir(places: &Places, kind: &str) -> PathBuf {
    places.out.clone().unwrap_or_else(|| default_out(kind))
}

fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}

/// Where results go by default: `bench-results/<kind>-<date-time>`.
fn default_out(kind: &str) -> PathBuf {
    PathBuf::from("bench-results").join(format!(
        "{kind}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ))
}

/// The doctor's findings on `data_dir` for a run needing `need` bytes there,
/// printed unless `--quiet`; an error when one is a failure, unless `--force`.
fn checked_machine(
    data_dir: &Path,
    need: u64,
    guard: &Guard,
) -> anyhow::Result<results::Environment> {
    let environment = doctor::inspect(data_dir, need);
    if !guard.quiet {
        eprint!("{}", doctor::print(&environment));
    }
    refuse_failures(&environment, guard.force)?;
    Ok(environment)
}

/// An error when the doctor found a failure, unless `force`.
fn refuse_failures(environment: &results::Environment, force: bool) -> anyhow::Result<()> {
    if doctor::has_failures(environment) && !force {
        bail!("the doctor found a problem that makes this run impossible or meaningless (see above); fix it, or pass --force");
    }
    Ok(())
}

/// The server binary of `load` and `stall`, made absolute: built with cargo
/// when it is the default path and missing, an error when another path is
/// missing.
fn given_binary(binary: &Path) -> anyhow::Result<PathBuf> {
    if !binary.exists() && binary == Path::new("target/release/picoshare") {
        eprintln!("{} is missing: building it with cargo", binary.display());
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "-p", "picoshare"])
            .status()
            .context("cannot run cargo")?;
        anyhow::ensure!(status.success(), "could not build {}", binary.display());
    }
    anyhow::ensure!(binary.exists(), "{} does not exist", binary.display());
    Ok(binary.canonicalize()?)
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
        !["bin:", "git:", "url:", "ref:"]
            .iter()
            .any(|k| spec.starts_with(k))
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

/// Refuses `ref:` variants in a command other than `run`.
fn no_reference(vs: &[variants::Variant], command: &str) -> anyhow::Result<()> {
    if let Some(v) = vs.iter().find(|v| v.target == variants::Target::Reference) {
        bail!(
            "variant {}: a ref: reference is measured by `run` only, not by `{command}`",
            v.info.name
        );
    }
    Ok(())
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
    let data_dir = created_data_dir(&common.places)?;
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
    refuse_failures(&environment, common.guard.force)?;
    let out = common.places.out.clone().unwrap_or_else(|| {
        PathBuf::from("bench-results").join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string())
    });
    Ok(Prepared {
        data_dir,
        environment,
        limit_method,
        disk_method,
        seed: seed_or_clock(common.seed.seed),
        out,
    })
}
