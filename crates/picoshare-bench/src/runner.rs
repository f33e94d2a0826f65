//! Running a benchmark matrix.
//!
//! The matrix is file sizes × memory limits × iterations (warm-ups first) ×
//! variants. Variants are the innermost loop, so they alternate (A B A B …, or
//! in a random order per block from a recorded seed): drift of the machine over
//! time hits every variant alike instead of masquerading as a difference.
//!
//! One *unit* is one variant in one block: a fresh data directory and server,
//! an upload (by every client at once when concurrency > 1), then the download
//! and range workloads on what was uploaded, then the server is stopped and its
//! data directory deleted. Results are written after every unit, so an
//! interrupted run keeps everything measured so far.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cgroup::LimitMethod;
use crate::client::{phase_deltas, Api, RequestError};
use crate::results::{Environment, ResultFile, RunConfig, Sample, SCHEMA_VERSION};
use crate::server::{Server, SECRET};
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

/// Everything a run needs.
pub struct RunOptions {
    /// Variants; the first is the baseline.
    pub variants: Vec<Variant>,
    /// File sizes, MiB.
    pub sizes_mib: Vec<u64>,
    /// Memory limits, MiB (`None` = unlimited).
    pub memory_limits: Vec<Option<u64>>,
    /// Workloads (upload always runs: the others need its file).
    pub workloads: Vec<Workload>,
    /// Measured iterations per configuration.
    pub iterations: u32,
    /// Warm-up iterations per configuration.
    pub warmup: u32,
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
    /// The command line, for the record.
    pub command: Vec<String>,
    /// The machine, from the doctor.
    pub environment: Environment,
    /// How memory limits are enforced.
    pub limit_method: LimitMethod,
    /// Show progress bars.
    pub progress: bool,
}

/// Free space a unit needs: the database (file + WAL) per client, plus margin.
pub fn space_needed(size_mib: u64, concurrency: u32) -> u64 {
    (size_mib << 20) * 3 * u64::from(concurrency) + (256 << 20)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed struct that statvfs fills in.
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0)
        .then(|| st.f_bavail as u64 * st.f_frsize as u64)
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
            sizes_mib: opts.sizes_mib.clone(),
            memory_limits_mib: opts.memory_limits.clone(),
            workloads: opts.workloads.iter().map(|w| w.name().to_owned()).collect(),
            iterations: opts.iterations,
            warmup: opts.warmup,
            concurrency: opts.concurrency,
            data_dir: opts.data_dir.display().to_string(),
            order: match opts.order {
                Order::Interleaved => "interleaved".into(),
                Order::Randomized => "randomized".into(),
            },
        },
        environment: opts.environment.clone(),
        variants: opts.variants.iter().map(|v| v.info.clone()).collect(),
        samples: Vec::new(),
        interrupted: false,
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

    let per_block = opts.variants.len() as u64;
    let blocks = opts.sizes_mib.len() as u64
        * opts.memory_limits.len() as u64
        * u64::from(opts.warmup + opts.iterations);
    let bar = if opts.progress {
        let b = ProgressBar::new(blocks * per_block);
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

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut unit_no = 0u64;
    'matrix: for &size in &opts.sizes_mib {
        bar.set_message(format!("making the {size} MiB test file"));
        let file = crate::files::ensure(&files_dir, size)?;
        for &limit in &opts.memory_limits {
            for iteration in 0..opts.warmup + opts.iterations {
                let mut order: Vec<&Variant> = opts.variants.iter().collect();
                if opts.order == Order::Randomized {
                    order.shuffle(&mut rng);
                }
                for variant in order {
                    if interrupted.load(Ordering::SeqCst) {
                        break 'matrix;
                    }
                    let need = space_needed(size, opts.concurrency);
                    let free = free_bytes(&opts.data_dir).unwrap_or(u64::MAX);
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
                        "{} · {size} MiB · {} · iteration {}{}",
                        variant.info.name,
                        crate::results::memory_label(limit),
                        iteration + 1,
                        if iteration < opts.warmup {
                            " (warm-up)"
                        } else {
                            ""
                        }
                    ));
                    let unit = Unit {
                        opts: &opts,
                        variant,
                        file: &file,
                        size_bytes: size << 20,
                        limit,
                        iteration,
                        dir: runs_dir.join(format!("unit-{unit_no}")),
                        cgroup_name: format!("unit-{unit_no}"),
                        seed: opts.seed ^ unit_no,
                    };
                    settle_disk().await;
                    let first_seq = results.samples.len() as u64;
                    tokio::select! {
                        samples = unit.run(first_seq) => results.samples.extend(samples),
                        () = stop.notified() => {
                            bar.println("interrupted: stopping the server and keeping what was measured");
                            break 'matrix;
                        }
                    }
                    unit_no += 1;
                    save(&results, &opts.out_dir)?;
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&runs_dir);
    results.interrupted = interrupted.load(Ordering::SeqCst);
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    save(&results, &opts.out_dir)?;
    Ok(results)
}

