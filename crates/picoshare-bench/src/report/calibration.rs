//! The sensitivity self-check (`picoshare-bench calibrate`): what this
//! machine lets the bench see, measured now.
//!
//! A calibration run compares a server with itself twice over: with an A/A
//! twin (the same binary, started the same way: any difference called is a
//! false alarm) and with a *planted* slowdown of known size. The plant is
//! honest and sized by the bench itself: the client sends `1 / (1 − p)` times
//! the bytes of the file (the file, then its first bytes again) while the
//! bench counts only the file's own bytes, so the server does `p / (1 − p)`
//! more of exactly the work being measured (receiving, storing, fsyncing;
//! for downloads, reading and sending), and the reported throughput falls to
//! `1 − p` of the base wherever time is proportional to bytes (a fixed cost
//! per request makes the true slowdown a little smaller, never larger).
//!
//! Repeating the calibration (`--repeat N`) measures the rates that matter:
//! how often the plant is called "slower" (power) and how often A/A stays
//! "no detectable difference" (1 − false-alarm rate), with the blocks each
//! run needed under the adaptive stopping rule.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::analysis;
use crate::report::format::{cell, fixed, p_value, percent};
use crate::results::{size_label, CalibrationLine, CalibrationRecord, ResultFile};
use crate::stats::paired::{PairedComparison, StopReason};
use crate::stats::{self, verdict::Verdict};

/// A workload's calibration figures, written the same way in the
/// calibration's summary table and in a run's report header
/// (`crate::report::sections`).
pub(crate) struct LineFigures {
    /// Runs that called the plant "slower": `3 of 4`.
    pub(crate) plant_called: String,
    /// Runs whose A/A stayed clean: `4 of 4`.
    pub(crate) aa_clean: String,
    /// Median blocks per run, one decimal.
    pub(crate) blocks: String,
    /// Median paired MDE, in percent.
    pub(crate) mde: String,
    /// Median plant ratio, three decimals.
    pub(crate) plant_ratio: String,
}

impl LineFigures {
    /// The figures of one workload's calibration line.
    pub(crate) fn of(l: &CalibrationLine) -> Self {
        LineFigures {
            plant_called: format!("{} of {}", l.plant_called, l.runs),
            aa_clean: format!("{} of {}", l.aa_clean, l.runs),
            blocks: fixed(l.blocks_median, 1),
            mde: percent(l.mde_median),
            plant_ratio: fixed(l.plant_ratio_median, 3),
        }
    }
}

/// One repeat's result for one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRun {
    /// Repeat number (1, 2, …).
    pub run: u32,
    /// Workload.
    pub workload: String,
    /// Measured blocks.
    pub blocks: u32,
    /// Blocks left out and run again (disturbed by other work or by steal).
    #[serde(default)]
    pub disturbed_blocks: u32,
    /// Why it stopped.
    pub stop: StopReason,
    /// The A/A twin against the base.
    pub aa: Option<PairedComparison>,
    /// The plant against the base.
    pub plant: Option<PairedComparison>,
    /// The unpaired view of the plant (ratio of medians, Mann–Whitney).
    pub plant_unpaired: Option<stats::Comparison>,
    /// Wall-clock seconds of the repeat.
    pub seconds: f64,
}

/// What `calibrate` writes to `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// The summary, also kept in the data directory for later reports.
    pub record: CalibrationRecord,
    /// Every repeat, per workload.
    pub runs: Vec<CalibrationRun>,
    /// The command line.
    pub command: Vec<String>,
    /// Wall-clock seconds of the whole calibration.
    pub seconds: f64,
}

