//! Running a benchmark matrix.
//!
//! The matrix is a list of configurations (file size × memory limit × disk
//! limit). Each configuration runs *blocks*: one block runs every variant
//! once, in a random order from the recorded seed (or A B A B … with
//! `--order interleaved`), so that drift of the machine over time hits every
//! variant alike, and so that variants can be compared block by block (see
//! `crate::stats::paired`). Warm-up blocks come first and are recorded but not
//! counted.
//!
//! How many blocks: a fixed number, or with a target MDE, as many as it
//! takes for every comparison with the baseline to be decided or precise
//! enough (`crate::stats::paired::stop_reason`), between a minimum and a maximum,
//! and within a time budget shared fairly among the configurations (one that
//! finishes early leaves its time to the rest).
//!
//! One *unit* is one variant in one block: a fresh data directory and server,
//! an upload (by every client at once when concurrency > 1), then the download
//! and range workloads on what was uploaded, then the server is stopped and its
//! data directory deleted. Results are written after every unit, so an
//! interrupted run keeps everything measured so far. Counted runs (valgrind,
//! strace; see `crate::run::counting`) come before the timed blocks.

pub(crate) mod counting;
pub(crate) mod entries;
pub(crate) mod gates;
pub mod load;
pub(crate) mod reference;
pub(crate) mod small;
pub(crate) mod stall;
pub(crate) mod unit;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::plan::options::{Blocks, Order, RunOptions};
use crate::plan::variants::Variant;
use crate::results::{disk_label, memory_label, ConfigKey, ConfigOutcome, ResultFile, RunConfig};
use crate::stats::paired::{self, StopReason};
use gates::{
    recall_page_cache, settle_disk, spoiled_by, too_busy_to_go_on, wait_for_idle, warm_page_cache,
    Disturbance,
};
use unit::Unit;

/// The relative cost of one block of a configuration, for sharing the time
/// budget: its bytes, plus a fixed cost per server start and stop.
fn weight(c: &ConfigKey) -> f64 {
    c.size_mib as f64 + 200.0
}

