//! Statistics for benchmark samples: summaries, bootstrap confidence intervals,
//! the Mann–Whitney U test and the unpaired comparison of two samples that
//! `compare` uses to set two result files side by side. Within a run the
//! report compares variants block by block instead ([`crate::stats::paired`]); either
//! way the verdict itself is decided in [`verdict`].
//!
//! Everything here is pure and deterministic: the bootstrap draws from a
//! `ChaCha8Rng` seeded with the caller's `u64`, so a result file always
//! produces the same report.
//!
//! Written here: the rank tests, Mann–Whitney's U (here) and Wilcoxon's
//! signed rank ([`paired`]), with their exact null distributions enumerated
//! by dynamic programming for small samples, where a normal approximation
//! is off by the most. The `statrs` crate, which the bench uses for
//! Student's t, has distributions and Fisher's exact test but no rank
//! tests. The normal tail comes from `libm`'s `erfc`, not `statrs`'s:
//! `statrs`'s is off by up to 4.5e-11 relative (erfc(1) =
//! 0.15729920705728503 against 0.15729920705028516) and fails
//! `erfc_matches_scipy`, which holds `libm`'s to scipy's within 1e-14.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub mod paired;
pub mod verdict;

use verdict::{Evidence, Verdict};

/// Number of bootstrap resamples behind every confidence interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Significance level of tests and confidence intervals (two-sided).
pub const ALPHA: f64 = 0.05;

/// `z_0.975 + z_0.8`: the normal quantiles for a two-sided test at alpha 0.05
/// with power 0.8 (≈ 2.8016).
const Z_ALPHA_PLUS_POWER: f64 = 1.959_963_984_540_054 + 0.841_621_233_572_914_3;

/// Exact Mann–Whitney p-values are computed up to this many values per group.
const EXACT_MAX_N: usize = 20;

/// Descriptive statistics of one set of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (mean of the two middle values when `n` is even).
    pub median: f64,
    /// Sample standard deviation (divisor `n - 1`; 0 when `n = 1`).
    pub sd: f64,
    /// Coefficient of variation, `sd / mean` (a fraction, not a percentage).
    pub cv: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Lower end of the 95 % percentile-bootstrap confidence interval of the median.
    pub ci95_low: f64,
    /// Upper end of the 95 % percentile-bootstrap confidence interval of the median.
    pub ci95_high: f64,
    /// Minimum detectable effect, as a fraction of the mean, of a two-sample
    /// comparison at alpha 0.05 and power 0.8 with this CV and `n` values per
    /// group: `(z_0.975 + z_0.8) · cv · √(2/n)`. Infinite when `n = 1`: a single
    /// value says nothing about noise, so no effect can be shown.
    pub mde: f64,
}

impl Summary {
    /// The summary of no values: `n = 0` and every statistic NaN (used for a
    /// configuration whose every measurement failed). Serialized as `null`s.
    pub fn empty() -> Self {
        let nan = f64::NAN;
        Summary {
            n: 0,
            mean: nan,
            median: nan,
            sd: nan,
            cv: nan,
            min: nan,
            max: nan,
            ci95_low: nan,
            ci95_high: nan,
            mde: nan,
        }
    }
}

/// Summarizes `xs`; `None` when it is empty. `seed` drives the bootstrap.
///
/// With one value, `sd` and `cv` are 0, the confidence interval is the value
/// itself and `mde` is infinite (see [`Summary::mde`]).
pub fn summarize(xs: &[f64], seed: u64) -> Option<Summary> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let sorted = sorted(xs);
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let cv = sd / mean;
    let (ci95_low, ci95_high) = if n > 1 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut buf = vec![0.0; n];
        let meds: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
            .map(|_| resampled_median(xs, &mut rng, &mut buf))
            .collect();
        interval(meds)
    } else {
        (xs[0], xs[0])
    };
    Some(Summary {
        n,
        mean,
        median: median_of_sorted(&sorted),
        sd,
        cv,
        min: sorted[0],
        max: sorted[n - 1],
        ci95_low,
        ci95_high,
        mde: mde(cv, n),
    })
}

