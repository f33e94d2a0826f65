//! Where the bench decides "faster", "slower" or "no detectable difference":
//! every verdict of a report, a CSV file, a chart or `compare` comes from
//! [`verdict`], and only the evidence fed to it differs by kind of metric.
//!
//! | Metric | Evidence from | p-value (must be < 0.05) | 95 % interval of the ratio must exclude 1 | \|ratio − 1\| must exceed |
//! |---|---|---|---|---|
//! | Throughput within a run, paired by block (the report's headline) | [`crate::stats::paired::paired_compare`] | Wilcoxon signed-rank on the per-block log ratios from six blocks on, paired t below | yes (bootstrap over blocks, t-interval below six) | — (its MDE is reported beside it) |
//! | Counted costs (instructions, system calls, disk bytes), paired by block | [`crate::stats::paired::compare_counts`] | paired t on the log ratios | — (counts barely move) | the noise floor (largest spread of repeated counts) |
//! | Throughput of two result files, unpaired (`compare`, and the report's unpaired view) | [`crate::stats::compare`] | Mann–Whitney U | yes (bootstrap of the ratio of medians) | the larger MDE of the two samples |
//!
//! A called difference is "faster" when the ratio moves the way that is
//! better (up for throughput, down for a cost), "slower" otherwise.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stats::ALPHA;

/// Outcome of a comparison, about the second sample relative to the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly and detectably better.
    Faster,
    /// Significantly and detectably worse.
    Slower,
    /// Not significant, or not larger than the measured noise.
    NoDetectableDifference,
}

impl Verdict {
    /// Whether a difference was called.
    pub fn called(self) -> bool {
        self != Verdict::NoDetectableDifference
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoDetectableDifference => "no detectable difference",
        })
    }
}

/// What one comparison found, to be judged by [`verdict`].
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    /// The effect: variant (or file B) relative to baseline (or file A).
    pub ratio: f64,
    /// Two-sided p-value of the comparison's test.
    pub p_value: f64,
    /// The 95 % confidence interval of `ratio`, when the rule requires it to exclude 1.
    pub interval: Option<(f64, f64)>,
    /// The noise (a fraction) that `|ratio − 1|` must exceed, when the rule has one.
    pub noise: Option<f64>,
    /// True for throughput, false for durations and costs.
    pub higher_is_better: bool,
}

/// The verdict on `e`: a difference is called only when the p-value is below
/// [`ALPHA`], the interval (if given) excludes 1 and the ratio is further
/// from 1 than the noise (if given); see the module's table for what each
/// kind of metric gives.
pub fn verdict(e: Evidence) -> Verdict {
    let significant = e.p_value < ALPHA;
    let excludes_one = e.interval.is_none_or(|(low, high)| low > 1.0 || high < 1.0);
    let beyond_noise = e.noise.is_none_or(|noise| (e.ratio - 1.0).abs() > noise);
    match (
        significant && excludes_one && beyond_noise,
        (e.ratio > 1.0) == e.higher_is_better,
    ) {
        (false, _) => Verdict::NoDetectableDifference,
        (true, true) => Verdict::Faster,
        (true, false) => Verdict::Slower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(ratio: f64, p_value: f64) -> Evidence {
        Evidence {
            ratio,
            p_value,
            interval: None,
            noise: None,
            higher_is_better: true,
        }
    }

    #[test]
    fn every_condition_must_hold() {
        assert_eq!(verdict(evidence(1.2, 0.01)), Verdict::Faster);
        assert_eq!(verdict(evidence(0.8, 0.01)), Verdict::Slower);
        assert_eq!(
            verdict(evidence(1.2, 0.05)),
            Verdict::NoDetectableDifference
        );
        assert_eq!(
            verdict(evidence(1.2, f64::NAN)),
            Verdict::NoDetectableDifference
        );
        let straddles = Evidence {
            interval: Some((0.99, 1.4)),
            ..evidence(1.2, 0.01)
        };
        assert_eq!(verdict(straddles), Verdict::NoDetectableDifference);
        let clear = Evidence {
            interval: Some((1.1, 1.4)),
            ..evidence(1.2, 0.01)
        };
        assert_eq!(verdict(clear), Verdict::Faster);
        let in_noise = Evidence {
            noise: Some(0.25),
            ..clear
        };
        assert_eq!(verdict(in_noise), Verdict::NoDetectableDifference);
        let cost = Evidence {
            higher_is_better: false,
            ..evidence(1.2, 0.01)
        };
        assert_eq!(verdict(cost), Verdict::Slower);
    }

    #[test]
    fn verdicts_read_as_words() {
        assert_eq!(Verdict::Faster.to_string(), "faster");
        assert_eq!(Verdict::Slower.to_string(), "slower");
        assert_eq!(
            Verdict::NoDetectableDifference.to_string(),
            "no detectable difference"
        );
        assert!(Verdict::Slower.called() && !Verdict::NoDetectableDifference.called());
    }
}
