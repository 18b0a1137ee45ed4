//! Statistical tests for drift detection, as plain functions on slices.
//!
//! Each test answers one question about a reference sample (training time) and a
//! current sample (production):
//!
//! * [`ks_2samp`] — *has one scalar feature changed its distribution?* Two-sample
//!   Kolmogorov–Smirnov: `D = sup_t |F_x(t) − F_y(t)|` over the two empirical CDFs,
//!   two-sided, with the p-value of `scipy.stats.ks_2samp(x, y, method='auto')`
//!   (scipy 1.17): the exact lattice-path probability when `max(n, m) ≤ 10 000`, else
//!   Smirnov's asymptotic `P(D_N ≥ d)` with `N = round(n·m / (n + m))` from the one-sample
//!   Kolmogorov distribution [`kstwo_sf`] (`scipy.stats.kstwo.sf`).
//! * [`bonferroni`], [`benjamini_hochberg`], [`reject`] — *with one test per feature, did
//!   any feature drift?* Bonferroni: `min(1, p·m)` (controls the family-wise error rate);
//!   Benjamini–Hochberg: `p_(i)·m/i` made monotone from the largest p down
//!   (controls the false discovery rate; `scipy.stats.false_discovery_control(ps, method='bh')`).
//! * [`mmd_test`] — *has the joint distribution of feature vectors (e.g. embeddings)
//!   changed?* Unbiased MMD² (Gretton et al. 2012, eq. 3) with the Gaussian kernel
//!   `k(a, b) = exp(−‖a − b‖² / (2σ²))`:
//!   `MMD²_u = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(mn)`,
//!   σ by the median heuristic (σ = median Euclidean distance over all pairs i < j of rows of the
//!   pooled sample), p-value by a permutation test: `(k + 1)/(B + 1)` where `k` of `B`
//!   random relabellings of the pooled rows give an MMD²_u ≥ the observed one.
//! * [`chi_square_homogeneity`] — *has the distribution of predicted classes changed?*
//!   Pearson's χ² test of homogeneity on the 2 × K table of class counts:
//!   `χ² = Σ (O − E)²/E`, `E = row total · column total / grand total`, dof = K' − 1 where
//!   K' counts the classes seen at least once; p = [`chi2_sf`] (`scipy.stats.chi2_contingency`
//!   with `correction=False`, which instead refuses classes never seen).
//!
//! Too few observations give [`Error::TooFewSamples`]; other unusable input (NaN, ragged
//! rows, α outside (0, 1)) gives [`Error::Config`] naming the argument. Nothing panics.

use crate::rng::Rng;
use crate::{Error, Result};

// ─────────────────────────────── shared helpers ───────────────────────────────

fn too_few(test: &'static str, needed: usize, got: usize) -> Error {
    Error::TooFewSamples { test, needed, got }
}

fn reject_nan(key: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| v.is_nan()) {
        Some(i) => Err(Error::config(key, format!("value {i} is NaN"))),
        None => Ok(()),
    }
}

/// `x · 2^e` without overflowing or underflowing in an intermediate power of two.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    const STEP: i64 = 512;
    let step_up = 2f64.powi(STEP as i32);
    let step_down = 2f64.powi(-STEP as i32);
    while e > STEP && x.is_finite() && x != 0.0 {
        x *= step_up;
        e -= STEP;
    }
    while e < -STEP && x != 0.0 {
        x *= step_down;
        e += STEP;
    }
    x * 2f64.powi(e as i32)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

// ─────────────────────────────── Kolmogorov–Smirnov ───────────────────────────────

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

// ─────────────────── Kolmogorov distribution of the one-sample D_n ───────────────────

const E128: i64 = 128;
/// 2^128 and 2^-128: rescaling thresholds that keep long products in range.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
/// log of the smallest subnormal double (cephes `MINLOG`): exp of less is 0.
const MINLOG: f64 = -745.133_219_101_941_2;

/// `P(D_n ≥ d)` for the two-sided one-sample Kolmogorov–Smirnov statistic
/// `D_n = sup_t |F_n(t) − F(t)|` — scipy's `kstwo.sf(d, n)`.
///
/// Follows Simard & L'Ecuyer (2011) like scipy's `_kolmogn`: Ruben–Gambino closed forms at
/// the ends of the support, `2·smirnov(n, d)` (Smirnov's one-sided tail, exact up to the
/// tiny two-sided overlap) for large `n·d²`, the Durbin matrix (Marsaglia–Tsang–Wang) or
/// Pomeranz recursion for small `n`, and the Pelz–Good expansion for large `n`.
/// Returns NaN for `n = 0` or NaN `d`.
pub fn kstwo_sf(n: u64, d: f64) -> f64 {
    if n == 0 || d.is_nan() {
        return f64::NAN;
    }
    // rv_continuous.sf: 1 below the support (0.5/n, 1), 0 above it.
    if d <= 0.5 / n as f64 {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n, d)
}