/// Minimum detectable effect (fraction) for coefficient of variation `cv` and
/// `n` values per group; infinite below two values.
fn mde(cv: f64, n: usize) -> f64 {
    if n < 2 {
        f64::INFINITY
    } else {
        Z_ALPHA_PLUS_POWER * cv.abs() * (2.0 / n as f64).sqrt()
    }
}

/// Median of `xs` (any order): the middle value, or the mean of the two middle
/// values when the count is even. NaN for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    median_of_sorted(&sorted(xs))
}

fn median_of_sorted(s: &[f64]) -> f64 {
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The `q`-quantile (`0 ≤ q ≤ 1`, clamped) of an ascending slice, by linear
/// interpolation between order statistics: with `h = (n − 1)·q`, the result is
/// `s[⌊h⌋] + (h − ⌊h⌋)·(s[⌊h⌋+1] − s[⌊h⌋])`. This is Hyndman & Fan's type 7,
/// the default of NumPy and R. NaN for an empty slice.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    match sorted.get(lo + 1) {
        Some(next) => sorted[lo] + (h - lo as f64) * (next - sorted[lo]),
        None => sorted[lo],
    }
}

/// Median of a bootstrap resample of `xs` (drawn with replacement into `buf`).
fn resampled_median(xs: &[f64], rng: &mut ChaCha8Rng, buf: &mut [f64]) -> f64 {
    for slot in buf.iter_mut() {
        *slot = xs[rng.gen_range(0..xs.len())];
    }
    buf.sort_by(f64::total_cmp);
    median_of_sorted(buf)
}

/// The central `1 − ALPHA` percentile interval of bootstrap statistics.
fn interval(mut stats: Vec<f64>) -> (f64, f64) {
    stats.sort_by(f64::total_cmp);
    (
        percentile(&stats, ALPHA / 2.0),
        percentile(&stats, 1.0 - ALPHA / 2.0),
    )
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U statistic of the first sample: the number of pairs `(a_i, b_j)` with
    /// `a_i > b_j`, ties counting one half.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Two-sided Mann–Whitney U test of `a` against `b`.
///
/// The p-value is exact (the U distribution enumerated by dynamic programming)
/// when both samples have at most 20 values and no value is tied; otherwise it
/// uses the normal approximation with tie correction and continuity correction.
/// This matches `scipy.stats.mannwhitneyu(a, b, alternative='two-sided')`.
/// An empty sample gives `u = 0` and `p = 1` (no evidence of anything).
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> MannWhitney {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 {
        return MannWhitney {
            u: 0.0,
            p_value: 1.0,
        };
    }
    // Pool, sort, and give tied values the mean of their ranks (1-based).
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut tie_sizes = Vec::new();
    let mut i = 0;
    while i < pooled.len() {
        let j = (i..pooled.len())
            .find(|&j| pooled[j].0 != pooled[i].0)
            .unwrap_or(pooled.len());
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_a += mean_rank * pooled[i..j].iter().filter(|p| p.1).count() as f64;
        tie_sizes.push((j - i) as f64);
        i = j;
    }
    let (fa, fb) = (na as f64, nb as f64);
    let u = rank_sum_a - fa * (fa + 1.0) / 2.0;
    let u_big = u.max(fa * fb - u);
    let ties = tie_sizes.iter().any(|&t| t > 1.0);
    let p = if na <= EXACT_MAX_N && nb <= EXACT_MAX_N && !ties {
        2.0 * exact_u_tail(na, nb, u_big.round() as usize)
    } else {
        let n = fa + fb;
        let tie_term: f64 = tie_sizes.iter().map(|t| t * t * t - t).sum();
        let var = fa * fb / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
        if var <= 0.0 {
            1.0 // every value equal: nothing distinguishes the samples
        } else {
            2.0 * normal_sf((u_big - fa * fb / 2.0 - 0.5) / var.sqrt())
        }
    };
    MannWhitney {
        u,
        p_value: p.clamp(0.0, 1.0),
    }
}

/// `P(U ≥ k)` under the null hypothesis for samples of `m` and `n` distinct values.
///
/// `count[m][n][u]` is the number of orderings of `m` a's and `n` b's with `U = u`.
/// Look at the largest value: if it is an a it beats all `n` b's, otherwise it
/// adds nothing; hence `count[m][n][u] = count[m-1][n][u-n] + count[m][n-1][u]`.
fn exact_u_tail(m: usize, n: usize, k: usize) -> f64 {
    let mut count: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n + 1]; m + 1];
    for i in 0..=m {
        for j in 0..=n {
            count[i][j] = if i == 0 || j == 0 {
                vec![1.0]
            } else {
                (0..=i * j)
                    .map(|u| {
                        let top_a = if u >= j {
                            count[i - 1][j].get(u - j).copied().unwrap_or(0.0)
                        } else {
                            0.0
                        };
                        top_a + count[i][j - 1].get(u).copied().unwrap_or(0.0)
                    })
                    .collect()
            };
        }
    }
    let dist = &count[m][n];
    let total: f64 = dist.iter().sum();
    dist.iter().skip(k).sum::<f64>() / total
}

