//! Reports computed from a result file: per-configuration summaries,
//! comparisons with the baseline variant, and the files a run leaves behind
//! (`results.json`, `samples.csv`, `summary.csv`, `comparisons.csv`,
//! `summary.json`, `report.md` and the SVG charts).
//!
//! Statistics only use measured samples: warm-ups are excluded, and so are
//! failed samples, which are counted instead. Units: MB/s = 10^6 bytes per
//! second, sizes and memory in MiB = 2^20 bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{self, Analysis};
use crate::results::{disk_label, memory_label, size_label, GroupKey, ResultFile, Sample};
use crate::stats::{self, verdict::Verdict, Comparison, Summary};
use crate::svg;

const MIB: f64 = (1u64 << 20) as f64;

/// Statistics of one configuration (variant × workload × size × memory limit × concurrency).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The configuration.
    pub key: GroupKey,
    /// Throughput in MB/s (10^6 bytes/s) of the successful measured samples;
    /// [`Summary::empty`] when every one failed.
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
        ("samples.csv".into(), samples_csv(results)),
        ("summary.csv".into(), summary_csv(&summaries)),
        ("comparisons.csv".into(), comparisons_csv(&summaries)),
        (
            "paired.csv".into(),
            crate::sections::paired_csv(&summaries.analysis),
        ),
        ("summary.json".into(), pretty_json(&summaries)?),
        (
            "report.md".into(),
            markdown(results, &summaries)
                + &crate::small::report::small_markdown(results)
                + &crate::small::report::entries_markdown(results),
        ),
    ];
    if !results.small.is_empty() {
        files.push(("small.csv".into(), crate::small::report::small_csv(results)));
    }
    if !summaries.analysis.counted.is_empty() {
        files.push((
            "counted.csv".into(),
            crate::sections::counted_csv(&summaries.analysis),
        ));
    }
    for (workload, limit, disk) in chart_sets(&summaries) {
        files.push((
            svg::throughput_chart_file(&workload, limit, disk),
            svg::throughput_chart(&summaries, &workload, limit, disk),
        ));
    }
    for workload in crate::sections::ratio_chart_workloads(&summaries.analysis) {
        files.push((
            crate::sections::ratio_chart_file(&workload),
            crate::sections::ratio_chart(&summaries.analysis, &workload),
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
fn chart_sets(summaries: &Summaries) -> Vec<(String, Option<u64>, Option<u64>)> {
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

// ---------------------------------------------------------------- CSV

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(crate) fn csv_line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    let fields: Vec<String> = fields.into_iter().map(|f| csv_field(&f)).collect();
    out.push_str(&fields.join(","));
    out.push('\n');
}

/// A number for CSV: shortest exact representation, empty when not finite.
pub(crate) fn num(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

pub(crate) fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// `samples.csv`: one row per sample (warm-ups and failures included), every
/// field, plus a `phase_<name>_s` column per phase name seen in any sample.
pub fn samples_csv(results: &ResultFile) -> String {
    let phases: BTreeSet<&String> = results
        .samples
        .iter()
        .flat_map(|s| s.phases.keys())
        .collect();
    let mut out = String::new();
    let header = [
        "seq",
        "timestamp",
        "variant",
        "workload",
        "size_bytes",
        "memory_limit_mib",
        "memory_limit_enforced",
        "iteration",
        "warmup",
        "concurrency",
        "ok",
        "error",
        "http_status",
        "bytes",
        "seconds",
        "throughput_mbps",
        "reply_wait_s",
        "peak_rss_bytes",
        "disk_written_bytes",
        "disk_limit_mbps",
        "disk_limit_enforced",
        "throttled_bytes",
        "cpu_seconds",
        "syscalls_read",
        "syscalls_write",
        "waited_for_idle_s",
        "machine_busy_before",
        "other_cpu_during",
        "steal_during",
        "disturbed",
    ];
    csv_line(
        &mut out,
        header
            .iter()
            .map(|h| h.to_string())
            .chain(phases.iter().map(|p| format!("phase_{p}_s"))),
    );
    for s in &results.samples {
        let fields = vec![
            s.seq.to_string(),
            s.timestamp.clone(),
            s.variant.clone(),
            s.workload.clone(),
            s.size_bytes.to_string(),
            opt(s.memory_limit_mib),
            s.memory_limit_enforced.to_string(),
            s.iteration.to_string(),
            s.warmup.to_string(),
            s.concurrency.to_string(),
            s.ok.to_string(),
            s.error.clone().unwrap_or_default(),
            opt(s.http_status),
            s.bytes.to_string(),
            num(s.seconds),
            num(s.throughput_mbps),
            s.reply_wait_s.map(num).unwrap_or_default(),
            opt(s.peak_rss_bytes),
            opt(s.disk_written_bytes),
            opt(s.disk_limit_mbps),
            s.disk_limit_enforced.to_string(),
            opt(s.throttled_bytes),
            s.cpu_seconds.map(num).unwrap_or_default(),
            opt(s.syscalls_read),
            opt(s.syscalls_write),
            s.waited_for_idle_s.map(num).unwrap_or_default(),
            s.machine_busy_before.map(num).unwrap_or_default(),
            s.other_cpu_during.map(num).unwrap_or_default(),
            s.steal_during.map(num).unwrap_or_default(),
            s.disturbed.to_string(),
        ];
        let phase_fields = phases
            .iter()
            .map(|p| s.phases.get(*p).map(|x| num(*x)).unwrap_or_default());
        csv_line(&mut out, fields.into_iter().chain(phase_fields));
    }
    out
}

/// `summary.csv`: one row per configuration (throughput in MB/s; `cv` and
/// `mde` as fractions; phases as `phase_<name>_median_s`).
pub fn summary_csv(summaries: &Summaries) -> String {
    let phases: BTreeSet<&String> = summaries
        .groups
        .iter()
        .flat_map(|g| g.phases_median.keys())
        .collect();
    let mut out = String::new();
    let header = [
        "variant",
        "workload",
        "size_bytes",
        "memory_limit_mib",
        "disk_limit_mbps",
        "concurrency",
        "memory_limit_enforced",
        "n",
        "failures",
        "throughput_median_mbps",
        "throughput_mean_mbps",
        "throughput_sd_mbps",
        "throughput_cv",
        "throughput_min_mbps",
        "throughput_max_mbps",
        "throughput_ci95_low_mbps",
        "throughput_ci95_high_mbps",
        "throughput_mde",
        "seconds_median_s",
        "seconds_mean_s",
        "reply_wait_median_s",
        "peak_rss_bytes_max",
        "disk_written_per_byte_median",
    ];
    csv_line(
        &mut out,
        header
            .iter()
            .map(|h| h.to_string())
            .chain(phases.iter().map(|p| format!("phase_{p}_median_s"))),
    );
    for g in &summaries.groups {
        let t = &g.throughput;
        let fields = vec![
            g.key.variant.clone(),
            g.key.workload.clone(),
            g.key.size_bytes.to_string(),
            opt(g.key.memory_limit_mib),
            opt(g.key.disk_limit_mbps),
            g.key.concurrency.to_string(),
            g.memory_limit_enforced.to_string(),
            t.n.to_string(),
            g.failures.to_string(),
            num(t.median),
            num(t.mean),
            num(t.sd),
            num(t.cv),
            num(t.min),
            num(t.max),
            num(t.ci95_low),
            num(t.ci95_high),
            num(t.mde),
            num(g.seconds.median),
            num(g.seconds.mean),
            g.reply_wait_s.map(|r| num(r.median)).unwrap_or_default(),
            opt(g.peak_rss_bytes_max),
            g.disk_written_per_byte_median.map(num).unwrap_or_default(),
        ];
        let phase_fields = phases
            .iter()
            .map(|p| g.phases_median.get(*p).map(|x| num(*x)).unwrap_or_default());
        csv_line(&mut out, fields.into_iter().chain(phase_fields));
    }
    out
}

/// `comparisons.csv`: one row per comparison with the baseline.
pub fn comparisons_csv(summaries: &Summaries) -> String {
    let mut out = String::new();
    let header = [
        "workload",
        "size_bytes",
        "memory_limit_mib",
        "disk_limit_mbps",
        "concurrency",
        "baseline",
        "variant",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "p_value",
        "noise",
        "verdict",
    ];
    csv_line(&mut out, header.iter().map(|h| h.to_string()));
    for r in &summaries.comparisons {
        let c = &r.comparison;
        csv_line(
            &mut out,
            [
                r.workload.clone(),
                r.size_bytes.to_string(),
                opt(r.memory_limit_mib),
                opt(r.disk_limit_mbps),
                r.concurrency.to_string(),
                r.baseline.clone(),
                r.variant.clone(),
                num(c.ratio),
                num(c.ratio_ci_low),
                num(c.ratio_ci_high),
                num(c.p_value),
                num(c.noise),
                c.verdict.to_string(),
            ],
        );
    }
    out
}

// ---------------------------------------------------------------- Markdown

/// `x` with `digits` decimals, or `—` when not finite.
pub(crate) fn fixed(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "—".to_owned()
    }
}

/// A fraction as a percentage with one decimal, or `—`.
pub(crate) fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", x * 100.0)
    } else {
        "—".to_owned()
    }
}

/// A p-value: three significant digits, `< 0.0001` below that.
pub(crate) fn p_value(p: f64) -> String {
    match p {
        p if !p.is_finite() => "—".to_owned(),
        p if p < 1e-4 => "< 0.0001".to_owned(),
        p => format!("{p:.4}"),
    }
}

/// A verdict, in bold when a difference was called.
pub(crate) fn verdict(v: Verdict) -> String {
    match v {
        Verdict::NoDetectableDifference => v.to_string(),
        _ => format!("**{v}**"),
    }
}

/// `ratio [low, high]` with three decimals.
pub(crate) fn ratio_with_ci(c: &Comparison) -> String {
    format!(
        "{} [{}, {}]",
        fixed(c.ratio, 3),
        fixed(c.ratio_ci_low, 3),
        fixed(c.ratio_ci_high, 3)
    )
}

/// Escapes text for a Markdown table cell.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub(crate) fn bytes_gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (MIB * 1024.0))
}