/// scipy's `_kolmogn(n, x, cdf=False)` for 0.5/n < x < 1.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: P(D_n ≤ x) = n!/nⁿ (2t − 1)ⁿ for 1/(2n) ≤ x ≤ 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| {
                acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
            })
        } else {
            (log_factorial_over_power(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx_squared = t * x;
    if n <= 140 {
        let cdf = if nx_squared <= 0.754693 {
            kolmogorov_cdf_durbin(n, x)
        } else if nx_squared <= 4.0 {
            kolmogorov_cdf_pomeranz(n, x)
        } else {
            return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if nx_squared >= 370.0 {
        return 0.0;
    }
    if nx_squared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogorov_cdf_durbin(n, x)
    } else {
        kolmogorov_cdf_pelz_good(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// `ln(n!/nⁿ)` by Stirling's series with `n·ln n` cancelled analytically.
fn log_factorial_over_power(n: f64) -> f64 {
    // Verbatim from scipy's `_STIRLING_COEFFS`, so the two can be compared digit by digit.
    #[allow(clippy::excessive_precision)]
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124_2e-2,
        6.410_256_410_256_410_3e-3,
        -1.917_526_917_526_917_5e-3,
        8.417_508_417_508_417_5e-4,
        -5.952_380_952_380_952_4e-4,
        7.936_507_936_507_936_5e-4,
        -2.777_777_777_777_777_8e-3,
        8.333_333_333_333_333_3e-2,
    ];
    let rn = 1.0 / n;
    let series = STIRLING.iter().fold(0.0, |acc, c| acc * (rn / n) + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * series
}

/// `P(D_n ≤ d)` by Durbin's matrix method as Marsaglia, Tsang & Wang (2003) evaluate it:
/// the (k, k) entry of `Hⁿ · n!/nⁿ` for the (2k−1)² matrix H, `k = ⌈n·d⌉`,
/// with exponents tracked separately (scipy's `_kolmogn_DMTW`).
fn kolmogorov_cdf_durbin(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in i - 1..m {
            hm[r * m + i] = w[r + 1 - i];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
        hm[(m - 1) * m + r] = v[m - 1 - r];
    }
    let mut power = vec![0.0; m * m];
    for i in 0..m {
        power[i * m + i] = 1.0;
    }
    let (mut expnt, mut h_expnt) = (0i64, 0i64);
    let mut remaining = n;
    while remaining > 0 {
        if remaining % 2 == 1 {
            power = matmul(&power, &hm, m);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm, m);
        h_expnt *= 2;
        if hm[(k - 1) * m + k - 1].abs() > EP128 {
            hm.iter_mut().for_each(|e| *e /= EP128);
            h_expnt += E128;
        }
        remaining /= 2;
    }
    let mut p = power[(k - 1) * m + k - 1];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    ldexp(p, expnt).clamp(0.0, 1.0)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for l in 0..m {
            let a_il = a[i * m + l];
            if a_il == 0.0 {
                continue;
            }
            let (row_b, row_out) = (&b[l * m..(l + 1) * m], &mut out[i * m..(i + 1) * m]);
            for (o, bv) in row_out.iter_mut().zip(row_b) {
                *o += a_il * bv;
            }
        }
    }
    out
}

/// Row bounds of Pomeranz's recursion (scipy's `_pomeranz_compute_j1j2`).
fn pomeranz_bounds(i: i64, n: i64, ll: i64, ceil_f: i64, round_f: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceil_f - 1, ll + ceil_f - 1)
    } else {
        let (half, odd) = ((i + 1) / 2, (i + 1) % 2);
        if odd == 0 {
            if half == n + 1 {
                (n - ll - ceil_f - 1, n + ll + ceil_f - 1)
            } else {
                (half - 1 - ll - round_f - 1, half + ll - 1 + ceil_f - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + round_f - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `P(D_n ≤ x)` by Pomeranz's (1974) recursion: each row the convolution of the previous
/// with truncated Poisson weights, rescaled as needed (scipy's `_kolmogn_Pomeranz`).
fn kolmogorov_cdf_pomeranz(n: u64, x: f64) -> f64 {
    let n = n as i64;
    let t = n as f64 * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceil_f = i64::from(f > 0.0);
    let round_f = i64::from(f > 0.5);
    let n_powers = (2 * (ll + 1)) as usize;
    // (g/n)^k/k!, (2g/n)^k/k!, ((1−2g)/n)^k/k!: Poisson weights up to their normaliser.
    let weights = |base: f64| {
        let mut w = vec![1.0; n_powers];
        for k in 1..n_powers {
            w[k] = w[k - 1] * base / k as f64;
        }
        w
    };
    let (g_pow, two_g_pow, one_minus_two_g_pow) = (
        weights(g / n as f64),
        weights(2.0 * g / n as f64),
        weights((1.0 - 2.0 * g) / n as f64),
    );
    let mut v0 = vec![0.0; n_powers];
    let mut v1 = vec![0.0; n_powers];
    v1[0] = 1.0;
    let (mut v0_start, mut v1_start) = (0i64, 0i64);
    let mut expnt = 0i64;
    let mut j1 = pomeranz_bounds(0, n, ll, ceil_f, round_f).0;
    for i in 1..2 * n + 2 {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0_start, &mut v1_start);
        v1.fill(0.0);
        let (row_j1, j2) = pomeranz_bounds(i, n, ll, ceil_f, round_f);
        j1 = row_j1;
        let powers = if i == 1 || i == 2 * n + 1 {
            &g_pow
        } else if i % 2 == 1 {
            &two_g_pow
        } else {
            &one_minus_two_g_pow
        };
        let len = j2 - k1 + 1;
        if len <= 0 {
            continue;
        }
        let Ok(start) = usize::try_from(k1 - v0_start) else {
            return f64::NAN;
        };
        let a = &v0[start.min(n_powers)..(start + len as usize).min(n_powers)];
        let b = &powers[..(len as usize).min(n_powers)];
        let conv_start = j1 - k1;
        for c in 0..(j2 - j1 + 1).max(0) {
            let Some(slot) = v1.get_mut(c as usize) else {
                return f64::NAN;
            };
            *slot = convolution_at(a, b, (conv_start + c) as usize);
        }
        let largest = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if 0.0 < largest && largest < EM128 {
            v1.iter_mut().for_each(|e| *e *= EP128);
            expnt -= E128;
        }
        v1_start = v0_start + j1 - k1;
    }
    let Some(&last) = usize::try_from(n - v1_start).ok().and_then(|k| v1.get(k)) else {
        return f64::NAN;
    };
    let mut ans = last;
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    ldexp(ans, expnt).clamp(0.0, 1.0)
}

/// Entry `c` of the full discrete convolution of `a` and `b` (`numpy.convolve`).
fn convolution_at(a: &[f64], b: &[f64], c: usize) -> f64 {
    if a.is_empty() || b.is_empty() || c > a.len() + b.len() - 2 {
        return 0.0;
    }
    let lo = c.saturating_sub(b.len() - 1);
    let hi = c.min(a.len() - 1);
    (lo..=hi).map(|j| a[j] * b[c - j]).sum()
}

/// `P(D_n ≤ x)` by the Pelz–Good (1976) asymptotic series in 1/√n, each term rewritten
/// through Jacobi theta functions for small `z = x·√n` (scipy's `_kolmogn_PelzGood`).
fn kolmogorov_cdf_pelz_good(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let (pi2, pi4, pi6) = (PI.powi(2), PI.powi(4), PI.powi(6));
    let sqrt_2pi = (2.0 * PI).sqrt();
    let z = (n as f64).sqrt() * x;
    let (z2, z3, z4, z6) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));
    let q_log = -pi2 / 8.0 / z2;
    if q_log < -708.0 {
        return 0.0;
    }
    let q = q_log.exp();
    let (k1a, k1b) = (-z2, pi2 / 4.0);
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);

    // Horner over the odd integers m = 2k − 1: Σ c(m) q^(m²).
    let mut terms = [0.0f64; 4];
    let max_k = (16.0 * z / PI).ceil() as i64;
    for k in (1..=max_k).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q_power = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (t, c) in terms.iter_mut().zip(coeffs) {
            *t = *t * q_power + c;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (t, div) in terms.iter_mut().zip(divisors) {
        *t = *t * q * sqrt_2pi / div;
    }
    // The sums over all integers k in K2 and K3.
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3_z = 3f64.sqrt() * z;
    let (mut k2_extra, mut k3_extra) = (0.0, 0.0);
    for k in (1..=max_k).rev() {
        let kf = k as f64;
        let q_power = q.powf(kf * kf);
        k2_extra += kf * kf * q_power;
        let k_pi = PI * kf;
        k3_extra += (sqrt3_z + k_pi) * (sqrt3_z - k_pi) * kf * kf * q_power;
    }
    terms[2] += k2_extra * pi2 * sqrt_2pi / (-36.0 * z3);
    terms[3] += k3_extra * pi2 * sqrt_2pi / (216.0 * z6);
    let nf = n as f64;
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| t / nf.powf(i as f64 / 2.0))
        .sum()
}

/// `P(D⁺_n > x)`, the one-sided Smirnov tail (scipy.special.smirnov), by the
/// Birnbaum–Tingey sum `x Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (x + v/n)^{v−1} (1 − x − v/n)^{n−v}`,
/// whose terms are all positive; each term is formed in log space from the exactly split
/// `n·x = ⌊n·x⌋ + α`, and the log binomial is accumulated with compensated summation.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nx_floor, alpha) = split_n_times_x(nf, x);
    if nx_floor == 0.0 || (nx_floor == 1.0 && alpha == 0.0) {
        // x ≤ 1/n: P(D⁺ ≤ x) = x (1 + x)^{n−1}.
        let cdf = x * ((nf - 1.0) * x.ln_1p()).exp();
        return 1.0 - cdf;
    }
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nx_floor >= nf - 1.0 {
        return (nf * (-x).ln_1p()).exp();
    }
    if n > 1_000_000 {
        // Too many terms; p ≈ exp(−(6nx + 1)² / 18n).
        let log_p = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if log_p < -std::f64::consts::LN_2 {
            log_p.exp()
        } else {
            1.0 + log_p.exp_m1()
        };
    }
    let n_terms = n - nx_floor as u64;
    let ln_x = x.ln();
    let mut sum = (nf * (-x).ln_1p()).exp(); // v = 0: x · (1 − x)^n / x
    let mut log_binomial = NeumaierSum::default();
    log_binomial.add(nf.ln()); // C(n, 1)
    for v in 1..n_terms {
        let vf = v as f64;
        let rising = ((nx_floor + vf + alpha) / nf).ln(); // x + v/n
        let falling = ((nf - nx_floor - vf - alpha) / nf).ln(); // 1 − x − v/n
        let term = (log_binomial.total() + ln_x + (vf - 1.0) * rising + (nf - vf) * falling).exp();
        if term.is_finite() && term != 0.0 {
            sum += term;
        }
        let negligible = 4.0 * (n_terms - v) as f64 * term.abs() < f64::EPSILON * sum;
        if term != 0.0 && negligible && v != n_terms - 1 {
            break;
        }
        if term == 0.0 && v > n / 2 {
            break;
        }
        log_binomial.add(((n - v) as f64 / (v + 1) as f64).ln());
    }
    sum.clamp(0.0, 1.0)
}

/// `n·x = floor + α` with α ∈ [0, 1) computed without the rounding error of `n·x`
/// (the product's error term comes exactly from a fused multiply-add).
fn split_n_times_x(n: f64, x: f64) -> (f64, f64) {
    let hi = n * x;
    let lo = n.mul_add(x, -hi);
    let mut floor = hi.floor();
    if hi == floor && lo < 0.0 {
        floor -= 1.0;
    }
    let mut alpha = (hi - floor) + lo;
    if alpha >= 1.0 {
        floor += 1.0;
        alpha = 0.0;
    }
    (floor, alpha.max(0.0))
}

/// Neumaier's compensated sum: keeps a long running sum of logs exact to ~1 ulp.
#[derive(Default)]
struct NeumaierSum {
    sum: f64,
    compensation: f64,
}

impl NeumaierSum {
    fn add(&mut self, value: f64) {
        let t = self.sum + value;
        self.compensation += if self.sum.abs() >= value.abs() {
            (self.sum - t) + value
        } else {
            (value - t) + self.sum
        };
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

// ─────────────────────────────── multiple testing ───────────────────────────────

fn check_p_values(key: &str, p_values: &[f64]) -> Result<()> {
    match p_values.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(i) => Err(Error::config(
            key,
            format!("p-value {i} is {}, not a number in [0, 1]", p_values[i]),
        )),
        None => Ok(()),
    }
}

/// Bonferroni-adjusted p-values `min(1, p·m)` for `m` tests.
pub fn bonferroni(p_values: &[f64]) -> Result<Vec<f64>> {
    check_p_values("bonferroni.p_values", p_values)?;
    let m = p_values.len() as f64;
    Ok(p_values.iter().map(|p| (p * m).min(1.0)).collect())
}

/// Benjamini–Hochberg adjusted p-values ("q-values"), equal to
/// `scipy.stats.false_discovery_control(ps, method='bh')`: with the p-values sorted
/// ascending, `q_(i) = min_{j ≥ i} p_(j)·m/j`, capped at 1, returned in input order.
/// Rejecting `q ≤ α` is the BH step-up procedure at FDR level α.
pub fn benjamini_hochberg(p_values: &[f64]) -> Result<Vec<f64>> {
    check_p_values("benjamini_hochberg.p_values", p_values)?;
    let m = p_values.len();
    if m <= 1 {
        return Ok(p_values.to_vec());
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut scaled: Vec<f64> = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| p_values[i] * (m as f64 / (rank + 1) as f64))
        .collect();
    for r in (0..m - 1).rev() {
        scaled[r] = scaled[r].min(scaled[r + 1]);
    }
    let mut adjusted = vec![0.0; m];
    for (rank, &i) in order.iter().enumerate() {
        adjusted[i] = scaled[rank].clamp(0.0, 1.0);
    }
    Ok(adjusted)
}

/// How per-feature p-values are combined in [`reject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// Family-wise error rate ≤ α: any false alarm at all is rare (conservative).
    Bonferroni,
    /// False discovery rate ≤ α: among flagged features, at most a share α are false alarms.
    BenjaminiHochberg,
}

/// Which features a multiple-testing decision flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejections {
    /// Whether at least one feature is flagged as drifted.
    pub any: bool,
    /// How many features are flagged.
    pub count: usize,
    /// Per feature, in input order: adjusted p-value ≤ α.
    pub rejected: Vec<bool>,
    /// The adjusted p-values, in input order.
    pub adjusted: Vec<f64>,
}

/// Adjusts per-feature p-values with `correction` and flags those whose adjusted p-value
/// is ≤ `alpha` (0 < α < 1). An empty list flags nothing.
pub fn reject(p_values: &[f64], alpha: f64, correction: Correction) -> Result<Rejections> {
    if alpha.is_nan() || alpha <= 0.0 || alpha >= 1.0 {
        return Err(Error::config(
            "reject.alpha",
            format!("{alpha} is not a significance level in (0, 1)"),
        ));
    }
    let adjusted = match correction {
        Correction::Bonferroni => bonferroni(p_values)?,
        Correction::BenjaminiHochberg => benjamini_hochberg(p_values)?,
    };
    let rejected: Vec<bool> = adjusted.iter().map(|&q| q <= alpha).collect();
    let count = rejected.iter().filter(|&&r| r).count();
    Ok(Rejections {
        any: count > 0,
        count,
        rejected,
        adjusted,
    })
}

// ─────────────────────────────── MMD ───────────────────────────────

/// A dense row-major matrix of observations: one row per sample, one column per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A `rows × cols` matrix over `data` (row-major, `rows·cols` values).
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::config(
                "matrix.data",
                format!("{} values cannot fill {rows} × {cols}", data.len()),
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A matrix from equally long rows; no rows gives a 0 × 0 matrix.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some(i) = rows.iter().position(|r| r.len() != cols) {
            return Err(Error::config(
                "matrix.rows",
                format!("row {i} has {} values, row 0 has {cols}", rows[i].len()),
            ));
        }
        Matrix::new(rows.len(), cols, rows.concat())
    }

    /// Number of rows (observations).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Row `i`, or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f64]> {
        (i < self.rows).then(|| &self.data[i * self.cols..(i + 1) * self.cols])
    }
}

