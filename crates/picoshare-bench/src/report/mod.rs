//! Reports computed from a result file: per-configuration summaries,
//! comparisons with the baseline variant, and the files a run leaves behind
//! (`results.json`, `samples.csv`, `summary.csv`, `comparisons.csv`,
//! `summary.json`, `report.md` and the SVG charts).
//!
//! Statistics only use measured samples: warm-ups are excluded, and so are
//! failed samples, which are counted instead. Units: MB/s = 10^6 bytes per
//! second, sizes and memory in MiB = 2^20 bytes.

pub(crate) mod calibration;
pub(crate) mod chart;
pub mod compare;
pub(crate) mod csv;
pub(crate) mod forest;
pub(crate) mod format;
pub(crate) mod load;
pub(crate) mod markdown;
pub(crate) mod sections;
pub(crate) mod small;
pub(crate) mod stall;
pub(crate) mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{self, Analysis};
use crate::results::{GroupKey, ResultFile, Sample};
use crate::stats::{self, Comparison, Summary};

pub(super) const MIB: f64 = (1u64 << 20) as f64;

/// Statistics of one configuration (variant × workload × size × memory limit × concurrency).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The configuration.
    pub key: GroupKey,
    /// Throughput in MB/s (10^6 bytes/s) of the successful measured samples;
    /// `Summary::empty` when every one failed.
    pub throughput: Summary,
    /// Wall-clock seconds per measurement.
    pub seconds: Summary,
    /// Seconds between the last body byte sent and the reply (uploads).
    pub reply_wait_s: Option<Summary>,
    /// Largest server peak RSS seen in any sample of the configuration, warm-ups
    /// and failures included (it is the server's lifetime peak), bytes.
    pub peak_rss_bytes_max: Option<u64>,
    /// Median of bytes written to storage per payload byte.
    pub disk_written_per_byte_median: Option<f64>,
    /// Median seconds of each server-side phase.
    pub phases_median: BTreeMap<String, f64>,
    /// Measured (non-warm-up) samples with `ok = false`.
    pub failures: usize,
    /// Whether the memory limit was enforced for every measured sample.
    pub memory_limit_enforced: bool,
    /// Whether the disk limit was enforced for every measured sample.
    #[serde(default)]
    pub disk_limit_enforced: bool,
}

/// Throughput of one variant compared with the baseline in one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// Workload.
    pub workload: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Memory limit in MiB, `None` = unlimited.
    pub memory_limit_mib: Option<u64>,
    /// Disk limit in MB/s, `None` = unlimited.
    pub disk_limit_mbps: Option<u64>,
    /// Parallel clients.
    pub concurrency: u32,
    /// Baseline variant (the first of the run).
    pub baseline: String,
    /// Compared variant.
    pub variant: String,
    /// Throughput of `variant` relative to `baseline`.
    pub comparison: Comparison,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries {
    /// One entry per configuration, ordered by workload, memory limit,
    /// concurrency, size and variant (as listed in the run's configuration).
    pub groups: Vec<GroupSummary>,
    /// Every non-baseline variant against the baseline, per configuration
    /// (the unpaired view: ratio of medians, Mann–Whitney).
    pub comparisons: Vec<ComparisonRow>,
    /// The paired and counted analysis (the primary comparisons).
    pub analysis: Analysis,
}

/// Position of `x` in `list`, or past its end when absent.
fn index_of<T: PartialEq>(list: &[T], x: &T) -> usize {
    list.iter().position(|y| y == x).unwrap_or(list.len())
}

/// Sorts configuration keys the way the run's configuration lists them.
fn sort_keys(results: &ResultFile, keys: &mut [GroupKey]) {
    let c = &results.config;
    let variant_names: Vec<&str> = results.variants.iter().map(|v| v.name.as_str()).collect();
    keys.sort_by_cached_key(|k| {
        (
            index_of(&c.workloads, &k.workload),
            index_of(&c.memory_limits_mib, &k.memory_limit_mib),
            index_of(&c.disk_limits_mbps, &k.disk_limit_mbps),
            k.concurrency,
            k.size_bytes,
            index_of(&variant_names, &k.variant.as_str()),
            k.clone(),
        )
    });
}

