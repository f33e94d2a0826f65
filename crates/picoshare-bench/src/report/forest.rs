//! The ratio ("forest") charts, `ratios-<workload>.svg`: each paired
//! comparison with the baseline as its ratio and 95 % interval on a log
//! axis, with tick labels chosen so that they never overlap at any range.

use std::fmt::Write as _;

use crate::analysis::{Analysis, PairedRow};
use crate::report::chart::escape;
use crate::report::sections::ratio_ci;
use crate::results::{disk_label, memory_label, size_label};
use crate::stats::verdict::Verdict;

/// Workloads with paired comparisons, in order.
pub(crate) fn ratio_chart_workloads(a: &Analysis) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &a.paired {
        if !out.contains(&r.workload) {
            out.push(r.workload.clone());
        }
    }
    out
}

/// `ratios-<workload>.svg`.
pub(crate) fn ratio_chart_file(workload: &str) -> String {
    let safe: String = workload
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ratios-{safe}.svg")
}

/// "Nice" ratios for the forest chart's axis, most telling first: 1 (no
/// difference), then the decades, the doublings and halvings, and finer steps
/// last, so that a wide range keeps the coarse ticks and drops the fine ones.
const RATIO_TICKS: [f64; 25] = [
    1.0, 10.0, 0.1, 100.0, 0.01, 2.0, 0.5, 5.0, 0.2, 50.0, 0.02, 20.0, 0.05, 3.0, 0.33, 1.5, 0.67,
    4.0, 0.25, 1.25, 0.8, 1.1, 0.9, 1.05, 0.95,
];

/// Width in pixels of a tick label at 12 px sans-serif, on the generous side
/// (digits at 0.66 em, the point and others at 0.34 em).
fn tick_label_width(label: &str) -> f64 {
    label
        .chars()
        .map(|c| if c.is_ascii_digit() { 8.0 } else { 4.0 })
        .sum()
}

/// The ticks of the forest chart's log axis from `ln lo` to `ln hi`, with
/// their horizontal pixel from `xpos`, left to right: every ratio of
/// [`RATIO_TICKS`] within the range whose label keeps at least 6 px from the
/// labels already taken, in that list's order (so 1 is always drawn).
fn ratio_ticks(llo: f64, lhi: f64, xpos: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    let mut taken: Vec<(f64, f64)> = Vec::new();
    for t in RATIO_TICKS
        .iter()
        .filter(|t| t.ln() >= llo && t.ln() <= lhi)
    {
        let x = xpos(*t);
        let half = tick_label_width(&t.to_string()) / 2.0;
        let clear = taken
            .iter()
            .all(|(u, ux)| (x - ux).abs() >= half + tick_label_width(&u.to_string()) / 2.0 + 6.0);
        if clear {
            taken.push((*t, x));
        }
    }
    taken.sort_by(|a, b| a.1.total_cmp(&b.1));
    taken
}

