//! Two-sample Kolmogorov–Smirnov test and the one-sample Kolmogorov distribution
//! (scipy's `ks_2samp` and `kstwo.sf`).
use super::kolmogorov::kstwo_sf;
use super::{gcd, reject_nan, too_few};
use crate::Result;

/// Smallest sample size [`ks_2samp`] accepts. One observation is a single step of the
/// empirical CDF: it says nothing about a distribution's shape, and every such test
/// is dominated by the position of that one value.
pub const KS_MIN_SAMPLES: usize = 2;

/// Largest `max(n, m)` for which [`ks_2samp`] computes the exact p-value (scipy's `MAX_AUTO_N`).
pub const KS_MAX_EXACT_N: usize = 10_000;

/// How a [`KsResult`]'s p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMethod {
    /// Exact probability over all lattice paths (Hodges 1958; Viehmann 2021).
    Exact,
    /// Smirnov's asymptotic distribution through [`kstwo_sf`].
    Asymptotic,
}

/// The outcome of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D = sup_t |F_x(t) − F_y(t)|`; on the exact path rounded to the lattice `h / lcm(n, m)`, as scipy does.
    pub statistic: f64,
    /// Two-sided p-value, `P(D ≥ observed)` under "same distribution".
    pub p_value: f64,
    /// Which computation gave the p-value.
    pub method: KsMethod,
}

/// Two-sided two-sample Kolmogorov–Smirnov test, equal to scipy 1.17's
/// `ks_2samp(x, y, alternative='two-sided', method='auto')`.
///
/// Ties are allowed (the ECDFs are evaluated at every pooled value with "≤", like
/// `searchsorted(side='right')`); infinities are ordinary values; NaN is refused.
/// Exact when `max(n, m) ≤` [`KS_MAX_EXACT_N`] (O(n + m) work for `n = m`, else about
/// `max(n, m) · 2·D·min(n, m)` steps); otherwise, or if the exact recursion leaves `[0, 1]`,
/// asymptotic.
pub fn ks_2samp(x: &[f64], y: &[f64]) -> Result<KsResult> {
    let got = x.len().min(y.len());
    if got < KS_MIN_SAMPLES {
        return Err(too_few("ks_2samp", KS_MIN_SAMPLES, got));
    }
    reject_nan("ks_2samp.x", x)?;
    reject_nan("ks_2samp.y", y)?;
    let sorted = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s
    };
    let (xs, ys) = (sorted(x), sorted(y));
    let mut statistic = ks_statistic(&xs, &ys);
    let (n1, n2) = (xs.len(), ys.len());
    if n1.max(n2) <= KS_MAX_EXACT_N {
        let (lattice_d, p) = ks_exact_p_value(n1, n2, statistic);
        statistic = lattice_d;
        if let Some(p_value) = p {
            return Ok(KsResult {
                statistic,
                p_value,
                method: KsMethod::Exact,
            });
        }
    }
    Ok(KsResult {
        statistic,
        p_value: ks_asymptotic_p_value(n1, n2, statistic),
        method: KsMethod::Asymptotic,
    })
}

/// `max(max_t (F_x − F_y), max_t (F_y − F_x))` over all pooled values, each CDF value
/// computed as `count / n` like scipy, so the float is bit-identical.
fn ks_statistic(xs: &[f64], ys: &[f64]) -> f64 {
    let (n1, n2) = (xs.len() as f64, ys.len() as f64);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    for &t in xs.iter().chain(ys) {
        let cdf_x = xs.partition_point(|&a| a <= t) as f64 / n1;
        let cdf_y = ys.partition_point(|&a| a <= t) as f64 / n2;
        let diff = cdf_x - cdf_y;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_side = (-min_diff).clamp(0.0, 1.0);
    if min_side > max_diff {
        min_side
    } else {
        max_diff
    }
}

/// scipy's `_attempt_exact_2kssamp`: the statistic snapped to the lattice `h / lcm(n1, n2)`,
/// and the exact p-value, or `None` when the recursion left `[0, 1]` (then asymptotic).
fn ks_exact_p_value(n1: usize, n2: usize, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = ((n1 / g) * n2) as f64;
    let h = (d * lcm).round_ties_even() as i64;
    let d = h as f64 / lcm;
    if h == 0 {
        return (d, Some(1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1 as i64, h)
    } else {
        prob_outside_band(n1 as i64, n2 as i64, g as i64, h)
    };
    (d, (0.0..=1.0).contains(&p).then_some(p))
}

/// `P(D_{n,n} ≥ h/n)` for equal sizes: `2 Σ_k (−1)^{k+1} C(2n, n − k·h) / C(2n, n)`,
/// evaluated Horner-style on the ratios to avoid cancellation (scipy's
/// `_compute_prob_outside_square`).
fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut ratio = 1.0;
        for j in 0..h {
            ratio = (n - k * h - j) as f64 * ratio / (n + k * h + j + 1) as f64;
        }
        p = ratio * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// The share of monotone lattice paths from (0, 0) to (m, n) that leave the band
/// `|n·x/g − m·y/g| < h`, computed column by column as `1 − share inside` directly
/// (Viehmann 2021's recursion, scipy's pythran `_compute_outer_prob_inside_method`).
/// Returns NaN if the sliding window ever indexes outside its buffer.
fn prob_outside_band(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let mut min_j: i64 = 0;
    let mut max_j: i64 = ((h as f64 / mg).ceil() as i64).min(n + 1);
    let mut cur_len = max_j - min_j;
    let len_a = (2 * max_j + 2).min(n + 1) as usize;
    let mut a = vec![1.0; len_a];
    a[..max_j as usize].fill(0.0);
    for i in 1..=m {
        let (last_min_j, last_len) = (min_j, cur_len);
        min_j = (((ng * i as f64 - h as f64) / mg).floor() as i64 + 1)
            .max(0)
            .min(n);
        max_j = (((ng * i as f64 + h as f64) / mg).ceil() as i64).min(n + 1);
        if max_j <= min_j {
            return 1.0;
        }
        let mut val = if min_j == 0 { 0.0 } else { 1.0 };
        for jj in 0..max_j - min_j {
            let j = jj + min_j;
            let Some(&prev) = usize::try_from(jj + min_j - last_min_j)
                .ok()
                .and_then(|k| a.get(k))
            else {
                return f64::NAN;
            };
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        cur_len = max_j - min_j;
        if last_len > cur_len {
            // Entries the window left behind count as "all paths still inside".
            let end = (last_len as usize).min(len_a);
            a[(cur_len as usize).min(end)..end].fill(1.0);
        }
    }
    a.get((max_j - min_j - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// scipy's two-sided asymptotic branch: `kstwo.sf(d, round(n·m/(n+m)))`, clipped to [0, 1].
fn ks_asymptotic_p_value(n1: usize, n2: usize, d: f64) -> f64 {
    let (big, small) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let effective_n = (big * small / (big + small)).round_ties_even();
    kstwo_sf(effective_n as u64, d).clamp(0.0, 1.0)
}