/// Summarizes the result files of the repeats (each with the base first,
/// then its A/A twin and its plant) into a calibration report.
pub fn summarize(
    repeats: &[(ResultFile, f64)],
    plant: f64,
    command: Vec<String>,
    seconds: f64,
) -> CalibrationReport {
    let mut runs = Vec::new();
    for (k, (r, secs)) in repeats.iter().enumerate() {
        let rows = analysis::analyze(r).sensitivity.self_check;
        let outcome = r.outcomes.first();
        for workload in &r.config.workloads {
            let find = |want_plant: bool| {
                rows.iter().find(|row| {
                    &row.workload == workload
                        && r.variants
                            .iter()
                            .any(|v| v.name == row.variant && v.plant.is_some() == want_plant)
                })
            };
            runs.push(CalibrationRun {
                run: k as u32 + 1,
                workload: workload.clone(),
                blocks: outcome.map_or(0, |o| o.blocks),
                disturbed_blocks: outcome.map_or(0, |o| o.disturbed_blocks),
                stop: outcome.map_or(StopReason::Interrupted, |o| o.reason),
                aa: find(false).map(|row| row.comparison),
                plant: find(true).map(|row| row.comparison),
                plant_unpaired: find(true).and_then(|row| row.unpaired),
                seconds: *secs,
            });
        }
    }
    let first = repeats.first().map(|(r, _)| r);
    let workloads: Vec<String> = first
        .map(|r| r.config.workloads.clone())
        .unwrap_or_default();
    let lines = workloads
        .iter()
        .map(|w| {
            let of: Vec<&CalibrationRun> = runs.iter().filter(|r| &r.workload == w).collect();
            let med = |f: &dyn Fn(&CalibrationRun) -> Option<f64>| {
                let xs: Vec<f64> = of.iter().filter_map(|r| f(r)).collect();
                stats::median(&xs)
            };
            CalibrationLine {
                workload: w.clone(),
                runs: of.len() as u32,
                plant_called: of
                    .iter()
                    .filter(|r| r.plant.is_some_and(|c| c.verdict == Verdict::Slower))
                    .count() as u32,
                aa_clean: of
                    .iter()
                    .filter(|r| {
                        r.aa.is_some_and(|c| c.verdict == Verdict::NoDetectableDifference)
                    })
                    .count() as u32,
                blocks_median: med(&|r| Some(f64::from(r.blocks))),
                mde_median: med(&|r| r.plant.map(|c| c.mde)),
                plant_ratio_median: med(&|r| r.plant.map(|c| c.ratio)),
            }
        })
        .collect();
    let record = CalibrationRecord {
        finished_at: chrono::Utc::now().to_rfc3339(),
        hostname: first
            .map(|r| r.environment.hostname.clone())
            .unwrap_or_default(),
        device: first
            .map(|r| r.environment.device.clone())
            .unwrap_or_default(),
        size_bytes: first.map_or(0, |r| {
            r.config.sizes_mib.first().copied().unwrap_or(0) << 20
        }),
        plant,
        target_mde: first.and_then(|r| r.config.target_mde),
        disk_limit_mbps: first
            .and_then(|r| r.outcomes.first())
            .and_then(|o| o.config.disk_limit_mbps),
        workloads: lines,
    };
    CalibrationReport {
        record,
        runs,
        command,
        seconds,
    }
}

/// `calibration.md`.
pub(crate) fn markdown(c: &CalibrationReport) -> String {
    let mut md = String::new();
    let w = &mut md;
    let r = &c.record;
    let _ = writeln!(
        w,
        "# picoshare-bench calibration\n\n\
         - Command: `{}`\n\
         - Finished {} on {} (data on {}), {} s in all.\n\
         - Each run: the base server, its A/A twin and a planted slowdown of {} % (the client sends \
         1 / (1 − {}) of the bytes, the bench counts the file's own), {}, {}, blocks in random order, \
         adaptive stopping{}.\n",
        c.command.join(" ").replace('`', "'"),
        r.finished_at,
        cell(&r.hostname),
        cell(&r.device),
        fixed(c.seconds, 0),
        fixed(r.plant * 100.0, 1),
        fixed(r.plant, 2),
        size_label(r.size_bytes),
        disk_limit_words(r.disk_limit_mbps),
        r.target_mde
            .map(|t| format!(" at a target MDE of {} %", percent(t)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        w,
        "## Summary\n\n\
         | workload | runs | plant called \"slower\" | A/A \"no detectable difference\" | median blocks | median MDE % | median plant ratio (expected {}) |\n\
         |---|---|---|---|---|---|---|",
        fixed(1.0 - r.plant, 3)
    );
    for l in &r.workloads {
        let f = LineFigures::of(l);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&l.workload),
            l.runs,
            f.plant_called,
            f.aa_clean,
            f.blocks,
            f.mde,
            f.plant_ratio
        );
    }
    let _ = writeln!(
        w,
        "\n## Every run\n\n\
         | run | workload | blocks | left out, run again | stopped by | A/A ratio [95 % CI] | A/A p | A/A verdict | plant ratio [95 % CI] | plant p | plant MDE % | plant verdict | plant, unpaired view | s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let ci = |c: &Option<PairedComparison>| {
        c.map_or("—".to_owned(), |c| {
            format!(
                "{} [{}, {}]",
                fixed(c.ratio, 3),
                fixed(c.ratio_ci_low, 3),
                fixed(c.ratio_ci_high, 3)
            )
        })
    };
    for run in &c.runs {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.run,
            cell(&run.workload),
            run.blocks,
            run.disturbed_blocks,
            run.stop.label(),
            ci(&run.aa),
            run.aa.map_or("—".into(), |c| p_value(c.p_value)),
            run.aa.map_or("—".into(), |c| c.verdict.to_string()),
            ci(&run.plant),
            run.plant.map_or("—".into(), |c| p_value(c.p_value)),
            run.plant.map_or("—".into(), |c| percent(c.mde)),
            run.plant.map_or("—".into(), |c| c.verdict.to_string()),
            run.plant_unpaired.map_or("—".into(), |u| format!(
                "{} (p {}, noise {} %)",
                u.verdict,
                p_value(u.p_value),
                percent(u.noise)
            )),
            fixed(run.seconds, 0)
        );
    }
    md
}

/// How a calibration's disk limit reads in a sentence.
pub(crate) fn disk_limit_words(limit: Option<u64>) -> String {
    limit.map_or("the server's disk unthrottled".to_owned(), |mbps| {
        format!("the server's disk limited to {mbps} MB/s")
    })
}
