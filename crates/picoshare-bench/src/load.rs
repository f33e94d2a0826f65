//! `picoshare-bench load`: many parallel clients against one server for a
//! bounded time.
//!
//! Uploaders upload files drawn from a size mix; downloaders fetch entries
//! already stored, picked at random, and compare every byte with what was
//! uploaded. Every worker is a separate HTTP client (its own connection and
//! session), all on loopback against a fresh server the bench starts. New
//! requests start until the duration is over (and, with `--max-uploads`, until
//! that many uploads were started); transfers in flight then finish, and
//! downloaders keep going while any upload still runs. The run records every
//! error, the server's peak resident memory (VmHWM) and latency percentiles,
//! notably of small downloads while a large upload is in flight, and writes
//! `load.json` and `load.md` into the output directory.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::cgroup::LimitMethod;
use crate::client::Api;
use crate::disk::DiskMethod;
use crate::plan::units::{parse_size, Bare};
use crate::results::Environment;
use crate::server::{Limits, Server, Tool, SECRET};

/// Sizes up to this are generated in memory (exact byte counts); larger ones
/// are test files on disk (whole MiB), made once and reused.
const IN_MEMORY_MAX: u64 = 8 << 20;
/// Distinct sizes drawn per size class.
const SIZES_PER_CLASS: usize = 6;
/// Error messages kept in the result (all are counted).
const ERRORS_KEPT: usize = 20;

/// One class of the size mix: sizes between `min` and `max`, drawn with
/// relative weight `weight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClass {
    /// Name in reports (`small`, `medium`, `large`).
    pub name: String,
    /// Smallest size, bytes.
    pub min: u64,
    /// Largest size, bytes.
    pub max: u64,
    /// Relative share of uploads.
    pub weight: u32,
}

/// Parses a size mix: comma-separated `NAME=SIZE[-SIZE]:WEIGHT`, e.g.
/// `small=4K-1M:80,medium=16M-64M:15,large=256M:5`.
///
/// # Errors
/// A message naming the bad element.
pub fn parse_mix(raw: &str) -> anyhow::Result<Vec<SizeClass>> {
    let mut out = Vec::new();
    for element in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("bad size class {element:?}: use NAME=SIZE[-SIZE]:WEIGHT");
        let (name, rest) = element.split_once('=').with_context(bad)?;
        let (sizes, weight) = rest.rsplit_once(':').unwrap_or((rest, "1"));
        let (min, max) = match sizes.split_once('-') {
            Some((a, b)) => (parse_size(a, Bare::Bytes)?, parse_size(b, Bare::Bytes)?),
            None => (
                parse_size(sizes, Bare::Bytes)?,
                parse_size(sizes, Bare::Bytes)?,
            ),
        };
        anyhow::ensure!(min <= max, "{}: the smaller size comes first", bad());
        let weight: u32 = weight.trim().parse().with_context(bad)?;
        let name = name.trim();
        anyhow::ensure!(!name.is_empty(), "{}", bad());
        anyhow::ensure!(
            out.iter().all(|c: &SizeClass| c.name != name),
            "two size classes are named {name}"
        );
        out.push(SizeClass {
            name: name.to_owned(),
            min,
            max,
            weight,
        });
    }
    anyhow::ensure!(!out.is_empty(), "the size mix is empty");
    anyhow::ensure!(
        out.iter().any(|c| c.weight > 0),
        "every size class has weight 0"
    );
    Ok(out)
}

/// Everything a load run needs.
pub struct LoadOptions {
    /// The server binary.
    pub binary: PathBuf,
    /// Extra server arguments.
    pub server_args: Vec<String>,
    /// Parallel uploading clients.
    pub uploaders: u32,
    /// Parallel downloading clients.
    pub downloaders: u32,
    /// How long new requests are started.
    pub duration: Duration,
    /// The size mix of uploads.
    pub mix: Vec<SizeClass>,
    /// Entries uploaded before the clock starts, so downloaders have work at once.
    pub preload: u32,
    /// At most this many uploads in the timed phase.
    pub max_uploads: Option<u32>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Test files and the server's data directory go here.
    pub data_dir: PathBuf,
    /// `load.json` and `load.md` go here.
    pub out_dir: PathBuf,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// The machine, from the doctor.
    pub environment: Environment,
    /// Show a progress bar.
    pub progress: bool,
}

