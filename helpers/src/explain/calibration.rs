//! Calibration: does a predicted probability of 0.9 mean right 90 % of the time?
//! Reliability diagram and expected calibration error (Guo et al., 2017), with equal-width
//! confidence bins.
use crate::evaluate::Predictions;
use crate::plot::{self, Figure, Series};
use crate::render::evcxr_emit;
use crate::Result;
use tch::{Kind, Tensor};

/// Per-bin confidence and accuracy, and the ECE.
#[derive(Debug, Clone)]
pub struct Reliability {
    /// (mean confidence, accuracy, count) per non-empty bin.
    pub bins: Vec<(f64, f64, usize)>,
    /// Σ_b (n_b / N) · |accuracy_b − confidence_b|.
    pub ece: f64,
}

/// Reliability of the top-class probabilities in `num_bins` equal-width bins over [0, 1].
pub fn reliability(preds: &Predictions, num_bins: usize) -> Result<Reliability> {
    reliability_of(&preds.probs, &preds.labels, num_bins)
}

/// Reliability of any classifier's probabilities `[n, classes]` against its labels: the
/// top class is the prediction, its probability the confidence.
pub fn reliability_of(probs: &Tensor, labels: &[i64], num_bins: usize) -> Result<Reliability> {
    let (conf, pred) = probs.max_dim(1, false);
    let conf = Vec::<f64>::try_from(conf.to_kind(Kind::Double))?;
    let pred = Vec::<i64>::try_from(pred)?;
    if conf.len() != labels.len() || num_bins == 0 {
        return Err(crate::Error::argument(
            "labels",
            format!(
                "{} labels for {} probability rows, {num_bins} bins: need one label per row and ≥ 1 bin",
                labels.len(),
                conf.len()
            ),
        ));
    }
    let mut sums = vec![(0.0f64, 0usize, 0usize); num_bins];
    for (i, &c) in conf.iter().enumerate() {
        // Bin b holds (b/B, (b+1)/B]; a confidence of exactly 0 goes to the first bin.
        let b = ((c * num_bins as f64).ceil() as usize).clamp(1, num_bins) - 1;
        sums[b].0 += c;
        sums[b].1 += usize::from(pred[i] == labels[i]);
        sums[b].2 += 1;
    }
    let n = conf.len().max(1) as f64;
    let bins: Vec<(f64, f64, usize)> = sums
        .iter()
        .filter(|s| s.2 > 0)
        .map(|&(c, ok, k)| (c / k as f64, ok as f64 / k as f64, k))
        .collect();
    let ece = bins
        .iter()
        .map(|&(c, a, k)| k as f64 / n * (a - c).abs())
        .sum();
    Ok(Reliability { bins, ece })
}

impl Reliability {
    /// Accuracy against confidence per bin, with the diagonal of perfect calibration.
    pub fn figure(&self) -> Result<Figure> {
        let points = self.bins.iter().map(|&(c, a, _)| (c, a)).collect();
        plot::lines(
            "reliability_diagram",
            &[(
                &format!("reliability (ECE {:.4})", self.ece),
                "mean confidence in bin",
                vec![
                    Series::new("accuracy", points),
                    Series::new("perfect calibration", vec![(0.0, 0.0), (1.0, 1.0)]),
                ],
            )],
        )
    }

    /// evcxr's hook: the ECE and the diagram.
    pub fn evcxr_display(&self) {
        let svg = self.figure().map(|f| f.img_html()).unwrap_or_default();
        evcxr_emit(
            "text/html",
            &format!(
                "<p>Expected calibration error: <b>{:.4}</b> ({} bins with examples)</p>{svg}",
                self.ece,
                self.bins.len()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_by_hand() -> Result<()> {
        // Two examples at confidence 0.9 (one right), two at 0.6 (both right):
        // two bins: confidence 0.9 with accuracy 0.5, confidence 0.6 with accuracy 1.0.
        // ECE = 0.5·|0.5−0.9| + 0.5·|1.0−0.6| = 0.4.
        let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.9, 0.1, 0.6, 0.4, 0.4, 0.6]).view([4, 2]);
        let preds = Predictions {
            labels: vec![0, 1, 0, 1],
            preds: vec![0, 0, 0, 1],
            probs,
            losses: vec![0.0; 4],
        };
        let r = reliability(&preds, 10)?;
        assert_eq!(r.bins.len(), 2);
        assert!((r.ece - 0.4).abs() < 1e-6, "{}", r.ece);
        Ok(())
    }
}
