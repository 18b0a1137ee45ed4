//! Pearson's χ² test of homogeneity of class counts, and the χ² survival function.
use super::too_few;
use crate::{Error, Result};

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
