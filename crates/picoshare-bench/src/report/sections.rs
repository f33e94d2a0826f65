//! The report's sections about the paired and counted analysis
//! ([`crate::analysis`]): the sensitivity header, the method, the paired
//! comparisons, what pairing bought, server work, counted costs, their CSV
//! files and the ratio ("forest") charts.

use std::fmt::Write as _;

use crate::analysis::{Analysis, CountedRow};
use crate::report::calibration::LineFigures;
use crate::report::csv::{compared_fields, comparison_header, comparison_line, csv_line, num};
use crate::report::forest::{ratio_chart_file, ratio_chart_workloads};
use crate::report::format::{
    cell, clients, fixed, p_value, percent, ratio_interval, thousands, verdict,
};
use crate::results::{disk_label, memory_label, size_label, ConfigKey, ResultFile};
use crate::stats::paired::{PairedComparison, MIN_BLOCKS_NONPARAMETRIC};
use crate::stats::{self, verdict::Verdict};

fn config_cells(c: &ConfigKey) -> String {
    format!(
        "{} | {} | {}",
        size_label(c.size_mib << 20),
        memory_label(c.memory_limit_mib),
        disk_label(c.disk_limit_mbps)
    )
}

pub(super) fn ratio_ci(c: &PairedComparison) -> String {
    ratio_interval(c.ratio, c.ratio_ci_low, c.ratio_ci_high)
}

