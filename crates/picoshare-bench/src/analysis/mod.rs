//! The paired and counted analysis of a result file: what the report's
//! comparisons, "what pairing bought", server-work and sensitivity sections
//! show. Pure: everything is computed from the result file (bootstraps
//! seeded with its seed), so `picoshare-bench report` reproduces it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::results::{CalibrationRecord, ConfigKey, CountSample, ResultFile, Sample};
use crate::stats;
use crate::stats::paired::{self, CountComparison, PairedComparison, StopReason};

const MIB: f64 = (1u64 << 20) as f64;

/// System calls of one kind are listed when a counted run made at least
/// this many per MiB (the rest are start-up noise and timers).
const PER_KIND_MIN: f64 = 2.0;

/// The measured, successful values of one variant in one configuration and
/// workload, by block: `value(sample)` for every block in which both
/// `baseline` and `variant` have one. Returns `(baseline, variant)` in block order.
pub fn paired_series(
    results: &ResultFile,
    baseline: &str,
    variant: &str,
    workload: &str,
    config: &ConfigKey,
    value: impl Fn(&Sample) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let by_block = |name: &str| -> BTreeMap<u32, f64> {
        results
            .measured()
            .filter(|s| {
                s.variant == name
                    && s.workload == workload
                    && s.size_bytes == config.size_mib << 20
                    && s.memory_limit_mib == config.memory_limit_mib
                    && s.disk_limit_mbps == config.disk_limit_mbps
            })
            .filter_map(|s| Some((s.iteration, value(s)?)))
            .collect()
    };
    let (a, b) = (by_block(baseline), by_block(variant));
    a.iter().filter_map(|(k, x)| Some((*x, *b.get(k)?))).unzip()
}

/// The configurations of a run: those listed, else those seen in samples.
pub fn configs(results: &ResultFile) -> Vec<ConfigKey> {
    if !results.config.configs.is_empty() {
        return results.config.configs.clone();
    }
    let mut seen = Vec::new();
    for s in &results.samples {
        let c = ConfigKey {
            size_mib: s.size_bytes >> 20,
            memory_limit_mib: s.memory_limit_mib,
            disk_limit_mbps: s.disk_limit_mbps,
        };
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen
}

/// A paired comparison of a variant with the baseline in one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedRow {
    /// Workload.
    pub workload: String,
    /// The configuration.
    pub config: ConfigKey,
    /// Baseline variant.
    pub baseline: String,
    /// Compared variant.
    pub variant: String,
    /// Throughput of `variant` relative to `baseline`, block by block.
    pub comparison: PairedComparison,
    /// The unpaired view of the same samples (ratio of medians, Mann–Whitney).
    pub unpaired: Option<stats::Comparison>,
    /// `1 − sd(log ratios) / √(cv_a² + cv_b²)`: how much pairing cut the
    /// standard error of the comparison (0 = nothing, negative = it added noise).
    pub noise_cut: f64,
    /// Why this comparison took no more blocks.
    pub stop: StopReason,
}

/// How much pairing cut the noise of one workload's comparisons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairingGain {
    /// Workload.
    pub workload: String,
    /// Comparisons.
    pub comparisons: usize,
    /// Median MDE of the unpaired view (fraction).
    pub unpaired_mde_median: f64,
    /// Median MDE of the paired view (fraction).
    pub paired_mde_median: f64,
    /// Median of [`PairedRow::noise_cut`].
    pub noise_cut_median: f64,
}

/// A server-side cost measured in the timed runs, for one variant and configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkRow {
    /// Workload.
    pub workload: String,
    /// The configuration.
    pub config: ConfigKey,
    /// Variant.
    pub variant: String,
    /// Median server CPU seconds (user + system) per GiB moved.
    pub cpu_s_per_gib: Option<f64>,
    /// Median read- plus write-like system calls per MiB moved.
    pub syscalls_per_mib: Option<f64>,
    /// Median bytes written to storage per byte moved.
    pub disk_bytes_per_byte: Option<f64>,
    /// Median share of the bytes it read and wrote on disk (`/proc/PID/io`)
    /// that went through the disk throttle (only where a disk limit was
    /// enforced; below 100 % where the kernel's flusher threads wrote some
    /// of its pages back, which cgroup v1 does not throttle).
    pub throttled_share: Option<f64>,
    /// CPU per GiB against the baseline (paired; lower is better).
    pub cpu_vs_baseline: Option<PairedComparison>,
    /// System calls per MiB against the baseline.
    pub syscalls_vs_baseline: Option<CountComparison>,
    /// Disk bytes per byte against the baseline.
    pub disk_vs_baseline: Option<CountComparison>,
}