/// `xs` without repeats, in first-seen order.
fn unique<T: PartialEq>(xs: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for x in xs {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Runs the matrix; returns the result file (also written to `out_dir`).
///
/// # Errors
/// Setup failures (test files, disk space). Failed measurements are recorded
/// as failed samples instead.
pub(crate) async fn run(opts: RunOptions) -> anyhow::Result<ResultFile> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let files_dir = opts.data_dir.join("files");
    let runs_dir = opts
        .data_dir
        .join(format!("picoshare-bench-{}", std::process::id()));
    let mut results = ResultFile {
        config: RunConfig {
            sizes_mib: unique(opts.configs.iter().map(|c| c.size_mib)),
            memory_limits_mib: unique(opts.configs.iter().map(|c| c.memory_limit_mib)),
            disk_limits_mbps: unique(opts.configs.iter().map(|c| c.disk_limit_mbps)),
            configs: opts.configs.clone(),
            workloads: opts.workloads.iter().map(|w| w.name().to_owned()).collect(),
            iterations: opts.min_blocks(),
            warmup: opts.warmup,
            concurrency: opts.concurrency,
            data_dir: opts.data_dir.display().to_string(),
            order: match opts.order {
                Order::Interleaved => "interleaved".into(),
                Order::Randomized => "randomized".into(),
            },
            target_mde: match opts.blocks {
                Blocks::Adaptive { target, .. } => Some(target),
                Blocks::Fixed(_) => None,
            },
            max_iterations: matches!(opts.blocks, Blocks::Adaptive { .. })
                .then(|| opts.max_blocks()),
            max_time_s: opts.max_time.map(|d| d.as_secs_f64()),
            count_blocks: opts.count_blocks,
            count_size_mib: opts.count_size_mib,
            wait_idle_s: opts.wait_idle.as_secs_f64(),
            steal_gap_pct: opts.steal_gap.map(|f| f * 100.0),
        },
        environment: opts.environment.clone(),
        variants: opts.variants.iter().map(|v| v.info.clone()).collect(),
        samples: Vec::new(),
        interrupted: false,
        outcomes: Vec::new(),
        counts: Vec::new(),
        calibration: opts.calibration.clone(),
        small: Vec::new(),
        entries: Vec::new(),
        ..ResultFile::started(opts.command.clone(), opts.seed)
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    {
        let (flag, stop) = (interrupted.clone(), stop.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                stop.notify_waiters();
            }
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);

    if opts.count_blocks > 0 {
        let file = crate::plan::files::ensure(&files_dir, opts.count_size_mib)?;
        let counted = crate::run::counting::run(
            &opts,
            &file,
            &runs_dir,
            &mut rng,
            &interrupted,
            &stop,
            &mut |counts| {
                results.counts = counts.to_vec();
                save(&results, &opts.out_dir)
            },
        )
        .await?;
        results.counts = counted;
        save(&results, &opts.out_dir)?;
    }

    let per_block = opts.variants.len() as u64;
    let planned_blocks = opts.configs.len() as u64 * u64::from(opts.warmup + opts.min_blocks());
    let bar = progress_bar(
        opts.progress,
        planned_blocks * per_block,
        "{elapsed_precise} [{wide_bar}] {pos}/{len} units, ETA {eta} — {msg}",
    );

    let device = crate::sut::disk::device_for(&opts.data_dir).map(|d| d.name);
    let started = Instant::now();
    let mut unit_no = 0u64;
    'matrix: for (ci, config) in opts.configs.iter().enumerate() {
        let size = config.size_mib;
        bar.set_message(format!("making the {size} MiB test file"));
        let file = crate::plan::files::ensure(&files_dir, size)?;
        warm_page_cache(&file).await;
        let config_started = Instant::now();
        let deadline = opts.max_time.map(|budget| {
            let left = budget.saturating_sub(started.elapsed());
            let weights: f64 = opts.configs[ci..].iter().map(weight).sum();
            config_started + left.mul_f64(weight(config) / weights)
        });
        let mut measured = 0u32;
        let mut block = 0u32;
        let mut disturbed_blocks = 0u32;
        let reason = loop {
            let warm = block < opts.warmup;
            let block_start = results.samples.len();
            let mut order: Vec<&Variant> = opts.variants.iter().collect();
            if opts.order == Order::Randomized {
                order.shuffle(&mut rng);
            }
            for variant in order {
                if interrupted.load(Ordering::SeqCst) {
                    break;
                }
                let need = crate::plan::options::space_needed(size, opts.concurrency);
                let free = crate::sut::disk::free_bytes(&opts.data_dir).unwrap_or(u64::MAX);
                if free < need {
                    bail!(
                        "not enough free space in {} for the next measurement: {:.1} GiB free, {:.1} GiB needed; stopping (results so far are in {})",
                        opts.data_dir.display(),
                        free as f64 / 2f64.powi(30),
                        need as f64 / 2f64.powi(30),
                        opts.out_dir.display()
                    );
                }
                bar.set_message(format!(
                    "{} · {size} MiB · {} · disk {} · block {}{}",
                    variant.info.name,
                    memory_label(config.memory_limit_mib),
                    disk_label(config.disk_limit_mbps),
                    block + 1,
                    if warm { " (warm-up)" } else { "" }
                ));
                let unit = Unit {
                    opts: &opts,
                    variant,
                    file: &file,
                    size_bytes: size << 20,
                    config: *config,
                    iteration: block,
                    dir: runs_dir.join(format!("unit-{unit_no}")),
                    cgroup_name: format!("unit-{unit_no}"),
                    seed: opts.seed ^ unit_no,
                };
                recall_page_cache(&file);
                settle_disk(device.as_deref()).await;
                let (waited, busy) = if opts.wait_idle.is_zero() {
                    (0.0, None)
                } else {
                    wait_for_idle(opts.wait_idle).await
                };
                let first_seq = results.samples.len() as u64;
                tokio::select! {
                    mut samples = unit.run(first_seq) => {
                        for s in &mut samples {
                            s.waited_for_idle_s = Some(waited);
                            s.machine_busy_before = busy;
                        }
                        results.samples.extend(samples);
                    }
                    () = stop.notified() => {
                        bar.println("interrupted: stopping the server and keeping what was measured");
                        interrupted.store(true, Ordering::SeqCst);
                    }
                }
                unit_no += 1;
                save(&results, &opts.out_dir)?;
                bar.inc(1);
            }
            if interrupted.load(Ordering::SeqCst) {
                break StopReason::Interrupted;
            }
            block += 1;
            if warm {
                continue;
            }
            // A unit that had to start while other work kept the machine
            // busy, or units that lost CPU time to the host unequally, spoil
            // their block: it is recorded, left out of the statistics, and
            // run again.
            if let Some(why) = spoiled_by(&results.samples[block_start..], opts.steal_gap) {
                for s in &mut results.samples[block_start..] {
                    s.disturbed = true;
                }
                save(&results, &opts.out_dir)?;
                disturbed_blocks += 1;
                bar.println(format!(
                    "block {block} {}: it does not count and runs again",
                    match why {
                        Disturbance::BusyBefore => "ran while the machine was busy with other work",
                        Disturbance::Steal => "lost CPU time to the host's other guests (steal), unequally between its units",
                    }
                ));
                if too_busy_to_go_on(disturbed_blocks, opts.max_blocks()) {
                    break StopReason::MachineBusy;
                }
                if measured >= opts.min_blocks() && deadline.is_some_and(|d| Instant::now() >= d) {
                    break StopReason::MaxTime;
                }
                bar.inc_length(per_block);
                continue;
            }
            measured += 1;
            if let Some(reason) = block_decision(&opts, &results, config, measured, deadline) {
                break reason;
            }
            // One more block than planned: grow the bar.
            if measured >= opts.min_blocks() {
                bar.inc_length(per_block);
            }
        };
        results.outcomes.push(ConfigOutcome {
            config: *config,
            blocks: measured,
            disturbed_blocks,
            reason,
            seconds: config_started.elapsed().as_secs_f64(),
        });
        save(&results, &opts.out_dir)?;
        if reason == StopReason::Interrupted {
            break 'matrix;
        }
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&runs_dir);
    results.interrupted = interrupted.load(Ordering::SeqCst);
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    save(&results, &opts.out_dir)?;
    Ok(results)
}

/// After `measured` blocks of `config`: stop (and why), or `None` for one more.
fn block_decision(
    opts: &RunOptions,
    results: &ResultFile,
    config: &ConfigKey,
    measured: u32,
    deadline: Option<Instant>,
) -> Option<StopReason> {
    if measured < opts.min_blocks() {
        return None;
    }
    match opts.blocks {
        Blocks::Fixed(_) => Some(StopReason::Fixed),
        Blocks::Adaptive { target, max, .. } => {
            let reasons: Vec<Option<StopReason>> = config_comparisons(results, config)
                .iter()
                .map(|c| c.and_then(|c| paired::stop_reason(&c, target)))
                .collect();
            let all_stopped = !reasons.is_empty() && reasons.iter().all(Option::is_some);
            if all_stopped {
                // "Decided" only when every comparison was; else the target.
                Some(if reasons.iter().all(|r| *r == Some(StopReason::Decided)) {
                    StopReason::Decided
                } else {
                    StopReason::TargetReached
                })
            } else if measured >= max {
                Some(StopReason::MaxIterations)
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Some(StopReason::MaxTime)
            } else {
                None
            }
        }
    }
}

/// The paired throughput comparison of every non-baseline variant with the
/// baseline, for every workload, in one configuration so far (`None` where
/// fewer than two blocks have both).
fn config_comparisons(
    results: &ResultFile,
    config: &ConfigKey,
) -> Vec<Option<paired::PairedComparison>> {
    let Some(baseline) = results.variants.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for workload in &results.config.workloads {
        for v in results.variants.iter().skip(1) {
            let (a, b) = crate::analysis::paired_series(
                results,
                &baseline.name,
                &v.name,
                workload,
                config,
                |s| Some(s.throughput_mbps),
            );
            out.push(paired::paired_compare(&a, &b, true, results.seed));
        }
    }
    out
}

/// Writes `results.json` atomically.
pub(crate) fn save(results: &ResultFile, out: &Path) -> anyhow::Result<()> {
    let tmp = out.join("results.json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(results)?)?;
    std::fs::rename(&tmp, out.join("results.json"))?;
    Ok(())
}

/// A progress bar of `len` steps drawn with `template` (indicatif's), or a
/// hidden one when `show` is false.
pub(crate) fn progress_bar(show: bool, len: u64, template: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
