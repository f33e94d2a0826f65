//! Comparison of two result files (the `compare` subcommand): the same
//! configurations measured in two runs, typically before and after a change
//! or on two machines.
//!
//! Variants are paired by name; when each file holds exactly one variant,
//! those two are paired whatever their names. Throughput of file B is
//! compared with file A (ratio > 1: B faster). The samples of two runs are
//! not paired, so the evidence is unpaired (`crate::stats::compare`:
//! Mann–Whitney, the bootstrap interval of the ratio of medians and the
//! larger MDE), judged by the one rule in `crate::stats::verdict`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::report::format::{cell, fixed, p_value, percent, ratio_with_ci, verdict};
use crate::results::{memory_label, size_label, ResultFile};
use crate::stats;

/// A configuration without the variant: workload, size, memory limit, concurrency.
type Config = (String, u64, Option<u64>, u32);

/// Reads one property of a run for the side-by-side header.
type Getter = fn(&ResultFile) -> String;

/// Measured successful throughputs (MB/s) of one file, by variant and configuration.
fn throughputs(file: &ResultFile) -> BTreeMap<(String, Config), Vec<f64>> {
    let mut map: BTreeMap<(String, Config), Vec<f64>> = BTreeMap::new();
    for s in file.measured() {
        let config = (
            s.workload.clone(),
            s.size_bytes,
            s.memory_limit_mib,
            s.concurrency,
        );
        map.entry((s.variant.clone(), config))
            .or_default()
            .push(s.throughput_mbps);
    }
    map
}

/// Variant names of a file: those declared, then any only seen in samples.
fn variant_names(file: &ResultFile) -> Vec<String> {
    let mut names: Vec<String> = file.variants.iter().map(|v| v.name.clone()).collect();
    for s in &file.samples {
        if !names.contains(&s.variant) {
            names.push(s.variant.clone());
        }
    }
    names
}

fn config_label(c: &Config) -> String {
    format!(
        "{} {}, memory limit {}, {} client(s)",
        c.0,
        size_label(c.1),
        memory_label(c.2),
        c.3
    )
}

