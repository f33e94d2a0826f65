//! `picoshare-bench stall`: how long downloads stall while a large upload
//! runs.
//!
//! One fresh server (no limits). A file A (`--download-mib`) is uploaded;
//! then A is downloaded over and over for three seconds on the quiet
//! server, and again for as long as an upload of a large file B
//! (`--upload-mib`, sent by a second client) is in flight. Every download
//! is read in 64 KiB pieces and the time between consecutive pieces is a
//! *gap*: a download that stalls behind the upload's writes shows as a long
//! gap. Each phase records its number of gaps, the longest, the 99th
//! percentile and the median; both phases come from the same run, so the
//! quiet server is the reference. Samples go into `results.json` (`stall`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::plan::files;
use crate::results::{Environment, ResultFile, RunConfig, StallSample};
use crate::run::entries::start_unlimited;
use crate::run::save;
use crate::sut::client::Api;
use crate::sut::server::SECRET;

/// The piece a gap is measured over.
const PIECE: usize = 64 << 10;
/// How long the quiet phase downloads.
const QUIET: Duration = Duration::from_secs(3);
/// The longest the busy phase may last, whatever the upload does.
const BUSY_MAX: Duration = Duration::from_secs(600);

/// Everything a stall run needs.
pub(crate) struct StallOptions {
    /// The server binary.
    pub(crate) binary: PathBuf,
    /// Extra server arguments.
    pub(crate) server_args: Vec<String>,
    /// Size of the large upload, MiB.
    pub(crate) upload_mib: u64,
    /// Size of the file downloaded over and over, MiB.
    pub(crate) download_mib: u64,
    /// Where test files and the server's data go.
    pub(crate) data_dir: PathBuf,
    /// Where `results.json` goes.
    pub(crate) out_dir: PathBuf,
    /// The command line, for the record.
    pub(crate) command: Vec<String>,
    /// The machine, from the doctor.
    pub(crate) environment: Environment,
}

/// Runs the quiet and the busy phase; returns the result file (also written
/// to `out_dir`).
///
/// # Errors
/// Setup failures (test files, the server not starting, logging in) and
/// failed transfers: a stall figure from a failed download would mean
/// nothing.
pub(crate) async fn run(opts: StallOptions) -> anyhow::Result<ResultFile> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let files_dir = opts.data_dir.join("files");
    let small = files::ensure(&files_dir, opts.download_mib)?;
    let big = files::ensure(&files_dir, opts.upload_mib)?;
    let mut results = ResultFile {
        config: RunConfig {
            workloads: vec!["stall".into()],
            data_dir: opts.data_dir.display().to_string(),
            ..RunConfig::default()
        },
        environment: opts.environment.clone(),
        ..ResultFile::started(opts.command.clone(), 0)
    };
    let dir = opts
        .data_dir
        .join(format!("picoshare-bench-stall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start_unlimited(&opts.binary, &opts.server_args, &dir, "stall").await?;
    let measured = async {
        let reader = Api::login(&server.base, SECRET).await?;
        let uploader = Api::login(&server.base, SECRET).await?;
        let download_bytes = opts.download_mib << 20;
        let entry = reader.upload(&small, download_bytes).await?.id;
        let quiet = gaps_while(&reader, &entry, download_bytes, QUIET, || true).await?;
        let upload_bytes = opts.upload_mib << 20;
        let upload = tokio::spawn(async move { uploader.upload(&big, upload_bytes).await });
        let busy = gaps_while(&reader, &entry, download_bytes, BUSY_MAX, || {
            !upload.is_finished()
        })
        .await?;
        upload.await.context("the upload task panicked")??;
        anyhow::Ok([
            stall_sample("quiet", 0, download_bytes, &quiet),
            stall_sample("upload", upload_bytes, download_bytes, &busy),
        ])
    }
    .await;
    server.stop().await;
    results.stall = measured?.into();
    results.finished_at = Some(chrono::Utc::now().to_rfc3339());
    save(&results, &opts.out_dir)?;
    Ok(results)
}

/// Downloads `entry` whole, again and again, while `go_on` says so and
/// `limit` has not passed (at least once); the gaps between 64 KiB pieces,
/// in seconds.
async fn gaps_while(
    api: &Api,
    entry: &str,
    expect: u64,
    limit: Duration,
    go_on: impl Fn() -> bool,
) -> anyhow::Result<Vec<f64>> {
    let started = Instant::now();
    let mut gaps = Vec::new();
    loop {
        let mut last = Instant::now();
        let mut pending = 0usize;
        let got = api
            .download_with(entry, |chunk| {
                pending += chunk.len();
                while pending >= PIECE {
                    pending -= PIECE;
                    let now = Instant::now();
                    gaps.push(now.duration_since(last).as_secs_f64());
                    last = now;
                }
                Ok(())
            })
            .await?;
        anyhow::ensure!(
            got.bytes == expect,
            "a download of {expect} bytes brought {}",
            got.bytes
        );
        // The end of the body (with any last partial piece) is one more read.
        gaps.push(last.elapsed().as_secs_f64());
        if !go_on() || started.elapsed() >= limit {
            return Ok(gaps);
        }
    }
}

/// One phase's figures from its gaps.
fn stall_sample(phase: &str, upload_bytes: u64, download_bytes: u64, gaps: &[f64]) -> StallSample {
    let mut sorted = gaps.to_vec();
    sorted.sort_by(f64::total_cmp);
    StallSample {
        phase: phase.to_owned(),
        upload_bytes,
        download_bytes,
        reads: sorted.len() as u64,
        longest_gap_s: sorted.last().copied().unwrap_or(0.0),
        p99_gap_s: nearest_rank(&sorted, 0.99),
        median_gap_s: crate::stats::median(&sorted),
    }
}

/// The nearest-rank quantile `q` of sorted values (0 when there are none).
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_summed_up_by_its_gaps() {
        let gaps: Vec<f64> = (1..=200).map(f64::from).collect();
        let s = stall_sample("upload", 10, 20, &gaps);
        assert_eq!(s.reads, 200);
        assert_eq!(s.longest_gap_s, 200.0);
        assert_eq!(s.p99_gap_s, 198.0);
        assert_eq!(s.median_gap_s, 100.5);
        assert_eq!((s.upload_bytes, s.download_bytes), (10, 20));
        let none = stall_sample("quiet", 0, 20, &[]);
        assert_eq!(
            (none.reads, none.longest_gap_s, none.p99_gap_s),
            (0, 0.0, 0.0)
        );
    }
}
