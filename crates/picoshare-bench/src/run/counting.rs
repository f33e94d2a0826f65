//! Counted runs: the cost of the server's own work, in units that do not
//! depend on how busy the machine is.
//!
//! Wall-clock throughput on a shared two-core VM moves by several percent
//! from run to run, and so does the server's CPU time (the kernel's
//! writeback cost moves with it). What the server's *code* does for a
//! mebibyte does not: the number of instructions it executes, and the system
//! calls it makes. `--count-instructions` measures both, in blocks like the
//! timed runs (every variant once per block, in random order):
//!
//! - under `valgrind --tool=cachegrind --cache-sim=no`, which counts every
//!   instruction the server executes (about 1 % of native speed, so a small
//!   file is used: `--count-size`, 64 MiB by default);
//! - under `strace -f -c`, which counts system calls by name.
//!
//! A server's start-up and shutdown cost as much as tens of MiB of
//! transfer, and what an upload leaves for later (the WAL checkpoint that
//! copies its pages into the database) happens partly while the server
//! stops and partly when it next opens the database, in proportions that
//! depend on timing. So each variant runs six lifetimes per tool and block:
//!
//! | lifetime | what | on |
//! |---|---|---|
//! | `empty` | start, log in, stop | a new database |
//! | `empty-reopen` | start, log in, stop | the same database again |
//! | `upload` | start, log in, upload the file, stop | a new database |
//! | `upload-reopen` | start, log in, stop (the upload's checkpoint ends here if not before) | the same database |
//! | `reopen` | start, log in, stop | the same, now settled |
//! | `download` | start, log in, download the file, stop | the same |
//!
//! Per MiB uploaded is `(upload + upload-reopen − empty − empty-reopen) / MiB`:
//! the whole cost of taking a file in, checkpoint included, whenever it ran.
//! Per MiB downloaded is `(download − reopen) / MiB`, both started on the
//! same settled database. Both tools come from the distribution (Debian's
//! `valgrind` and `strace`), and are
//! installed with apt-get when missing.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::progress_bar;
use anyhow::{bail, Context};
use rand::seq::SliceRandom;

use crate::plan::options::RunOptions;
use crate::plan::variants::{Target, Variant};
use crate::results::{CountSample, COUNTED_RUNS as RUNS};
use crate::sut::client::Api;
use crate::sut::disk::DiskMethod;
use crate::sut::server::{Limits, Server, Tool, SECRET};

/// The tools, with the names results use.
const TOOLS: [(Tool, &str, &str); 2] = [
    (Tool::Cachegrind, "instructions", "valgrind"),
    (Tool::Strace, "syscalls", "strace"),
];

/// Makes sure `program` is on the PATH, installing Debian's `package` with
/// apt-get if it is missing.
///
/// # Errors
/// If it is missing and cannot be installed.
pub(crate) fn ensure_tool(program: &str, package: &str) -> anyhow::Result<()> {
    let found = || {
        std::process::Command::new(program)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return Ok(());
    }
    eprintln!("{program} is missing: installing the {package} package with apt-get");
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-qq", package]) {
        apt(&["update", "-qq"]);
        apt(&["install", "-y", "-qq", package]);
    }
    if !found() {
        bail!("{program} is needed for --count-instructions and could not be installed (apt-get install {package})");
    }
    Ok(())
}

