//! Paired statistics: comparing variants block by block.
//!
//! A *block* runs every variant once, in random order, close together in
//! time. Whatever the machine does slowly (another tenant on the disk, a
//! warm or cold host cache, the time of day) hits every variant of a block
//! alike, so the ratio of two variants *within* a block carries much less of
//! that noise than either throughput alone. This module compares variants by
//! those per-block ratios:
//!
//! - the effect is the **geometric mean of the per-block ratios** (the mean of
//!   their logarithms, exponentiated), with a confidence interval over blocks;
//! - the p-value is a **paired test**: the Wilcoxon signed-rank test on the
//!   log ratios from six blocks on (below six it cannot reach p < 0.05, so
//!   the paired t-test on the log ratios stands in, and the result says so);
//! - the **minimum detectable effect** (MDE) is what a comparison of this
//!   many blocks with this spread of log ratios detects with power 0.8;
//! - [`stop_reason`] is the adaptive stopping rule: a comparison needs no
//!   more blocks once its MDE is below the target, or once it is decided
//!   beyond doubt (its whole confidence interval lies outside ±target).
//!
//! Counts that hardly move between runs of the same build (instructions,
//! system calls, disk bytes) are compared with [`compare_counts`]: the paired
//! t-test on log ratios, and a difference is called only when it is larger
//! than the *noise floor*, the largest spread between repeated counts of one
//! variant in the same run.
//!
//! Everything here is pure and deterministic (bootstraps are seeded).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::stats::verdict::{verdict, Evidence, Verdict};
use crate::stats::{normal_sf, percentile, ALPHA, BOOTSTRAP_RESAMPLES};

/// From this many blocks on, the p-value is Wilcoxon's and the confidence
/// interval a bootstrap; below, the t-test and t-interval stand in (with
/// five blocks or fewer, no signed-rank test can reach p < 0.05: its
/// smallest two-sided p-value is 2 / 2^n = 0.0625 at n = 5).
pub const MIN_BLOCKS_NONPARAMETRIC: usize = 6;

/// Exact signed-rank p-values are computed up to this many non-zero differences.
const WILCOXON_EXACT_MAX_N: usize = 50;

/// Power of the minimum detectable effect.
const POWER: f64 = 0.8;

/// The test behind a paired p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedTest {
    /// Wilcoxon signed-rank, exact distribution.
    WilcoxonExact,
    /// Wilcoxon signed-rank, normal approximation (ties or many blocks).
    WilcoxonNormal,
    /// Student's paired t-test on the log ratios.
    TTest,
}

impl PairedTest {
    /// Short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            PairedTest::WilcoxonExact => "signed-rank",
            PairedTest::WilcoxonNormal => "signed-rank (normal)",
            PairedTest::TTest => "t-test",
        }
    }
}

/// A paired comparison of a variant with the baseline over blocks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Blocks in which both were measured.
    pub blocks: usize,
    /// Geometric mean of the per-block ratios `variant / baseline`.
    pub ratio: f64,
    /// Lower end of its 95 % confidence interval.
    pub ratio_ci_low: f64,
    /// Upper end of its 95 % confidence interval.
    pub ratio_ci_high: f64,
    /// Whether the interval is a bootstrap over blocks (else a t-interval).
    pub ci_bootstrap: bool,
    /// Two-sided p-value of the paired test.
    pub p_value: f64,
    /// Which test.
    pub test: PairedTest,
    /// Sample standard deviation of the log ratios.
    pub sd_log: f64,
    /// Minimum detectable effect (fraction) at alpha 0.05 and power 0.8 with
    /// this many blocks and this spread: `exp((t_{0.975} + t_{0.8}) · sd / √n) − 1`
    /// with Student quantiles of `n − 1` degrees of freedom. Infinite below two blocks.
    pub mde: f64,
    /// See [`paired_compare`].
    pub verdict: Verdict,
}

