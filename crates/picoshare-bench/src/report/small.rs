//! The small-files and entries tables of a result file: medians per
//! variant and phase, and each variant's paired ratio to the baseline
//! (geometric mean of per-block ratios, 95 % CI, see [`crate::stats::paired`]).
//! Computed from `results.json` alone, like every other output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{EntriesSample, ResultFile, SmallSample};
use crate::stats::median;
use crate::stats::paired::paired_compare;

/// Samples that count: measured, not disturbed, without errors.
fn counted(results: &ResultFile) -> impl Iterator<Item = &SmallSample> {
    results
        .small
        .iter()
        .filter(|s| !s.warmup && !s.disturbed && s.errors == 0 && s.requests > 0)
}

/// The phases of a run in report order: workload, size, connections.
fn phases(results: &ResultFile) -> Vec<(String, u64, u32)> {
    let order = |w: &str| match w {
        "download" => 0,
        "upload" => 1,
        _ => 2,
    };
    let mut out: Vec<(String, u64, u32)> = Vec::new();
    for s in &results.small {
        let k = (s.workload.clone(), s.size_bytes, s.connections);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out.sort_by_key(|(w, size, c)| (order(w), *size, *c));
    out
}

/// A size for people: `4 KiB`, `1 MiB`, `12800 B`.
fn size_label(bytes: u64) -> String {
    if bytes == 0 {
        "—".into()
    } else if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes % 1024 == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// Per block, one value of `variant` in a phase.
fn by_block(
    results: &ResultFile,
    variant: &str,
    phase: &(String, u64, u32),
    value: impl Fn(&SmallSample) -> Option<f64>,
) -> BTreeMap<u32, f64> {
    counted(results)
        .filter(|s| {
            s.variant == variant
                && s.workload == phase.0
                && s.size_bytes == phase.1
                && s.connections == phase.2
        })
        .filter_map(|s| Some((s.block, value(s)?)))
        .collect()
}

fn med(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| median(&v))
}

/// The paired ratio `variant / baseline` of `value` over blocks, as
/// `1.23× [1.10, 1.37]`, or `—` with fewer than two paired blocks.
fn ratio(
    results: &ResultFile,
    baseline: &str,
    variant: &str,
    phase: &(String, u64, u32),
    value: impl Fn(&SmallSample) -> Option<f64> + Copy,
    higher_is_better: bool,
) -> String {
    let a = by_block(results, baseline, phase, value);
    let b = by_block(results, variant, phase, value);
    let (xs, ys): (Vec<f64>, Vec<f64>) =
        a.iter().filter_map(|(k, x)| Some((*x, *b.get(k)?))).unzip();
    match paired_compare(&xs, &ys, higher_is_better, results.seed) {
        Some(c) => format!(
            "{:.2}× [{:.2}, {:.2}]",
            c.ratio, c.ratio_ci_low, c.ratio_ci_high
        ),
        None => "—".into(),
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.digits$}"))
}

/// The Markdown section of the small-files workload (empty without samples).
pub(crate) fn small_markdown(results: &ResultFile) -> String {
    if results.small.is_empty() {
        return String::new();
    }
    let mut md = String::new();
    let variants: Vec<&str> = results.variants.iter().map(|v| v.name.as_str()).collect();
    let baseline = variants.first().copied().unwrap_or("");
    let blocks = counted(results)
        .map(|s| s.block)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let _ = writeln!(md, "## Small files on keep-alive connections\n");
    let _ = writeln!(
        md,
        "Medians over {blocks} measured blocks (warm-ups, disturbed blocks and phases with errors left out). \
         Ratios are each variant's per-block ratio to **{baseline}** (geometric mean, 95 % CI); \
         requests/s higher is better, p99 and disk bytes lower. `trivial` is `GET /robots.txt` (a 404 on \
         both servers): what the client and bare request handling allow at that connection count.\n"
    );
    let _ = writeln!(
        md,
        "| phase | size | conns | variant | requests/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | disk B/req | req/s vs {baseline} | p99 vs {baseline} |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for phase in phases(results) {
        for v in &variants {
            let rows: Vec<&SmallSample> = counted(results)
                .filter(|s| {
                    s.variant == *v
                        && s.workload == phase.0
                        && s.size_bytes == phase.1
                        && s.connections == phase.2
                })
                .collect();
            if rows.is_empty() {
                let failed = results.small.iter().find(|s| {
                    s.variant == *v
                        && s.workload == phase.0
                        && s.size_bytes == phase.1
                        && s.connections == phase.2
                        && s.errors > 0
                });
                if let Some(f) = failed {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {v} | failed: {} |  |  |  |  |  |  |  |",
                        phase.0,
                        size_label(phase.1),
                        phase.2,
                        f.error.as_deref().unwrap_or("errors").replace('|', "/")
                    );
                }
                continue;
            }
            let per_req =
                |f: &dyn Fn(&SmallSample) -> Option<f64>| med(rows.iter().filter_map(|s| f(s)));
            let cpu = per_req(&|s| s.server_cpu_s.map(|c| c * 1e6 / s.requests as f64));
            let disk = per_req(&|s| s.disk_written_bytes.map(|d| d as f64 / s.requests as f64));
            let (r_rate, r_p99) = if *v == baseline {
                (String::new(), String::new())
            } else {
                (
                    ratio(
                        results,
                        baseline,
                        v,
                        &phase,
                        |s| Some(s.requests_per_s),
                        true,
                    ),
                    ratio(results, baseline, v, &phase, |s| s.p99_ms, false),
                )
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {v} | {} | {} | {} | {} | {} | {} | {r_rate} | {r_p99} |",
                phase.0,
                size_label(phase.1),
                phase.2,
                fmt(per_req(&|s| Some(s.requests_per_s)), 0),
                fmt(per_req(&|s| s.p50_ms), 2),
                fmt(per_req(&|s| s.p99_ms), 2),
                fmt(per_req(&|s| s.p999_ms), 2),
                fmt(cpu, 0),
                fmt(disk, 0),
            );
        }
    }
    md.push('\n');
    md
}