/// Smallest number of rows per sample [`mmd_test`] accepts: below ~10 rows the median
/// heuristic rests on a handful of distances and the permutation null has too few
/// distinct relabellings to reach small p-values.
pub const MMD_MIN_SAMPLES: usize = 10;

/// The Gaussian kernel's width σ in `exp(−‖a − b‖² / (2σ²))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bandwidth {
    /// σ = median Euclidean distance over all pairs of distinct rows of the pooled sample
    /// (mean of the two middle values for an even count, like `numpy.median`); if that
    /// median is 0, the mean of the non-zero distances; if all rows coincide, 1.
    MedianHeuristic,
    /// A fixed σ > 0, e.g. the one chosen on the reference data, so that successive
    /// monitoring windows are compared on the same scale.
    Fixed(f64),
}

/// Settings of [`mmd_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmdOptions {
    /// Random relabellings of the pooled rows; p-values are multiples of `1/(B + 1)`.
    pub n_permutations: usize,
    /// Seed of the permutations ([`crate::rng::Rng`]): the same seed gives the same p-value.
    pub seed: u64,
    /// How σ is chosen.
    pub bandwidth: Bandwidth,
}

impl Default for MmdOptions {
    fn default() -> Self {
        MmdOptions {
            n_permutations: 200,
            seed: 0,
            bandwidth: Bandwidth::MedianHeuristic,
        }
    }
}

