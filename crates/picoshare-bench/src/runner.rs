//! Running a benchmark matrix.
//!
//! The matrix is a list of configurations (file size × memory limit × disk
//! limit). Each configuration runs *blocks*: one block runs every variant
//! once, in a random order from the recorded seed (or A B A B … with
//! `--order interleaved`), so that drift of the machine over time hits every
//! variant alike, and so that variants can be compared block by block (see
//! [`crate::paired`]). Warm-up blocks come first and are recorded but not
//! counted.
//!
//! How many blocks: a fixed number, or with a target MDE, as many as it
//! takes for every comparison with the baseline to be decided or precise
//! enough ([`crate::paired::stop_reason`]), between a minimum and a maximum,
//! and within a time budget shared fairly among the configurations (one that
//! finishes early leaves its time to the rest).
//!
//! One *unit* is one variant in one block: a fresh data directory and server,
//! an upload (by every client at once when concurrency > 1), then the download
//! and range workloads on what was uploaded, then the server is stopped and its
//! data directory deleted. Results are written after every unit, so an
//! interrupted run keeps everything measured so far. Counted runs (valgrind,
//! strace; see [`crate::counting`]) come before the timed blocks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cgroup::LimitMethod;
use crate::client::{phase_deltas, Api, RequestError};
use crate::disk::DiskMethod;
use crate::paired::{self, StopReason};
use crate::results::{
    disk_label, memory_label, CalibrationRecord, ConfigKey, ConfigOutcome, Environment, ResultFile,
    RunConfig, Sample, SCHEMA_VERSION,
};
use crate::server::{Limits, Server, Tool, SECRET};
use crate::sut::proc::ProcCounters;
use crate::variants::{Target, UploadVia, Variant};

/// A workload measured in each unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Multipart upload of the whole file.
    Upload,
    /// Download of the whole file.
    Download,
    /// Many ranged reads at random offsets (video seeking, resumed downloads).
    Range,
}

impl Workload {
    /// Its name in result files.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Upload => "upload",
            Workload::Download => "download",
            Workload::Range => "range",
        }
    }
}

/// The order of variants within a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// The same order in every block: A B A B …
    Interleaved,
    /// A random order in each block, from the recorded seed.
    Randomized,
}

/// How many blocks each configuration gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Blocks {
    /// Exactly this many.
    Fixed(u32),
    /// Adaptive: at least `min`, at most `max`, stopping once every
    /// comparison is decided or has an MDE below `target` (fraction).
    Adaptive {
        /// Target MDE (fraction).
        target: f64,
        /// Fewest blocks.
        min: u32,
        /// Most blocks.
        max: u32,
    },
}

/// Everything a run needs.
pub struct RunOptions {
    /// Variants; the first is the baseline.
    pub variants: Vec<Variant>,
    /// Configurations, in the order they run.
    pub configs: Vec<ConfigKey>,
    /// Workloads (upload always runs: the others need its file).
    pub workloads: Vec<Workload>,
    /// Blocks per configuration.
    pub blocks: Blocks,
    /// Time budget of the whole run (timed blocks), shared among configurations.
    pub max_time: Option<Duration>,
    /// Warm-up blocks per configuration.
    pub warmup: u32,
    /// Before each unit, wait up to this long for the machine to be idle
    /// (zero: do not wait).
    pub wait_idle: Duration,
    /// A block is left out and run again when the share of the machine's
    /// CPU time the hypervisor stole differs between its units by more than
    /// this (`None`: keep every block).
    pub steal_gap: Option<f64>,
    /// Parallel clients.
    pub concurrency: u32,
    /// Variant order.
    pub order: Order,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where test files and server data go.
    pub data_dir: PathBuf,
    /// Where results go.
    pub out_dir: PathBuf,
    /// Passphrase of `url:` variants.
    pub url_passphrase: Option<String>,
    /// Ranged reads per range sample.
    pub range_count: u32,
    /// Bytes per ranged read.
    pub range_len: u64,
    /// Counted blocks (instructions, system calls); 0 for none.
    pub count_blocks: u32,
    /// File size of counted runs, MiB.
    pub count_size_mib: u64,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// The machine, from the doctor.
    pub environment: Environment,
    /// How memory limits are enforced.
    pub limit_method: LimitMethod,
    /// How disk limits are enforced.
    pub disk_method: DiskMethod,
    /// The machine's latest calibration, for the report.
    pub calibration: Option<CalibrationRecord>,
    /// Show progress bars.
    pub progress: bool,
}

