//! A power-cut test of PicoShare's SQLite store: a workload runs against the
//! real server on a real ext4 filesystem whose disk records every write and
//! flush; the disk is then rebuilt as a power cut would have left it at many
//! cut points, and each is checked with the real server (see [`check`]).
//!
//! Why a block-level recorder, and why this one: the question is whether
//! what the server acknowledged survives a power cut, through everything
//! between SQLite and the disk: SQLite's locks and files, the server's own
//! file handling (its early writeback, its WAL syncs, another process
//! opening the database), ext4's ordering and journal, and the device's
//! volatile cache. A SQLite VFS shim that drops unsynced writes would see
//! only SQLite's own calls, so it would miss a server that writes into a WAL
//! another process has unlinked, and it models no filesystem. The kernel
//! here has no device-mapper (so no `dm-log-writes`) and no nbd, but it has
//! loop devices and FUSE: an ext4 filesystem on a loop device whose backing
//! file is served by this process ([`fusefs`]) turns every block write and
//! cache flush of the real filesystem into a request this process records
//! ([`journal`]) before it completes. That is the same record
//! `dm-log-writes` keeps, made from what the kernel has.
//!
//! The parts: [`system`] (preflight, `mkfs.ext4`, loop devices, mounts, with
//! guards that undo them), [`fusefs`] and [`journal`] (the recorded disk and
//! the cut images), [`server`] (the binary under test), [`content`] (the
//! files' seeded bytes), [`workload`] (what is done to the server, and the
//! history of what it acknowledged), [`cuts`] (where the power goes off),
//! [`check`] (what must hold after each cut), and [`run`], which does it all.

pub mod check;
pub mod content;
pub mod cuts;
pub mod devices;
mod expect;
pub mod fusefs;
pub mod history;
pub mod journal;
mod outside_reader;
pub mod server;
pub mod system;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::check::{Outcome, Worker};
use crate::fusefs::{Images, Mounted, Recorder};
use crate::journal::Journal;
use crate::system::{Ext4Mount, LoopDevice};
use crate::workload::History;

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `picoshare` binary under test.
    pub server: PathBuf,
    /// How many cut points to check.
    pub cuts: usize,
    /// Seeds the files' bytes and the choice of cut points.
    pub seed: u64,
    /// Cuts checked at once.
    pub workers: usize,
    /// The disk's size (a sparse file; ext4 on it).
    pub image_mib: u64,
    /// The large upload's size: at least 128 MiB, the server's
    /// early-writeback threshold.
    pub big_mib: u64,
    /// Keep the run's directory (journal, base image, server logs) instead
    /// of deleting it, to look into a failure.
    pub keep_dir: bool,
}

impl Options {
    /// The defaults: 512 MiB disk, a 136 MiB upload, two workers.
    pub fn new(server: PathBuf, cuts: usize, seed: u64) -> Options {
        Options {
            server,
            cuts,
            seed,
            workers: 2,
            image_mib: 512,
            big_mib: 136,
            keep_dir: false,
        }
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub history: History,
    /// Events recorded until the server was killed, and of them flushes.
    pub events: u64,
    pub flushes: usize,
    /// Bytes written to the disk until then.
    pub written: u64,
    /// Every checked cut, in the order of the plan.
    pub outcomes: Vec<Outcome>,
    pub workload_time: Duration,
    pub check_time: Duration,
}

impl Report {
    /// The cuts that failed.
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| !o.problems.is_empty())
            .collect()
    }

    /// A few lines: what was recorded, checked and found.
    pub fn summary(&self) -> String {
        let failed = self.failures().len();
        let files: usize = self.outcomes.iter().map(|o| o.files).sum();
        let bytes: u64 = self.outcomes.iter().map(|o| o.bytes).sum();
        let mut times: Vec<Duration> = self.outcomes.iter().map(|o| o.elapsed).collect();
        times.sort();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        let slowest = times.last().copied().unwrap_or_default();
        let max_written = self.outcomes.iter().map(|o| o.written).max().unwrap_or(0);
        let max_reclaim = self
            .outcomes
            .iter()
            .map(|o| o.reclaim)
            .max()
            .unwrap_or_default();
        format!(
            "seed {}: workload {:.1} s ({} acknowledged changes, outside reader ran {} times, {} after the large upload); \
             recorded {} events, {} flushes, {} MiB written; \
             checked {} cuts in {:.1} s (median {:.2} s, slowest {:.2} s per cut; reclamation at most {:.1} s; \
             a check wrote at most {} MiB to its image), {} files ({} MiB) compared; {} cuts failed",
            self.seed,
            self.workload_time.as_secs_f64(),
            self.history.steps.len(),
            self.history.reader_runs,
            self.history.reader_runs_after_big,
            self.events,
            self.flushes,
            self.written >> 20,
            self.outcomes.len(),
            self.check_time.as_secs_f64(),
            median.as_secs_f64(),
            slowest.as_secs_f64(),
            max_reclaim.as_secs_f64(),
            max_written >> 20,
            files,
            bytes >> 20,
            failed
        )
    }
}