/// An integer with a space between groups of three digits: `10 000`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub(crate) fn clients(n: u32) -> String {
    if n == 1 {
        "1 client".to_owned()
    } else {
        format!("{n} parallel clients")
    }
}

/// `report.md`: the human-readable report of a run.
pub fn markdown(results: &ResultFile, summaries: &Summaries) -> String {
    let mut md = String::new();
    let w = &mut md;
    let env = &results.environment;
    let cfg = &results.config;
    let _ = writeln!(w, "# PicoShare benchmark report\n");
    let _ = writeln!(
        w,
        "- Command: `{}`",
        results.command.join(" ").replace('`', "'")
    );
    let _ = writeln!(
        w,
        "- Started {}, finished {} (picoshare-bench {}, result schema {})",
        results.started_at,
        results.finished_at.as_deref().unwrap_or("—"),
        results.tool_version,
        results.schema_version
    );
    if results.interrupted {
        let _ = writeln!(
            w,
            "\n> **Interrupted:** the run was stopped before it finished. Only the samples measured \
             so far are reported; some configurations may have fewer iterations or be missing."
        );
    }
    crate::sections::sensitivity(w, results, &summaries.analysis);

    let _ = writeln!(w, "\n## Machine\n\n| | |\n|---|---|");
    let rotational = match env.rotational {
        Some(true) => "rotational",
        Some(false) => "not rotational",
        None => "rotational: unknown",
    };
    let rows = [
        ("Host", env.hostname.clone()),
        (
            "CPU",
            format!("{} ({} logical CPUs)", env.cpu_model, env.cpus),
        ),
        ("Memory", bytes_gib(env.memory_bytes)),
        ("Kernel", env.kernel.clone()),
        ("Data directory", cfg.data_dir.clone()),
        (
            "Filesystem / device",
            format!("{} on {} ({rotational})", env.filesystem, env.device),
        ),
        ("Free space before the run", bytes_gib(env.free_bytes)),
        (
            "CPU frequency governor",
            env.cpu_governor
                .clone()
                .unwrap_or_else(|| "none exposed".into()),
        ),
        (
            "Load average (1 min) before the run",
            format!("{:.2}", env.load_average),
        ),
        ("Memory limits enforced by", env.memory_limit_method.clone()),
        (
            "Disk limits enforced by",
            if env.disk_limit_method.is_empty() {
                "—".to_owned()
            } else {
                env.disk_limit_method.clone()
            },
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(w, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(w, "\n### Preflight checks (doctor)\n");
    let problems: Vec<_> = env.checks.iter().filter(|c| c.status != "ok").collect();
    if env.checks.is_empty() {
        let _ = writeln!(w, "No checks were recorded.");
    } else if problems.is_empty() {
        let _ = writeln!(w, "All {} checks passed.", env.checks.len());
    } else {
        let _ = writeln!(w, "| status | check | finding |\n|---|---|---|");
        for c in problems {
            let _ = writeln!(
                w,
                "| **{}** | {} | {} |",
                cell(&c.status),
                cell(&c.name),
                cell(&c.detail)
            );
        }
        let _ = writeln!(
            w,
            "\nOther checks passed. Results may be affected by the findings above."
        );
    }

    let _ = writeln!(
        w,
        "\n## Variants\n\nThe first variant is the baseline of comparisons.\n\n\
         | name | kind | uploads | binary / URL | arguments | git revision | version |\n|---|---|---|---|---|---|---|"
    );
    for v in &results.variants {
        let target = v.binary.as_deref().or(v.url.as_deref()).unwrap_or("—");
        let _ = writeln!(
            w,
            "| {} | {} | {} | `{}` | {} | {} | {} |",
            cell(&v.name),
            cell(&v.kind),
            cell(v.upload.as_deref().unwrap_or("multipart")),
            cell(target),
            if v.args.is_empty() {
                "—".to_owned()
            } else {
                format!("`{}`", cell(&v.args.join(" ")))
            },
            cell(v.git_revision.as_deref().unwrap_or("—")),
            cell(v.version.as_deref().unwrap_or("—")),
        );
    }

    crate::sections::method(w, results);

    let many_concurrencies = summaries
        .groups
        .iter()
        .any(|g| g.key.concurrency != cfg.concurrency);
    let charts = chart_sets(summaries);
    let mut workloads: Vec<&str> = Vec::new();
    for (wl, _, _) in &charts {
        if !workloads.contains(&wl.as_str()) {
            workloads.push(wl);
        }
    }
    for wl in workloads {
        let _ = writeln!(w, "\n## Results: {wl}");
        for (_, limit, disk) in charts.iter().filter(|(x, _, _)| x == wl) {
            let in_set: Vec<&GroupSummary> = summaries
                .groups
                .iter()
                .filter(|g| {
                    g.key.workload == wl
                        && g.key.memory_limit_mib == *limit
                        && g.key.disk_limit_mbps == *disk
                })
                .collect();
            let enforced = match limit {
                None => String::new(),
                Some(_) if in_set.iter().all(|g| g.memory_limit_enforced) => {
                    format!(" (enforced with {})", env.memory_limit_method)
                }
                Some(_) => " (**not enforced** for some or all configurations)".to_owned(),
            };
            let disk_text = match disk {
                None => String::new(),
                Some(_) if in_set.iter().all(|g| g.disk_limit_enforced) => {
                    format!(", disk limit {} (enforced)", disk_label(*disk))
                }
                Some(_) => format!(
                    ", disk limit {} (**not enforced** for some or all configurations)",
                    disk_label(*disk)
                ),
            };
            let _ = writeln!(
                w,
                "\n### Memory limit: {}{enforced}{disk_text}\n",
                memory_label(*limit)
            );
            workload_table(w, &in_set, many_concurrencies);
            let file = svg::throughput_chart_file(wl, *limit, *disk);
            let _ = writeln!(
                w,
                "\n![{wl} throughput (MB/s) by file size, memory limit {}, disk limit {}]({file})",
                memory_label(*limit),
                disk_label(*disk)
            );
        }
    }

    crate::sections::paired_comparisons(w, &summaries.analysis);
    if !summaries.comparisons.is_empty() {
        let _ = writeln!(
            w,
            "\n### Unpaired view (secondary)\n\nThe same samples compared as two independent groups: \
             ratio of medians with a 95 % bootstrap CI, two-sided Mann–Whitney U test, and a difference \
             called only when p < 0.05, the CI excludes 1 and the ratio differs from 1 by more than the \
             noise (the larger of the two groups' MDEs). It ignores which block a sample came from, so \
             it carries the noise that pairing removes.\n\n\
             | workload | size | memory limit | disk limit | clients | baseline | variant | ratio of medians [95 % CI] | p-value | noise (MDE %) | verdict |\n\
             |---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &summaries.comparisons {
            let c = &r.comparison;
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.workload),
                size_label(r.size_bytes),
                memory_label(r.memory_limit_mib),
                disk_label(r.disk_limit_mbps),
                r.concurrency,
                cell(&r.baseline),
                cell(&r.variant),
                ratio_with_ci(c),
                p_value(c.p_value),
                percent(c.noise),
                verdict(c.verdict),
            );
        }
    }
    crate::sections::pairing_gains(w, &summaries.analysis);
    crate::sections::server_work(w, &summaries.analysis);
    crate::sections::counted(w, results, &summaries.analysis);

    let phased: Vec<&GroupSummary> = summaries
        .groups
        .iter()
        .filter(|g| !g.phases_median.is_empty())
        .collect();
    if !phased.is_empty() {
        let names: BTreeSet<&String> = phased.iter().flat_map(|g| g.phases_median.keys()).collect();
        let _ = writeln!(
            w,
            "\n## Where the time goes\n\nMedian seconds per measurement: wall clock as seen by the client, \
             and each server-side phase (from the server's /metrics).\n"
        );
        let mut header =
            "| workload | size | memory limit | clients | variant | wall clock s |".to_owned();
        let mut rule = "|---|---|---|---|---|---|".to_owned();
        for n in &names {
            let _ = write!(header, " {} s |", cell(n));
            rule.push_str("---|");
        }
        let _ = writeln!(w, "{header}\n{rule}");
        for g in phased {
            let _ = write!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&g.key.workload),
                size_label(g.key.size_bytes),
                memory_label(g.key.memory_limit_mib),
                g.key.concurrency,
                cell(&g.key.variant),
                fixed(g.seconds.median, 3)
            );
            for n in &names {
                let _ = write!(
                    w,
                    " {} |",
                    g.phases_median
                        .get(*n)
                        .map_or("—".to_owned(), |x| fixed(*x, 3))
                );
            }
            let _ = writeln!(w);
        }
    }

    let _ = writeln!(
        w,
        "\n## Memory\n\nLargest server peak RSS (VmHWM) per configuration, in MiB.\n\n\
         ![Server peak RSS (MiB) per configuration](memory.svg)\n\n\
         ## Files\n\n\
         - `results.json`: every sample and the run's context (re-report or compare it later).\n\
         - `samples.csv`: one row per sample, warm-ups and failures included.\n\
         - `summary.csv`, `summary.json`: the statistics above; `comparisons.csv`: the comparisons."
    );
    md
}