/// Count, bytes and errors of one kind of request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Requests that succeeded.
    pub ok: u64,
    /// Payload bytes of those.
    pub bytes: u64,
    /// Requests that failed.
    pub errors: u64,
}

/// Latency percentiles of one group of requests, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// What was measured, e.g. `download small, during a large upload`.
    pub label: String,
    /// Requests in the group.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The result of a load run (`load.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadResult {
    /// `picoshare-bench-load/1`.
    pub schema: String,
    /// Version of the bench.
    pub tool_version: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// The command line.
    pub command: Vec<String>,
    /// Seed of every random choice.
    pub seed: u64,
    /// The server binary and its extra arguments.
    pub server: Vec<String>,
    /// Parallel uploaders.
    pub uploaders: u32,
    /// Parallel downloaders.
    pub downloaders: u32,
    /// Seconds during which new requests started.
    pub duration_s: f64,
    /// The size mix.
    pub mix: Vec<SizeClass>,
    /// Entries uploaded before the timed phase.
    pub preload: u32,
    /// Upload limit of the timed phase.
    pub max_uploads: Option<u32>,
    /// The machine.
    pub environment: Environment,
    /// Seconds from the start of the timed phase until the last transfer ended.
    pub wall_s: f64,
    /// False if the run was interrupted (Ctrl-C).
    pub completed: bool,
    /// Whether the server was still running at the end.
    pub server_alive_at_end: bool,
    /// The server's peak resident memory (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Uploads (preload included).
    pub uploads: Totals,
    /// Downloads.
    pub downloads: Totals,
    /// Downloaded bytes compared with the uploaded bytes and found equal.
    pub verified_bytes: u64,
    /// Every failed request.
    pub error_count: u64,
    /// The first failures' messages.
    pub errors: Vec<String>,
    /// Latency percentiles per group.
    pub latency: Vec<Latency>,
}

/// What an upload holds: bytes in memory, or a test file on disk.
enum Content {
    Memory(Bytes),
    File(PathBuf),
}

/// One file the uploaders can send: its size class, size and content.
struct Source {
    class: usize,
    size: u64,
    content: Content,
}

/// Compares a download, piece by piece, with the source it was uploaded from.
struct Verifier<'a> {
    source: &'a Source,
    file: Option<std::fs::File>,
    offset: u64,
    buf: Vec<u8>,
}

impl<'a> Verifier<'a> {
    fn new(source: &'a Source) -> anyhow::Result<Self> {
        let file = match &source.content {
            Content::File(path) => Some(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
            Content::Memory(_) => None,
        };
        Ok(Verifier {
            source,
            file,
            offset: 0,
            buf: Vec::new(),
        })
    }

    fn feed(&mut self, piece: &[u8]) -> anyhow::Result<()> {
        let end = self.offset + piece.len() as u64;
        if end > self.source.size {
            bail!(
                "downloaded more than the {} bytes uploaded",
                self.source.size
            );
        }
        let expected: &[u8] = match (&self.source.content, &mut self.file) {
            (Content::Memory(data), _) => &data[self.offset as usize..end as usize],
            (Content::File(_), Some(file)) => {
                self.buf.resize(piece.len(), 0);
                file.read_exact(&mut self.buf)?;
                &self.buf
            }
            (Content::File(path), None) => bail!("{} is not open", path.display()),
        };
        if let Some(i) = expected.iter().zip(piece).position(|(a, b)| a != b) {
            bail!(
                "downloaded byte {} differs from the uploaded one",
                self.offset + i as u64
            );
        }
        self.offset = end;
        Ok(())
    }

    fn finish(&self) -> anyhow::Result<()> {
        if self.offset != self.source.size {
            bail!(
                "downloaded {} bytes of the {} uploaded",
                self.offset,
                self.source.size
            );
        }
        Ok(())
    }
}

/// Deterministic random bytes of one size.
fn random_bytes(size: u64, seed: u64) -> Bytes {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ size);
    let mut data = vec![0u8; size as usize];
    rng.fill_bytes(&mut data);
    Bytes::from(data)
}