/// A forest chart of one workload's paired comparisons: one row per
/// comparison, a dot at the ratio and a bar for its 95 % CI on a log axis,
/// a line at 1 (no difference), called differences filled. Each mark
/// carries its values in `data-*` attributes.
pub(crate) fn ratio_chart(a: &Analysis, workload: &str) -> String {
    let rows: Vec<&PairedRow> = a.paired.iter().filter(|r| r.workload == workload).collect();
    let (row_h, top, left, right) = (22.0, 56.0, 330.0, 40.0);
    let plot_w = 420.0;
    let width = left + plot_w + right;
    let height = top + row_h * rows.len().max(1) as f64 + 50.0;
    let (mut lo, mut hi) = (0.9f64, 1.1f64);
    for r in &rows {
        let c = &r.comparison;
        for x in [c.ratio_ci_low, c.ratio_ci_high, c.ratio] {
            if x.is_finite() && x > 0.0 {
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
    }
    let (llo, lhi) = ((lo * 0.95).ln(), (hi * 1.05).ln());
    let xpos = |r: f64| left + (r.max(1e-9).ln() - llo) / (lhi - llo) * plot_w;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{} throughput relative to the baseline (paired, 95 % CI, log scale)</text>",
        width / 2.0,
        escape(workload)
    );
    let bottom = top + row_h * rows.len().max(1) as f64;
    for (t, x) in ratio_ticks(llo, lhi, xpos) {
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"{}\" stroke-width=\"1\"{}/>\n\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" data-tick=\"{t}\">{t}</text>",
            if t == 1.0 { "#333" } else { "#ddd" },
            if t == 1.0 { "" } else { " stroke-dasharray=\"3,3\"" },
            bottom + 16.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">ratio variant / baseline (&gt; 1: variant faster)</text>",
        left + plot_w / 2.0,
        bottom + 36.0
    );
    for (i, r) in rows.iter().enumerate() {
        let c = &r.comparison;
        let y = top + row_h * (i as f64 + 0.5);
        let label = format!(
            "{} vs {} · {} · {} · {}",
            r.variant,
            r.baseline,
            size_label(r.config.size_mib << 20),
            memory_label(r.config.memory_limit_mib),
            disk_label(r.config.disk_limit_mbps)
        );
        let called = c.verdict.called();
        let colour = match c.verdict {
            Verdict::Faster => "#009E73",
            Verdict::Slower => "#D55E00",
            Verdict::NoDetectableDifference => "#0072B2",
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n\
             <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n\
             <circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" \
             data-ratio=\"{}\" data-ci-low=\"{}\" data-ci-high=\"{}\" data-verdict=\"{}\"><title>{}: {} ({})</title></circle>",
            left - 8.0,
            y + 4.0,
            escape(&label),
            xpos(c.ratio_ci_low),
            xpos(c.ratio_ci_high),
            xpos(c.ratio),
            if called { colour } else { "white" },
            c.ratio,
            c.ratio_ci_low,
            c.ratio_ci_high,
            c.verdict,
            escape(&label),
            ratio_ci(c),
            c.verdict
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ConfigKey;
    use crate::stats::paired::PairedComparison;
    use crate::stats::paired::{PairedTest, StopReason};

    fn row(low: f64, ratio: f64, high: f64) -> PairedRow {
        PairedRow {
            workload: "upload".into(),
            config: ConfigKey {
                size_mib: 100,
                memory_limit_mib: None,
                disk_limit_mbps: None,
            },
            baseline: "go".into(),
            variant: "rust".into(),
            comparison: PairedComparison {
                blocks: 10,
                ratio,
                ratio_ci_low: low,
                ratio_ci_high: high,
                ci_bootstrap: false,
                p_value: 0.01,
                test: PairedTest::TTest,
                sd_log: 0.1,
                mde: 0.05,
                verdict: Verdict::NoDetectableDifference,
            },
            unpaired: None,
            noise_cut: 0.0,
            stop: StopReason::Fixed,
        }
    }

    /// `(x, label)` of every tick label, read back from the SVG.
    fn tick_labels(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text ")
            .skip(1)
            .filter(|t| t.contains("data-tick=\""))
            .map(|t| {
                let x = t["x=\"".len()..].split('"').next().unwrap();
                let label = t.split('>').nth(1).unwrap().split('<').next().unwrap();
                (x.parse().unwrap(), label.to_owned())
            })
            .collect()
    }

    /// Width of a label in a wide sans-serif at 12 px (digits 0.64 em, the point 0.32 em).
    fn width(label: &str) -> f64 {
        label
            .chars()
            .map(|c| if c.is_ascii_digit() { 7.7 } else { 3.9 })
            .sum()
    }

    #[test]
    fn forest_chart_tick_labels_never_overlap() {
        let ends = [0.01, 0.05, 0.2, 0.5, 0.8, 0.9, 0.97, 1.0];
        let mut wide_checked = false;
        for lo in ends {
            for hi in [1.0, 1.03, 1.1, 1.3, 2.0, 3.5, 6.0, 12.0, 40.0, 150.0] {
                let a = Analysis {
                    paired: vec![row(lo, (lo * hi).sqrt(), hi), row(0.98, 1.0, 1.02)],
                    ..Default::default()
                };
                let svg = ratio_chart(&a, "upload");
                let ticks = tick_labels(&svg);
                assert!(
                    ticks.iter().any(|(_, l)| l == "1"),
                    "no tick at 1 for {lo}..{hi}"
                );
                assert!(ticks.len() >= 3, "too few ticks for {lo}..{hi}: {ticks:?}");
                for pair in ticks.windows(2) {
                    let ((x1, l1), (x2, l2)) = (&pair[0], &pair[1]);
                    let gap = (x2 - x1) - (width(l1) + width(l2)) / 2.0;
                    assert!(
                        gap >= 3.0,
                        "labels {l1} at {x1} and {l2} at {x2} overlap for {lo}..{hi}"
                    );
                }
                wide_checked |= lo <= 0.8 && hi >= 6.0;
            }
        }
        assert!(wide_checked);
    }

    #[test]
    fn forest_chart_keeps_the_fine_ticks_of_a_narrow_range() {
        let a = Analysis {
            paired: vec![row(0.97, 1.0, 1.04)],
            ..Default::default()
        };
        let labels: Vec<String> = tick_labels(&ratio_chart(&a, "upload"))
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        assert_eq!(labels, ["0.9", "0.95", "1", "1.05", "1.1"]);
    }
}
