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
//! `load.json` into the output directory (`load.md`, its report, is
//! `crate::report::load`'s).

mod sources;
mod workers;

use sources::make_sources;
use workers::{drive, Op};

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::run::progress_bar;
use anyhow::Context;

use crate::results::{Environment, Latency, LoadResult, SizeClass, Totals};
use crate::sut::cgroup::LimitMethod;
use crate::sut::disk::DiskMethod;
use crate::sut::server::{Limits, Server, Tool};

/// Sizes up to this are generated in memory (exact byte counts); larger ones
/// are test files on disk (whole MiB), made once and reused.
const IN_MEMORY_MAX: u64 = 8 << 20;
/// Distinct sizes drawn per size class.
const SIZES_PER_CLASS: usize = 6;
/// Error messages kept in the result (all are counted).
const ERRORS_KEPT: usize = 20;

/// Everything a load run needs.
pub(crate) struct LoadOptions {
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
    /// `load.json` goes here (and `load.md`, written by the command).
    pub out_dir: PathBuf,
    /// The command line, for the record.
    pub command: Vec<String>,
    /// The machine, from the doctor.
    pub environment: Environment,
    /// Show a progress bar.
    pub progress: bool,
}

/// Runs the load test; returns the result (also written to `out_dir`).
///
/// # Errors
/// Setup failures: test files, the server not starting, logging in.
/// Failed requests are counted in the result instead.
pub(crate) async fn run(opts: LoadOptions) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(
        opts.uploaders + opts.downloaders > 0,
        "no uploaders and no downloaders"
    );
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let started_at = chrono::Utc::now().to_rfc3339();
    let bar = progress_bar(
        opts.progress,
        opts.duration.as_secs().max(1),
        "{elapsed_precise} [{wide_bar}] {pos}/{len} s — {msg}",
    );
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
    Ok(result)
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

#[cfg(test)]
mod tests {
    use super::sources::*;
    use super::*;
    use crate::plan::options::parse_mix;

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
        let path = crate::plan::files::ensure(dir.path(), 1).unwrap();
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