/// The sources of each class: a few sizes spread evenly on a log scale
/// between the class's bounds.
fn make_sources(
    mix: &[SizeClass],
    files_dir: &Path,
    seed: u64,
) -> anyhow::Result<Vec<Vec<Arc<Source>>>> {
    let mut out = Vec::new();
    for (class, c) in mix.iter().enumerate() {
        let mut sizes: Vec<u64> = (0..SIZES_PER_CLASS)
            .map(|i| {
                let t = i as f64 / (SIZES_PER_CLASS - 1) as f64;
                let (lo, hi) = ((c.min as f64).ln(), (c.max as f64).ln());
                ((lo + t * (hi - lo)).exp().round() as u64).clamp(c.min, c.max)
            })
            .map(|s| {
                if s > IN_MEMORY_MAX {
                    (s >> 20).max(1) << 20
                } else {
                    s
                }
            })
            .collect();
        sizes.dedup();
        let mut sources = Vec::new();
        for size in sizes {
            let content = if size <= IN_MEMORY_MAX {
                Content::Memory(random_bytes(size, seed))
            } else {
                Content::File(crate::files::ensure(files_dir, size >> 20)?)
            };
            sources.push(Arc::new(Source {
                class,
                size,
                content,
            }));
        }
        out.push(sources);
    }
    Ok(out)
}

/// One finished request.
struct Op {
    upload: bool,
    class: usize,
    seconds: f64,
    /// A download that started while an upload of the largest class ran.
    during_large_upload: bool,
}

/// What the workers share.
struct Shared {
    sources: Vec<Vec<Arc<Source>>>,
    weights: Vec<u32>,
    stored: RwLock<Vec<(String, Arc<Source>)>>,
    ops: Mutex<Vec<Op>>,
    errors: Mutex<Vec<String>>,
    uploads: Mutex<Totals>,
    downloads: Mutex<Totals>,
    verified: AtomicU64,
    error_count: AtomicU64,
    uploads_started: AtomicU32,
    uploaders_running: AtomicU32,
    large_uploads_running: AtomicU32,
    large_class: Option<usize>,
    stop: AtomicBool,
}

impl Shared {
    fn error(&self, what: &str, e: &anyhow::Error) {
        self.error_count.fetch_add(1, Ordering::SeqCst);
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < ERRORS_KEPT {
            errors.push(format!("{what}: {e:#}"));
        }
    }

    fn pick_source(&self, rng: &mut impl Rng) -> Arc<Source> {
        let total: u32 = self.weights.iter().sum();
        let mut x = rng.gen_range(0..total);
        let mut class = 0;
        for (i, w) in self.weights.iter().enumerate() {
            if x < *w {
                class = i;
                break;
            }
            x -= w;
        }
        let sources = &self.sources[class];
        sources[rng.gen_range(0..sources.len())].clone()
    }

    async fn upload(&self, api: &Api, source: &Arc<Source>, n: u64) {
        let large = Some(source.class) == self.large_class;
        if large {
            self.large_uploads_running.fetch_add(1, Ordering::SeqCst);
        }
        let name = format!("load-{n}-{}.bin", source.size);
        let result = match &source.content {
            Content::Memory(data) => api.upload_bytes(&name, data.clone()).await,
            Content::File(path) => api.upload(path, source.size).await,
        };
        if large {
            self.large_uploads_running.fetch_sub(1, Ordering::SeqCst);
        }
        match result {
            Ok(u) => {
                {
                    let mut t = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
                    t.ok += 1;
                    t.bytes += source.size;
                }
                self.record(Op {
                    upload: true,
                    class: source.class,
                    seconds: u.seconds,
                    during_large_upload: false,
                });
                self.stored
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((u.id, source.clone()));
            }
            Err(e) => {
                self.uploads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors += 1;
                self.error(&format!("upload of {} bytes", source.size), &e);
            }
        }
    }