/// Compares `variant` with `baseline` block by block: `baseline[i]` and
/// `variant[i]` were measured in the same block. Values must be positive
/// (throughputs, counts); pairs with a non-positive or non-finite value are
/// left out. `higher_is_better` is true for throughput, false for costs.
///
/// The verdict is [`verdict`]'s on the paired test's p-value and the 95 %
/// confidence interval of the ratio, with no noise term ([`PairedComparison::mde`]
/// says how small a difference could have been seen). `None` with fewer than two blocks.
pub fn paired_compare(
    baseline: &[f64],
    variant: &[f64],
    higher_is_better: bool,
    seed: u64,
) -> Option<PairedComparison> {
    let (logs, mean, sd) = paired_logs(baseline, variant)?;
    let n = logs.len();
    let (p_value, test) = if n >= MIN_BLOCKS_NONPARAMETRIC {
        let w = wilcoxon_signed_rank(&logs);
        (
            w.p_value,
            if w.exact {
                PairedTest::WilcoxonExact
            } else {
                PairedTest::WilcoxonNormal
            },
        )
    } else {
        (paired_t_p(mean, sd, n), PairedTest::TTest)
    };
    let (lo, hi, ci_bootstrap) = if n >= MIN_BLOCKS_NONPARAMETRIC {
        let (lo, hi) = bootstrap_mean_ci(&logs, seed);
        (lo, hi, true)
    } else {
        let half = student_t_quantile(1.0 - ALPHA / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt();
        (mean - half, mean + half, false)
    };
    let ratio = mean.exp();
    let (ratio_ci_low, ratio_ci_high) = (lo.exp(), hi.exp());
    Some(PairedComparison {
        blocks: n,
        ratio,
        ratio_ci_low,
        ratio_ci_high,
        ci_bootstrap,
        p_value,
        test,
        sd_log: sd,
        mde: paired_mde(sd, n),
        verdict: verdict(Evidence {
            ratio,
            p_value,
            interval: Some((ratio_ci_low, ratio_ci_high)),
            noise: None,
            higher_is_better,
        }),
    })
}

/// `ln(variant[i] / baseline[i])` for every usable pair.
fn log_ratios(baseline: &[f64], variant: &[f64]) -> Vec<f64> {
    baseline
        .iter()
        .zip(variant)
        .filter(|(a, b)| a.is_finite() && b.is_finite() && **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (b / a).ln())
        .collect()
}

/// The [`log_ratios`] of the pairs with their mean and sample standard
/// deviation; `None` with fewer than two pairs.
fn paired_logs(baseline: &[f64], variant: &[f64]) -> Option<(Vec<f64>, f64, f64)> {
    let logs = log_ratios(baseline, variant);
    if logs.len() < 2 {
        return None;
    }
    let (mean, sd) = mean_sd(&logs);
    Some((logs, mean, sd))
}

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = if xs.len() > 1 {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// The paired MDE (fraction) for log-ratio spread `sd` over `n` blocks.
pub fn paired_mde(sd: f64, n: usize) -> f64 {
    if n < 2 {
        return f64::INFINITY;
    }
    let df = (n - 1) as f64;
    let k = student_t_quantile(1.0 - ALPHA / 2.0, df) + student_t_quantile(POWER, df);
    (k * sd / (n as f64).sqrt()).exp() - 1.0
}

/// Two-sided p of the one-sample t-test of log ratios against 0.
fn paired_t_p(mean: f64, sd: f64, n: usize) -> f64 {
    if sd == 0.0 {
        return if mean == 0.0 { 1.0 } else { 0.0 };
    }
    let t = mean / (sd / (n as f64).sqrt());
    student_t_two_sided_p(t, (n - 1) as f64)
}

/// The central 95 % percentile-bootstrap interval of the mean of `xs`,
/// resampling whole blocks.
fn bootstrap_mean_ci(xs: &[f64], seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = xs.len();
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| xs[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    (
        percentile(&means, ALPHA / 2.0),
        percentile(&means, 1.0 - ALPHA / 2.0),
    )
}

/// Result of a two-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// The smaller of the positive and negative rank sums.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the p-value is exact (else normal approximation).
    pub exact: bool,
}

/// Two-sided Wilcoxon signed-rank test of the differences `d` against 0.
///
/// Zero differences are dropped (Wilcoxon's own treatment); tied absolute
/// values get the mean of their ranks. The p-value is exact (the
/// distribution of the rank sum enumerated by dynamic programming) with up
/// to 50 non-zero differences and no ties; otherwise it uses the normal
/// approximation with the tie correction, without continuity correction.
/// This matches `scipy.stats.wilcoxon(d)` with its defaults. No non-zero
/// difference gives p = 1.
pub fn wilcoxon_signed_rank(d: &[f64]) -> Wilcoxon {
    let mut nz: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nz.len();
    if n == 0 {
        return Wilcoxon {
            statistic: 0.0,
            p_value: 1.0,
            exact: true,
        };
    }
    nz.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let (mut plus, mut minus) = (0.0, 0.0);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let j = (i..n).find(|&j| nz[j].abs() != nz[i].abs()).unwrap_or(n);
        let rank = (i + 1 + j) as f64 / 2.0;
        for x in &nz[i..j] {
            if *x > 0.0 {
                plus += rank;
            } else {
                minus += rank;
            }
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let statistic = f64::min(plus, minus);
    if n <= WILCOXON_EXACT_MAX_N && tie_term == 0.0 {
        let p = 2.0 * signed_rank_cdf(n, statistic.round() as usize);
        return Wilcoxon {
            statistic,
            p_value: p.min(1.0),
            exact: true,
        };
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
    let p = if var <= 0.0 {
        1.0
    } else {
        2.0 * normal_sf((mean - statistic) / var.sqrt())
    };
    Wilcoxon {
        statistic,
        p_value: p.clamp(0.0, 1.0),
        exact: false,
    }
}

/// `P(W ≤ w)` for the signed-rank sum of `n` distinct ranks under the null
/// hypothesis: the number of subsets of {1, …, n} with sum ≤ w over 2^n.
fn signed_rank_cdf(n: usize, w: usize) -> f64 {
    let max = n * (n + 1) / 2;
    // ways[s]: subsets of the ranks seen so far summing to s.
    let mut ways = vec![0.0f64; max + 1];
    ways[0] = 1.0;
    for r in 1..=n {
        for s in (r..=max).rev() {
            ways[s] += ways[s - r];
        }
    }
    let total = 2f64.powi(n as i32);
    ways.iter().take(w.min(max) + 1).sum::<f64>() / total
}

/// Why a comparison (or a configuration) stopped taking blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A fixed number of blocks was asked for (no target).
    Fixed,
    /// Its minimum detectable effect fell below the target.
    TargetReached,
    /// Its whole confidence interval lies beyond ±target: decided.
    Decided,
    /// `--max-iterations` was reached first.
    MaxIterations,
    /// The time budget ran out first.
    MaxTime,
    /// The run was interrupted.
    Interrupted,
    /// More blocks were disturbed (a unit started while other work kept the
    /// machine busy, or lost CPU time to the host) than the most blocks the
    /// configuration may measure.
    MachineBusy,
}

impl StopReason {
    /// How reports say it.
    pub fn label(self) -> &'static str {
        match self {
            StopReason::Fixed => "fixed count",
            StopReason::TargetReached => "target MDE reached",
            StopReason::Decided => "decided (CI beyond ±target)",
            StopReason::MaxIterations => "max iterations",
            StopReason::MaxTime => "max time",
            StopReason::Interrupted => "interrupted",
            StopReason::MachineBusy => "too many blocks disturbed (busy machine or steal)",
        }
    }
}

/// The adaptive stopping rule for one comparison: `Some` when it needs no
/// more blocks for a target MDE of `target` (fraction), `None` otherwise.
///
/// - [`StopReason::TargetReached`]: its MDE is below the target, so any
///   difference of that size would have been seen (and one smaller is
///   uninteresting);
/// - [`StopReason::Decided`]: a difference is called (p < 0.05) and its
///   confidence interval lies wholly above `1 + target` or below
///   `1 / (1 + target)`: more blocks would only narrow an interval that
///   already says "different, by more than the target".
///
/// Stopping on precision (the MDE) does not depend on the effect's sign or
/// size, so it does not inflate false positives; stopping on "decided"
/// needs an interval that excludes a whole band around 1, which a true
/// null effect practically never gives.
pub fn stop_reason(c: &PairedComparison, target: f64) -> Option<StopReason> {
    let beyond = c.ratio_ci_low > 1.0 + target || c.ratio_ci_high < 1.0 / (1.0 + target);
    if c.mde < target {
        Some(StopReason::TargetReached)
    } else if beyond && c.verdict != Verdict::NoDetectableDifference {
        Some(StopReason::Decided)
    } else {
        None
    }
}

/// A comparison of a nearly deterministic count (instructions, system
/// calls, disk bytes) of a variant with the baseline, block by block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CountComparison {
    /// Blocks in which both were counted.
    pub blocks: usize,
    /// Geometric mean of the per-block ratios `variant / baseline`.
    pub ratio: f64,
    /// Two-sided p of the paired t-test on the log ratios.
    pub p_value: f64,
    /// The noise floor (fraction): the largest relative spread
    /// (`max / min − 1`) between blocks of either variant alone.
    pub noise_floor: f64,
    /// [`verdict`]'s on the p-value and the noise floor; for a count, more is worse.
    pub verdict: Verdict,
}

/// The relative spread `max / min − 1` of positive counts (0 when fewer
/// than one is positive).
pub fn relative_spread(xs: &[f64]) -> f64 {
    let (lo, hi) = xs
        .iter()
        .filter(|x| x.is_finite() && **x > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    if lo.is_finite() && lo > 0.0 {
        hi / lo - 1.0
    } else {
        0.0
    }
}

/// Compares per-block counts of `variant` with `baseline` (lower is better).
/// The noise floor is the larger of the two variants' own spreads and
/// `run_floor` (the largest spread of any variant of the run for this
/// metric, so that two quiet variants of a noisy metric do not set a floor
/// the metric does not have; 0 for none). `None` with fewer than two
/// blocks: one count per variant says nothing about its noise.
pub fn compare_counts(
    baseline: &[f64],
    variant: &[f64],
    run_floor: f64,
) -> Option<CountComparison> {
    let (logs, mean, sd) = paired_logs(baseline, variant)?;
    let n = logs.len();
    let noise_floor = relative_spread(baseline)
        .max(relative_spread(variant))
        .max(run_floor);
    let p_value = paired_t_p(mean, sd, n);
    let ratio = mean.exp();
    Some(CountComparison {
        blocks: n,
        ratio,
        p_value,
        noise_floor,
        verdict: verdict(Evidence {
            ratio,
            p_value,
            interval: None,
            noise: Some(noise_floor),
            higher_is_better: false,
        }),
    })
}

// ------------------------------------ Student's t distribution (the statrs crate)

/// Two-sided tail `P(|T| ≥ |t|)` of Student's t with `df` degrees of freedom:
/// `I_x(df/2, 1/2)` with `x = df / (df + t²)`.
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    statrs::function::beta::beta_reg(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// The `q`-quantile (0 < q < 1) of Student's t with `df` degrees of freedom.
pub fn student_t_quantile(q: f64, df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(q),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::close;

    #[test]
    fn signed_rank_exact_matches_scipy() {
        // scipy.stats.wilcoxon(d)
        let d = [
            0.031, -0.012, 0.044, 0.027, 0.018, -0.005, 0.052, 0.039, 0.021, 0.011,
        ];
        let w = wilcoxon_signed_rank(&d);
        assert_eq!(w.statistic, 4.0);
        assert!(w.exact);
        close(w.p_value, 0.013_671_875, 1e-12);
        // Zeros are dropped: scipy.stats.wilcoxon(d, zero_method='wilcox', method='exact')
        let w = wilcoxon_signed_rank(&[0.1, 0.0, -0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(w.statistic, 2.0);
        close(w.p_value, 0.093_75, 1e-12);
        // All of one sign, n = 6: the smallest two-sided p is 2 / 2^6.
        let w = wilcoxon_signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        close(w.p_value, 2.0 / 64.0, 1e-12);
        // ... and n = 5 cannot reach 0.05.
        let w = wilcoxon_signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        close(w.p_value, 2.0 / 32.0, 1e-12);
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]).p_value, 1.0);
    }

    #[test]
    fn signed_rank_normal_approximation_matches_scipy() {
        // Ties: scipy.stats.wilcoxon(d, method='approx', correction=False)
        let w = wilcoxon_signed_rank(&[0.5, -1.0, 1.0, 2.0, 2.0, -3.0, 4.0, 1.5]);
        assert!(!w.exact);
        assert_eq!(w.statistic, 9.5);
        close(w.p_value, 0.232_804_331_934_532_65, 1e-10);
        // More than 50 differences: d = numpy.round(numpy.sin(numpy.arange(60)) * 0.1 + 0.02, 6)
        let d: Vec<f64> = (0..60)
            .map(|i| ((i as f64).sin() * 0.1 + 0.02) * 1e6)
            .map(|x| x.round() / 1e6)
            .collect();
        let w = wilcoxon_signed_rank(&d);
        assert!(!w.exact);
        assert_eq!(w.statistic, 578.0);
        close(w.p_value, 0.013_106_576_170_631_412, 1e-10);
    }

    #[test]
    fn student_t_matches_scipy() {
        // 2 * scipy.stats.t.sf(abs(t), df)
        for (t, df, want) in [
            (2.0, 4.0, 0.116_116_523_516_815_56),
            (0.5, 1.0, 0.704_832_764_699_133_5),
            (3.7, 14.0, 0.002_377_320_629_198_085_6),
            (-1.2, 9.0, 0.260_773_197_390_461_5),
            (10.0, 2.0, 0.009_852_457_023_325_69),
        ] {
            close(student_t_two_sided_p(t, df), want, 1e-10);
        }
        // scipy.stats.t.ppf(q, df)
        for (q, df, want) in [
            (0.975, 1.0, 12.706_204_736_174_694),
            (0.975, 2.0, 4.302_652_729_749_462),
            (0.975, 14.0, 2.144_786_687_917_804),
            (0.8, 14.0, 0.868_054_781_557_420_7),
            (0.8, 2.0, 1.060_660_171_779_821_4),
            (0.99, 30.0, 2.457_261_542_400_591),
        ] {
            close(student_t_quantile(q, df), want, 1e-9);
            close(student_t_quantile(1.0 - q, df), -want, 1e-9);
        }
        assert_eq!(student_t_quantile(0.5, 3.0), 0.0);
    }

    #[test]
    fn few_blocks_use_the_t_test_and_t_interval() {
        let a = [100.0, 98.0, 103.0, 97.0, 101.0];
        let b = [95.0, 94.0, 97.0, 93.0, 96.5];
        let c = paired_compare(&a, &b, true, 1).unwrap();
        assert_eq!(
            (c.blocks, c.test, c.ci_bootstrap),
            (5, PairedTest::TTest, false)
        );
        // numpy.exp(numpy.log(b / a).mean()), scipy.stats.ttest_1samp(numpy.log(b / a), 0).pvalue
        close(c.ratio, 0.953_005_504_978_249_8, 1e-12);
        close(c.p_value, 0.000_150_187_435_180_428_43, 1e-8);
        // exp(mean ± t.ppf(0.975, 4) · sd / √5)
        close(c.ratio_ci_low, 0.943_963_986_453_466_5, 1e-10);
        close(c.ratio_ci_high, 0.962_133_625_384_468_3, 1e-10);
        // exp((t.ppf(0.975, 4) + t.ppf(0.8, 4)) · sd / √5) − 1
        close(c.mde, 0.012_845_178_077_328_434, 1e-8);
        assert_eq!(c.verdict, Verdict::Slower);
        // For a cost (lower is better) the same ratio is an improvement.
        assert_eq!(
            paired_compare(&a, &b, false, 1).unwrap().verdict,
            Verdict::Faster
        );
        assert!(paired_compare(&a[..1], &b[..1], true, 1).is_none());
    }

    #[test]
    fn many_blocks_use_signed_rank_and_bootstrap() {
        // A 5 % slowdown under block-shared noise of ±20 % and small own noise:
        // the per-block ratios cancel what the blocks share.
        let block = [
            1.0, 1.2, 0.8, 1.1, 0.9, 1.15, 0.85, 1.05, 0.95, 1.18, 0.82, 1.0,
        ];
        let own = [
            0.01, -0.008, 0.004, -0.012, 0.009, 0.0, -0.004, 0.011, -0.006, 0.003, 0.007, -0.01,
        ];
        let a: Vec<f64> = block.iter().map(|m| 700.0 * m).collect();
        let b: Vec<f64> = block
            .iter()
            .zip(own)
            .map(|(m, e)| 700.0 * m * 0.95 * (1.0 + e))
            .collect();
        let c = paired_compare(&a, &b, true, 7).unwrap();
        assert_eq!(c.test, PairedTest::WilcoxonExact);
        assert!(c.ci_bootstrap);
        assert!((c.ratio - 0.95).abs() < 0.005, "{c:?}");
        assert!(c.ratio_ci_low < c.ratio && c.ratio < c.ratio_ci_high && c.ratio_ci_high < 1.0);
        // All twelve ratios below 1: p = 2 / 2^12.
        close(c.p_value, 2.0 / 4096.0, 1e-12);
        assert!(c.mde < 0.02, "{}", c.mde);
        assert_eq!(c.verdict, Verdict::Slower);
        assert_eq!(c, paired_compare(&a, &b, true, 7).unwrap(), "deterministic");
        // The unpaired view of the same data cannot see it.
        let u = crate::stats::compare(&a, &b, true, 7).unwrap();
        assert_eq!(u.verdict, Verdict::NoDetectableDifference);
        assert!(u.noise > 0.15);
    }

    #[test]
    fn same_values_show_no_difference() {
        let a = [10.0, 12.0, 11.0, 9.0, 10.5, 11.5, 10.2];
        let c = paired_compare(&a, &a, true, 3).unwrap();
        assert_eq!(c.ratio, 1.0);
        assert_eq!(c.p_value, 1.0);
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
    }

    #[test]
    fn stopping_rule() {
        let mut c = paired_compare(&[1.0, 1.0, 1.0], &[1.001, 0.999, 1.0], true, 1).unwrap();
        assert_eq!(stop_reason(&c, 0.03), Some(StopReason::TargetReached));
        // Noisy, undecided: continue.
        c.mde = 0.08;
        c.ratio_ci_low = 0.9;
        c.ratio_ci_high = 1.05;
        assert_eq!(stop_reason(&c, 0.03), None);
        // Noisy but far apart: a 3× difference is decided in a few blocks,
        // once the test calls it.
        c.ratio_ci_low = 2.5;
        c.ratio_ci_high = 3.5;
        assert_eq!(stop_reason(&c, 0.03), None);
        c.verdict = Verdict::Faster;
        assert_eq!(stop_reason(&c, 0.03), Some(StopReason::Decided));
        c.verdict = Verdict::Slower;
        c.ratio_ci_low = 0.2;
        c.ratio_ci_high = 1.0 / 1.031;
        assert_eq!(stop_reason(&c, 0.03), Some(StopReason::Decided));
        // An interval that excludes 1 but reaches into the band is not decided.
        c.ratio_ci_high = 0.98;
        assert_eq!(stop_reason(&c, 0.03), None);
    }

    #[test]
    fn counts_are_called_above_their_noise_floor() {
        // Instructions per MiB in three blocks: A/A moves by 0.1 %, a 1 % change.
        let a = [4.000e6, 4.002e6, 4.001e6];
        let same = [4.001e6, 4.000e6, 4.003e6];
        let more = [4.040e6, 4.043e6, 4.041e6];
        let aa = compare_counts(&a, &same, 0.0).unwrap();
        assert_eq!(aa.verdict, Verdict::NoDetectableDifference);
        close(aa.noise_floor, 0.00075, 1e-9);
        let c = compare_counts(&a, &more, 0.0).unwrap();
        assert!((c.ratio - 1.01).abs() < 0.0005);
        assert!(c.p_value < 0.001, "{}", c.p_value);
        assert_eq!(c.verdict, Verdict::Slower);
        assert_eq!(
            compare_counts(&more, &a, 0.0).unwrap().verdict,
            Verdict::Faster
        );
        // Significant but inside the floor: not called.
        let noisy = [4.0e6, 4.2e6, 4.1e6];
        let shifted = [4.04e6, 4.242e6, 4.141e6];
        let c = compare_counts(&noisy, &shifted, 0.0).unwrap();
        assert!(c.p_value < 0.05 && (c.ratio - 1.0).abs() < c.noise_floor);
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
        assert!(compare_counts(&a[..1], &more[..1], 0.0).is_none());
        // A floor from a noisier variant of the same run holds for every pair.
        let c = compare_counts(&a, &more, 0.02).unwrap();
        close(c.noise_floor, 0.02, 1e-12);
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
        close(relative_spread(&noisy), 0.05, 1e-12);
        close(relative_spread(&[]), 0.0, 0.0);
    }
}
