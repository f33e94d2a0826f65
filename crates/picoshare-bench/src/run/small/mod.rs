//! `picoshare-bench small`: many small files over keep-alive connections,
//! what screenshots, photos and PDFs opened in a browser look like to the
//! server.
//!
//! Paired blocks as in `run` (see [`crate::run`]): each block runs every
//! variant once, in a random order from the recorded seed; a *unit* is one
//! variant on a fresh server (or a `url:` server) doing, for each file size,
//! uploads on 1, 8 and 64 connections, then (after a pause in which the
//! server finishes what the uploads left, such as a checkpoint) downloads of
//! what it uploaded on as many, and then a trivial request (`GET /robots.txt`, a 404 on
//! both servers) at each connection count: the rate the client and the
//! server's bare request handling allow, measured in the same run. Each
//! phase records requests per second, latency percentiles (p50, p99,
//! p99.9), and for servers the bench started their CPU time and the bytes
//! they caused to be written to storage (`/proc/PID/stat`, `/proc/PID/io`);
//! a download phase's counters are read 4.5 s after its last request, so
//! that the writes of download records a server gathers before writing
//! (this one: up to 4 s) count for the downloads that caused them.
//! Before each unit the bench waits for a quiet machine (`--wait-idle`); a
//! block with a unit that started on a busy machine, or whose units lost
//! shares of the CPU to the host (steal) more than `--steal-gap` apart, is
//! recorded, left out and run again.
//!
//! Its samples go into `results.json` (`small`); [`crate::report::small`] makes the
//! tables, with each variant's per-block ratios against the baseline.

pub mod client;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};

use crate::plan::options::BlockPlan;
use crate::plan::variants::{Target, Variant};
use crate::results::{ResultFile, SmallSample};
use crate::run::gates::{steal_share, wait_for_idle};
use crate::run::save;
use crate::sut::proc::cpu_times;
use crate::sut::server::{Server, SECRET};

/// What a small-files run needs.
pub(crate) struct SmallOptions {
    /// Variants, blocks, seed (also of the files' bytes), where data and
    /// results go.
    pub plan: BlockPlan,
    /// File sizes in bytes.
    pub sizes: Vec<u64>,
    /// Connection counts.
    pub connections: Vec<u32>,
    /// How long each phase sends requests.
    pub phase: Duration,
    /// A block whose units lost shares of the CPU to the host more than this
    /// far apart (a fraction) is left out and run again (`None`: kept).
    pub steal_gap: Option<f64>,
    /// Passphrase of `url:` variants.
    pub url_passphrase: Option<String>,
    /// Print a line per unit.
    pub progress: bool,
}

/// The pause between a size's uploads and its downloads, for the writes
/// the uploads leave behind: this server checkpoints its WAL after a second
/// without requests, and confirms a second later.
const SETTLE: Duration = Duration::from_secs(3);

/// The wait after a download phase for the writes of its download records:
/// this server gathers them for 1 s, or 4 s while it records hundreds a
/// second, and their writes are the phase's (the original writes each
/// record before its reply).
const RECORDS_GATHER: Duration = Duration::from_millis(4_500);

/// A unit that starts while the machine's CPUs are busier than this
/// (a fraction) spoils its block.
const BUSY: f64 = 0.10;