/// Every small-files sample as CSV.
pub(crate) fn small_csv(results: &ResultFile) -> String {
    let mut out = String::from("variant,block,warmup,disturbed,workload,size_bytes,connections,requests,errors,seconds,requests_per_s,p50_ms,p99_ms,p999_ms,server_cpu_s,disk_written_bytes\n");
    let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
    for s in &results.small {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            s.variant,
            s.block,
            s.warmup,
            s.disturbed,
            s.workload,
            s.size_bytes,
            s.connections,
            s.requests,
            s.errors,
            s.seconds,
            s.requests_per_s,
            o(s.p50_ms),
            o(s.p99_ms),
            o(s.p999_ms),
            o(s.server_cpu_s),
            s.disk_written_bytes
                .map_or(String::new(), |d| d.to_string())
        );
    }
    out
}

/// The Markdown section of the entries workload (empty without samples).
pub(crate) fn entries_markdown(results: &ResultFile) -> String {
    if results.entries.is_empty() {
        return String::new();
    }
    let mut md = String::new();
    let _ = writeln!(md, "## Many entries\n");
    let _ = writeln!(
        md,
        "Medians over measured blocks. Each unit starts the server on a database of N files (a tenth expired) \
         and one file with a long download history. Page sizes are bytes on the wire with `Accept-Encoding: gzip`; \
         `—`: the server has no such page or API, or does not collect at start-up.\n"
    );
    let _ = writeln!(
        md,
        "| entries | history | variant | start-up s | GC s | /files s | /files bytes | API page s | history page s | history bytes |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    let mut keys: Vec<(u64, u64, String)> = Vec::new();
    for s in &results.entries {
        let k = (s.entries, s.history, s.variant.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let order: Vec<&str> = results.variants.iter().map(|v| v.name.as_str()).collect();
    keys.sort_by_key(|(n, h, v)| (*n, *h, order.iter().position(|o| o == v)));
    for (n, h, v) in keys {
        let rows: Vec<&EntriesSample> = results
            .entries
            .iter()
            .filter(|s| !s.warmup && s.ok && s.entries == n && s.history == h && s.variant == v)
            .collect();
        if rows.is_empty() {
            if let Some(f) = results
                .entries
                .iter()
                .find(|s| s.entries == n && s.variant == v && !s.ok)
            {
                let _ = writeln!(
                    md,
                    "| {n} | {h} | {v} | failed: {} | | | | | | |",
                    f.error.as_deref().unwrap_or("").replace('|', "/")
                );
            }
            continue;
        }
        let m = |f: &dyn Fn(&EntriesSample) -> Option<f64>| med(rows.iter().filter_map(|s| f(s)));
        let _ = writeln!(
            md,
            "| {n} | {h} | {v} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(m(&|s| s.startup_s), 3),
            fmt(m(&|s| s.gc_s), 3),
            fmt(m(&|s| s.list_page_s), 3),
            fmt(m(&|s| s.list_page_bytes.map(|b| b as f64)), 0),
            fmt(m(&|s| s.list_api_s), 3),
            fmt(m(&|s| s.history_page_s), 3),
            fmt(m(&|s| s.history_page_bytes.map(|b| b as f64)), 0),
        );
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::VariantInfo;

    fn sample(variant: &str, block: u32, rate: f64) -> SmallSample {
        SmallSample {
            variant: variant.into(),
            block,
            workload: "download".into(),
            size_bytes: 4096,
            connections: 8,
            requests: (rate * 2.0) as u64,
            seconds: 2.0,
            requests_per_s: rate,
            p50_ms: Some(1.0),
            p99_ms: Some(2.0),
            p999_ms: Some(3.0),
            server_cpu_s: Some(0.5),
            disk_written_bytes: Some(4096),
            ..SmallSample::default()
        }
    }

    #[test]
    fn the_table_pairs_blocks_and_leaves_out_warmups() {
        let mut results = ResultFile {
            variants: vec![
                VariantInfo {
                    name: "go".into(),
                    ..VariantInfo::default()
                },
                VariantInfo {
                    name: "rust".into(),
                    ..VariantInfo::default()
                },
            ],
            ..ResultFile::default()
        };
        for b in 0..4 {
            results.small.push(sample("go", b, 1000.0 + f64::from(b)));
            results
                .small
                .push(sample("rust", b, 2000.0 + 2.0 * f64::from(b)));
        }
        let mut warm = sample("rust", 9, 1.0);
        warm.warmup = true;
        results.small.push(warm);
        let md = small_markdown(&results);
        assert!(
            md.contains("| download | 4 KiB | 8 | rust | 2003 |"),
            "{md}"
        );
        assert!(md.contains("2.00× [2.00, 2.00]"), "{md}");
        assert!(md.contains("| 4 KiB | 8 | go | 1002 |"), "{md}");
        // CPU µs and disk bytes per request.
        assert!(md.contains("| 250 | 2 |"), "{md}");
        assert!(small_csv(&results).lines().count() == 10);
        assert!(entries_markdown(&results).is_empty());
    }
}