/// Runs the counted blocks of every variant that the bench starts itself
/// (`url:` variants cannot be counted). `save` gets every sample so far
/// after each lifetime.
///
/// # Errors
/// A missing tool that cannot be installed.
pub(crate) async fn run(
    opts: &RunOptions,
    file: &Path,
    runs_dir: &Path,
    rng: &mut rand_chacha::ChaCha8Rng,
    interrupted: &Arc<AtomicBool>,
    stop: &Arc<tokio::sync::Notify>,
    save: &mut dyn FnMut(&[CountSample]) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<CountSample>> {
    for (_, _, program) in TOOLS {
        ensure_tool(program, program)?;
    }
    let variants: Vec<&Variant> = opts
        .variants
        .iter()
        .filter(|v| matches!(v.target, Target::Binary { .. }))
        .collect();
    let total = u64::from(opts.count_blocks) * variants.len() as u64 * 2 * RUNS.len() as u64;
    let bar = progress_bar(
        opts.progress,
        total,
        "{elapsed_precise} [{wide_bar}] {pos}/{len} counted lifetimes — {msg}",
    );
    let size = opts.count_size_mib << 20;
    let mut out = Vec::new();
    let mut n = 0u64;
    'blocks: for block in 0..opts.count_blocks {
        let mut order = variants.clone();
        order.shuffle(rng);
        for variant in order {
            for (tool, tool_name, _) in &TOOLS {
                // The database of `upload`, reused by `reopen` and `download`.
                let dir = runs_dir.join(format!("count-{n}"));
                let mut entry: Option<String> = None;
                for run in RUNS {
                    if interrupted.load(Ordering::SeqCst) {
                        let _ = std::fs::remove_dir_all(&dir);
                        break 'blocks;
                    }
                    bar.set_message(format!(
                        "{} · {tool_name} · {run} · block {}",
                        variant.info.name,
                        block + 1
                    ));
                    n += 1;
                    let lifetime = Lifetime {
                        variant,
                        file,
                        size,
                        run,
                        tool: tool.clone(),
                        dir: &dir,
                        name: format!("count-{n}"),
                    };
                    let mut sample = CountSample {
                        variant: variant.info.name.clone(),
                        block,
                        run: run.to_owned(),
                        tool: (*tool_name).to_owned(),
                        size_bytes: size,
                        ..CountSample::default()
                    };
                    tokio::select! {
                        r = lifetime.count(&mut sample, &mut entry) => {
                            if let Err(e) = r {
                                sample.error = Some(format!("{e:#}"));
                            }
                        }
                        () = stop.notified() => {
                            interrupted.store(true, Ordering::SeqCst);
                            let _ = std::fs::remove_dir_all(&dir);
                            break 'blocks;
                        }
                    }
                    sample.ok = sample.error.is_none();
                    out.push(sample);
                    save(&out)?;
                    bar.inc(1);
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// One counted server lifetime.
struct Lifetime<'a> {
    variant: &'a Variant,
    file: &'a Path,
    size: u64,
    run: &'static str,
    tool: Tool,
    dir: &'a Path,
    name: String,
}

impl Lifetime<'_> {
    /// Runs the lifetime; `entry` carries the uploaded file's ID from
    /// `upload` to `download`.
    async fn count(
        &self,
        sample: &mut CountSample,
        entry: &mut Option<String>,
    ) -> anyhow::Result<()> {
        let Target::Binary { path, args } = &self.variant.target else {
            bail!("only servers the bench starts can be counted");
        };
        let unlimited = Limits {
            memory_mib: None,
            memory_method: &crate::sut::cgroup::LimitMethod::NotEnforced,
            disk_mbps: None,
            disk_method: &DiskMethod::NotEnforced(String::new()),
        };
        if self.run == "empty" || self.run == "upload" {
            // A new database for each.
            let _ = std::fs::remove_dir_all(self.dir);
        }
        let server = Server::start(
            path,
            args,
            self.dir,
            unlimited,
            &self.name,
            self.tool.clone(),
        )
        .await
        .context("server did not start")?;
        let work = self.work(&server, entry).await;
        let report = server.stop_keeping_data().await;
        sample.disk_written_bytes = report.final_counters.map(|c| c.written_bytes);
        sample.write_call_bytes = report.final_counters.map(|c| c.write_call_bytes);
        work?;
        if let Some(e) = report.tool_error {
            bail!(e);
        }
        sample.instructions = report.instructions;
        sample.syscalls = report.syscalls;
        Ok(())
    }

    async fn work(&self, server: &Server, entry: &mut Option<String>) -> anyhow::Result<()> {
        let api = Api::login(&server.base, SECRET).await?;
        let padding = self.variant.padding(self.size);
        match self.run {
            "upload" => {
                *entry = Some(api.upload_padded(self.file, self.size, padding).await?.id);
            }
            "download" => {
                let id = entry.as_deref().context("the upload before it failed")?;
                api.download(id, self.size + padding).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