/// One counted metric of one variant (see [`crate::run::counting`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountedRow {
    /// `instructions/MiB uploaded`, `syscalls/MiB downloaded`, …
    pub metric: String,
    /// Variant.
    pub variant: String,
    /// The value in each counted block.
    pub per_block: Vec<f64>,
    /// Its median.
    pub median: f64,
    /// Against the baseline (`None` for the baseline itself).
    pub vs_baseline: Option<CountComparison>,
}

/// What the run could see, and whether its A/A stayed clean.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sensitivity {
    /// Comparisons of the run's own variants (not the self-check twins).
    pub comparisons: usize,
    /// Smallest, median and largest paired MDE among them (fractions).
    pub mde_min: f64,
    /// Median paired MDE.
    pub mde_median: f64,
    /// Largest paired MDE.
    pub mde_max: f64,
    /// The in-run self-check: A/A twins and plants against their base.
    pub self_check: Vec<PairedRow>,
    /// The machine's latest calibration, if the run found one.
    pub calibration: Option<CalibrationRecord>,
}

/// Everything this module computes for a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Analysis {
    /// Every non-baseline variant against the baseline, block by block.
    pub paired: Vec<PairedRow>,
    /// Per workload: what pairing bought.
    pub gains: Vec<PairingGain>,
    /// Server-side costs from the timed runs.
    pub work: Vec<WorkRow>,
    /// Counted costs (instructions, system calls, disk bytes).
    pub counted: Vec<CountedRow>,
    /// The sensitivity summary of the report's header.
    pub sensitivity: Sensitivity,
}

/// Analyses a result file.
pub fn analyze(results: &ResultFile) -> Analysis {
    let paired = paired_rows(results);
    let gains = pairing_gains(&paired);
    let own: Vec<&PairedRow> = paired
        .iter()
        .filter(|r| !is_twin(results, &r.variant))
        .collect();
    let mut mdes: Vec<f64> = own
        .iter()
        .map(|r| r.comparison.mde)
        .filter(|m| m.is_finite())
        .collect();
    mdes.sort_by(f64::total_cmp);
    let sensitivity = Sensitivity {
        comparisons: own.len(),
        mde_min: mdes.first().copied().unwrap_or(f64::NAN),
        mde_median: stats::median(&mdes),
        mde_max: mdes.last().copied().unwrap_or(f64::NAN),
        self_check: self_check_rows(results),
        calibration: results.calibration.clone(),
    };
    Analysis {
        gains,
        work: work_rows(results),
        counted: counted_rows(results),
        paired,
        sensitivity,
    }
}

fn is_twin(results: &ResultFile, name: &str) -> bool {
    results
        .variants
        .iter()
        .any(|v| v.name == name && v.twin_of.is_some())
}

/// Why a comparison stopped: its own rule when the run had a target and the
/// rule is met, else how its configuration ended.
fn stop_of(results: &ResultFile, config: &ConfigKey, c: &PairedComparison) -> StopReason {
    let config_reason = results
        .outcomes
        .iter()
        .find(|o| o.config == *config)
        .map_or(StopReason::Fixed, |o| o.reason);
    match results.config.target_mde {
        Some(target) => paired::stop_reason(c, target)
            .filter(|_| config_reason != StopReason::Interrupted)
            .unwrap_or(config_reason),
        None => config_reason,
    }
}

/// A paired row of `variant` against `baseline` for throughput.
fn paired_row(
    results: &ResultFile,
    workload: &str,
    config: &ConfigKey,
    baseline: &str,
    variant: &str,
) -> Option<PairedRow> {
    let (a, b) = paired_series(results, baseline, variant, workload, config, |s| {
        Some(s.throughput_mbps)
    });
    let comparison = paired::paired_compare(&a, &b, true, results.seed)?;
    let cv = |xs: &[f64]| stats::summarize(xs, results.seed).map_or(f64::NAN, |s| s.cv);
    let unpaired_se = (cv(&a).powi(2) + cv(&b).powi(2)).sqrt();
    Some(PairedRow {
        workload: workload.to_owned(),
        config: *config,
        baseline: baseline.to_owned(),
        variant: variant.to_owned(),
        unpaired: stats::compare(&a, &b, true, results.seed),
        noise_cut: 1.0 - comparison.sd_log / unpaired_se,
        stop: stop_of(results, config, &comparison),
        comparison,
    })
}

fn paired_rows(results: &ResultFile) -> Vec<PairedRow> {
    let Some(baseline) = results.variants.first() else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for workload in &results.config.workloads {
        for config in configs(results) {
            for v in results.variants.iter().skip(1) {
                if let Some(r) = paired_row(results, workload, &config, &baseline.name, &v.name) {
                    rows.push(r);
                }
            }
        }
    }
    rows
}

