//! Hand-written SVG charts: throughput against file size per variant, with
//! 95 % confidence bars, and server peak memory per configuration.
//!
//! Each plotted mark carries its exact value in `data-*` attributes (and a
//! `<title>` tooltip), so the charts can be checked against the summaries.
//! The same variant gets the same colour in every chart of a report.
//!
//! Written here rather than with a plotting crate: the charts are small,
//! and what the bench needs of them, a `data-*` attribute with the exact
//! value on every mark for tests and readers to check against the CSV, and
//! text laid out from an estimate of its width so that no two labels
//! overlap and long legends wrap (tested by reading the SVG back), is
//! not what the plotting crates of the Rust package registry offer.

use std::fmt::Write as _;

use crate::report::chart::{
    colour, empty_note, escape, nice_axis, open, text_width, variants, wrap, Frame,
};
use crate::report::{GroupSummary, Summaries};
use crate::results::{memory_label, size_label};

const MIB: f64 = (1u64 << 20) as f64;

// Throughput chart layout, in pixels.
const WIDTH: f64 = 780.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 70.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// File name of a throughput chart: `throughput-<workload>.svg` when
/// unlimited, with `-<limit>mib` for a memory limit and `-disk<limit>mbps`
/// for a disk limit (characters other than ASCII letters, digits, `-` and
/// `_` become `_`).
pub(crate) fn throughput_chart_file(
    workload: &str,
    memory_limit_mib: Option<u64>,
    disk_limit_mbps: Option<u64>,
) -> String {
    let safe: String = workload
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let memory = memory_limit_mib.map_or(String::new(), |m| format!("-{m}mib"));
    let disk = disk_limit_mbps.map_or(String::new(), |d| format!("-disk{d}mbps"));
    format!("throughput-{safe}{memory}{disk}.svg")
}