/// The outcome of [`mmd_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmdResult {
    /// The unbiased estimate MMD²_u (may be slightly negative when the samples agree).
    pub mmd2: f64,
    /// `(k + 1)/(B + 1)`, `k` the permutations with MMD²_u ≥ the observed one.
    pub p_value: f64,
    /// The kernel width σ used.
    pub sigma: f64,
    /// `B`, the number of permutations run.
    pub n_permutations: usize,
    /// `k`, how many permuted statistics reached the observed one.
    pub exceedances: usize,
}

/// Stream of [`Rng`] reserved for MMD permutations (decorrelates them from other uses of a seed).
const MMD_RNG_STREAM: u64 = 0x004D_4D44;

/// Kernel two-sample test (Gretton et al. 2012): unbiased MMD²_u with a Gaussian kernel
/// and a permutation p-value. The pooled (m + n)² kernel matrix is built once (memory
/// O((m + n)²), time O((m + n)²·d)); each permutation then costs O((m + n)²) lookups.
pub fn mmd_test(x: &Matrix, y: &Matrix, options: &MmdOptions) -> Result<MmdResult> {
    check_mmd_inputs(x, y)?;
    if options.n_permutations == 0 {
        return Err(Error::config(
            "mmd.n_permutations",
            "needs at least one permutation",
        ));
    }
    let kernel = PooledKernel::new(x, y, options.bandwidth)?;
    let (m, total) = (x.rows(), kernel.size);
    let mut indices: Vec<usize> = (0..total).collect();
    let observed = kernel.mmd2(&indices[..m], &indices[m..]);
    let mut rng = Rng::new(options.seed, MMD_RNG_STREAM);
    let mut exceedances = 0;
    for _ in 0..options.n_permutations {
        rng.shuffle(&mut indices);
        if kernel.mmd2(&indices[..m], &indices[m..]) >= observed {
            exceedances += 1;
        }
    }
    Ok(MmdResult {
        mmd2: observed,
        p_value: (exceedances + 1) as f64 / (options.n_permutations + 1) as f64,
        sigma: kernel.sigma,
        n_permutations: options.n_permutations,
        exceedances,
    })
}

