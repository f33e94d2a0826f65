//! The CSV files of a run: `samples.csv`, `summary.csv`, `comparisons.csv`
//! (and the field helpers the paired and counted CSV files of
//! [`super::sections`] and `small.csv` use). One line per sample or row,
//! with the units in the column names.

use std::collections::BTreeSet;

use crate::results::ResultFile;

use super::Summaries;

/// Quotes a CSV field when it holds a comma, quote or line break (RFC 4180).
pub(crate) fn csv_field(s: &str) -> String {
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

/// The columns that name what a comparison is of, first in
/// `comparisons.csv` and `paired.csv` (the latter without `concurrency`).
const COMPARED_COLUMNS: [&str; 4] = [
    "workload",
    "size_bytes",
    "memory_limit_mib",
    "disk_limit_mbps",
];

/// The columns of a ratio and its confidence interval.
const RATIO_COLUMNS: [&str; 3] = ["ratio", "ratio_ci_low", "ratio_ci_high"];

/// A comparison CSV's header: [`COMPARED_COLUMNS`], then `who` (the
/// concurrency and the two variants' columns), the ratio's, then `rest`.
pub(crate) fn comparison_header(out: &mut String, who: &[&str], rest: &[&str]) {
    csv_line(
        out,
        COMPARED_COLUMNS
            .iter()
            .chain(who)
            .chain(&RATIO_COLUMNS)
            .chain(rest)
            .map(|h| h.to_string()),
    );
}

/// The fields of [`COMPARED_COLUMNS`]: workload, size in bytes, memory limit
/// and disk limit (empty when none).
pub(crate) fn compared_fields(
    workload: &str,
    size_bytes: u64,
    memory_limit_mib: Option<u64>,
    disk_limit_mbps: Option<u64>,
) -> [String; 4] {
    [
        workload.to_owned(),
        size_bytes.to_string(),
        opt(memory_limit_mib),
        opt(disk_limit_mbps),
    ]
}

/// A comparison CSV's line, in the order of [`comparison_header`]: the
/// [`compared_fields`], `who`, the ratio and its interval (`[ratio, low,
/// high]`), then `rest`.
pub(crate) fn comparison_line(
    out: &mut String,
    compared: [String; 4],
    who: impl IntoIterator<Item = String>,
    ratio: [f64; 3],
    rest: impl IntoIterator<Item = String>,
) {
    csv_line(
        out,
        compared
            .into_iter()
            .chain(who)
            .chain(ratio.map(num))
            .chain(rest),
    );
}

/// `samples.csv`: one row per sample (warm-ups and failures included), every
/// field, plus a `phase_<name>_s` column per phase name seen in any sample.
pub(crate) fn samples_csv(results: &ResultFile) -> String {
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
pub(crate) fn summary_csv(summaries: &Summaries) -> String {
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
pub(crate) fn comparisons_csv(summaries: &Summaries) -> String {
    let mut out = String::new();
    comparison_header(
        &mut out,
        &["concurrency", "baseline", "variant"],
        &["p_value", "noise", "verdict"],
    );
    for r in &summaries.comparisons {
        let c = &r.comparison;
        let compared = compared_fields(
            &r.workload,
            r.size_bytes,
            r.memory_limit_mib,
            r.disk_limit_mbps,
        );
        let who = [
            r.concurrency.to_string(),
            r.baseline.clone(),
            r.variant.clone(),
        ];
        let rest = [num(c.p_value), num(c.noise), c.verdict.to_string()];
        let ratio = [c.ratio, c.ratio_ci_low, c.ratio_ci_high];
        comparison_line(&mut out, compared, who, ratio, rest);
    }
    out
}