    async fn download(&self, api: &Api, id: &str, source: &Source) {
        let during = self.large_uploads_running.load(Ordering::SeqCst) > 0;
        let result = async {
            let mut verifier = Verifier::new(source)?;
            let t = api.download_with(id, |piece| verifier.feed(piece)).await?;
            verifier.finish()?;
            anyhow::Ok(t)
        }
        .await;
        match result {
            Ok(t) => {
                {
                    let mut d = self.downloads.lock().unwrap_or_else(|p| p.into_inner());
                    d.ok += 1;
                    d.bytes += t.bytes;
                }
                self.verified.fetch_add(t.bytes, Ordering::SeqCst);
                self.record(Op {
                    upload: false,
                    class: source.class,
                    seconds: t.seconds,
                    during_large_upload: during,
                });
            }
            Err(e) => {
                self.downloads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors += 1;
                self.error(&format!("download of {id} ({} bytes)", source.size), &e);
            }
        }
    }

    fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }
}

/// Runs the load test; returns the result (also written to `out_dir`).
///
/// # Errors
/// Setup failures: test files, the server not starting, logging in.
/// Failed requests are counted in the result instead.
pub async fn run(opts: LoadOptions) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(
        opts.uploaders + opts.downloaders > 0,
        "no uploaders and no downloaders"
    );
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let started_at = chrono::Utc::now().to_rfc3339();
    let bar = if opts.progress {
        let b = ProgressBar::new(opts.duration.as_secs().max(1));
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} s — {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("making test files");
    let sources = make_sources(&opts.mix, &opts.data_dir.join("files"), opts.seed)?;
    let large_class = (opts.mix.len() > 1).then(|| {
        (0..opts.mix.len())
            .max_by_key(|&i| opts.mix[i].max)
            .unwrap_or(0)
    });
    let dir = opts
        .data_dir
        .join(format!("picoshare-load-{}", std::process::id()));
    bar.set_message("starting the server");
    let unlimited = Limits {
        memory_mib: None,
        memory_method: &LimitMethod::NotEnforced,
        disk_mbps: None,
        disk_method: &DiskMethod::NotEnforced(String::new()),
    };
    let mut server = Server::start(
        &opts.binary,
        &opts.server_args,
        &dir,
        unlimited,
        "load",
        Tool::None,
    )
    .await?;
    let outcome = drive(&opts, &server, sources, large_class, &bar).await;
    let peak_rss_bytes = server.peak_rss();
    let server_alive_at_end = server.alive();
    if outcome.is_err() || !server_alive_at_end {
        eprintln!("server log (last lines):\n{}", server.log_tail());
    }
    server.stop().await;
    bar.finish_and_clear();
    let (shared, wall_s, completed) = outcome?;

    let ops = std::mem::take(&mut *shared.ops.lock().unwrap_or_else(|p| p.into_inner()));
    let result = LoadResult {
        schema: "picoshare-bench-load/1".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        finished_at: chrono::Utc::now().to_rfc3339(),
        command: opts.command.clone(),
        seed: opts.seed,
        server: std::iter::once(opts.binary.display().to_string())
            .chain(opts.server_args.iter().cloned())
            .collect(),
        uploaders: opts.uploaders,
        downloaders: opts.downloaders,
        duration_s: opts.duration.as_secs_f64(),
        mix: opts.mix.clone(),
        preload: opts.preload,
        max_uploads: opts.max_uploads,
        environment: opts.environment.clone(),
        wall_s,
        completed,
        server_alive_at_end,
        peak_rss_bytes,
        uploads: shared
            .uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        downloads: shared
            .downloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        verified_bytes: shared.verified.load(Ordering::SeqCst),
        error_count: shared.error_count.load(Ordering::SeqCst),
        errors: shared
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        latency: latencies(&opts.mix, large_class, &ops),
    };
    let tmp = opts.out_dir.join("load.json.partial");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&result)?)?;
    std::fs::rename(&tmp, opts.out_dir.join("load.json"))?;
    std::fs::write(opts.out_dir.join("load.md"), markdown(&result))?;
    Ok(result)
}