/// MMD²_u between the rows of `x` and of `y` for the Gaussian kernel of width `sigma`
/// (see the module documentation for the formula).
pub fn mmd2_unbiased(x: &Matrix, y: &Matrix, sigma: f64) -> Result<f64> {
    check_mmd_inputs(x, y)?;
    let kernel = PooledKernel::new(x, y, Bandwidth::Fixed(sigma))?;
    let indices: Vec<usize> = (0..kernel.size).collect();
    Ok(kernel.mmd2(&indices[..x.rows()], &indices[x.rows()..]))
}

/// The median-heuristic σ of [`Bandwidth::MedianHeuristic`] for the pooled rows of `x` and `y`.
pub fn median_heuristic_sigma(x: &Matrix, y: &Matrix) -> Result<f64> {
    check_mmd_inputs(x, y)?;
    let pooled = pooled_rows(x, y);
    let size = x.rows() + y.rows();
    Ok(median_heuristic(
        &pairwise_squared_distances(&pooled, size, x.cols()),
        size,
    ))
}

fn check_mmd_inputs(x: &Matrix, y: &Matrix) -> Result<()> {
    let got = x.rows().min(y.rows());
    if got < MMD_MIN_SAMPLES {
        return Err(too_few("mmd", MMD_MIN_SAMPLES, got));
    }
    if x.cols() != y.cols() || x.cols() == 0 {
        return Err(Error::config(
            "mmd.y",
            format!(
                "rows have {} features, those of x {}; both need the same number, at least 1",
                y.cols(),
                x.cols()
            ),
        ));
    }
    for (key, m) in [("mmd.x", x), ("mmd.y", y)] {
        if let Some(i) = m.data().iter().position(|v| !v.is_finite()) {
            return Err(Error::config(
                key,
                format!(
                    "row {}, feature {} is {}",
                    i / m.cols(),
                    i % m.cols(),
                    m.data()[i]
                ),
            ));
        }
    }
    Ok(())
}