/// Upper tail of the standard normal distribution, `P(Z > z)`.
pub(crate) fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Comparison of a sample `b` with a baseline `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `median(b) / median(a)`.
    pub ratio: f64,
    /// Lower end of the 95 % bootstrap CI of the ratio of medians.
    pub ratio_ci_low: f64,
    /// Upper end of the 95 % bootstrap CI of the ratio of medians.
    pub ratio_ci_high: f64,
    /// Two-sided Mann–Whitney p-value.
    pub p_value: f64,
    /// The larger minimum detectable effect of the two samples (fraction).
    pub noise: f64,
    /// The verdict; see [`compare`].
    pub verdict: Verdict,
}

/// Compares `b` with the baseline `a`. `higher_is_better` is true for
/// throughput, false for durations. `None` when either sample is empty or the
/// baseline median is zero.
///
/// The verdict is [`verdict::verdict`]'s on the Mann–Whitney p-value, the 95 %
/// CI of the ratio of medians and the noise (the larger MDE of the two
/// samples). The CI comes from resampling `a` and `b` independently, 10 000
/// times, seeded by `seed`.
pub fn compare(a: &[f64], b: &[f64], higher_is_better: bool, seed: u64) -> Option<Comparison> {
    let (med_a, med_b) = (median(a), median(b));
    if a.is_empty() || b.is_empty() || med_a == 0.0 {
        return None;
    }
    let ratio = med_b / med_a;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut buf_a, mut buf_b) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let ratios: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let ra = resampled_median(a, &mut rng, &mut buf_a);
            resampled_median(b, &mut rng, &mut buf_b) / ra
        })
        .collect();
    let (ratio_ci_low, ratio_ci_high) = interval(ratios);
    let p_value = mann_whitney_u(a, b).p_value;
    let noise =
        mde(coefficient_of_variation(a), a.len()).max(mde(coefficient_of_variation(b), b.len()));
    let verdict = verdict::verdict(Evidence {
        ratio,
        p_value,
        interval: Some((ratio_ci_low, ratio_ci_high)),
        noise: Some(noise),
        higher_is_better,
    });
    Some(Comparison {
        ratio,
        ratio_ci_low,
        ratio_ci_high,
        p_value,
        noise,
        verdict,
    })
}

/// Coefficient of variation (sample sd / mean) without the bootstrap; 0 for one value.
fn coefficient_of_variation(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `actual` is within a relative `tol` of `expected` (also for
    /// the tests of [`super::paired`]).
    pub(super) fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol * expected.abs().max(1e-300),
            "got {actual}, expected {expected}"
        );
    }

    // Odd count, one tie.
    const XS: [f64; 7] = [12.0, 15.5, 9.25, 20.0, 11.0, 15.5, 13.75];
    // Even count.
    const YS: [f64; 6] = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6];

    #[test]
    fn descriptive_statistics_match_numpy() {
        let s = summarize(&XS, 1).unwrap();
        assert_eq!(s.n, 7);
        close(s.mean, 13.857_142_857_142_858, 1e-12); // numpy.mean(xs)
        close(s.median, 13.75, 1e-12); // numpy.median(xs)
        close(s.sd, 3.558_607_940_781_125, 1e-12); // numpy.std(xs, ddof=1)
        close(s.cv, 0.256_806_758_613_070_84, 1e-12); // numpy.std(xs, ddof=1) / numpy.mean(xs)
                                                      // (norm.ppf(0.975) + norm.ppf(0.8)) * cv * sqrt(2 / 7), norm = scipy.stats.norm
        close(s.mde, 0.384_570_763_418_939_53, 1e-12);
        assert_eq!((s.min, s.max), (9.25, 20.0));
        close(median(&YS), 2.8, 1e-12); // numpy.median(ys)
    }

    #[test]
    fn percentile_is_numpy_linear() {
        let s = sorted(&YS);
        // numpy.percentile(ys, [0, 10, 25, 50, 90, 100], method='linear')
        for (q, want) in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
            .iter()
            .zip([1.0, 1.25, 1.775, 2.8, 6.5, 9.0])
        {
            close(percentile(&s, *q), want, 1e-12);
        }
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(percentile(&[4.0], 0.3), 4.0);
    }

    #[test]
    fn single_and_empty_samples() {
        assert!(summarize(&[], 1).is_none());
        let s = summarize(&[42.0], 1).unwrap();
        assert_eq!(
            (s.sd, s.cv, s.ci95_low, s.ci95_high),
            (0.0, 0.0, 42.0, 42.0)
        );
        assert!(s.mde.is_infinite());
        assert!(median(&[]).is_nan());
        assert!(compare(&[], &[1.0], true, 1).is_none());
    }

    #[test]
    fn bootstrap_ci_properties() {
        let s = summarize(&XS, 7).unwrap();
        assert!(s.ci95_low <= s.median && s.median <= s.ci95_high);
        assert!(s.ci95_low >= s.min && s.ci95_high <= s.max);
        assert_eq!(s, summarize(&XS, 7).unwrap(), "same seed, same result");
        let quiet: Vec<f64> = XS.iter().map(|x| 100.0 + (x - 14.0) * 0.1).collect();
        let q = summarize(&quiet, 7).unwrap();
        assert!(q.ci95_high - q.ci95_low < s.ci95_high - s.ci95_low);
    }

    #[test]
    fn erfc_matches_scipy() {
        // scipy.special.erfc([0.1, 1.0, 2.5, 3.0, 4.5, 8.0, -1.3])
        let cases = [
            (0.1, 0.887_537_083_981_715_2),
            (1.0, 0.157_299_207_050_285_16),
            (2.5, 0.000_406_952_017_444_958_86),
            (3.0, 2.209_049_699_858_544_5e-5),
            (4.5, 1.966_160_441_542_887_8e-10),
            (8.0, 1.122_429_717_298_292_8e-29),
            (-1.3, 1.934_007_944_940_652_4),
        ];
        for (x, want) in cases {
            close(libm::erfc(x), want, 1e-14);
        }
    }

    #[test]
    fn mann_whitney_exact_without_ties() {
        let a = [1.1, 2.3, 3.5, 4.2, 5.9];
        let b = [6.0, 7.1, 2.2, 8.4, 9.9, 10.5];
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided', method='exact')
        let r = mann_whitney_u(&a, &b);
        assert_eq!(r.u, 4.0);
        close(r.p_value, 0.051_948_051_948_051_95, 1e-12);
        // Swapping the samples mirrors U and keeps p.
        let s = mann_whitney_u(&b, &a);
        assert_eq!(s.u, 26.0);
        close(s.p_value, r.p_value, 1e-12);
        // Completely separated 5 vs 5: p = 2 / C(10, 5).
        let r = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        close(r.p_value, 2.0 / 252.0, 1e-12);
    }

    #[test]
    fn mann_whitney_with_ties_uses_normal_approximation() {
        let a = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 3.0, 3.0, 6.0, 7.0, 8.0, 8.0];
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided', method='asymptotic', use_continuity=True)
        let r = mann_whitney_u(&a, &b);
        assert_eq!(r.u, 9.0);
        close(r.p_value, 0.096_202_040_886_432_2, 1e-10);
        let same = mann_whitney_u(&[5.0; 3], &[5.0; 4]);
        assert_eq!(same.p_value, 1.0);
    }

    #[test]
    fn mann_whitney_large_samples_use_normal_approximation() {
        // a = [(i * 7919 % 101) / 10 for i in range(25)]
        // b = [(i * 6007 % 103) / 10 + 1.5 for i in range(22)]
        let a: Vec<f64> = (0..25).map(|i| (i * 7919 % 101) as f64 / 10.0).collect();
        let b: Vec<f64> = (0..22)
            .map(|i| (i * 6007 % 103) as f64 / 10.0 + 1.5)
            .collect();
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided', method='asymptotic', use_continuity=True)
        let r = mann_whitney_u(&a, &b);
        assert_eq!(r.u, 183.0);
        close(r.p_value, 0.051_055_598_045_959, 1e-10);
    }

    #[test]
    fn identical_samples_show_no_difference() {
        let a = [
            100.0, 102.5, 97.8, 101.2, 99.1, 98.7, 100.9, 103.0, 96.5, 100.4,
        ];
        let c = compare(&a, &a, true, 3).unwrap();
        assert_eq!(c.ratio, 1.0);
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
        assert!(c.ratio_ci_low <= 1.0 && c.ratio_ci_high >= 1.0);
        // A/A: two draws from the same distribution.
        let b = [
            99.6, 101.8, 98.2, 100.1, 102.9, 97.4, 100.6, 99.9, 101.1, 98.8,
        ];
        let c = compare(&a, &b, true, 3).unwrap();
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
        assert!(c.p_value > 0.05);
    }

    #[test]
    fn clear_shift_is_detected_in_the_right_direction() {
        let a = [100.0, 101.0, 99.5, 100.4, 98.9, 100.8, 99.7, 100.2];
        let b: Vec<f64> = a.iter().rev().map(|x| x * 1.2).collect();
        let c = compare(&a, &b, true, 9).unwrap();
        close(c.ratio, 1.2, 1e-12);
        assert!(c.ratio_ci_low > 1.1 && c.ratio_ci_high < 1.3);
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided', method='exact') -> 2 / C(16, 8)
        close(c.p_value, 2.0 / 12870.0, 1e-12);
        assert_eq!(c.verdict, Verdict::Faster);
        assert_eq!(compare(&a, &b, false, 9).unwrap().verdict, Verdict::Slower);
        assert_eq!(compare(&b, &a, true, 9).unwrap().verdict, Verdict::Slower);
        assert_eq!(
            compare(&a, &b, true, 9),
            compare(&a, &b, true, 9),
            "deterministic"
        );
    }

    #[test]
    fn significant_shift_smaller_than_noise_is_not_called() {
        // numpy.round(100 * (1 + 0.1 * numpy.random.default_rng(1).standard_normal(20)), 1), and
        // the same with default_rng(2) and factor 1.075.
        let a = [
            103.5, 108.2, 103.3, 87.0, 109.1, 104.5, 94.6, 105.8, 103.6, 102.9, 100.3, 105.5, 92.6,
            98.4, 95.2, 106.0, 100.4, 97.1, 92.2, 97.4,
        ];
        let b = [
            109.5, 101.9, 103.1, 81.3, 126.8, 119.8, 104.0, 115.8, 110.5, 101.5, 118.0, 104.2,
            104.0, 99.0, 112.4, 106.4, 113.4, 101.0, 108.9, 97.9,
        ];
        let c = compare(&a, &b, true, 5).unwrap();
        // scipy.stats.mannwhitneyu(a, b, alternative='two-sided') (asymptotic: 20 + 20 with ties)
        close(c.p_value, 0.010_577_565_534_404_802, 1e-9);
        // numpy.median(b) / numpy.median(a)
        close(c.ratio, 1.035_907_525_823_905_7, 1e-12);
        assert!(c.p_value < 0.05 && (c.ratio - 1.0).abs() < c.noise);
        assert_eq!(c.verdict, Verdict::NoDetectableDifference);
    }
}