/// Dirty page-cache bytes (written but not yet on disk), from /proc/meminfo.
fn dirty_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((kib("Dirty:")? + kib("Writeback:")?) * 1024)
}

/// Lets the disk finish the previous unit's writes before the next unit starts:
/// without this, a large upload's writeback lands in the next measurement
/// (whichever variant that is) and inflates the noise. Bounded to 60 s.
async fn settle_disk() {
    let _ = tokio::task::spawn_blocking(|| {
        // SAFETY: sync(2) has no arguments and no failure mode.
        unsafe { libc::sync() };
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dirty_bytes().is_some_and(|d| d > 32 << 20) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `results.json` atomically.
fn save(results: &ResultFile, out: &Path) -> anyhow::Result<()> {
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
    limit: Option<u64>,
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
            memory_limit_mib: self.limit,
            memory_limit_enforced: false,
            iteration: self.iteration,
            warmup: self.iteration < self.opts.warmup,
            concurrency: self.opts.concurrency,
            ok: false,
            error: None,
            http_status: None,
            bytes: 0,
            seconds: 0.0,
            throughput_mbps: 0.0,
            reply_wait_s: None,
            peak_rss_bytes: None,
            disk_written_bytes: None,
            phases: BTreeMap::new(),
        }
    }

    /// Runs every workload; failures become failed samples.
    async fn run(self, first_seq: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        let (running, base, passphrase) = match &self.variant.target {
            Target::Binary { path, args } => {
                match Server::start(
                    path,
                    args,
                    &self.dir,
                    self.limit,
                    &self.opts.limit_method,
                    &self.cgroup_name,
                )
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
        let enforced = server.is_some_and(|s| s.limit_enforced);

        // Upload: every client uploads the file at once.
        let mut s = self.sample(first_seq, "upload");
        s.memory_limit_enforced = enforced;
        let before = api.metrics().await;
        let io0 = server.and_then(Server::disk_written);
        let started = std::time::Instant::now();
        let via = self.variant.upload;
        let uploads = futures_util::future::join_all((0..n).map(|_| async {
            match via {
                UploadVia::Multipart => api.upload(self.file, self.size_bytes).await,
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
        self.finish_sample(&mut s, &api, server, before, io0).await;
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
            s.memory_limit_enforced = enforced;
            let before = api.metrics().await;
            let io0 = server.and_then(Server::disk_written);
            let started = std::time::Instant::now();
            let transfers =
                futures_util::future::join_all(ids.iter().enumerate().map(|(i, id)| {
                    let api = api.clone();
                    let seed = self.seed.wrapping_add(i as u64);
                    let (opts, size) = (self.opts, self.size_bytes);
                    async move {
                        match w {
                            Workload::Range => {
                                api.ranges(id, size, opts.range_count, opts.range_len, seed)
                                    .await
                            }
                            _ => api.download(id, size).await,
                        }
                    }
                }))
                .await;
            s.seconds = started.elapsed().as_secs_f64();
            for t in transfers {
                match t {
                    Ok(t) => s.bytes += t.bytes,
                    Err(e) => record_error(&mut s, &e),
                }
            }
            s.ok = s.error.is_none();
            self.finish_sample(&mut s, &api, server, before, io0).await;
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
        before: Option<BTreeMap<String, f64>>,
        io0: Option<u64>,
    ) {
        if s.ok && s.seconds > 0.0 {
            s.throughput_mbps = s.bytes as f64 / s.seconds / 1e6;
            s.http_status = Some(if s.workload == "range" { 206 } else { 200 });
        }
        if let (Some(b), Some(a)) = (before, api.metrics().await) {
            s.phases = phase_deltas(&b, &a);
        }
        if let Some(server) = server {
            // Give the server a moment to settle its last writes' accounting.
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.peak_rss_bytes = server.peak_rss();
            s.disk_written_bytes = match (io0, server.disk_written()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
        }
    }
}

fn record_error(s: &mut Sample, e: &anyhow::Error) {
    if let Some(re) = e.downcast_ref::<RequestError>() {
        s.http_status = re.status.or(s.http_status);
    }
    if s.error.is_none() {
        s.error = Some(format!("{e:#}"));
    }
}