fn pooled_rows(x: &Matrix, y: &Matrix) -> Vec<f64> {
    [x.data(), y.data()].concat()
}

/// The full symmetric matrix of squared Euclidean distances between `size` rows of width `cols`.
fn pairwise_squared_distances(rows: &[f64], size: usize, cols: usize) -> Vec<f64> {
    let mut d2 = vec![0.0; size * size];
    for i in 0..size {
        let a = &rows[i * cols..(i + 1) * cols];
        for j in i + 1..size {
            let b = &rows[j * cols..(j + 1) * cols];
            let s: f64 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
            d2[i * size + j] = s;
            d2[j * size + i] = s;
        }
    }
    d2
}

/// σ from the `size × size` squared-distance matrix `d2` (see [`Bandwidth::MedianHeuristic`]).
fn median_heuristic(d2: &[f64], size: usize) -> f64 {
    let mut distances: Vec<f64> = (0..size)
        .flat_map(|i| (i + 1..size).map(move |j| (i, j)))
        .map(|(i, j)| d2[i * size + j].sqrt())
        .collect();
    let median = median_in_place(&mut distances);
    if median > 0.0 {
        return median;
    }
    let nonzero: Vec<f64> = distances.into_iter().filter(|&d| d > 0.0).collect();
    if nonzero.is_empty() {
        1.0
    } else {
        nonzero.iter().sum::<f64>() / nonzero.len() as f64
    }
}