impl RunOptions {
    /// The fewest blocks of a configuration.
    fn min_blocks(&self) -> u32 {
        match self.blocks {
            Blocks::Fixed(n) => n,
            Blocks::Adaptive { min, .. } => min,
        }
    }

    /// The most blocks of a configuration.
    fn max_blocks(&self) -> u32 {
        match self.blocks {
            Blocks::Fixed(n) => n,
            Blocks::Adaptive { max, .. } => max,
        }
    }
}

/// Free space a unit needs: the database (file + WAL) per client, plus margin.
pub fn space_needed(size_mib: u64, concurrency: u32) -> u64 {
    (size_mib << 20) * 3 * u64::from(concurrency) + (256 << 20)
}

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
pub async fn run(opts: RunOptions) -> anyhow::Result<ResultFile> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let files_dir = opts.data_dir.join("files");
    let runs_dir = opts
        .data_dir
        .join(format!("picoshare-bench-{}", std::process::id()));
    let mut results = ResultFile {
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: chrono::Utc::now().to_rfc3339(),
        finished_at: None,
        command: opts.command.clone(),
        seed: opts.seed,
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
        let file = crate::files::ensure(&files_dir, opts.count_size_mib)?;
        let counted = crate::counting::run(
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
    let bar = if opts.progress {
        let b = ProgressBar::new(planned_blocks * per_block);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} units, ETA {eta} — {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };

    let device = crate::disk::device_for(&opts.data_dir).map(|d| d.name);
    let started = Instant::now();
    let mut unit_no = 0u64;
    'matrix: for (ci, config) in opts.configs.iter().enumerate() {
        let size = config.size_mib;
        bar.set_message(format!("making the {size} MiB test file"));
        let file = crate::files::ensure(&files_dir, size)?;
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
                let need = space_needed(size, opts.concurrency);
                let free = crate::doctor::free_bytes(&opts.data_dir).unwrap_or(u64::MAX);
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

/// Reads a test file once so that its pages are cached before the first
/// unit: no variant pays for reading it from disk.
async fn warm_page_cache(file: &Path) {
    let file = file.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        if let Ok(mut f) = std::fs::File::open(&file) {
            let mut buf = vec![0u8; 1 << 20];
            while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// Asks the kernel to bring back any page of `file` that left the page
/// cache since [`warm_page_cache`] (memory reclaim on a shared host can
/// take cold pages away between units), so that no unit's client reads its
/// file from disk. The read-ahead runs in the background; [`settle_disk`]
/// then waits for the disk to go quiet.
fn recall_page_cache(file: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(file) {
        // SAFETY: a valid open descriptor; the advice has no memory effects.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
    }
}

/// Dirty page-cache bytes (written but not yet on disk), from /proc/meminfo.
fn dirty_bytes() -> Option<u64> {
    use procfs::Current as _;
    let m = procfs::Meminfo::current().ok()?;
    Some(m.dirty + m.writeback)
}

/// Dirty page-cache bytes (written but not yet on disk), from /proc/meminfo.
/// Lets the disk finish the previous unit's writes before the next unit starts:
/// without this, a large upload's writeback lands in the next measurement
/// (whichever variant that is) and inflates the noise. After `sync`, waits
/// until the page cache holds under 32 MiB of unwritten data and the data
/// directory's disk has had no request in flight for 100 ms (discards of
/// the deleted data directory included). Bounded to 60 s.
pub(crate) async fn settle_disk(device: Option<&str>) {
    let _ = tokio::task::spawn_blocking(|| {
        // SAFETY: sync(2) has no arguments and no failure mode.
        unsafe { libc::sync() };
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while dirty_bytes().is_some_and(|d| d > 32 << 20) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(device) = device else { return };
    let inflight = format!("/sys/block/{device}/inflight");
    let mut quiet = 0;
    while quiet < 5 && Instant::now() < deadline {
        let idle = std::fs::read_to_string(&inflight)
            .map(|t| t.split_whitespace().all(|n| n == "0"))
            .unwrap_or(true);
        quiet = if idle { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The machine counts as idle when its CPUs are at most this busy (a fraction).
const IDLE_BUSY: f64 = 0.10;

/// The machine's CPU time so far, in jiffies, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// Everything but idle and I/O wait (steal included: it is time the
    /// machine wanted to run and could not).
    pub busy: u64,
    /// All time.
    pub total: u64,
    /// Time the hypervisor gave this virtual machine's CPUs to someone else.
    pub steal: u64,
}

pub(crate) fn cpu_times() -> Option<CpuTimes> {
    use procfs::CurrentSI as _;
    let t = procfs::KernelStats::current().ok()?.total;
    Some(cpu_times_from([
        t.user,
        t.nice,
        t.system,
        t.idle,
        t.iowait?,
        t.irq.unwrap_or(0),
        t.softirq.unwrap_or(0),
        t.steal.unwrap_or(0),
    ]))
}

/// From `user nice system idle iowait irq softirq steal`, in jiffies (a
/// kernel without a steal column counts it as none).
fn cpu_times_from(f: [u64; 8]) -> CpuTimes {
    let total: u64 = f.iter().sum();
    CpuTimes {
        busy: total - (f[3] + f[4]),
        total,
        steal: f[7],
    }
}

/// The share of the machine's CPU time stolen by the hypervisor between two readings.
pub(crate) fn steal_share(a: CpuTimes, b: CpuTimes) -> Option<f64> {
    let total = b.total.checked_sub(a.total)?;
    (total > 0).then(|| b.steal.saturating_sub(a.steal) as f64 / total as f64)
}

/// Whether a block's samples spoil it: a unit had to start on a busy
/// machine, or the hypervisor took CPU time away from its units unequally,
/// the one that lost the most losing more than `steal_gap` (a fraction of
/// the machine's CPU time) more than the one that lost the least. Steal
/// that hits every unit of a block alike (a host that is steadily busy)
/// slows every variant alike and cancels out of their ratios. Units shorter
/// than [`STEAL_MIN_SECONDS`] are not judged: the kernel counts CPU time in
/// ticks (100 a second per CPU here), too coarse for a share of a shorter one.
pub(crate) fn spoiled_by(samples: &[Sample], steal_gap: Option<f64>) -> Option<Disturbance> {
    if samples
        .iter()
        .any(|s| s.machine_busy_before.is_some_and(|b| b > IDLE_BUSY))
    {
        return Some(Disturbance::BusyBefore);
    }
    let gap = steal_gap?;
    let steals: Vec<f64> = samples
        .iter()
        .filter(|s| s.seconds >= STEAL_MIN_SECONDS)
        .filter_map(|s| s.steal_during)
        .collect();
    let lo = steals.iter().copied().reduce(f64::min)?;
    let hi = steals.iter().copied().reduce(f64::max)?;
    (hi - lo > gap).then_some(Disturbance::Steal)
}

/// The shortest unit whose steal share [`spoiled_by`] judges, seconds.
const STEAL_MIN_SECONDS: f64 = 1.0;

/// Why a block was left out and run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disturbance {
    /// A unit had to start while other work kept the machine busy.
    BusyBefore,
    /// The hypervisor took CPU time away from the block's units unequally.
    Steal,
}

/// Waits, up to `max`, for a quarter second in which the machine's CPUs are
/// at most 10 % busy (the bench itself is idle between units): other work
/// on a shared machine comes in bursts, and a unit started during one
/// measures the burst. Returns the seconds waited and how busy the last
/// quarter second was (a fraction of all CPUs).
pub(crate) async fn wait_for_idle(max: Duration) -> (f64, Option<f64>) {
    idle_gate(
        max,
        Duration::from_millis(250),
        &SystemClock(Instant::now()),
        cpu_times,
    )
    .await
}

/// Time as the idle gate sees it: since it started, and sleeping.
trait GateClock {
    /// Time since the gate started.
    fn elapsed(&self) -> Duration;
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// The real clock, started at the instant held.
struct SystemClock(Instant);

impl GateClock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The idle gate of [`wait_for_idle`], with the window, the clock and the
/// source of CPU times as parameters (so that tests can script what the
/// machine does): reads the times, waits a `window`, reads them again, and
/// stops at the first window at most [`IDLE_BUSY`] busy, or when another
/// window would pass `max`. A machine whose times cannot be read is not
/// waited for.
async fn idle_gate(
    max: Duration,
    window: Duration,
    clock: &impl GateClock,
    mut times: impl FnMut() -> Option<CpuTimes>,
) -> (f64, Option<f64>) {
    loop {
        let Some(a) = times() else {
            return (0.0, None);
        };
        clock.sleep(window).await;
        let Some(b) = times() else {
            return (0.0, None);
        };
        let busy = busy_share(a, b);
        if busy <= IDLE_BUSY || clock.elapsed() + window > max {
            return (clock.elapsed().as_secs_f64(), Some(busy));
        }
    }
}

/// The share of the machine's CPU time that was busy between two readings.
fn busy_share(a: CpuTimes, b: CpuTimes) -> f64 {
    b.busy.saturating_sub(a.busy) as f64 / b.total.saturating_sub(a.total).max(1) as f64
}

/// Whether a configuration whose blocks were disturbed `disturbed` times
/// stops as [`StopReason::MachineBusy`]: after more disturbed blocks than it
/// may measure (and at least three), the machine is too busy to measure on,
/// and running on would only take time.
fn too_busy_to_go_on(disturbed: u32, max_blocks: u32) -> bool {
    disturbed > max_blocks.max(3)
}

/// Writes `results.json` atomically.
pub(crate) fn save(results: &ResultFile, out: &Path) -> anyhow::Result<()> {
    let tmp = out.join("results.json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(results)?)?;
    std::fs::rename(&tmp, out.join("results.json"))?;
    Ok(())
}

/// One variant in one block.
struct Unit<'a> {
    opts: &'a RunOptions,
    variant: &'a Variant,
    file: &'a Path,
    size_bytes: u64,
    config: ConfigKey,
    iteration: u32,
    dir: PathBuf,
    cgroup_name: String,
    seed: u64,
}

/// The running server of a unit: one we started, or one given by URL.
enum Running {
    Started(Box<Server>),
    External,
}

impl Unit<'_> {
    fn sample(&self, seq: u64, workload: &str) -> Sample {
        Sample {
            seq,
            timestamp: chrono::Utc::now().to_rfc3339(),
            variant: self.variant.info.name.clone(),
            workload: workload.to_owned(),
            size_bytes: self.size_bytes,
            memory_limit_mib: self.config.memory_limit_mib,
            disk_limit_mbps: self.config.disk_limit_mbps,
            iteration: self.iteration,
            warmup: self.iteration < self.opts.warmup,
            concurrency: self.opts.concurrency,
            ..Sample::default()
        }
    }

    /// Runs every workload; failures become failed samples.
    async fn run(self, first_seq: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        let (running, base, passphrase) = match &self.variant.target {
            Target::Binary { path, args } => {
                let limits = Limits {
                    memory_mib: self.config.memory_limit_mib,
                    memory_method: &self.opts.limit_method,
                    disk_mbps: self.config.disk_limit_mbps,
                    disk_method: &self.opts.disk_method,
                };
                match Server::start(path, args, &self.dir, limits, &self.cgroup_name, Tool::None)
                    .await
                {
                    Ok(s) => {
                        let base = s.base.clone();
                        (Running::Started(Box::new(s)), base, SECRET.to_owned())
                    }
                    Err(e) => {
                        let mut s = self.sample(first_seq, "upload");
                        s.error = Some(format!("server did not start: {e:#}"));
                        out.push(s);
                        let _ = std::fs::remove_dir_all(&self.dir);
                        return out;
                    }
                }
            }
            Target::Url(url) => (
                Running::External,
                url.clone(),
                self.opts.url_passphrase.clone().unwrap_or_default(),
            ),
        };
        let result = self
            .workloads(&running, &base, &passphrase, first_seq, &mut out)
            .await;
        if let Err(e) = result {
            let mut s = self.sample(first_seq + out.len() as u64, "upload");
            s.error = Some(format!("{e:#}"));
            out.push(s);
        }
        if let Running::Started(server) = running {
            let report = server.stop().await;
            if report.oom_kills.is_some_and(|n| n > 0) {
                for s in &mut out {
                    if !s.ok && s.error.is_some() {
                        let e = s.error.take().unwrap_or_default();
                        s.error = Some(format!(
                            "{e} (the server was killed for exceeding its memory limit)"
                        ));
                    }
                }
            }
        }
        out
    }

    async fn workloads(
        &self,
        running: &Running,
        base: &str,
        passphrase: &str,
        first_seq: u64,
        out: &mut Vec<Sample>,
    ) -> anyhow::Result<()> {
        let api = Api::login(base, passphrase).await?;
        let server = match running {
            Running::Started(s) => Some(&**s),
            Running::External => None,
        };
        let n = self.opts.concurrency.max(1);
        let padding = self.variant.padding(self.size_bytes);

        // Upload: every client uploads the file at once.
        let mut s = self.sample(first_seq, "upload");
        let before = Before::take(&api, server).await;
        let started = Instant::now();
        let via = self.variant.upload;
        let uploads = futures_util::future::join_all((0..n).map(|_| async {
            match via {
                UploadVia::Multipart => {
                    api.upload_padded(self.file, self.size_bytes, padding).await
                }
                UploadVia::Tus(request) => {
                    api.upload_tus(self.file, self.size_bytes, request).await
                }
            }
        }))
        .await;
        s.seconds = started.elapsed().as_secs_f64();
        let mut ids = Vec::new();
        let mut waits = Vec::new();
        for u in uploads {
            match u {
                Ok(u) => {
                    ids.push(u.id);
                    waits.push(u.reply_wait_s);
                }
                Err(e) => record_error(&mut s, &e),
            }
        }
        s.ok = s.error.is_none();
        s.bytes = self.size_bytes * ids.len() as u64;
        s.reply_wait_s = waits.iter().copied().reduce(f64::max);
        self.finish_sample(&mut s, &api, server, before).await;
        out.push(s);
        if ids.len() as u32 != n {
            return Ok(());
        }

        for (k, w) in self
            .opts
            .workloads
            .iter()
            .filter(|w| **w != Workload::Upload)
            .enumerate()
        {
            let mut s = self.sample(first_seq + 1 + k as u64, w.name());
            let before = Before::take(&api, server).await;
            let started = Instant::now();
            let transfers =
                futures_util::future::join_all(ids.iter().enumerate().map(|(i, id)| {
                    let api = api.clone();
                    let seed = self.seed.wrapping_add(i as u64);
                    let (opts, size, variant) = (self.opts, self.size_bytes, self.variant);
                    async move {
                        match w {
                            // Counted: the nominal bytes (a plant moves more).
                            Workload::Range => {
                                let len = opts.range_len + variant.padding(opts.range_len);
                                api.ranges(id, size + padding, opts.range_count, len, seed)
                                    .await
                                    .map(|_| u64::from(opts.range_count) * opts.range_len.min(size))
                            }
                            _ => api.download(id, size + padding).await.map(|_| size),
                        }
                    }
                }))
                .await;
            s.seconds = started.elapsed().as_secs_f64();
            for t in transfers {
                match t {
                    Ok(nominal) => s.bytes += nominal,
                    Err(e) => record_error(&mut s, &e),
                }
            }
            s.ok = s.error.is_none();
            self.finish_sample(&mut s, &api, server, before).await;
            out.push(s);
        }
        if server.is_none() {
            for id in &ids {
                let _ = api.delete(id).await;
            }
        }
        Ok(())
    }

    async fn finish_sample(
        &self,
        s: &mut Sample,
        api: &Api,
        server: Option<&Server>,
        before: Before,
    ) {
        if s.ok && s.seconds > 0.0 {
            s.throughput_mbps = s.bytes as f64 / s.seconds / 1e6;
            s.http_status = Some(if s.workload == "range" { 206 } else { 200 });
        }
        if let (Some(b), Some(a)) = (before.metrics, api.metrics().await) {
            s.phases = phase_deltas(&b, &a);
        }
        if let Some(server) = server {
            // Give the server a moment to settle its last writes' accounting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.memory_limit_enforced = server.limit_enforced;
            s.disk_limit_enforced = server.disk_limit_enforced;
            s.peak_rss_bytes = server.peak_rss();
            if let (Some(a), Some(b)) = (before.counters, server.counters()) {
                s.disk_written_bytes = Some(b.written_bytes.saturating_sub(a.written_bytes));
                s.disk_read_bytes = Some(b.read_bytes.saturating_sub(a.read_bytes));
                s.cpu_seconds = Some((b.cpu_seconds - a.cpu_seconds).max(0.0));
                s.syscalls_read = Some(b.syscalls_read.saturating_sub(a.syscalls_read));
                s.syscalls_write = Some(b.syscalls_write.saturating_sub(a.syscalls_write));
            }
            if let (Some(a), Some(b)) = (before.throttled, server.throttled_bytes()) {
                s.throttled_bytes = Some(b.saturating_sub(a));
            }
            // CPU used by anything but the server and the bench during the
            // sample (other programs, and kernel threads such as writeback).
            let now = cpu_times();
            if let (Some(a), Some(b)) = (before.machine, now) {
                s.steal_during = steal_share(a, b);
            }
            if let (Some(a), Some(b), Some(server_cpu), Some(c0), Some(c1)) = (
                before.machine,
                now,
                s.cpu_seconds,
                before.bench_cpu,
                own_cpu_seconds(),
            ) {
                let busy = b.busy.saturating_sub(a.busy) as f64 / ticks_per_second();
                let capacity = b.total.saturating_sub(a.total) as f64 / ticks_per_second();
                if capacity > 0.0 {
                    s.other_cpu_during =
                        Some(((busy - server_cpu - (c1 - c0)) / capacity).max(0.0));
                }
            }
        }
    }
}

/// Counters taken just before a measurement.
struct Before {
    metrics: Option<BTreeMap<String, f64>>,
    counters: Option<ProcCounters>,
    throttled: Option<u64>,
    machine: Option<CpuTimes>,
    bench_cpu: Option<f64>,
}

impl Before {
    async fn take(api: &Api, server: Option<&Server>) -> Before {
        let metrics = api.metrics().await;
        Before {
            metrics,
            counters: server.and_then(Server::counters),
            throttled: server.and_then(Server::throttled_bytes),
            machine: cpu_times(),
            bench_cpu: own_cpu_seconds(),
        }
    }
}

/// CPU seconds (user + system, all threads) of this bench process so far.
fn own_cpu_seconds() -> Option<f64> {
    crate::sut::proc::counters(std::process::id()).map(|c| c.cpu_seconds)
}

/// Clock ticks per second of `/proc/stat`.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as f64
}

fn record_error(s: &mut Sample, e: &anyhow::Error) {
    if let Some(re) = e.downcast_ref::<RequestError>() {
        s.http_status = re.status.or(s.http_status);
    }
    if s.error.is_none() {
        s.error = Some(format!("{e:#}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_busy_total_and_steal_from_proc_stat() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let t = cpu_times_from([100, 5, 50, 800, 20, 0, 10, 15]);
        assert_eq!(
            t,
            CpuTimes {
                busy: 100 + 5 + 50 + 10 + 15,
                total: 1000,
                steal: 15,
            }
        );
        let live = cpu_times().expect("/proc/stat is readable");
        assert!(live.total > 0 && live.busy <= live.total && live.steal <= live.busy);
        assert!(dirty_bytes().is_some());
    }

    #[test]
    fn steal_is_a_share_of_all_cpu_time() {
        let a = CpuTimes {
            busy: 0,
            total: 1000,
            steal: 10,
        };
        let b = CpuTimes {
            busy: 300,
            total: 1400,
            steal: 30,
        };
        assert!((steal_share(a, b).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(steal_share(a, a), None);
        assert_eq!(steal_share(b, a), None);
    }

    fn unit(busy_before: Option<f64>, steal: Option<f64>) -> Sample {
        Sample {
            machine_busy_before: busy_before,
            steal_during: steal,
            seconds: 2.5,
            ..Sample::default()
        }
    }

    /// CPU times that advance by `busy` of every 100 jiffies at each reading.
    fn scripted(busy: &[u64]) -> impl FnMut() -> Option<CpuTimes> + '_ {
        let mut at = CpuTimes {
            busy: 0,
            total: 0,
            steal: 0,
        };
        let mut readings = 0;
        move || {
            // Two readings per window: the start and the end of it.
            if readings > 0 && readings % 2 == 1 {
                let b = busy[(readings / 2).min(busy.len() - 1)];
                at.busy += b;
                at.total += 100;
            }
            readings += 1;
            Some(at)
        }
    }

    /// A clock that moves only when the gate sleeps, by exactly as long.
    #[derive(Default)]
    struct FakeClock(std::cell::Cell<Duration>);

    impl GateClock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        async fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    async fn gate(max_ms: u64, busy: &[u64]) -> (f64, Option<f64>) {
        let window = Duration::from_millis(250);
        idle_gate(
            Duration::from_millis(max_ms),
            window,
            &FakeClock::default(),
            scripted(busy),
        )
        .await
    }

    #[tokio::test]
    async fn the_idle_gate_opens_at_the_first_quiet_window() {
        // Busy, busy, then 5 % busy: three windows.
        assert_eq!(gate(30_000, &[90, 50, 5]).await, (0.75, Some(0.05)));
        // Quiet at once: one window; at most 10 % busy is quiet.
        assert_eq!(gate(30_000, &[10]).await, (0.25, Some(0.10)));
        assert_eq!(gate(30_000, &[11, 0]).await, (0.5, Some(0.0)));
    }

    #[tokio::test]
    async fn the_idle_gate_gives_up_at_its_limit_and_says_how_busy_it_was() {
        // Never quiet: it stops at the last window that ends within the limit.
        assert_eq!(gate(1_000, &[100]).await, (1.0, Some(1.0)));
        assert_eq!(gate(900, &[40]).await, (0.75, Some(0.4)));
        // A limit shorter than a window still looks once.
        assert_eq!(gate(100, &[100]).await, (0.25, Some(1.0)));
        // No /proc/stat: nothing to wait for, nothing known.
        let none = idle_gate(
            Duration::from_secs(30),
            Duration::from_millis(250),
            &FakeClock::default(),
            || None,
        )
        .await;
        assert_eq!(none, (0.0, None));
    }

    #[test]
    fn busy_is_a_share_of_all_cpu_time() {
        let a = CpuTimes {
            busy: 100,
            total: 1000,
            steal: 0,
        };
        let b = CpuTimes {
            busy: 130,
            total: 1200,
            steal: 0,
        };
        assert!((busy_share(a, b) - 0.15).abs() < 1e-12);
        // A clock that did not move is not a division by zero.
        assert_eq!(busy_share(a, a), 0.0);
    }

    #[test]
    fn a_configuration_stops_as_machine_busy_after_too_many_disturbed_blocks() {
        // At least three disturbed blocks are tolerated, however few are planned...
        assert!(!too_busy_to_go_on(3, 2));
        assert!(too_busy_to_go_on(4, 2));
        // ...and as many as the configuration may measure.
        assert!(!too_busy_to_go_on(10, 10));
        assert!(too_busy_to_go_on(11, 10));
        assert!(!too_busy_to_go_on(0, 0));
    }

    #[test]
    fn a_block_is_spoiled_by_a_busy_start_or_by_unequal_steal() {
        let quiet = [unit(Some(0.02), Some(0.01)), unit(Some(0.05), Some(0.049))];
        assert_eq!(spoiled_by(&quiet, Some(0.04)), None);

        // A steadily busy host slows every unit alike: kept.
        let steady = [unit(Some(0.02), Some(0.10)), unit(Some(0.02), Some(0.13))];
        assert_eq!(spoiled_by(&steady, Some(0.04)), None);

        let unequal = [
            unit(Some(0.02), Some(0.01)),
            unit(Some(0.02), Some(0.03)),
            unit(Some(0.02), Some(0.0601)),
        ];
        assert_eq!(spoiled_by(&unequal, Some(0.05)), Some(Disturbance::Steal));
        // `--steal-gap none` keeps it.
        assert_eq!(spoiled_by(&unequal, None), None);

        let busy = [unit(Some(0.2), Some(0.5)), unit(None, None)];
        assert_eq!(spoiled_by(&busy, None), Some(Disturbance::BusyBefore));
        assert_eq!(spoiled_by(&busy, Some(0.04)), Some(Disturbance::BusyBefore));

        // Units too short for the kernel's ticks are not judged.
        let short = unequal.clone().map(|u| Sample { seconds: 0.05, ..u });
        assert_eq!(spoiled_by(&short, Some(0.05)), None);

        // Machines that report no steal (no /proc/stat) spoil nothing.
        assert_eq!(spoiled_by(&[unit(None, None)], Some(0.04)), None);
        assert_eq!(spoiled_by(&[], Some(0.04)), None);
    }
}