/// A Markdown report comparing the throughput of every configuration present
/// in both files, for every pair of matching variants; configurations present
/// in only one file, and variants without a partner, are listed.
pub fn compare_files(a: &ResultFile, b: &ResultFile) -> String {
    let (names_a, names_b) = (variant_names(a), variant_names(b));
    let pairs: Vec<(String, String)> = if names_a.len() == 1 && names_b.len() == 1 {
        vec![(names_a[0].clone(), names_b[0].clone())]
    } else {
        names_a
            .iter()
            .filter(|n| names_b.contains(n))
            .map(|n| (n.clone(), n.clone()))
            .collect()
    };
    let (ta, tb) = (throughputs(a), throughputs(b));

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# PicoShare benchmark comparison\n");
    let _ = writeln!(w, "| | A (baseline) | B |\n|---|---|---|");
    let env_rows: [(&str, Getter); 6] = [
        ("started", |f| f.started_at.clone()),
        ("command", |f| {
            format!("`{}`", f.command.join(" ").replace('`', "'"))
        }),
        ("CPU", |f| {
            format!("{} ({} CPUs)", f.environment.cpu_model, f.environment.cpus)
        }),
        ("kernel", |f| f.environment.kernel.clone()),
        ("filesystem / device", |f| {
            format!("{} on {}", f.environment.filesystem, f.environment.device)
        }),
        ("variants", |f| variant_names(f).join(", ")),
    ];
    for (label, get) in env_rows {
        let _ = writeln!(w, "| {label} | {} | {} |", cell(&get(a)), cell(&get(b)));
    }
    let env = (&a.environment, &b.environment);
    if env.0.cpu_model != env.1.cpu_model
        || env.0.filesystem != env.1.filesystem
        || env.0.device != env.1.device
    {
        let _ = writeln!(w, "\n> The two runs used different hardware or storage: differences may come from the machine, not the code.");
    }
    if a.interrupted || b.interrupted {
        let _ = writeln!(
            w,
            "\n> At least one run was interrupted: some configurations may have fewer samples."
        );
    }
    let _ = writeln!(
        w,
        "\nThroughput of B relative to A (ratio of medians, MB/s = 10^6 bytes/s; > 1: B faster). \
         A difference is called only when the two-sided Mann–Whitney p < 0.05, the 95 % bootstrap CI \
         of the ratio excludes 1, and the ratio differs from 1 by more than the noise (larger MDE).\n"
    );

    let mut only_a: BTreeSet<String> = BTreeSet::new();
    let mut only_b: BTreeSet<String> = BTreeSet::new();
    let mut rows = Vec::new();
    for (va, vb) in &pairs {
        let configs_a: BTreeSet<&Config> =
            ta.keys().filter(|(v, _)| v == va).map(|(_, c)| c).collect();
        let configs_b: BTreeSet<&Config> =
            tb.keys().filter(|(v, _)| v == vb).map(|(_, c)| c).collect();
        for c in configs_a.union(&configs_b) {
            match (
                ta.get(&(va.clone(), (*c).clone())),
                tb.get(&(vb.clone(), (*c).clone())),
            ) {
                (Some(xa), Some(xb)) => rows.push((va, vb, *c, xa, xb)),
                (Some(_), None) => {
                    only_a.insert(format!("{va}: {}", config_label(c)));
                }
                _ => {
                    only_b.insert(format!("{vb}: {}", config_label(c)));
                }
            }
        }
    }

    if rows.is_empty() {
        let _ = writeln!(w, "No configuration was measured in both files.");
    } else {
        let _ = writeln!(
            w,
            "| workload | size | memory limit | clients | variant A → B | n A / B | median MB/s A | median MB/s B | ratio [95 % CI] | p-value | noise (MDE %) | verdict |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for (va, vb, c, xa, xb) in rows {
            let variant = if va == vb {
                va.clone()
            } else {
                format!("{va} → {vb}")
            };
            let (median_a, median_b) = (fixed(stats::median(xa), 1), fixed(stats::median(xb), 1));
            let (ratio, p, noise, v) = match stats::compare(xa, xb, true, a.seed ^ b.seed) {
                Some(cmp) => (
                    ratio_with_ci(&cmp),
                    p_value(cmp.p_value),
                    percent(cmp.noise),
                    verdict(cmp.verdict),
                ),
                None => ("—".into(), "—".into(), "—".into(), "not comparable".into()),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} / {} | {median_a} | {median_b} | {ratio} | {p} | {noise} | {v} |",
                cell(&c.0),
                size_label(c.1),
                memory_label(c.2),
                c.3,
                cell(&variant),
                xa.len(),
                xb.len(),
            );
        }
    }

    let unpaired_a: Vec<&String> = names_a
        .iter()
        .filter(|n| !pairs.iter().any(|(x, _)| x == *n))
        .collect();
    let unpaired_b: Vec<&String> = names_b
        .iter()
        .filter(|n| !pairs.iter().any(|(_, y)| y == *n))
        .collect();
    let lists = [
        (
            "Configurations only in A",
            only_a.into_iter().collect::<Vec<_>>(),
        ),
        ("Configurations only in B", only_b.into_iter().collect()),
        (
            "Variants only in A (not compared)",
            unpaired_a.into_iter().cloned().collect(),
        ),
        (
            "Variants only in B (not compared)",
            unpaired_b.into_iter().cloned().collect(),
        ),
    ];
    for (title, items) in lists {
        if !items.is_empty() {
            let _ = writeln!(w, "\n## {title}\n");
            for item in items {
                let _ = writeln!(w, "- {}", cell(&item));
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::*;

    fn file(variants: &[&str], data: &[(&str, u64, &[f64])]) -> ResultFile {
        let mut samples = Vec::new();
        for (variant, size_mib, xs) in data {
            for x in xs.iter() {
                samples.push(Sample {
                    seq: samples.len() as u64,
                    timestamp: "2026-01-01T00:00:00Z".into(),
                    variant: (*variant).into(),
                    workload: "upload".into(),
                    size_bytes: size_mib << 20,
                    memory_limit_mib: None,
                    memory_limit_enforced: false,
                    iteration: 0,
                    warmup: false,
                    concurrency: 1,
                    ok: true,
                    error: None,
                    http_status: Some(200),
                    bytes: size_mib << 20,
                    seconds: 1.0,
                    throughput_mbps: *x,
                    reply_wait_s: None,
                    peak_rss_bytes: None,
                    disk_written_bytes: None,
                    phases: BTreeMap::new(),
                    ..Default::default()
                });
            }
        }
        ResultFile {
            schema_version: SCHEMA_VERSION,
            tool_version: "0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            command: vec![],
            seed: 1,
            config: RunConfig {
                sizes_mib: vec![],
                memory_limits_mib: vec![None],
                workloads: vec!["upload".into()],
                iterations: 5,
                warmup: 0,
                concurrency: 1,
                data_dir: String::new(),
                order: "interleaved".into(),
                ..Default::default()
            },
            environment: Environment::default(),
            variants: variants
                .iter()
                .map(|n| VariantInfo {
                    name: (*n).into(),
                    kind: "binary".into(),
                    binary: None,
                    args: vec![],
                    url: None,
                    git_revision: None,
                    version: None,
                    upload: None,
                    ..Default::default()
                })
                .collect(),
            samples,
            interrupted: false,
            ..Default::default()
        }
    }

    const SLOW: &[f64] = &[100.0, 101.0, 99.0, 100.5, 99.5, 100.2];
    const FAST: &[f64] = &[150.0, 151.0, 149.0, 150.5, 149.5, 150.2];

    #[test]
    fn single_variants_are_paired_whatever_their_names() {
        let a = file(&["old"], &[("old", 100, SLOW), ("old", 1024, SLOW)]);
        let b = file(&["new"], &[("new", 100, FAST), ("new", 5120, FAST)]);
        let md = compare_files(&a, &b);
        assert!(md.contains("| old → new |"), "{md}");
        assert!(md.contains("**faster**"));
        assert!(md.contains("## Configurations only in A\n\n- old: upload 1 GiB"));
        assert!(md.contains("## Configurations only in B\n\n- new: upload 5 GiB"));
    }

    #[test]
    fn variants_are_paired_by_name() {
        let a = file(&["go", "rust"], &[("go", 100, SLOW), ("rust", 100, FAST)]);
        let b = file(
            &["rust", "other"],
            &[("rust", 100, SLOW), ("other", 100, SLOW)],
        );
        let md = compare_files(&a, &b);
        assert!(md.contains("| rust | 6 / 6 |"), "{md}");
        assert!(md.contains("**slower**"));
        assert!(md.contains("## Variants only in A (not compared)\n\n- go"));
        assert!(md.contains("## Variants only in B (not compared)\n\n- other"));
        let same = compare_files(&a, &a);
        assert_eq!(same.matches("no detectable difference |").count(), 2);
    }
}