/// `numpy.median`: the middle value, or the mean of the two middle values.
fn median_in_place(values: &mut [f64]) -> f64 {
    let len = values.len();
    if len == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(len / 2, f64::total_cmp);
    if len % 2 == 1 {
        return upper;
    }
    let lower = values[..len / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// Gaussian kernel values between all pooled rows (x's rows first, then y's).
struct PooledKernel {
    size: usize,
    sigma: f64,
    values: Vec<f64>,
}

impl PooledKernel {
    fn new(x: &Matrix, y: &Matrix, bandwidth: Bandwidth) -> Result<Self> {
        let size = x.rows() + y.rows();
        let mut values = pairwise_squared_distances(&pooled_rows(x, y), size, x.cols());
        let sigma = match bandwidth {
            Bandwidth::MedianHeuristic => median_heuristic(&values, size),
            Bandwidth::Fixed(s) if s.is_finite() && s > 0.0 => s,
            Bandwidth::Fixed(s) => {
                return Err(Error::config(
                    "mmd.bandwidth",
                    format!("σ = {s} is not a positive finite width"),
                ))
            }
        };
        let scale = 1.0 / (2.0 * sigma * sigma);
        values.iter_mut().for_each(|v| *v = (-*v * scale).exp());
        Ok(PooledKernel {
            size,
            sigma,
            values,
        })
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.size..(i + 1) * self.size]
    }

    /// Σ_{i≠j} k over one index set, from the pairs i < j (the kernel is symmetric).
    fn within_sum(&self, set: &[usize]) -> f64 {
        let mut total = 0.0;
        for (pos, &a) in set.iter().enumerate() {
            let row = self.row(a);
            total += set[pos + 1..].iter().map(|&b| row[b]).sum::<f64>();
        }
        2.0 * total
    }

    fn cross_sum(&self, xs: &[usize], ys: &[usize]) -> f64 {
        xs.iter()
            .map(|&a| {
                let row = self.row(a);
                ys.iter().map(|&b| row[b]).sum::<f64>()
            })
            .sum()
    }

    /// MMD²_u with `xs` as the first sample's rows and `ys` as the second's.
    fn mmd2(&self, xs: &[usize], ys: &[usize]) -> f64 {
        let (m, n) = (xs.len() as f64, ys.len() as f64);
        self.within_sum(xs) / (m * (m - 1.0)) + self.within_sum(ys) / (n * (n - 1.0))
            - 2.0 * self.cross_sum(xs, ys) / (m * n)
    }
}

// ─────────────────────────────── chi-square ───────────────────────────────

/// Smallest total count per sample [`chi_square_homogeneity`] accepts. The χ²
/// approximation itself wants expected counts ≥ 5 per cell; that depends on the class
/// mix, so it is reported as [`ChiSquareResult::min_expected`] for the caller to judge,
/// and only samples too small to fill even one such cell are refused.
pub const CHI2_MIN_TOTAL: usize = 5;

/// The outcome of [`chi_square_homogeneity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquareResult {
    /// Pearson's `χ² = Σ (O − E)²/E` over the 2 × K' table.
    pub statistic: f64,
    /// `P(χ²_dof ≥ statistic)`; 1 when dof is 0.
    pub p_value: f64,
    /// Degrees of freedom, K' − 1.
    pub dof: usize,
    /// K': classes counted at least once in either sample (the others are dropped).
    pub classes_used: usize,
    /// The smallest expected count E; the χ² approximation is doubtful below 5.
    pub min_expected: f64,
}