/// Runs the blocks; returns the result file (also written to `out_dir`).
///
/// # Errors
/// Setup failures; failed phases are recorded as samples with errors.
pub(crate) async fn run(opts: SmallOptions) -> anyhow::Result<ResultFile> {
    let mut results = opts
        .plan
        .start("small", opts.connections.iter().copied().max().unwrap_or(1))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.plan.seed);
    let files: Vec<Vec<u8>> = opts
        .sizes
        .iter()
        .map(|&size| {
            let mut b = vec![0u8; size as usize];
            rng.fill_bytes(&mut b);
            b
        })
        .collect();
    let runs_dir = opts
        .plan
        .data_dir
        .join(format!("picoshare-bench-small-{}", std::process::id()));
    let mut block = 0u32;
    let mut measured = 0u32;
    let mut disturbed = 0u32;
    while measured < opts.plan.blocks {
        let warm = block < opts.plan.warmup;
        let first = results.small.len();
        let mut order: Vec<&Variant> = opts.plan.variants.iter().collect();
        order.shuffle(&mut rng);
        for (k, variant) in order.into_iter().enumerate() {
            let busy = if opts.plan.wait_idle.is_zero() {
                None
            } else {
                wait_for_idle(opts.plan.wait_idle).await.1
            };
            let dir = runs_dir.join(format!("block-{block}-{k}"));
            let cpu_before = cpu_times();
            let mut samples = unit(&opts, variant, &files, &dir).await;
            let steal = cpu_before
                .zip(cpu_times())
                .and_then(|(a, b)| steal_share(a, b));
            for s in &mut samples {
                s.block = block;
                s.warmup = warm;
                s.machine_busy_before = busy;
                s.steal_during = steal;
            }
            if opts.progress {
                eprintln!(
                    "block {}{}: {} done ({} phases, {} failed)",
                    block + 1,
                    if warm { " (warm-up)" } else { "" },
                    variant.info.name,
                    samples.len(),
                    samples.iter().filter(|s| s.errors > 0).count()
                );
            }
            results.small.extend(samples);
            save(&results, &opts.plan.out_dir)?;
        }
        block += 1;
        if warm {
            continue;
        }
        let unit_steal: Vec<f64> = results.small[first..]
            .iter()
            .filter_map(|s| s.steal_during)
            .collect();
        let steal_spread = unit_steal.iter().copied().fold(f64::NAN, f64::max)
            - unit_steal.iter().copied().fold(f64::NAN, f64::min);
        let spoiled = results.small[first..]
            .iter()
            .any(|s| s.machine_busy_before.is_some_and(|b| b > BUSY))
            || opts.steal_gap.is_some_and(|gap| steal_spread > gap);
        if spoiled {
            for s in &mut results.small[first..] {
                s.disturbed = true;
            }
            disturbed += 1;
            eprintln!("block {block} ran while the machine was busy with other work, or lost CPU time to the host unequally: it does not count and runs again");
            if disturbed > opts.plan.blocks.max(3) {
                eprintln!("the machine stayed too busy to measure on; stopping");
                break;
            }
            continue;
        }
        measured += 1;
    }
    let _ = std::fs::remove_dir_all(&runs_dir);
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    save(&results, &opts.plan.out_dir)?;
    Ok(results)
}

/// The running server of a unit.
enum Running {
    Started(Box<Server>),
    External(String),
}

impl Running {
    fn base(&self) -> &str {
        match self {
            Running::Started(s) => &s.base,
            Running::External(url) => url,
        }
    }

    fn server(&self) -> Option<&Server> {
        match self {
            Running::Started(s) => Some(s),
            Running::External(_) => None,
        }
    }
}

/// One variant on a fresh server: every phase, in order.
async fn unit(
    opts: &SmallOptions,
    variant: &Variant,
    files: &[Vec<u8>],
    dir: &std::path::Path,
) -> Vec<SmallSample> {
    let failed = |e: anyhow::Error| {
        vec![SmallSample {
            variant: variant.info.name.clone(),
            workload: "upload".into(),
            errors: 1,
            error: Some(format!("{e:#}")),
            ..SmallSample::default()
        }]
    };
    let (running, passphrase) = match &variant.target {
        Target::Binary { path, args } => {
            match crate::run::entries::start_unlimited(path, args, dir, "small").await {
                Ok(s) => (Running::Started(Box::new(s)), SECRET.to_owned()),
                Err(e) => return failed(e),
            }
        }
        Target::Reference => {
            return failed(anyhow::anyhow!(
                "a ref: reference is measured by `run` only"
            ))
        }
        Target::Url(url) => (
            Running::External(url.clone()),
            opts.url_passphrase.clone().unwrap_or_default(),
        ),
    };
    let out = match phases(opts, variant, files, &running, &passphrase).await {
        Ok(out) => out,
        Err(e) => failed(e),
    };
    if let Running::Started(server) = running {
        server.stop().await;
    }
    let _ = std::fs::remove_dir_all(dir);
    out
}

