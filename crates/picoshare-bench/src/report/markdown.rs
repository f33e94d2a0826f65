//! `report.md`: the human-readable report of a run, from its summaries and
//! its paired and counted analysis ([`super::sections`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::results::{disk_label, memory_label, size_label, ResultFile};

use super::format::{bytes_gib, cell, fixed, p_value, percent, ratio_with_ci, verdict};
use super::{chart_sets, svg, GroupSummary, Summaries, MIB};

/// `report.md`: the human-readable report of a run.
pub(crate) fn markdown(results: &ResultFile, summaries: &Summaries) -> String {
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
    crate::report::sections::sensitivity(w, results, &summaries.analysis);

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

    crate::report::sections::method(w, results);

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

    crate::report::sections::paired_comparisons(w, &summaries.analysis);
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
    crate::report::sections::pairing_gains(w, &summaries.analysis);
    crate::report::sections::server_work(w, &summaries.analysis);
    crate::report::sections::counted(w, results, &summaries.analysis);

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