/// `## Sensitivity`: the smallest change the run could have seen, its
/// self-check (A/A and plant) and the machine's calibration.
pub fn sensitivity(w: &mut String, results: &ResultFile, a: &Analysis) {
    let s = &a.sensitivity;
    let _ = writeln!(w, "\n## Sensitivity\n");
    if s.comparisons > 0 {
        let _ = writeln!(
            w,
            "- Smallest change this run could have seen (paired MDE, alpha 0.05, power 0.8) over its \
             {} comparison(s): median {} %, from {} % to {} %.",
            s.comparisons,
            percent(s.mde_median),
            percent(s.mde_min),
            percent(s.mde_max)
        );
    } else {
        let _ = writeln!(
            w,
            "- This run compared no variants, so it states no detectable difference."
        );
    }
    if s.self_check.is_empty() {
        let _ = writeln!(w, "- No self-check in this run (`--self-check` adds an A/A twin and a planted slowdown of the baseline).");
    } else {
        let _ = writeln!(w, "- Self-check in this run:\n");
        let _ = writeln!(
            w,
            "  | workload | size | memory limit | disk limit | check | blocks | ratio [95 % CI] | expected | MDE % | verdict | as expected |\n  |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &s.self_check {
            let plant = results
                .variants
                .iter()
                .find(|v| v.name == r.variant)
                .and_then(|v| v.plant);
            let (check, expected, clean) = match plant {
                Some(p) => (
                    format!("plant −{} %", fixed(p * 100.0, 1)),
                    fixed(1.0 - p, 3),
                    r.comparison.verdict == Verdict::Slower,
                ),
                None => (
                    "A/A".to_owned(),
                    "1.000".to_owned(),
                    r.comparison.verdict == Verdict::NoDetectableDifference,
                ),
            };
            let _ = writeln!(
                w,
                "  | {} | {} | {check} | {} | {} | {expected} | {} | {} | {} |",
                cell(&r.workload),
                config_cells(&r.config),
                r.comparison.blocks,
                ratio_ci(&r.comparison),
                percent(r.comparison.mde),
                verdict(r.comparison.verdict),
                if clean { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(w);
    }
    match &s.calibration {
        Some(c) => {
            let same = c.hostname == results.environment.hostname
                && c.device == results.environment.device;
            let _ = writeln!(
                w,
                "- Latest calibration of {} (`picoshare-bench calibrate`, finished {}, {} with a planted \
                 slowdown of {} %, {}{}):",
                if same { "this machine" } else { "another machine" },
                c.finished_at,
                size_label(c.size_bytes),
                fixed(c.plant * 100.0, 1),
                crate::report::calibration::disk_limit_words(c.disk_limit_mbps),
                c.target_mde
                    .map(|t| format!(", target MDE {} %", percent(t)))
                    .unwrap_or_default()
            );
            for l in &c.workloads {
                let f = LineFigures::of(l);
                let _ = writeln!(
                    w,
                    "  - {}: plant called \"slower\" in {} runs, A/A clean in {}; median {} blocks, \
                     median MDE {} %, median plant ratio {}.",
                    l.workload, f.plant_called, f.aa_clean, f.blocks, f.mde, f.plant_ratio
                );
            }
        }
        None => {
            let _ = writeln!(
                w,
                "- No calibration of this machine on record in the data directory: run \
                 `picoshare-bench calibrate` to measure what the bench can see here."
            );
        }
    }
}

/// `## Method`.
pub fn method(w: &mut String, results: &ResultFile) {
    let cfg = &results.config;
    let blocks = match (cfg.target_mde, cfg.max_iterations) {
        (Some(t), max) => format!(
            "Adaptive: at least {} block(s) per configuration, then more until every comparison with the \
             baseline has a paired MDE below {} % or a confidence interval wholly beyond ±{} % \
             (decided), at most {} blocks{}.",
            cfg.iterations,
            percent(t),
            percent(t),
            max.map_or("—".to_owned(), |m| m.to_string()),
            cfg.max_time_s
                .map(|s| format!(
                    ", within a time budget of {} s shared among the configurations (one that finishes \
                     early leaves its time to the rest)",
                    fixed(s, 0)
                ))
                .unwrap_or_default()
        ),
        (None, _) => format!("{} block(s) per configuration.", cfg.iterations),
    };
    let configs = crate::analysis::configs(results);
    let _ = writeln!(
        w,
        "\n## Method\n\n\
         - A block runs every variant once, in {} order (seed {}, which also drives the bootstraps). {blocks} \
         {} warm-up block(s) per configuration are recorded in `samples.csv` but not counted; failed samples \
         are excluded and counted.{}\n\
         - {} per measurement; a fresh server process and data directory for every variant in every block, \
         deleted afterwards; before each, `sync` and a wait until the page cache holds under 32 MiB of \
         unwritten data, so no measurement pays for an earlier one's writeback. Each test file is read once \
         before its configuration, and its pages are asked back into the page cache (`posix_fadvise` \
         WILLNEED) before every measurement, so no variant pays for reading it from disk.\n\
         - Workloads: {}; {} configuration(s) of file size × memory limit × disk limit.\n\
         - Per configuration: median throughput with its 95 % percentile-bootstrap CI ({} resamples); CV = sd / mean.\n\
         - Comparisons (primary, paired): per block, the ratio variant / baseline; the effect is their \
         geometric mean, with a 95 % CI by bootstrap over blocks (Student-t interval of the log ratios \
         below {MIN_BLOCKS_NONPARAMETRIC} blocks). The p-value is the Wilcoxon signed-rank test of the \
         log ratios (the paired t-test below {MIN_BLOCKS_NONPARAMETRIC} blocks, where no signed-rank \
         test can reach 0.05). A difference is called when p < 0.05 and the CI excludes 1; otherwise \
         \"no detectable difference\", with the paired MDE (alpha 0.05, power 0.8, Student quantiles) \
         saying how small a difference could have been seen.\n\
         - Counted costs (instructions, system calls, disk bytes) use the paired t-test on log ratios, and \
         call a difference only beyond their noise floor: the largest spread of one variant's own counts \
         across blocks of the run.\n\
         - Units: MB/s = 10^6 bytes per second; file sizes and memory in MiB = 2^20 bytes.",
        cfg.order,
        results.seed,
        cfg.warmup,
        disturbance_note(results),
        clients(cfg.concurrency),
        cfg.workloads.join(", "),
        configs.len(),
        thousands(stats::BOOTSTRAP_RESAMPLES),
    );
}

/// The sentence of the method on blocks left out and run again.
fn disturbance_note(results: &ResultFile) -> String {
    let cfg = &results.config;
    let disturbed: u32 = results.outcomes.iter().map(|o| o.disturbed_blocks).sum();
    let mut causes = Vec::new();
    if cfg.wait_idle_s > 0.0 {
        causes.push(format!(
            "some unit had to start on a machine more than 10 % busy (the bench waited up to {} s before \
             each unit for a quarter second at most that busy)",
            fixed(cfg.wait_idle_s, 0)
        ));
    }
    if let Some(pct) = cfg.steal_gap_pct {
        causes.push(format!(
            "the hypervisor took the machine's CPU time away from its units unequally (steal, given to \
             the host's other guests; the unit that lost the most lost more than {} percentage points \
             more than the one that lost the least: the machine slowed down, not the code)",
            fixed(pct, 1)
        ));
    }
    if causes.is_empty() {
        return String::new();
    }
    format!(
        " A block in which {} was recorded, left out and run again ({disturbed} such block(s) in this run).",
        causes.join(", or in which ")
    )
}

/// `## Comparisons`: the paired rows.
pub(crate) fn paired_comparisons(w: &mut String, a: &Analysis) {
    if a.paired.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "\n## Comparisons\n\nThroughput of each variant relative to the baseline, block by block \
         (geometric mean of the per-block ratios; > 1: variant faster).\n\n\
         | workload | size | memory limit | disk limit | baseline | variant | blocks | ratio [95 % CI] | p-value (test) | MDE % | verdict | stopped by |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &a.paired {
        let c = &r.comparison;
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
            cell(&r.workload),
            config_cells(&r.config),
            cell(&r.baseline),
            cell(&r.variant),
            c.blocks,
            ratio_ci(c),
            p_value(c.p_value),
            c.test.label(),
            percent(c.mde),
            verdict(c.verdict),
            r.stop.label()
        );
    }
    let _ = writeln!(
        w,
        "\n![paired ratios]({})",
        ratio_chart_file(&a.paired[0].workload)
    );
    for workload in ratio_chart_workloads(a).iter().skip(1) {
        let _ = writeln!(w, "![paired ratios]({})", ratio_chart_file(workload));
    }
}

/// `### What pairing bought`.
pub(crate) fn pairing_gains(w: &mut String, a: &Analysis) {
    if a.gains.is_empty() {
        return;
    }
    let _ = writeln!(
        w,
        "\n### What pairing bought\n\nPer workload, medians over its comparisons: the MDE of the unpaired \
         view, the MDE of the paired one, and how much pairing cut the comparison's standard error \
         (1 − sd of the log ratios / √(CV_a² + CV_b²); a cut of 50 % means a quarter of the blocks \
         give the same precision).\n\n\
         | workload | comparisons | unpaired MDE % | paired MDE % | noise cut by pairing |\n|---|---|---|---|---|"
    );
    for g in &a.gains {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} % |",
            cell(&g.workload),
            g.comparisons,
            percent(g.unpaired_mde_median),
            percent(g.paired_mde_median),
            percent(g.noise_cut_median)
        );
    }
}

