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

mod chi2;
mod kolmogorov;
mod ks;
mod mmd;
mod multiple_testing;

pub use chi2::*;
pub use kolmogorov::*;
pub use ks::*;
pub use mmd::*;
pub use multiple_testing::*;

use crate::{Error, Result};

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