/// The table of one workload and memory limit: rows are size × variant.
fn workload_table(w: &mut String, groups: &[&GroupSummary], show_concurrency: bool) {
    let waits = groups.iter().any(|g| g.reply_wait_s.is_some());
    let _ = write!(w, "| size |{} variant | n | median MB/s | 95 % CI MB/s | mean MB/s | sd MB/s | CV % | MDE % |", if show_concurrency { " clients |" } else { "" });
    let _ = write!(
        w,
        "{} peak RSS MiB | disk bytes / byte | failures |\n|---|",
        if waits { " reply wait s |" } else { "" }
    );
    let columns = 12 + usize::from(show_concurrency) + usize::from(waits);
    let _ = writeln!(w, "{}", "---|".repeat(columns - 1));
    for g in groups {
        let t = &g.throughput;
        let _ = write!(w, "| {} |", size_label(g.key.size_bytes));
        if show_concurrency {
            let _ = write!(w, " {} |", g.key.concurrency);
        }
        let _ = write!(
            w,
            " {} | {} | {} | {} – {} | {} | {} | {} | {} |",
            cell(&g.key.variant),
            t.n,
            fixed(t.median, 1),
            fixed(t.ci95_low, 1),
            fixed(t.ci95_high, 1),
            fixed(t.mean, 1),
            fixed(t.sd, 1),
            percent(t.cv),
            percent(t.mde),
        );
        if waits {
            let _ = write!(
                w,
                " {} |",
                g.reply_wait_s
                    .map_or("—".to_owned(), |r| fixed(r.median, 3))
            );
        }
        let _ = writeln!(
            w,
            " {} | {} | {} |",
            g.peak_rss_bytes_max
                .map_or("—".to_owned(), |b| fixed(b as f64 / MIB, 1)),
            g.disk_written_per_byte_median
                .map_or("—".to_owned(), |x| fixed(x, 2)),
            g.failures
        );
    }
}

#[cfg(test)]
mod tests {
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