/// `## Server work`: CPU, system calls and disk bytes from the timed runs.
pub(crate) fn server_work(w: &mut String, a: &Analysis) {
    if a.work.is_empty() {
        return;
    }
    let throttled = a.work.iter().any(|r| r.throttled_share.is_some());
    let _ = writeln!(
        w,
        "\n## Server work (timed runs)\n\nMedians per measurement, from the server's `/proc` counters: CPU \
         seconds (user + system, all threads) per GiB moved, read- and write-like system calls per MiB, \
         bytes written to storage per byte moved{}. Against the baseline: CPU paired like throughput \
         (lower is better), system calls and disk bytes as counts (beyond their noise floor).\n\n\
         | workload | size | memory limit | disk limit | variant | CPU s/GiB | vs baseline | syscalls/MiB | vs baseline | disk bytes/byte | vs baseline |{}\n\
         |---|---|---|---|---|---|---|---|---|---|---|{}",
        if throttled {
            ", and the share of the server's disk bytes that went through the disk throttle"
        } else {
            ""
        },
        if throttled { " throttled |" } else { "" },
        if throttled { "---|" } else { "" },
    );
    for r in &a.work {
        let paired = |c: &Option<PairedComparison>| {
            c.map_or("—".to_owned(), |c| {
                format!("{} {}", fixed(c.ratio, 3), verdict(c.verdict))
            })
        };
        let count = |c: &Option<crate::stats::paired::CountComparison>| {
            c.map_or("—".to_owned(), |c| {
                format!("{} {}", fixed(c.ratio, 3), verdict(c.verdict))
            })
        };
        let _ = write!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&r.workload),
            config_cells(&r.config),
            cell(&r.variant),
            r.cpu_s_per_gib.map_or("—".into(), |x| fixed(x, 2)),
            paired(&r.cpu_vs_baseline),
            r.syscalls_per_mib.map_or("—".into(), |x| fixed(x, 1)),
            count(&r.syscalls_vs_baseline),
            r.disk_bytes_per_byte.map_or("—".into(), |x| fixed(x, 3)),
            count(&r.disk_vs_baseline),
        );
        if throttled {
            let _ = write!(
                w,
                " {} |",
                r.throttled_share
                    .map_or("—".into(), |x| format!("{} %", percent(x)))
            );
        }
        let _ = writeln!(w);
    }
}