/// Twins (A/A and plants) against the variant they repeat, when that is not
/// the baseline (those are among the paired rows already) — and those too.
fn self_check_rows(results: &ResultFile) -> Vec<PairedRow> {
    let mut rows = Vec::new();
    for workload in &results.config.workloads {
        for config in configs(results) {
            for v in &results.variants {
                if let Some(base) = &v.twin_of {
                    if let Some(r) = paired_row(results, workload, &config, base, &v.name) {
                        rows.push(r);
                    }
                }
            }
        }
    }
    rows
}

fn pairing_gains(rows: &[PairedRow]) -> Vec<PairingGain> {
    let workloads: Vec<&String> = rows
        .iter()
        .map(|r| &r.workload)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    workloads
        .into_iter()
        .map(|w| {
            let of: Vec<&PairedRow> = rows.iter().filter(|r| &r.workload == w).collect();
            let med = |f: &dyn Fn(&PairedRow) -> f64| {
                let xs: Vec<f64> = of.iter().map(|r| f(r)).filter(|x| x.is_finite()).collect();
                stats::median(&xs)
            };
            PairingGain {
                workload: w.clone(),
                comparisons: of.len(),
                unpaired_mde_median: med(&|r| r.unpaired.map_or(f64::NAN, |u| u.noise)),
                paired_mde_median: med(&|r| r.comparison.mde),
                noise_cut_median: med(&|r| r.noise_cut),
            }
        })
        .collect()
}

fn work_rows(results: &ResultFile) -> Vec<WorkRow> {
    let Some(baseline) = results.variants.first().map(|v| v.name.clone()) else {
        return Vec::new();
    };
    let cpu = |s: &Sample| Some(s.cpu_seconds? / (s.bytes as f64 / (MIB * 1024.0)));
    let calls =
        |s: &Sample| Some((s.syscalls_read? + s.syscalls_write?) as f64 / (s.bytes as f64 / MIB));
    let disk = |s: &Sample| Some(s.disk_written_bytes? as f64 / s.bytes as f64);
    let mut rows = Vec::new();
    for workload in &results.config.workloads {
        for config in configs(results) {
            for v in &results.variants {
                let name = &v.name;
                let (_, cpus) = paired_series(results, name, name, workload, &config, cpu);
                if cpus.is_empty() {
                    continue;
                }
                let series = |f: &dyn Fn(&Sample) -> Option<f64>| {
                    paired_series(results, &baseline, name, workload, &config, f)
                };
                let own = |f: &dyn Fn(&Sample) -> Option<f64>| {
                    let xs = paired_series(results, name, name, workload, &config, f).1;
                    (!xs.is_empty()).then(|| stats::median(&xs))
                };
                let throttled = |s: &Sample| {
                    let t = s.throttled_bytes? as f64;
                    let d = (s.disk_written_bytes? + s.disk_read_bytes.unwrap_or(0)) as f64;
                    (s.disk_limit_enforced && d > 0.0).then(|| (t / d).min(1.0))
                };
                let is_base = *name == baseline;
                let (ca, cb) = series(&cpu);
                let (sa, sb) = series(&calls);
                let (da, db) = series(&disk);
                rows.push(WorkRow {
                    workload: workload.clone(),
                    config,
                    variant: name.clone(),
                    cpu_s_per_gib: own(&cpu),
                    syscalls_per_mib: own(&calls),
                    disk_bytes_per_byte: own(&disk),
                    throttled_share: own(&throttled),
                    cpu_vs_baseline: (!is_base)
                        .then(|| paired::paired_compare(&ca, &cb, false, results.seed))
                        .flatten(),
                    syscalls_vs_baseline: (!is_base)
                        .then(|| paired::compare_counts(&sa, &sb, 0.0))
                        .flatten(),
                    disk_vs_baseline: (!is_base)
                        .then(|| paired::compare_counts(&da, &db, 0.0))
                        .flatten(),
                });
            }
        }
    }
    rows
}