/// The preload and the timed phase against a running server.
async fn drive(
    opts: &LoadOptions,
    server: &Server,
    sources: Vec<Vec<Arc<Source>>>,
    large_class: Option<usize>,
    bar: &ProgressBar,
) -> anyhow::Result<(Arc<Shared>, f64, bool)> {
    let shared = Arc::new(Shared {
        sources,
        weights: opts.mix.iter().map(|c| c.weight).collect(),
        stored: RwLock::new(Vec::new()),
        ops: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        uploads: Mutex::new(Totals::default()),
        downloads: Mutex::new(Totals::default()),
        verified: AtomicU64::new(0),
        error_count: AtomicU64::new(0),
        uploads_started: AtomicU32::new(0),
        uploaders_running: AtomicU32::new(opts.uploaders),
        large_uploads_running: AtomicU32::new(0),
        large_class,
        stop: AtomicBool::new(false),
    });
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::SeqCst);
            }
        });
    }

    // Preload: one entry per class in turn, a few at a time, so that
    // downloaders find work of every size from the first second.
    bar.set_message(format!("preloading {} entries", opts.preload));
    let api = Api::login(&server.base, SECRET).await?;
    let parallel = opts.uploaders.clamp(1, 8) as usize;
    let preload: Vec<Arc<Source>> = (0..opts.preload as usize)
        .map(|i| {
            let class = &shared.sources[i % shared.sources.len()];
            class[(i / shared.sources.len()) % class.len()].clone()
        })
        .collect();
    for batch in preload.chunks(parallel) {
        futures_util::future::join_all(
            batch
                .iter()
                .enumerate()
                .map(|(i, s)| shared.upload(&api, s, i as u64)),
        )
        .await;
    }

    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for w in 0..opts.uploaders {
        let (shared, base) = (shared.clone(), server.base.clone());
        let max = opts.max_uploads;
        let seed = opts.seed ^ (u64::from(w) << 32) ^ 0x55;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            match Api::login(&base, SECRET).await {
                Ok(api) => {
                    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
                        let n = shared.uploads_started.fetch_add(1, Ordering::SeqCst);
                        if max.is_some_and(|m| n >= m) {
                            break;
                        }
                        let source = shared.pick_source(&mut rng);
                        shared.upload(&api, &source, u64::from(n)).await;
                    }
                }
                Err(e) => shared.error("login", &e),
            }
            shared.uploaders_running.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for w in 0..opts.downloaders {
        let (shared, base) = (shared.clone(), server.base.clone());
        let seed = opts.seed ^ (u64::from(w) << 32) ^ 0xdd;
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let api = match Api::login(&base, SECRET).await {
                Ok(api) => api,
                Err(e) => return shared.error("login", &e),
            };
            loop {
                let uploading = shared.uploaders_running.load(Ordering::SeqCst) > 0;
                if shared.stop.load(Ordering::SeqCst) || (Instant::now() >= deadline && !uploading)
                {
                    break;
                }
                let pick = {
                    let stored = shared.stored.read().unwrap_or_else(|p| p.into_inner());
                    (!stored.is_empty()).then(|| stored[rng.gen_range(0..stored.len())].clone())
                };
                match pick {
                    Some((id, source)) => shared.download(&api, &id, &source).await,
                    None => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    let ticker = {
        let (shared, bar) = (shared.clone(), bar.clone());
        let pid = server.pid();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(start.elapsed().as_secs().min(bar.length().unwrap_or(0)));
                let (up, down) = (
                    shared.uploads.lock().map(|t| t.clone()).unwrap_or_default(),
                    shared
                        .downloads
                        .lock()
                        .map(|t| t.clone())
                        .unwrap_or_default(),
                );
                let rss = pid.and_then(crate::sut::proc::current_rss).unwrap_or(0);
                bar.set_message(format!(
                    "{} uploads ({} MiB) · {} downloads ({} MiB) · {} errors · server RSS {} MiB",
                    up.ok,
                    up.bytes >> 20,
                    down.ok,
                    down.bytes >> 20,
                    shared.error_count.load(Ordering::SeqCst),
                    rss >> 20
                ));
            }
        })
    };
    for t in tasks {
        if let Err(e) = t.await {
            shared.error("worker", &anyhow::anyhow!("{e}"));
        }
    }
    ticker.abort();
    let completed = !shared.stop.load(Ordering::SeqCst);
    Ok((shared, start.elapsed().as_secs_f64(), completed))
}