/// Pearson's χ² test of homogeneity between two class-count vectors (same class order),
/// equal to `scipy.stats.chi2_contingency([reference, current], correction=False)` once
/// classes with zero total are dropped (scipy refuses them; they carry no information).
pub fn chi_square_homogeneity(reference: &[u64], current: &[u64]) -> Result<ChiSquareResult> {
    if reference.len() != current.len() {
        return Err(Error::config(
            "chi_square.current",
            format!(
                "{} classes, the reference has {}",
                current.len(),
                reference.len()
            ),
        ));
    }
    let totals = [reference, current].map(|c| c.iter().map(|&v| v as f64).sum::<f64>());
    let smaller = totals[0].min(totals[1]);
    if smaller < CHI2_MIN_TOTAL as f64 {
        return Err(too_few("chi_square", CHI2_MIN_TOTAL, smaller as usize));
    }
    let columns: Vec<[f64; 2]> = reference
        .iter()
        .zip(current)
        .filter(|(&r, &c)| r + c > 0)
        .map(|(&r, &c)| [r as f64, c as f64])
        .collect();
    let grand_total = totals[0] + totals[1];
    let mut statistic = 0.0;
    let mut min_expected = f64::INFINITY;
    for (row, &row_total) in totals.iter().enumerate() {
        for column in &columns {
            let expected = row_total * (column[0] + column[1]) / grand_total;
            statistic += (column[row] - expected).powi(2) / expected;
            min_expected = min_expected.min(expected);
        }
    }
    let dof = columns.len() - 1;
    if dof == 0 {
        // One class only: observed equals expected, as in scipy's degenerate case.
        statistic = 0.0;
    }
    Ok(ChiSquareResult {
        statistic,
        p_value: if dof == 0 {
            1.0
        } else {
            chi2_sf(statistic, dof as f64)
        },
        dof,
        classes_used: columns.len(),
        min_expected,
    })
}

/// Survival function of the χ² distribution, `P(χ²_k ≥ x) = Q(k/2, x/2)`
/// (`scipy.stats.chi2.sf`). NaN for `k ≤ 0` or NaN input.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 && dof > 0.0 {
        return 1.0;
    }
    gamma_q(dof / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma function `Q(a, x) = Γ(a, x)/Γ(a)` for a > 0, x ≥ 0
/// (`scipy.special.gammaincc`): `1 − P(a, x)` from P's power series when x < a + 1,
/// else Legendre's continued fraction by the modified Lentz method (Numerical Recipes
/// §6.2). NaN outside the domain.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_continued_fraction(a, x)
    }
}

const GAMMA_MAX_ITERATIONS: usize = 100_000;

/// `x^a e^{−x} / Γ(a)`, the common prefactor of both expansions, in log space.
fn gamma_prefactor(a: f64, x: f64) -> f64 {
    (a * x.ln() - x - ln_gamma(a)).exp()
}

fn gamma_p_series(a: f64, x: f64) -> f64 {
    let (mut ap, mut term) = (a, 1.0 / a);
    let mut sum = term;
    for _ in 0..GAMMA_MAX_ITERATIONS {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * f64::EPSILON {
            break;
        }
    }
    sum * gamma_prefactor(a, x)
}

fn gamma_q_continued_fraction(a: f64, x: f64) -> f64 {
    let tiny = f64::MIN_POSITIVE / f64::EPSILON;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..=GAMMA_MAX_ITERATIONS {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() <= f64::EPSILON {
            break;
        }
    }
    gamma_prefactor(a, x) * h
}

/// `ln Γ(x)` for x > 0 by the Lanczos approximation of Numerical Recipes (3rd ed.,
/// `gammln`, g = 671/128, 14 terms): relative error below 1e-15.
// Constants verbatim from Numerical Recipes, so the two can be compared digit by digit.
#[allow(clippy::excessive_precision)]
fn ln_gamma(x: f64) -> f64 {
    const COF: [f64; 14] = [
        57.156_235_665_862_923_5,
        -59.597_960_355_475_491_2,
        14.136_097_974_741_747_1,
        -0.491_913_816_097_620_199,
        0.339_946_499_848_118_887e-4,
        0.465_236_289_270_485_756e-4,
        -0.983_744_753_048_795_646e-4,
        0.158_088_703_224_912_494e-3,
        -0.210_264_441_724_104_883e-3,
        0.217_439_618_115_212_643e-3,
        -0.164_318_106_536_763_890e-3,
        0.844_182_239_838_527_433e-4,
        -0.261_908_384_015_814_087e-4,
        0.368_991_826_595_316_234e-5,
    ];
    let shifted = x + 5.242_187_5;
    let lead = (x + 0.5) * shifted.ln() - shifted;
    let mut denominator = x;
    let mut series = 0.999_999_999_999_997_092;
    for c in COF {
        denominator += 1.0;
        series += c / denominator;
    }
    lead + (2.506_628_274_631_000_5 * series / x).ln()
}

/// Wilson score 95 % interval of a rate `p` measured on `n` trials (the interval a
/// false-alarm rate on a few hundred windows should be read with).
pub fn wilson_interval(p: f64, n: f64) -> (f64, f64) {
    let (z, d) = (1.96f64, 1.0 + 1.96f64.powi(2) / n);
    let centre = (p + z * z / (2.0 * n)) / d;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (centre - half, centre + half)
}
