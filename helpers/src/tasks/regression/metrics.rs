//! [`RegressionMetrics`]: MSE, RMSE, MAE and R² with scikit-learn's definitions
//! (`mean_squared_error`, `mean_absolute_error`, `r2_score`), in the target's units.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub mse: f64,
    pub rmse: f64,
    pub mae: f64,
    /// 1 − SS_res / SS_tot; 0 is the mean predictor, negative is worse than it.
    pub r2: f64,
    pub n: usize,
}

impl RegressionMetrics {
    /// Metrics of `predicted` against `truth` (same length, not empty).
    pub fn compute(truth: &[f64], predicted: &[f64]) -> RegressionMetrics {
        assert_eq!(truth.len(), predicted.len(), "one prediction per target");
        let n = truth.len() as f64;
        let mean = truth.iter().sum::<f64>() / n;
        let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
        for (t, p) in truth.iter().zip(predicted) {
            se += (t - p).powi(2);
            ae += (t - p).abs();
            tot += (t - mean).powi(2);
        }
        // scikit-learn: a constant truth scores 1.0 when predicted exactly, else 0.0.
        let r2 = match (tot > 0.0, se > 0.0) {
            (true, _) => 1.0 - se / tot,
            (false, false) => 1.0,
            (false, true) => 0.0,
        };
        RegressionMetrics {
            mse: se / n,
            rmse: (se / n).sqrt(),
            mae: ae / n,
            r2,
            n: truth.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn() {
        // sklearn.metrics on y=[3,-0.5,2,7], p=[2.5,0,2,8]:
        // mean_squared_error 0.375, mean_absolute_error 0.5, r2_score 0.9486081370449679
        let m = RegressionMetrics::compute(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]);
        assert!((m.mse - 0.375).abs() < 1e-12);
        assert!((m.rmse - 0.375f64.sqrt()).abs() < 1e-12);
        assert!((m.mae - 0.5).abs() < 1e-12);
        assert!((m.r2 - 0.948_608_137_044_967_9).abs() < 1e-12);
        assert_eq!(RegressionMetrics::compute(&[1.0, 1.0], &[1.0, 1.0]).r2, 1.0);
        assert_eq!(RegressionMetrics::compute(&[1.0, 1.0], &[1.0, 2.0]).r2, 0.0);
    }
}