/// Summarizes every configuration and compares each non-baseline variant with
/// the first variant of `results.variants`. Deterministic: bootstraps are
/// seeded with `results.seed`.
pub fn summarize(results: &ResultFile) -> Summaries {
    let mut all: BTreeMap<GroupKey, Vec<&Sample>> = BTreeMap::new();
    for s in &results.samples {
        all.entry(s.group_key()).or_default().push(s);
    }
    let mut keys: Vec<GroupKey> = all
        .iter()
        .filter(|(_, samples)| samples.iter().any(|s| !s.warmup))
        .map(|(k, _)| k.clone())
        .collect();
    sort_keys(results, &mut keys);
    let groups: Vec<GroupSummary> = keys
        .iter()
        .map(|k| summarize_group(k, &all[k], results.seed))
        .collect();

    let measured = results.groups();
    let throughputs = |k: &GroupKey| -> Vec<f64> {
        measured
            .get(k)
            .map(|v| v.iter().map(|s| s.throughput_mbps).collect())
            .unwrap_or_default()
    };
    let mut comparisons = Vec::new();
    if let Some(baseline) = results.variants.first() {
        for k in keys.iter().filter(|k| k.variant != baseline.name) {
            let base_key = GroupKey {
                variant: baseline.name.clone(),
                ..k.clone()
            };
            if let Some(comparison) =
                stats::compare(&throughputs(&base_key), &throughputs(k), true, results.seed)
            {
                comparisons.push(ComparisonRow {
                    workload: k.workload.clone(),
                    size_bytes: k.size_bytes,
                    memory_limit_mib: k.memory_limit_mib,
                    disk_limit_mbps: k.disk_limit_mbps,
                    concurrency: k.concurrency,
                    baseline: baseline.name.clone(),
                    variant: k.variant.clone(),
                    comparison,
                });
            }
        }
    }
    Summaries {
        groups,
        comparisons,
        analysis: analysis::analyze(results),
    }
}

/// Summary of one configuration from all its samples (warm-ups included).
fn summarize_group(key: &GroupKey, samples: &[&Sample], seed: u64) -> GroupSummary {
    let measured: Vec<&Sample> = samples
        .iter()
        .copied()
        .filter(|s| !s.warmup && !s.disturbed)
        .collect();
    let ok: Vec<&Sample> = measured.iter().copied().filter(|s| s.ok).collect();
    let stat = |xs: Vec<f64>| stats::summarize(&xs, seed);
    let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in &ok {
        for (name, secs) in &s.phases {
            phases.entry(name.clone()).or_default().push(*secs);
        }
    }
    let per_byte: Vec<f64> = ok
        .iter()
        .filter(|s| s.bytes > 0)
        .filter_map(|s| s.disk_written_bytes.map(|d| d as f64 / s.bytes as f64))
        .collect();
    GroupSummary {
        key: key.clone(),
        throughput: stat(ok.iter().map(|s| s.throughput_mbps).collect())
            .unwrap_or_else(Summary::empty),
        seconds: stat(ok.iter().map(|s| s.seconds).collect()).unwrap_or_else(Summary::empty),
        reply_wait_s: stat(ok.iter().filter_map(|s| s.reply_wait_s).collect()),
        peak_rss_bytes_max: samples.iter().filter_map(|s| s.peak_rss_bytes).max(),
        disk_written_per_byte_median: (!per_byte.is_empty()).then(|| stats::median(&per_byte)),
        phases_median: phases
            .into_iter()
            .map(|(k, v)| (k, stats::median(&v)))
            .collect(),
        failures: measured.iter().filter(|s| !s.ok).count(),
        memory_limit_enforced: !measured.is_empty()
            && measured.iter().all(|s| s.memory_limit_enforced),
        disk_limit_enforced: !measured.is_empty() && measured.iter().all(|s| s.disk_limit_enforced),
    }
}