/// Runs the whole test: record the workload, plan the cuts, check each.
/// `progress` gets a line now and then, and every failed cut at once.
///
/// # Errors
/// The machine lacks what the test needs (see [`system::preflight`]), the
/// workload fails, or the machinery fails (mounting, attaching). Failed
/// cuts are not errors: they are in the report.
pub fn run(opts: &Options, progress: &(dyn Fn(&str) + Sync)) -> Result<Report> {
    system::preflight()?;
    if opts.big_mib < 128 {
        bail!("the large upload must be at least 128 MiB (the server's early-writeback threshold)");
    }
    if !opts.server.is_file() {
        bail!("no server binary at {}", opts.server.display());
    }
    system::sweep_stale();
    let dir = tempfile::Builder::new()
        .prefix(system::RUN_DIR_PREFIX)
        .tempdir()
        .context("temp dir")?;
    std::fs::write(dir.path().join("pid"), std::process::id().to_string())?;
    progress(&format!(
        "power-cut test: seed {}, {} cuts, {} workers, {} MiB disk, {} MiB upload, server {}, in {}",
        opts.seed,
        opts.cuts,
        opts.workers,
        opts.image_mib,
        opts.big_mib,
        opts.server.display(),
        dir.path().display()
    ));
    let base = dir.path().join("base.img");
    system::make_ext4_image(&base, opts.image_mib << 20)?;
    let journal = Arc::new(RwLock::new(Journal::new(
        &base,
        &dir.path().join("journal.data"),
    )?));
    let images = Images::default();
    let fuse_dir = dir.path().join("images");
    std::fs::create_dir(&fuse_dir)?;
    let mounted = Mounted::mount(images.clone(), &fuse_dir, opts.workers + 1)
        .context("mount the FUSE image filesystem")?;

    // Record.
    let started = Instant::now();
    images.add("disk", Arc::new(Recorder::new(journal.clone())));
    let history = {
        let dev = LoopDevice::attach(&fuse_dir.join("disk"))?;
        let rec = dir.path().join("recorded");
        std::fs::create_dir(&rec)?;
        let fs = Ext4Mount::mount(dev.path(), &rec)?;
        std::fs::create_dir(rec.join("data"))?;
        let j = journal.clone();
        let setup = workload::Setup {
            binary: &opts.server,
            db: rec.join("data").join("store.db"),
            stderr_path: dir.path().join("workload.stderr"),
            seq: Arc::new(move || j.read().unwrap_or_else(|e| e.into_inner()).seq()),
            seed: opts.seed,
            big_mib: opts.big_mib,
        };
        let history = workload::run(&setup);
        fs.unmount()?;
        dev.detach()?;
        history?
    };
    images.remove("disk");
    let workload_time = started.elapsed();
    if history.reader_runs_after_big < 3 {
        bail!(
            "the outside reader ran only {} times after the large upload (failures: {:?})",
            history.reader_runs_after_big,
            history.reader_failures
        );
    }
    let (events, flushes, written, plan) = {
        let j = journal.read().unwrap_or_else(|e| e.into_inner());
        let end = history.end;
        let flushes = j.flushes().into_iter().filter(|&f| f <= end).count();
        let written: u64 = j.events()[..end as usize]
            .iter()
            .filter_map(|e| match e {
                journal::Event::Write { len, .. } => Some(*len),
                _ => None,
            })
            .sum();
        (
            end,
            flushes,
            written,
            cuts::plan(&j, end, opts.cuts, opts.seed),
        )
    };
    progress(&format!(
        "recorded in {:.1} s: {} acknowledged changes, {events} events, {flushes} flushes, {} MiB written; checking {} cuts",
        workload_time.as_secs_f64(),
        history.steps.len(),
        written >> 20,
        plan.len()
    ));

    // Check.
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let outcomes: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..opts.workers.max(1) {
            let worker = Worker {
                dir: dir.path().join(format!("worker-{w}")),
                fuse_dir: fuse_dir.clone(),
                images: images.clone(),
                journal: journal.clone(),
                binary: opts.server.clone(),
            };
            let (next, stop, outcomes, errors, plan, history) =
                (&next, &stop, &outcomes, &errors, &plan, &history);
            s.spawn(move || {
                if let Err(e) = std::fs::create_dir_all(&worker.dir) {
                    errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e.into());
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cut) = plan.get(i) else { break };
                    match check::check(&worker, cut, history) {
                        Ok(outcome) => {
                            if !outcome.problems.is_empty() {
                                progress(&format!(
                                    "FAILED {} (seed {}):\n  {}",
                                    outcome.description,
                                    opts.seed,
                                    outcome.problems.join("\n  ")
                                ));
                            }
                            let mut all = outcomes.lock().unwrap_or_else(|e| e.into_inner());
                            all.push((i, outcome));
                            if all.len() % 25 == 0 {
                                progress(&format!(
                                    "{} of {} cuts checked, {:.0} s",
                                    all.len(),
                                    plan.len(),
                                    started.elapsed().as_secs_f64()
                                ));
                            }
                        }
                        Err(e) => {
                            errors
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(e.context(format!("checking {}", cut.describe())));
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let check_time = started.elapsed();
    mounted
        .unmount()
        .context("unmount the FUSE image filesystem")?;
    if let Some(e) = errors
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .next()
    {
        return Err(e);
    }
    if opts.keep_dir {
        progress(&format!("kept {}", dir.keep().display()));
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(Report {
        seed: opts.seed,
        history,
        events,
        flushes,
        written,
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        workload_time,
        check_time,
    })
}
