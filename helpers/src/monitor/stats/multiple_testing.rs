//! Corrections for one test per feature (Bonferroni, Benjamini–Hochberg), and the
//! Wilson interval of a measured rejection rate.
use crate::{Error, Result};

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

/// Wilson score 95 % interval of a rate `p` measured on `n` trials (the interval a
/// false-alarm rate on a few hundred windows should be read with).
pub fn wilson_interval(p: f64, n: f64) -> (f64, f64) {
    let (z, d) = (1.96f64, 1.0 + 1.96f64.powi(2) / n);
    let centre = (p + z * z / (2.0 * n)) / d;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (centre - half, centre + half)
}