/// Writes every output of a run into `dir` (created if needed) and returns
/// the paths written: `results.json`, `samples.csv`, `summary.csv`,
/// `comparisons.csv` (unpaired), `paired.csv`, `counted.csv` (when the run
/// counted), `summary.json`, `report.md`, one
/// `throughput-<workload>[-<limit>mib][-disk<limit>mbps].svg` per workload,
/// memory limit and disk limit, one `ratios-<workload>.svg` per workload
/// with comparisons, and `memory.svg`.
///
/// Every other output is computed from `results.json` as written and read
/// back, not from `results`: serde_json's default float parser may return a
/// value one ulp away from the one written, so this is what makes
/// `picoshare-bench report results.json` reproduce the same files exactly.
pub fn write_all(results: &ResultFile, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let results_json = pretty_json(results)?;
    let results: &ResultFile = &serde_json::from_str(&results_json)?;
    let summaries = summarize(results);
    let mut files: Vec<(String, String)> = vec![
        ("results.json".into(), results_json),
        ("samples.csv".into(), csv::samples_csv(results)),
        ("summary.csv".into(), csv::summary_csv(&summaries)),
        ("comparisons.csv".into(), csv::comparisons_csv(&summaries)),
        (
            "paired.csv".into(),
            crate::report::sections::paired_csv(&summaries.analysis),
        ),
        ("summary.json".into(), pretty_json(&summaries)?),
        (
            "report.md".into(),
            markdown::markdown(results, &summaries)
                + &crate::report::small::small_markdown(results)
                + &crate::report::small::entries_markdown(results)
                + &crate::report::stall::stall_markdown(results),
        ),
    ];
    if !results.small.is_empty() {
        files.push(("small.csv".into(), crate::report::small::small_csv(results)));
    }
    if !summaries.analysis.counted.is_empty() {
        files.push((
            "counted.csv".into(),
            crate::report::sections::counted_csv(&summaries.analysis),
        ));
    }
    for (workload, limit, disk) in chart_sets(&summaries) {
        files.push((
            svg::throughput_chart_file(&workload, limit, disk),
            svg::throughput_chart(&summaries, &workload, limit, disk),
        ));
    }
    for workload in crate::report::forest::ratio_chart_workloads(&summaries.analysis) {
        files.push((
            crate::report::forest::ratio_chart_file(&workload),
            crate::report::forest::ratio_chart(&summaries.analysis, &workload),
        ));
    }
    files.push(("memory.svg".into(), svg::memory_chart(&summaries)));
    let mut paths = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Pretty JSON with a final newline.
fn pretty_json<T: Serialize>(value: &T) -> std::io::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// The (workload, memory limit, disk limit) sets that get a throughput
/// chart, in report order.
pub(super) fn chart_sets(summaries: &Summaries) -> Vec<(String, Option<u64>, Option<u64>)> {
    let mut sets: Vec<(String, Option<u64>, Option<u64>)> = Vec::new();
    for g in &summaries.groups {
        let set = (
            g.key.workload.clone(),
            g.key.memory_limit_mib,
            g.key.disk_limit_mbps,
        );
        if !sets.contains(&set) {
            sets.push(set);
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::csv::*;
    use super::format::*;
    use super::markdown::markdown;
    use super::*;
    use crate::results::*;

    fn sample(seq: u64, variant: &str, mbps: f64, warmup: bool, ok: bool) -> Sample {
        Sample {
            seq,
            timestamp: "2026-01-01T00:00:00Z".into(),
            variant: variant.into(),
            workload: "upload".into(),
            size_bytes: 100 << 20,
            memory_limit_mib: Some(256),
            memory_limit_enforced: true,
            iteration: seq as u32,
            warmup,
            concurrency: 1,
            ok,
            error: (!ok).then(|| "connection reset, \"oops\"".into()),
            http_status: Some(200),
            bytes: 100 << 20,
            seconds: (100 << 20) as f64 / mbps / 1e6,
            throughput_mbps: mbps,
            reply_wait_s: Some(0.01),
            peak_rss_bytes: Some(30 << 20),
            disk_written_bytes: Some(2 * (100 << 20)),
            phases: BTreeMap::from([("store".to_owned(), 0.2)]),
            ..Default::default()
        }
    }

    fn file(samples: Vec<Sample>) -> ResultFile {
        let variant = |name: &str| VariantInfo {
            name: name.into(),
            kind: "binary".into(),
            binary: Some("/bin/x".into()),
            args: vec![],
            url: None,
            git_revision: None,
            version: None,
            upload: None,
            ..Default::default()
        };
        ResultFile {
            schema_version: SCHEMA_VERSION,
            tool_version: "0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            command: vec!["picoshare-bench".into(), "run".into()],
            seed: 42,
            config: RunConfig {
                sizes_mib: vec![100],
                memory_limits_mib: vec![Some(256)],
                workloads: vec!["upload".into()],
                iterations: 5,
                warmup: 1,
                concurrency: 1,
                data_dir: "/tmp".into(),
                order: "interleaved".into(),
                ..Default::default()
            },
            environment: Environment::default(),
            variants: vec![variant("b-base"), variant("a-new")],
            samples,
            interrupted: true,
            ..Default::default()
        }
    }

    #[test]
    fn warmups_and_failures_are_excluded_and_counted() {
        let mut s = vec![
            sample(0, "b-base", 1.0, true, true),
            sample(1, "b-base", 100.0, false, false),
        ];
        s.extend(
            [10.0, 12.0, 11.0]
                .iter()
                .enumerate()
                .map(|(i, m)| sample(2 + i as u64, "b-base", *m, false, true)),
        );
        s.extend(
            [20.0, 22.0, 21.0]
                .iter()
                .enumerate()
                .map(|(i, m)| sample(9 + i as u64, "a-new", *m, false, true)),
        );
        let sum = summarize(&file(s));
        // Variants in the run's order, not alphabetical.
        assert_eq!(sum.groups[0].key.variant, "b-base");
        let g = &sum.groups[0];
        assert_eq!(
            (g.throughput.n, g.failures, g.throughput.median),
            (3, 1, 11.0)
        );
        assert_eq!(g.disk_written_per_byte_median, Some(2.0));
        assert_eq!(g.phases_median["store"], 0.2);
        assert!(g.memory_limit_enforced);
        assert_eq!(sum.comparisons.len(), 1);
        assert_eq!(sum.comparisons[0].variant, "a-new");
        assert!((sum.comparisons[0].comparison.ratio - 21.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn all_failed_configuration_is_reported_with_empty_statistics() {
        let s = vec![
            sample(0, "b-base", 5.0, false, false),
            sample(1, "b-base", 5.0, false, false),
        ];
        let f = file(s);
        let sum = summarize(&f);
        assert_eq!(sum.groups.len(), 1);
        assert_eq!((sum.groups[0].throughput.n, sum.groups[0].failures), (0, 2));
        let md = markdown(&f, &sum);
        assert!(md.contains("Interrupted"));
        assert!(md.contains("| 100 MiB | b-base | 0 | — |"));
        assert!(summary_csv(&sum).lines().nth(1).unwrap().contains(",0,2,,"));
    }

    #[test]
    fn csv_quotes_fields() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(
            (thousands(10_000), thousands(999), thousands(1_234_567)),
            ("10 000".into(), "999".into(), "1 234 567".into())
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let csv = samples_csv(&file(vec![sample(0, "b-base", 5.0, false, false)]));
        assert!(csv.lines().next().unwrap().ends_with(",phase_store_s"));
        assert!(csv.contains(",\"connection reset, \"\"oops\"\"\","));
    }
}