fn latency(label: String, mut seconds: Vec<f64>) -> Option<Latency> {
    if seconds.is_empty() {
        return None;
    }
    seconds.sort_by(f64::total_cmp);
    let ms = |q: f64| crate::stats::percentile(&seconds, q) * 1000.0;
    Some(Latency {
        label,
        count: seconds.len(),
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
    })
}

/// Percentiles per kind and class, and for downloads of the smallest class
/// with and without an upload of the largest class in flight.
fn latencies(mix: &[SizeClass], large: Option<usize>, ops: &[Op]) -> Vec<Latency> {
    let mut out = Vec::new();
    for upload in [false, true] {
        for (class, c) in mix.iter().enumerate() {
            let xs = ops
                .iter()
                .filter(|o| o.upload == upload && o.class == class)
                .map(|o| o.seconds)
                .collect();
            let kind = if upload { "upload" } else { "download" };
            out.extend(latency(format!("{kind} {}", c.name), xs));
        }
    }
    if let Some(large) = large {
        let small = (0..mix.len()).min_by_key(|&i| mix[i].max).unwrap_or(0);
        for during in [true, false] {
            let xs = ops
                .iter()
                .filter(|o| !o.upload && o.class == small && o.during_large_upload == during)
                .map(|o| o.seconds)
                .collect();
            let when = if during { "during" } else { "without" };
            out.extend(latency(
                format!(
                    "download {}, {when} a {} upload",
                    mix[small].name, mix[large].name
                ),
                xs,
            ));
        }
    }
    out
}

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The Markdown summary (`load.md`).
pub fn markdown(r: &LoadResult) -> String {
    let mut md = String::new();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let _ = writeln!(md, "# Load test\n");
    let _ = writeln!(md, "Command: `{}`  ", r.command.join(" "));
    let _ = writeln!(
        md,
        "Started {}; {} uploaders, {} downloaders, {:.0} s{}{}; seed {}.  ",
        r.started_at,
        r.uploaders,
        r.downloaders,
        r.duration_s,
        r.max_uploads
            .map(|m| format!(", at most {m} uploads"))
            .unwrap_or_default(),
        if r.preload > 0 {
            format!(", {} entries preloaded", r.preload)
        } else {
            String::new()
        },
        r.seed
    );
    let _ = writeln!(
        md,
        "Machine: {} ({} CPUs, {:.1} GiB RAM), {} on {}, load average {:.2} before the run.\n",
        r.environment.cpu_model,
        r.environment.cpus,
        r.environment.memory_bytes as f64 / f64::from(1 << 30),
        r.environment.filesystem,
        r.environment.device,
        r.environment.load_average
    );
    let mix: Vec<String> = r
        .mix
        .iter()
        .map(|c| {
            let sizes = if c.min == c.max {
                size_text(c.min)
            } else {
                format!("{}–{}", size_text(c.min), size_text(c.max))
            };
            format!("{} {sizes} (weight {})", c.name, c.weight)
        })
        .collect();
    let _ = writeln!(md, "Size mix: {}.\n", mix.join(", "));
    let _ = writeln!(
        md,
        "| | requests | errors | MiB | MiB/s |\n|---|---:|---:|---:|---:|"
    );
    for (name, t) in [("uploads", &r.uploads), ("downloads", &r.downloads)] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {:.0} | {:.1} |",
            t.ok,
            t.errors,
            mib(t.bytes),
            if r.wall_s > 0.0 {
                mib(t.bytes) / r.wall_s
            } else {
                0.0
            }
        );
    }
    let _ = writeln!(
        md,
        "\nErrors: **{}**. Downloaded bytes verified against the uploads: {:.0} MiB \
         of {:.0} MiB. Server peak RSS (VmHWM): **{}**. Wall time {:.1} s{}{}.\n",
        r.error_count,
        mib(r.verified_bytes),
        mib(r.downloads.bytes),
        r.peak_rss_bytes
            .map(|b| format!("{:.1} MiB", mib(b)))
            .unwrap_or_else(|| "unknown".into()),
        r.wall_s,
        if r.completed { "" } else { ", interrupted" },
        if r.server_alive_at_end {
            ""
        } else {
            ", the server was no longer running at the end"
        }
    );
    if !r.latency.is_empty() {
        let _ = writeln!(
            md,
            "| latency (whole request) | count | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"
        );
        for l in &r.latency {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                l.label, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(md, "\nFirst errors:\n");
        for e in &r.errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_mixes_parse() {
        let mix = parse_mix("small=4K-1M:80, large=1G:5").unwrap();
        assert_eq!(mix.len(), 2);
        assert_eq!((mix[0].min, mix[0].max, mix[0].weight), (4096, 1 << 20, 80));
        assert_eq!(
            (mix[1].min, mix[1].max, mix[1].weight),
            (1 << 30, 1 << 30, 5)
        );
        assert!(parse_mix("a=2M-1M:1").is_err());
        assert!(parse_mix("a=1M:1,a=2M:1").is_err());
        assert!(parse_mix("a=1M:0").is_err());
        assert!(parse_mix("").is_err());
    }

    /// Every byte of a download is compared: a changed, missing or extra
    /// byte fails, for sources in memory and on disk alike.
    #[test]
    fn the_verifier_catches_every_difference() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Source {
            class: 0,
            size: 5000,
            content: Content::Memory(random_bytes(5000, 7)),
        };
        let path = crate::files::ensure(dir.path(), 1).unwrap();
        let disk = Source {
            class: 0,
            size: 1 << 20,
            content: Content::File(path.clone()),
        };
        for (source, data) in [
            (&memory, random_bytes(5000, 7).to_vec()),
            (&disk, std::fs::read(&path).unwrap()),
        ] {
            let feed_all = |bytes: &[u8]| -> anyhow::Result<()> {
                let mut v = Verifier::new(source)?;
                for piece in bytes.chunks(777) {
                    v.feed(piece)?;
                }
                v.finish()
            };
            feed_all(&data).unwrap();
            let mut changed = data.clone();
            changed[4321] ^= 1;
            let e = feed_all(&changed).unwrap_err().to_string();
            assert!(e.contains("byte 4321 differs"), "{e}");
            assert!(feed_all(&data[..data.len() - 1]).is_err());
            let mut longer = data.clone();
            longer.push(0);
            assert!(feed_all(&longer).is_err());
        }
    }

    #[test]
    fn sources_span_each_class() {
        let dir = tempfile::tempdir().unwrap();
        let mix = parse_mix("small=4K-1M:1,one=3M:1").unwrap();
        let sources = make_sources(&mix, dir.path(), 1).unwrap();
        let small: Vec<u64> = sources[0].iter().map(|s| s.size).collect();
        assert_eq!(small.first(), Some(&4096));
        assert_eq!(small.last(), Some(&(1 << 20)));
        assert!(small.windows(2).all(|w| w[0] < w[1]), "{small:?}");
        assert_eq!(sources[1].len(), 1);
        assert_eq!(sources[1][0].size, 3 << 20);
    }

    #[test]
    fn small_downloads_during_large_uploads_are_reported_apart() {
        let mix = parse_mix("small=4K:1,large=1G:1").unwrap();
        let op = |upload, class, seconds, during| Op {
            upload,
            class,
            seconds,
            during_large_upload: during,
        };
        let ops = [
            op(false, 0, 0.010, true),
            op(false, 0, 0.020, true),
            op(false, 0, 0.001, false),
            op(true, 1, 9.0, false),
        ];
        let l = latencies(&mix, Some(1), &ops);
        let during = l
            .iter()
            .find(|l| l.label == "download small, during a large upload")
            .unwrap();
        assert_eq!(during.count, 2);
        assert!((during.max_ms - 20.0).abs() < 1e-9);
        let without = l
            .iter()
            .find(|l| l.label == "download small, without a large upload")
            .unwrap();
        assert_eq!(without.count, 1);
        assert!(l.iter().any(|l| l.label == "upload large" && l.count == 1));
    }
}
