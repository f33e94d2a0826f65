//! How numbers and words are written in every report: decimals, percentages,
//! p-values, verdicts, ratios with their interval, table cells, sizes.

use crate::stats::{verdict::Verdict, Comparison};

const MIB: f64 = (1u64 << 20) as f64;

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

/// An unpaired comparison's `ratio [low, high]` ([`ratio_interval`]).
pub(crate) fn ratio_with_ci(c: &Comparison) -> String {
    ratio_interval(c.ratio, c.ratio_ci_low, c.ratio_ci_high)
}

/// `ratio [low, high]` with three decimals.
pub(crate) fn ratio_interval(ratio: f64, low: f64, high: f64) -> String {
    format!(
        "{} [{}, {}]",
        fixed(ratio, 3),
        fixed(low, 3),
        fixed(high, 3)
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
