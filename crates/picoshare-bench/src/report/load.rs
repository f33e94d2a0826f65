//! `load.md`: the load run's report, from its `load.json`
//! ([`crate::results::LoadResult`]).

use std::fmt::Write as _;

use crate::results::LoadResult;

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The Markdown summary (`load.md`).
pub(crate) fn markdown(r: &LoadResult) -> String {
    let mut md = String::new();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let _ = writeln!(md, "# Load test\n");
    let _ = writeln!(md, "Command: `{}`  ", r.command.join(" "));
    let _ = writeln!(
        md,
        "Started {}; {} uploaders, {} downloaders, {:.0} s{}{}; seed {}.  ",
        r.started_at,
        r.uploaders,
        r.downloaders,
        r.duration_s,
        r.max_uploads
            .map(|m| format!(", at most {m} uploads"))
            .unwrap_or_default(),
        if r.preload > 0 {
            format!(", {} entries preloaded", r.preload)
        } else {
            String::new()
        },
        r.seed
    );
    let _ = writeln!(
        md,
        "Machine: {} ({} CPUs, {:.1} GiB RAM), {} on {}, load average {:.2} before the run.\n",
        r.environment.cpu_model,
        r.environment.cpus,
        r.environment.memory_bytes as f64 / f64::from(1 << 30),
        r.environment.filesystem,
        r.environment.device,
        r.environment.load_average
    );
    let mix: Vec<String> = r
        .mix
        .iter()
        .map(|c| {
            let sizes = if c.min == c.max {
                size_text(c.min)
            } else {
                format!("{}–{}", size_text(c.min), size_text(c.max))
            };
            format!("{} {sizes} (weight {})", c.name, c.weight)
        })
        .collect();
    let _ = writeln!(md, "Size mix: {}.\n", mix.join(", "));
    let _ = writeln!(
        md,
        "| | requests | errors | MiB | MiB/s |\n|---|---:|---:|---:|---:|"
    );
    for (name, t) in [("uploads", &r.uploads), ("downloads", &r.downloads)] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {:.0} | {:.1} |",
            t.ok,
            t.errors,
            mib(t.bytes),
            if r.wall_s > 0.0 {
                mib(t.bytes) / r.wall_s
            } else {
                0.0
            }
        );
    }
    let _ = writeln!(
        md,
        "\nErrors: **{}**. Downloaded bytes verified against the uploads: {:.0} MiB \
         of {:.0} MiB. Server peak RSS (VmHWM): **{}**. Wall time {:.1} s{}{}.\n",
        r.error_count,
        mib(r.verified_bytes),
        mib(r.downloads.bytes),
        r.peak_rss_bytes
            .map(|b| format!("{:.1} MiB", mib(b)))
            .unwrap_or_else(|| "unknown".into()),
        r.wall_s,
        if r.completed { "" } else { ", interrupted" },
        if r.server_alive_at_end {
            ""
        } else {
            ", the server was no longer running at the end"
        }
    );
    if !r.latency.is_empty() {
        let _ = writeln!(
            md,
            "| latency (whole request) | count | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"
        );
        for l in &r.latency {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                l.label, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
    }
    if !r.errors.is_empty() {
        let _ = writeln!(md, "\nFirst errors:\n");
        for e in &r.errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    md
}