/// Per-block values of every counted metric of every variant.
pub fn counted_metrics(counts: &[CountSample]) -> BTreeMap<(String, String), BTreeMap<u32, f64>> {
    let get = |variant: &str, block: u32, run: &str, tool: &str| {
        counts.iter().find(|c| {
            c.ok && c.variant == variant && c.block == block && c.run == run && c.tool == tool
        })
    };
    let mut out: BTreeMap<(String, String), BTreeMap<u32, f64>> = BTreeMap::new();
    let keys: BTreeSet<(String, u32)> = counts
        .iter()
        .map(|c| (c.variant.clone(), c.block))
        .collect();
    for (variant, block) in keys {
        let mut put = |metric: &str, value: Option<f64>| {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                out.entry((metric.to_owned(), variant.clone()))
                    .or_default()
                    .insert(block, v);
            }
        };
        for tool in ["instructions", "syscalls"] {
            let runs: BTreeMap<&str, &CountSample> = crate::results::COUNTED_RUNS
                .iter()
                .filter_map(|r| Some((*r, get(&variant, block, r, tool)?)))
                .collect();
            let upload_mib = runs.get("upload").map(|c| c.size_bytes as f64 / MIB);
            // (Σ plus − Σ minus) of `f` over lifetimes, per MiB of the file.
            let per_mib = |plus: &[&str],
                           minus: &[&str],
                           f: &dyn Fn(&CountSample) -> Option<f64>| {
                let sum =
                    |names: &[&str]| -> Option<f64> { names.iter().map(|n| f(runs.get(n)?)).sum() };
                Some((sum(plus)? - sum(minus)?) / upload_mib?)
            };
            const UP: (&[&str], &[&str]) =
                (&["upload", "upload-reopen"], &["empty", "empty-reopen"]);
            const DOWN: (&[&str], &[&str]) = (&["download"], &["reopen"]);
            let total = |c: &CountSample| -> Option<f64> {
                if tool == "instructions" {
                    c.instructions.map(|n| n as f64)
                } else {
                    (!c.syscalls.is_empty()).then(|| c.syscalls.values().sum::<u64>() as f64)
                }
            };
            put(
                &format!("{tool} at start-up and shutdown"),
                runs.get("empty").and_then(|c| total(c)),
            );
            put(&format!("{tool}/MiB uploaded"), per_mib(UP.0, UP.1, &total));
            put(
                &format!("{tool}/MiB downloaded"),
                per_mib(DOWN.0, DOWN.1, &total),
            );
            if tool == "syscalls" {
                // The kinds that make up most of the calls.
                let kinds: BTreeSet<&String> =
                    runs.values().flat_map(|c| c.syscalls.keys()).collect();
                for kind in kinds {
                    let calls = |c: &CountSample| Some(*c.syscalls.get(kind).unwrap_or(&0) as f64);
                    for (label, (plus, minus)) in [("uploaded", UP), ("downloaded", DOWN)] {
                        if let Some(per) =
                            per_mib(plus, minus, &calls).filter(|p| *p >= PER_KIND_MIN)
                        {
                            put(&format!("{kind}/MiB {label}"), Some(per));
                        }
                    }
                }
            } else {
                let bytes = |f: fn(&CountSample) -> Option<u64>| {
                    move |c: &CountSample| f(c).map(|b| b as f64 / MIB)
                };
                let calls = bytes(|c| c.write_call_bytes);
                let disk = bytes(|c| c.disk_written_bytes);
                put(
                    "bytes passed to write calls per byte uploaded",
                    per_mib(UP.0, UP.1, &calls),
                );
                put(
                    "bytes passed to write calls per byte downloaded",
                    per_mib(DOWN.0, DOWN.1, &calls),
                );
                put(
                    "disk bytes written per byte uploaded",
                    per_mib(UP.0, UP.1, &disk),
                );
            }
        }
    }
    out
}

fn counted_rows(results: &ResultFile) -> Vec<CountedRow> {
    let metrics = counted_metrics(&results.counts);
    let Some(baseline) = results.variants.first().map(|v| v.name.clone()) else {
        return Vec::new();
    };
    let mut names: Vec<&String> = metrics
        .keys()
        .map(|(m, _)| m)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Instructions, then system calls, disk bytes, then calls by kind.
    let rank = |m: &str| match m {
        m if m.starts_with("instructions") => 0,
        m if m.starts_with("syscalls") => 1,
        m if m.starts_with("bytes passed") || m.starts_with("disk") => 2,
        _ => 3,
    };
    names.sort_by_key(|m| (rank(m), (*m).clone()));
    let mut rows = Vec::new();
    for metric in names {
        let base = metrics.get(&(metric.clone(), baseline.clone()));
        let run_floor = results
            .variants
            .iter()
            .filter_map(|v| metrics.get(&(metric.clone(), v.name.clone())))
            .map(|own| paired::relative_spread(&own.values().copied().collect::<Vec<_>>()))
            .fold(0.0, f64::max);
        for v in &results.variants {
            let Some(own) = metrics.get(&(metric.clone(), v.name.clone())) else {
                continue;
            };
            let per_block: Vec<f64> = own.values().copied().collect();
            let vs_baseline = match base {
                Some(base) if v.name != baseline => {
                    let (a, b): (Vec<f64>, Vec<f64>) = base
                        .iter()
                        .filter_map(|(k, x)| Some((*x, *own.get(k)?)))
                        .unzip();
                    paired::compare_counts(&a, &b, run_floor)
                }
                _ => None,
            };
            rows.push(CountedRow {
                metric: metric.clone(),
                variant: v.name.clone(),
                median: stats::median(&per_block),
                per_block,
                vs_baseline,
            });
        }
    }
    rows
}