async fn phases(
    opts: &SmallOptions,
    variant: &Variant,
    files: &[Vec<u8>],
    running: &Running,
    passphrase: &str,
) -> anyhow::Result<Vec<SmallSample>> {
    let base = running.base().to_owned();
    let cookie = client::login(&base, passphrase).await?;
    let mut out = Vec::new();
    for (file, &size) in files.iter().zip(&opts.sizes) {
        let (body, content_type) = client::multipart(&format!("small-{size}.bin"), file);
        let mut ids = Vec::new();
        for &c in &opts.connections {
            let kind = client::Kind::Upload {
                body: body.clone(),
                content_type: content_type.clone(),
            };
            let (s, r) = phase(
                running, &cookie, kind, c, opts.phase, variant, "upload", size,
            )
            .await?;
            ids.extend(r);
            out.push(s);
        }
        if ids.is_empty() {
            bail!("no upload of {size} bytes succeeded, so there is nothing to download");
        }
        let ids = Arc::new(ids);
        // What the uploads left to do (a checkpoint of the WAL a moment
        // after they stop) is theirs, not the downloads'.
        if running.server().is_some() {
            tokio::time::sleep(SETTLE).await;
        }
        for &c in &opts.connections {
            let kind = client::Kind::Download {
                ids: ids.clone(),
                size,
            };
            let (s, _) = phase(
                running, &cookie, kind, c, opts.phase, variant, "download", size,
            )
            .await?;
            out.push(s);
        }
    }
    for &c in &opts.connections {
        let kind = client::Kind::Trivial {
            path: "/robots.txt".into(),
        };
        let (s, _) = phase(running, &cookie, kind, c, opts.phase, variant, "trivial", 0).await?;
        out.push(s);
    }
    Ok(out)
}

/// One phase, with the server's CPU time and disk writes around it.
#[allow(clippy::too_many_arguments)]
async fn phase(
    running: &Running,
    cookie: &str,
    kind: client::Kind,
    connections: u32,
    duration: Duration,
    variant: &Variant,
    workload: &str,
    size: u64,
) -> anyhow::Result<(SmallSample, Vec<String>)> {
    let server = running.server();
    let before = server.and_then(Server::counters);
    let r = client::run(running.base(), cookie, kind, connections, duration).await?;
    // Writes the server delays (grouped commits of download records)
    // belong to this phase: this server gathers a download's record for up
    // to RECORDS_GATHER before writing it.
    if server.is_some() {
        let wait = if workload == "download" {
            RECORDS_GATHER
        } else {
            Duration::from_millis(250)
        };
        tokio::time::sleep(wait).await;
    }
    let after = server.and_then(Server::counters);
    let mut lat = r.latencies_us;
    lat.sort_unstable();
    let sample = SmallSample {
        variant: variant.info.name.clone(),
        workload: workload.to_owned(),
        size_bytes: size,
        connections,
        requests: r.ok,
        errors: r.errors,
        error: r.first_error,
        seconds: r.seconds,
        requests_per_s: if r.seconds > 0.0 {
            r.ok as f64 / r.seconds
        } else {
            0.0
        },
        p50_ms: client::quantile_ms(&lat, 0.5),
        p99_ms: client::quantile_ms(&lat, 0.99),
        p999_ms: client::quantile_ms(&lat, 0.999),
        server_cpu_s: before
            .zip(after)
            .map(|(a, b)| (b.cpu_seconds - a.cpu_seconds).max(0.0)),
        disk_written_bytes: before
            .zip(after)
            .map(|(a, b)| b.written_bytes.saturating_sub(a.written_bytes)),
        ..SmallSample::default()
    };
    Ok((sample, r.ids))
}