/// `## Counted cost`: instructions and system calls per MiB.
pub fn counted(w: &mut String, results: &ResultFile, a: &Analysis) {
    if a.counted.is_empty() {
        if !results.counts.is_empty() {
            let failed: Vec<&str> = results
                .counts
                .iter()
                .filter_map(|c| c.error.as_deref())
                .collect();
            let _ = writeln!(
                w,
                "\n## Counted cost\n\nNo counted run completed ({} failed; first error: {}).",
                failed.len(),
                cell(failed.first().copied().unwrap_or("—"))
            );
        }
        return;
    }
    let cfg = &results.config;
    let _ = writeln!(
        w,
        "\n## Counted cost (valgrind and strace)\n\n{} counted block(s); in each, every variant ran six \
         lifetimes per tool, each a start + log in + stop: on a new database (empty) and again on it \
         (empty-reopen); on a new database with one upload of {} (upload) and again on it, where the \
         upload's checkpoint ends if it had not (upload-reopen); once more on that settled database \
         (reopen) and the same with a download of the file (download). Per MiB uploaded = (upload + \
         upload-reopen − empty − empty-reopen) / MiB, the whole cost of taking a file in; per MiB \
         downloaded = (download − reopen) / MiB. Instructions are counted by `valgrind --tool=cachegrind \
         --cache-sim=no` (user-space instructions only: the kernel's work shows in system calls and \
         disk bytes), system calls by `strace -f -c`. The noise floor is the largest spread of one \
         variant's own counts across blocks.\n\n\
         | metric | variant | median | per block | noise floor % | ratio vs baseline | p-value | verdict |\n\
         |---|---|---|---|---|---|---|---|",
        cfg.count_blocks,
        size_label(cfg.count_size_mib << 20)
    );
    for r in &a.counted {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&r.metric),
            cell(&r.variant),
            big(r.median),
            r.per_block
                .iter()
                .map(|x| big(*x))
                .collect::<Vec<_>>()
                .join(", "),
            r.vs_baseline
                .map_or("—".into(), |c| format!("{:.2}", c.noise_floor * 100.0)),
            r.vs_baseline.map_or("—".into(), |c| fixed(c.ratio, 4)),
            r.vs_baseline.map_or("—".into(), |c| p_value(c.p_value)),
            r.vs_baseline.map_or("—".into(), |c| verdict(c.verdict)),
        );
    }
}

/// A count for people: `4 012 345`, or three decimals below 10.
fn big(x: f64) -> String {
    if !x.is_finite() {
        "—".to_owned()
    } else if x.abs() >= 10.0 {
        let s = thousands(x.round().abs() as usize);
        if x < 0.0 {
            format!("−{s}")
        } else {
            s
        }
    } else {
        fixed(x, 3)
    }
}

/// `paired.csv`: one row per paired comparison.
pub(crate) fn paired_csv(a: &Analysis) -> String {
    let mut out = String::new();
    comparison_header(
        &mut out,
        &["baseline", "variant", "blocks"],
        &[
            "ci",
            "p_value",
            "test",
            "sd_log",
            "mde",
            "verdict",
            "stopped_by",
            "unpaired_mde",
            "noise_cut",
        ],
    );
    let rows = a.paired.iter().chain(
        a.sensitivity
            .self_check
            .iter()
            .filter(|r| !a.paired.iter().any(|p| p == *r)),
    );
    for r in rows {
        let c = &r.comparison;
        let compared = compared_fields(
            &r.workload,
            r.config.size_mib << 20,
            r.config.memory_limit_mib,
            r.config.disk_limit_mbps,
        );
        let who = [r.baseline.clone(), r.variant.clone(), c.blocks.to_string()];
        let rest = [
            if c.ci_bootstrap { "bootstrap" } else { "t" }.to_owned(),
            num(c.p_value),
            c.test.label().to_owned(),
            num(c.sd_log),
            num(c.mde),
            c.verdict.to_string(),
            r.stop.label().to_owned(),
            r.unpaired.map(|u| num(u.noise)).unwrap_or_default(),
            num(r.noise_cut),
        ];
        let ratio = [c.ratio, c.ratio_ci_low, c.ratio_ci_high];
        comparison_line(&mut out, compared, who, ratio, rest);
    }
    out
}

/// `counted.csv`: one row per counted metric and variant.
pub(crate) fn counted_csv(a: &Analysis) -> String {
    let mut out = String::new();
    csv_line(
        &mut out,
        [
            "metric",
            "variant",
            "median",
            "per_block",
            "ratio",
            "p_value",
            "noise_floor",
            "verdict",
        ]
        .iter()
        .map(|h| h.to_string()),
    );
    for r in &a.counted {
        let CountedRow {
            metric,
            variant,
            per_block,
            median,
            vs_baseline,
        } = r;
        csv_line(
            &mut out,
            [
                metric.clone(),
                variant.clone(),
                num(*median),
                per_block
                    .iter()
                    .map(|x| num(*x))
                    .collect::<Vec<_>>()
                    .join(" "),
                vs_baseline.map(|c| num(c.ratio)).unwrap_or_default(),
                vs_baseline.map(|c| num(c.p_value)).unwrap_or_default(),
                vs_baseline.map(|c| num(c.noise_floor)).unwrap_or_default(),
                vs_baseline
                    .map(|c| c.verdict.to_string())
                    .unwrap_or_default(),
            ],
        );
    }
    out
}