/// Median throughput (MB/s) against file size for one workload and memory
/// limit: one line per variant (and per concurrency when several were run),
/// with markers at the medians and vertical bars for their 95 % CIs. Sizes
/// are evenly spaced categories labelled in MiB/GiB; the y axis starts at 0.
pub(crate) fn throughput_chart(
    summaries: &Summaries,
    workload: &str,
    memory_limit_mib: Option<u64>,
    disk_limit_mbps: Option<u64>,
) -> String {
    let groups: Vec<&GroupSummary> = summaries
        .groups
        .iter()
        .filter(|g| {
            g.key.workload == workload
                && g.key.memory_limit_mib == memory_limit_mib
                && g.key.disk_limit_mbps == disk_limit_mbps
        })
        .collect();
    let mut sizes: Vec<u64> = groups.iter().map(|g| g.key.size_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut concurrencies: Vec<u32> = groups.iter().map(|g| g.key.concurrency).collect();
    concurrencies.sort_unstable();
    concurrencies.dedup();

    // One series per (variant, concurrency) with at least one successful sample.
    let mut series: Vec<(String, &str, Vec<&GroupSummary>)> = Vec::new();
    for v in variants(summaries) {
        for &c in &concurrencies {
            let points: Vec<&GroupSummary> = groups
                .iter()
                .copied()
                .filter(|g| {
                    g.key.variant == v && g.key.concurrency == c && g.throughput.median.is_finite()
                })
                .collect();
            if !points.is_empty() {
                let label = if concurrencies.len() > 1 {
                    format!("{v} ({c} clients)")
                } else {
                    v.to_owned()
                };
                series.push((label, colour(summaries, v), points));
            }
        }
    }
    let top_value = series
        .iter()
        .flat_map(|(_, _, p)| {
            p.iter()
                .map(|g| g.throughput.ci95_high.max(g.throughput.median))
        })
        .fold(0.0, f64::max);
    let (y_max, step) = nice_axis(top_value);

    let clients = match concurrencies.as_slice() {
        [1] => String::new(),
        [c] => format!(", {c} parallel clients"),
        _ => String::new(),
    };
    let disk = disk_limit_mbps.map_or(String::new(), |d| format!(", disk limit {d} MB/s"));
    let title = format!(
        "{workload} throughput by file size, memory limit {}{disk}{clients}",
        memory_label(memory_limit_mib)
    );
    // The legend, right of the plot: each label wrapped to the margin, a
    // row 20 px below the last line of the one before; a legend longer
    // than the plot makes the chart taller.
    let legend_x = WIDTH - RIGHT + 16.0;
    let mut legend_y = Vec::with_capacity(series.len());
    let mut next_y = TOP + 10.0;
    let legend: Vec<Vec<String>> = series
        .iter()
        .map(|(label, _, _)| {
            let lines = wrap(label, WIDTH - legend_x - 34.0, 12.0);
            legend_y.push(next_y);
            next_y += 20.0 + 14.0 * (lines.len() - 1) as f64;
            lines
        })
        .collect();
    let height = HEIGHT.max(next_y);
    let mut out = String::new();
    open(
        &mut out,
        WIDTH,
        height,
        &title,
        &format!(" data-y-max=\"{y_max}\""),
    );
    let frame = Frame {
        left: LEFT,
        top: TOP,
        width: PLOT_W,
        height: PLOT_H,
        y_max,
    };
    frame.y_axis(&mut out, step, "median throughput, MB/s (10^6 bytes/s)");
    let slot = PLOT_W / sizes.len().max(1) as f64;
    // Sizes too wide for their slot take two rows, every other one lower.
    let widest = sizes
        .iter()
        .map(|z| text_width(&size_label(*z), 12.0))
        .fold(0.0, f64::max);
    let stagger = widest > slot - 4.0;
    for (i, size) in sizes.iter().enumerate() {
        let lower = if stagger && i % 2 == 1 { 14.0 } else { 0.0 };
        let _ = writeln!(
            out,
            "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
            LEFT + slot * (i as f64 + 0.5),
            TOP + PLOT_H + 18.0 + lower,
            escape(&size_label(*size))
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">file size (MiB = 2^20 bytes; bars: 95 % CI of the median)</text>",
        LEFT + PLOT_W / 2.0,
        HEIGHT - 22.0
    );
    if series.is_empty() {
        empty_note(
            &mut out,
            LEFT + PLOT_W / 2.0,
            TOP + PLOT_H / 2.0,
            "no successful measurements",
        );
    }
    let y = |v: f64| frame.y(v);
    let spread = (slot / 3.0).min(8.0 * series.len() as f64) / series.len().max(1) as f64;
    for (s, (label, colour, points)) in series.iter().enumerate() {
        // Nudge series sideways so their error bars do not hide each other.
        let offset = (s as f64 - (series.len() - 1) as f64 / 2.0) * spread;
        let x = |g: &GroupSummary| {
            let i = sizes
                .iter()
                .position(|z| *z == g.key.size_bytes)
                .unwrap_or(0);
            LEFT + slot * (i as f64 + 0.5) + offset
        };
        let path: Vec<String> = points
            .iter()
            .map(|g| format!("{:.2},{:.2}", x(g), y(g.throughput.median)))
            .collect();
        let _ = writeln!(
            out,
            "<g data-series=\"{}\">\n<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            escape(label),
            path.join(" ")
        );
        for g in points {
            let t = &g.throughput;
            let (cx, lo, hi) = (x(g), y(t.ci95_low), y(t.ci95_high));
            let _ = writeln!(
                out,
                "<line x1=\"{cx:.2}\" y1=\"{lo:.2}\" x2=\"{cx:.2}\" y2=\"{hi:.2}\" stroke=\"{colour}\"/>\n\
                 <line x1=\"{:.2}\" y1=\"{lo:.2}\" x2=\"{:.2}\" y2=\"{lo:.2}\" stroke=\"{colour}\"/>\n\
                 <line x1=\"{:.2}\" y1=\"{hi:.2}\" x2=\"{:.2}\" y2=\"{hi:.2}\" stroke=\"{colour}\"/>\n\
                 <circle cx=\"{cx:.2}\" cy=\"{:.2}\" r=\"4\" fill=\"{colour}\" data-variant=\"{}\" \
                 data-size-bytes=\"{}\" data-concurrency=\"{}\" data-median=\"{}\" data-ci-low=\"{}\" data-ci-high=\"{}\">\
                 <title>{}, {}: median {:.1} MB/s, 95 % CI {:.1} – {:.1} (n = {})</title></circle>",
                cx - 4.0,
                cx + 4.0,
                cx - 4.0,
                cx + 4.0,
                y(t.median),
                escape(&g.key.variant),
                g.key.size_bytes,
                g.key.concurrency,
                t.median,
                t.ci95_low,
                t.ci95_high,
                escape(label),
                escape(&size_label(g.key.size_bytes)),
                t.median,
                t.ci95_low,
                t.ci95_high,
                t.n
            );
        }
        let (lx, ly) = (legend_x, legend_y[s]);
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{:.2}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n\
             <circle cx=\"{:.2}\" cy=\"{ly}\" r=\"4\" fill=\"{colour}\"/>",
            lx + 24.0,
            lx + 12.0,
        );
        for (k, line) in legend[s].iter().enumerate() {
            let _ = writeln!(
                out,
                "<text x=\"{:.2}\" y=\"{:.2}\">{}</text>",
                lx + 30.0,
                ly + 4.0 + 14.0 * k as f64,
                escape(line)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// Bars of the server's peak RSS (MiB) for every configuration that recorded
/// one, grouped by workload × memory limit × concurrency × size, one bar per
/// variant. Each group is labelled with its memory limit, and a dashed line
/// marks the limit when it fits on the axis (limits more than three times
/// the largest peak would flatten the bars, so they are only labelled).
/// Configurations with a disk limit are left out (their peaks are in the
/// report's tables) unless there are no others.
pub(crate) fn memory_chart(summaries: &Summaries) -> String {
    let any_undisked = summaries
        .groups
        .iter()
        .any(|g| g.peak_rss_bytes_max.is_some() && g.key.disk_limit_mbps.is_none());
    let groups: Vec<&GroupSummary> = summaries
        .groups
        .iter()
        .filter(|g| g.peak_rss_bytes_max.is_some())
        .filter(|g| !any_undisked || g.key.disk_limit_mbps.is_none())
        .collect();
    let names: Vec<&str> = variants(summaries)
        .into_iter()
        .filter(|v| groups.iter().any(|g| g.key.variant == *v))
        .collect();
    // Categories in the summaries' order (already grouped by these fields).
    let mut categories: Vec<(&str, Option<u64>, u32, u64)> = Vec::new();
    for g in &groups {
        let c = (
            g.key.workload.as_str(),
            g.key.memory_limit_mib,
            g.key.concurrency,
            g.key.size_bytes,
        );
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    let many_concurrencies = categories.iter().any(|c| c.2 != categories[0].2);
    let peak_mib = |g: &GroupSummary| g.peak_rss_bytes_max.unwrap_or(0) as f64 / MIB;
    let data_max = groups.iter().map(|g| peak_mib(g)).fold(0.0, f64::max);
    let drawn_limit = |l: Option<u64>| l.map(|m| m as f64).filter(|m| *m <= 3.0 * data_max);
    let top_value = categories
        .iter()
        .filter_map(|c| drawn_limit(c.1))
        .fold(data_max, f64::max);
    let (y_max, step) = nice_axis(top_value);

    // Each category's two labels, under its bars.
    let labels: Vec<(String, String)> = categories
        .iter()
        .map(|&(workload, limit, concurrency, size)| {
            let mut second = memory_label(limit);
            if limit.is_some() {
                second = format!("limit {second}");
            }
            if many_concurrencies {
                second.push_str(&format!(", {concurrency} cl."));
            }
            (format!("{workload} {}", size_label(size)), second)
        })
        .collect();
    // Bars wide enough for the value above them, categories for their labels.
    let widest_value = groups
        .iter()
        .map(|g| text_width(&format!("{:.0}", peak_mib(g)), 9.0))
        .fold(0.0, f64::max);
    let bar_w = (widest_value + 3.0).max(18.0).ceil();
    let widest_label = labels
        .iter()
        .map(|(a, b)| text_width(a, 11.0).max(text_width(b, 11.0)))
        .fold(0.0, f64::max);
    let (left, bottom) = (76.0, 64.0);
    let cat_w = (names.len() as f64 * bar_w)
        .max(110.0)
        .max(widest_label + 6.0)
        .ceil()
        + 14.0;
    let legend_item = |v: &str| 16.0 + text_width(v, 12.0) + 24.0;
    let widest_item = names.iter().map(|v| legend_item(v)).fold(0.0, f64::max);
    let width = (left + cat_w * categories.len() as f64 + 24.0)
        .max(520.0)
        .max((left + widest_item + 24.0).ceil());
    // The legend above the plot, in as many rows as the width needs; each
    // row after the first moves the plot down 16 px.
    let mut legend: Vec<(f64, f64, &str)> = Vec::new();
    let (mut lx, mut ly) = (left, 46.0);
    for v in &names {
        if lx > left && lx + legend_item(v) > width - 10.0 {
            (lx, ly) = (left, ly + 16.0);
        }
        legend.push((lx, ly, v));
        lx += legend_item(v);
    }
    let top = 64.0 + (ly - 46.0);
    let height = 420.0 + (ly - 46.0);
    let plot_w = width - left - 24.0;
    let plot_h = height - top - bottom;
    let frame = Frame {
        left,
        top,
        width: plot_w,
        height: plot_h,
        y_max,
    };
    let y = |v: f64| frame.y(v);

    let mut out = String::new();
    open(
        &mut out,
        width,
        height,
        "Server peak RSS per configuration (MiB = 2^20 bytes)",
        &format!(" data-y-max=\"{y_max}\""),
    );
    frame.y_axis(&mut out, step, "peak RSS, MiB");
    for &(lx, ly, v) in &legend {
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.2}\" y=\"{:.2}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n<text x=\"{:.2}\" y=\"{ly:.2}\">{}</text>",
            ly - 10.0,
            colour(summaries, v),
            lx + 16.0,
            escape(v)
        );
    }
    if categories.is_empty() {
        empty_note(
            &mut out,
            left + plot_w / 2.0,
            top + plot_h / 2.0,
            "no peak RSS recorded",
        );
    }
    for (ci, &(workload, limit, concurrency, size)) in categories.iter().enumerate() {
        let x0 = left + 7.0 + cat_w * ci as f64;
        let inner = cat_w - 14.0;
        let bars_x = x0 + (inner - names.len() as f64 * bar_w) / 2.0;
        let (first, second) = &labels[ci];
        let _ = writeln!(
            out,
            "<text x=\"{0:.2}\" y=\"{1:.2}\" text-anchor=\"middle\" font-size=\"11\">{2}</text>\n\
             <text x=\"{0:.2}\" y=\"{3:.2}\" text-anchor=\"middle\" font-size=\"11\">{4}</text>",
            x0 + inner / 2.0,
            top + plot_h + 16.0,
            escape(first),
            top + plot_h + 31.0,
            escape(second)
        );
        if let Some(m) = drawn_limit(limit) {
            let _ = writeln!(
                out,
                "<line x1=\"{x0:.2}\" y1=\"{0:.2}\" x2=\"{1:.2}\" y2=\"{0:.2}\" stroke=\"#c00\" stroke-dasharray=\"5 3\" \
                 data-limit-mib=\"{m}\"><title>memory limit {m} MiB</title></line>",
                y(m),
                x0 + inner
            );
        }
        for g in groups.iter().filter(|g| {
            (
                g.key.workload.as_str(),
                g.key.memory_limit_mib,
                g.key.concurrency,
                g.key.size_bytes,
            ) == (workload, limit, concurrency, size)
        }) {
            let slot = names.iter().position(|v| *v == g.key.variant).unwrap_or(0) as f64;
            let mib = peak_mib(g);
            let (bx, by) = (bars_x + slot * bar_w + 1.0, y(mib));
            let _ = writeln!(
                out,
                "<rect x=\"{bx:.2}\" y=\"{by:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\" data-variant=\"{}\" \
                 data-peak-mib=\"{mib}\"><title>{}, {workload} {}, {}: peak RSS {mib:.1} MiB</title></rect>\n\
                 <text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\" font-size=\"9\">{mib:.0}</text>",
                bar_w - 2.0,
                top + plot_h - by,
                colour(summaries, &g.key.variant),
                escape(&g.key.variant),
                escape(&g.key.variant),
                escape(&size_label(size)),
                escape(&memory_label(limit)),
                bx + (bar_w - 2.0) / 2.0,
                by - 3.0,
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::GroupKey;
    use crate::stats;

    fn group(
        variant: &str,
        size_mib: u64,
        limit: Option<u64>,
        xs: &[f64],
        rss_mib: u64,
    ) -> GroupSummary {
        GroupSummary {
            key: GroupKey {
                variant: variant.into(),
                workload: "upload".into(),
                size_bytes: size_mib << 20,
                memory_limit_mib: limit,
                disk_limit_mbps: None,
                concurrency: 1,
            },
            throughput: stats::summarize(xs, 1).unwrap(),
            seconds: stats::summarize(xs, 2).unwrap(),
            reply_wait_s: None,
            peak_rss_bytes_max: Some(rss_mib << 20),
            disk_written_per_byte_median: None,
            phases_median: BTreeMap::new(),
            failures: 0,
            memory_limit_enforced: limit.is_some(),
            disk_limit_enforced: false,
        }
    }

    fn sample_summaries() -> Summaries {
        Summaries {
            groups: vec![
                group(
                    "go <orig>",
                    100,
                    Some(256),
                    &[150.0, 160.0, 140.0, 155.0, 151.0],
                    30,
                ),
                group(
                    "rust & co",
                    100,
                    Some(256),
                    &[480.0, 470.0, 495.0, 488.0, 476.0],
                    20,
                ),
                group(
                    "go <orig>",
                    1024,
                    Some(256),
                    &[130.0, 120.0, 135.0, 128.0, 126.0],
                    41,
                ),
                group(
                    "rust & co",
                    1024,
                    Some(256),
                    &[460.0, 450.0, 470.0, 455.0, 466.0],
                    22,
                ),
                group("rust & co", 100, None, &[500.0, 505.0, 498.0], 4000),
            ],
            comparisons: vec![],
            analysis: Default::default(),
        }
    }

    /// Minimal XML check: one root, balanced and properly nested tags, even
    /// quotes inside tags, and only the five predefined entities.
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = xml;
        let mut roots = 0;
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = start + rest[start..].find('>').expect("unclosed tag");
            let tag = &rest[start + 1..end];
            assert_eq!(tag.matches('"').count() % 2, 0, "odd quotes in <{tag}>");
            check_text(&tag.replace('<', "?"));
            if tag.starts_with('?') {
            } else if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            } else {
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(tag.split_whitespace().next().unwrap());
                }
            }
            rest = &rest[end + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert_eq!(roots, 1);
    }

    fn check_text(text: &str) {
        assert!(
            !text.contains('>') && !text.contains('<'),
            "stray bracket in {text:?}"
        );
        for (i, _) in text.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| text[i..].starts_with(e));
            assert!(ok, "bad entity in {text:?}");
        }
    }

    /// Values of `name="..."` attributes, in order.
    fn attr_values<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        let pat = format!(" {name}=\"");
        svg.match_indices(&pat)
            .map(|(i, _)| {
                let from = i + pat.len();
                &svg[from..from + svg[from..].find('"').unwrap()]
            })
            .collect()
    }

    #[test]
    fn throughput_chart_plots_the_medians() {
        let s = sample_summaries();
        let svg = throughput_chart(&s, "upload", Some(256), None);
        assert_well_formed(&svg);
        assert!(svg.contains("go &lt;orig&gt;") && svg.contains("rust &amp; co"));
        assert!(svg.contains(">100 MiB<") && svg.contains(">1 GiB<") && svg.contains("MB/s"));
        let y_max: f64 = attr_values(&svg, "data-y-max")[0].parse().unwrap();
        assert_eq!(y_max, 500.0);
        let medians: Vec<f64> = attr_values(&svg, "data-median")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        let expected: Vec<f64> = s.groups[..4].iter().map(|g| g.throughput.median).collect();
        let mut sorted_expected = expected.clone();
        sorted_expected.sort_by(f64::total_cmp);
        let mut sorted_medians = medians.clone();
        sorted_medians.sort_by(f64::total_cmp);
        assert_eq!(
            sorted_medians, sorted_expected,
            "one marker per configuration with its median"
        );
        // Marker heights follow the y scale.
        let circles: Vec<&str> = svg
            .split("<circle")
            .skip(1)
            .filter(|c| c.contains("data-median"))
            .collect();
        for c in circles {
            let cy: f64 = attr_values(c, "cy")[0].parse().unwrap();
            let m: f64 = attr_values(c, "data-median")[0].parse().unwrap();
            assert!((cy - (TOP + PLOT_H * (1.0 - m / y_max))).abs() < 0.01);
        }
        // The unlimited chart only has the one configuration.
        let unlimited = throughput_chart(&s, "upload", None, None);
        assert_well_formed(&unlimited);
        assert_eq!(attr_values(&unlimited, "data-median"), ["500"]);
        assert_well_formed(&throughput_chart(&s, "download", None, None));
    }

    #[test]
    fn memory_chart_plots_the_peaks_and_limits() {
        let s = sample_summaries();
        let svg = memory_chart(&s);
        assert_well_formed(&svg);
        let peaks: Vec<f64> = attr_values(&svg, "data-peak-mib")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(peaks, [30.0, 20.0, 41.0, 22.0, 4000.0]);
        assert!(attr_values(&svg, "data-limit-mib")
            .iter()
            .all(|l| *l == "256"));
        assert!(svg.contains("limit 256 MiB") && svg.contains("unlimited"));
        let empty = Summaries {
            groups: vec![],
            comparisons: vec![],
            analysis: Default::default(),
        };
        assert_well_formed(&memory_chart(&empty));
    }

    #[test]
    fn axis_and_file_names() {
        assert_eq!(nice_axis(495.0), (500.0, 100.0));
        assert_eq!(nice_axis(41.0), (50.0, 10.0));
        assert_eq!(nice_axis(12.0), (12.5, 2.5));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(
            throughput_chart_file("upload", Some(512), None),
            "throughput-upload-512mib.svg"
        );
        assert_eq!(
            throughput_chart_file("range/x", None, Some(50)),
            "throughput-range_x-disk50mbps.svg"
        );
    }

    /// A text's box, read back from the SVG: `(left, top, right, bottom)`,
    /// from its anchor, font size and characters (0.6 em each, as wide as
    /// the digits and most letters of a sans-serif; ascent 0.8 em, descent
    /// 0.25 em). Rotated texts (the y axis's title) are left out.
    fn text_boxes(svg: &str) -> Vec<(String, (f64, f64, f64, f64))> {
        svg.split("<text ")
            .skip(1)
            .filter(|t| !t.split('>').next().unwrap().contains("transform="))
            .map(|t| {
                let head = t.split('>').next().unwrap();
                let attr = |name: &str| {
                    attr_values(&format!(" {head}"), name)
                        .first()
                        .map(|v| v.to_string())
                };
                let text = t.split('>').nth(1).unwrap().split('<').next().unwrap();
                let text = text
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&");
                let x: f64 = attr("x").unwrap().parse().unwrap();
                let y: f64 = attr("y").unwrap().parse().unwrap();
                let size: f64 = attr("font-size").map_or(12.0, |v| v.parse().unwrap());
                let w = text.chars().count() as f64 * 0.6 * size;
                let left = match attr("text-anchor").as_deref() {
                    Some("middle") => x - w / 2.0,
                    Some("end") => x - w,
                    _ => x,
                };
                (text, (left, y - 0.8 * size, left + w, y + 0.25 * size))
            })
            .collect()
    }

    /// No two texts of a chart overlap, and every one is inside it.
    fn assert_texts_apart(svg: &str) {
        let width: f64 = attr_values(svg, "width")[0].parse().unwrap();
        let height: f64 = attr_values(svg, "height")[0].parse().unwrap();
        let boxes = text_boxes(svg);
        assert!(boxes.len() > 3, "{svg}");
        for (t, (l, top, r, b)) in &boxes {
            assert!(
                *l >= 0.0 && *top >= 0.0 && *r <= width && *b <= height,
                "{t:?} at {l:.0}..{r:.0} × {top:.0}..{b:.0} leaves the {width} × {height} chart"
            );
        }
        for (i, (t1, a)) in boxes.iter().enumerate() {
            for (t2, b) in &boxes[i + 1..] {
                let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
                assert!(apart, "{t1:?} {a:?} and {t2:?} {b:?} overlap");
            }
        }
    }

    /// Many sizes, many variants with long names at several concurrencies,
    /// neighbouring bars of four-digit peaks: the charts' texts stay apart
    /// and inside the charts (the legends wrap or grow the chart).
    #[test]
    fn chart_texts_never_overlap() {
        let sample = sample_summaries();
        assert_texts_apart(&throughput_chart(&sample, "upload", Some(256), None));
        assert_texts_apart(&memory_chart(&sample));

        let names = [
            "base",
            "a-rather-long-variant-name-with-settings",
            "tus-in-16-mib-patches",
            "journal-mode-delete-and-a-small-cache",
            "x",
            "git-0123456789abcdef",
            "reader-cache-256k",
        ];
        let sizes = [1u64, 4, 16, 64, 100, 256, 500, 1024, 2048, 5120];
        let mut groups = Vec::new();
        for (k, name) in names.iter().enumerate() {
            for c in [1, 8, 64] {
                for (i, size) in sizes.iter().enumerate() {
                    let base = 100.0 + (k * 7 + i) as f64;
                    let mut g = group(
                        name,
                        *size,
                        None,
                        &[base, base + 1.0, base + 2.0],
                        1000 + k as u64,
                    );
                    g.key.concurrency = c;
                    groups.push(g);
                }
            }
        }
        let many = Summaries {
            groups,
            comparisons: vec![],
            analysis: Default::default(),
        };
        assert_texts_apart(&throughput_chart(&many, "upload", None, None));
        assert_texts_apart(&memory_chart(&many));

        // The longest title: a memory limit, a disk limit and one
        // concurrency above 1; limits in four digits under the bars.
        let mut limited = group("base", 100, Some(4096), &[90.0, 91.0, 92.0], 3000);
        limited.key.disk_limit_mbps = Some(150);
        limited.key.concurrency = 64;
        let mut other = limited.clone();
        other.key.variant = "journal-mode-delete-and-a-small-cache".into();
        other.key.concurrency = 8;
        let limited = Summaries {
            groups: vec![limited, other],
            comparisons: vec![],
            analysis: Default::default(),
        };
        assert_texts_apart(&memory_chart(&limited));
        let mut one_concurrency = limited;
        for g in &mut one_concurrency.groups {
            g.key.concurrency = 8;
        }
        let chart = throughput_chart(&one_concurrency, "upload", Some(4096), Some(150));
        // Too long for one line: the title takes two.
        assert!(
            chart.contains("y=\"42\" text-anchor=\"middle\" font-size=\"15\""),
            "{chart}"
        );
        assert!(chart.contains("parallel clients"), "{chart}");
        assert_texts_apart(&chart);
    }
}
