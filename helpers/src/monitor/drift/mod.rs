//! Drift detection on what a deployed model sees: a [`DriftDetector`] is fitted once on a
//! reference window of held-out, undrifted images and then tests each production window
//! three ways (after Rabanser et al. 2019, "Failing Loudly"):
//!
//! * **KS on embeddings** — the model's embedding of an image is the global average of
//!   its last convolutional block's output (`features_t`, `[N, C, h, w]` → `[N, C]`).
//!   Each of the C features is compared with a two-sample Kolmogorov–Smirnov test; the C
//!   p-values are combined by Benjamini–Hochberg (FDR, default) or Bonferroni (FWER).
//!   Drift when any adjusted p-value is ≤ α; reported: the smallest adjusted p-value and
//!   the largest D.
//! * **MMD on embeddings** — a kernel two-sample test on whole vectors (Gaussian kernel,
//!   median-heuristic width on the pooled sample, permutation p-value). For speed the
//!   embeddings are first projected on the top [`DriftOptions::mmd_components`] principal
//!   axes of the *reference* embeddings (a fixed linear map, fitted once, so it cannot
//!   adapt to the current window), and each sample is capped at
//!   [`DriftOptions::mmd_max_rows`] rows drawn at random with the test's seed: the cost is
//!   O(rows²) per permutation.
//! * **χ² on predicted classes** — Pearson's test of homogeneity between the reference's
//!   and the window's predicted-class counts: it sees label shift, and any shift that moves
//!   predictions, without looking at the images.
//!
//! Windows smaller than [`DriftOptions::min_window`] are refused with
//! [`Error::TooFewSamples`]. [`detection_experiment`] measures each method's detection
//! rate per shift and severity, and the false-alarm rate on clean windows.
mod detector;
mod experiment;

pub use detector::*;
pub use experiment::*;

use super::shifts::{self, Shift};
use super::stats::{
    self, chi_square_homogeneity, ks_2samp, mmd_test, reject, Bandwidth, Correction, KsResult,
    Matrix, MmdOptions,
};
use crate::data::{ImageSet, Normalization};
use crate::models::Model;
use crate::plot::{self, Figure, Series};
use crate::render::Table;
use crate::rng::Rng;
use crate::{Error, Result};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Images per forward pass when embedding a window (bounds memory, not results).
const BATCH: i64 = 256;
/// Random stream of the MMD row subsampling.
const MMD_SUBSAMPLE_STREAM: u64 = 0x4D4D_5353;

// ─────────────────────────────── model outputs ───────────────────────────────

/// What the model says about a batch of images: embeddings and predictions.
#[derive(Debug, Clone)]
pub struct ModelOutputs {
    /// Global-average-pooled output of the last convolutional block, `N × C`.
    pub embeddings: Matrix,
    /// Predicted class per image.
    pub predictions: Vec<i64>,
    /// Softmax probability of the predicted class per image.
    pub confidences: Vec<f64>,
}

/// Runs `model` in evaluation mode on `images` (`[N, C, H, W]`, raw 0..=255 pixels of any
/// kind, normalised here with `norm`), in batches, without gradients.
pub fn model_outputs(model: &Model, norm: &Normalization, images: &Tensor) -> Result<ModelOutputs> {
    check_images(model, images)?;
    let n = images.size()[0];
    let (mut embeddings, mut predictions, mut confidences) = (Vec::new(), Vec::new(), Vec::new());
    let mut cols = 0;
    tch::no_grad(|| -> Result<()> {
        for start in (0..n).step_by(BATCH as usize) {
            let x = norm
                .normalize(&images.narrow(0, start, BATCH.min(n - start)))
                .to_device(model.device());
            let feats = model.features_t(&x, false);
            let pooled = match feats.dim() {
                4 => feats.mean_dim([2i64, 3].as_slice(), false, Kind::Float),
                _ => feats.flatten(1, -1),
            };
            cols = pooled.size()[1] as usize;
            let probs = model.head_t(&feats, false).softmax(-1, Kind::Float);
            let (conf, pred) = probs.max_dim(-1, false);
            embeddings.extend(to_f64(&pooled)?);
            predictions.extend(Vec::<i64>::try_from(pred.to_device(Device::Cpu))?);
            confidences.extend(to_f64(&conf)?);
        }
        Ok(())
    })?;
    Ok(ModelOutputs {
        embeddings: Matrix::new(n as usize, cols, embeddings)?,
        predictions,
        confidences,
    })
}

impl ModelOutputs {
    /// The outputs of the images at `indices` (out-of-range indices are an error).
    pub fn select(&self, indices: &[usize]) -> Result<ModelOutputs> {
        let (n, c) = (self.predictions.len(), self.embeddings.cols());
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::config(
                "outputs.indices",
                format!("index {bad} is out of range for {n} images"),
            ));
        }
        let rows = indices
            .iter()
            .flat_map(|&i| self.embeddings.data()[i * c..(i + 1) * c].iter().copied())
            .collect();
        Ok(ModelOutputs {
            embeddings: Matrix::new(indices.len(), c, rows)?,
            predictions: indices.iter().map(|&i| self.predictions[i]).collect(),
            confidences: indices.iter().map(|&i| self.confidences[i]).collect(),
        })
    }
}

fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Double)
            .contiguous()
            .view([-1]),
    )?)
}

fn check_images(model: &Model, images: &Tensor) -> Result<()> {
    let size = images.size();
    if size.len() != 4 || size[1..] != model.input_shape[..] {
        return Err(Error::Shape {
            op: "monitor: model input",
            expected: format!("[N, {:?}] images", model.input_shape),
            got: size,
        });
    }
    Ok(())
}

// ─────────────────────────────── windows and options ───────────────────────────────

/// One window of production (or reference) data as the detector sees it.
#[derive(Debug, Clone)]
pub struct Window {
    /// Embeddings, one row per image.
    pub embeddings: Matrix,
    /// Predicted-class counts, index = class.
    pub class_counts: Vec<u64>,
}

impl Window {
    /// The window of `outputs`, counting predictions over `num_classes` classes
    /// (predictions outside 0..num_classes are an error).
    pub fn from_outputs(outputs: &ModelOutputs, num_classes: usize) -> Result<Window> {
        let mut class_counts = vec![0u64; num_classes];
        for &p in &outputs.predictions {
            let slot = usize::try_from(p)
                .ok()
                .and_then(|i| class_counts.get_mut(i));
            match slot {
                Some(c) => *c += 1,
                None => {
                    return Err(Error::config(
                        "window.predictions",
                        format!("class {p} is outside 0..{num_classes}"),
                    ))
                }
            }
        }
        Ok(Window {
            embeddings: outputs.embeddings.clone(),
            class_counts,
        })
    }

    /// Runs `model` on `images` and returns their window.
    pub fn of_images(model: &Model, norm: &Normalization, images: &Tensor) -> Result<Window> {
        let outputs = model_outputs(model, norm, images)?;
        Window::from_outputs(&outputs, model.num_classes as usize)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.embeddings.rows()
    }

    /// True when the window holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Settings of a [`DriftDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct DriftOptions {
    /// Significance level of each method's test.
    pub alpha: f64,
    /// How the KS p-values of the C features are combined.
    pub correction: Correction,
    /// Permutations of the MMD test (p-values are multiples of 1/(B + 1)).
    pub mmd_permutations: usize,
    /// Principal components of the reference embeddings the MMD test works in;
    /// 0 = the raw embeddings.
    pub mmd_components: usize,
    /// At most this many rows of each sample enter the MMD test (random, seeded).
    pub mmd_max_rows: usize,
    /// Smallest reference and current window accepted.
    pub min_window: usize,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            alpha: 0.05,
            correction: Correction::BenjaminiHochberg,
            mmd_permutations: 100,
            mmd_components: 16,
            mmd_max_rows: 200,
            min_window: 30,
        }
    }
}

impl DriftOptions {
    fn validate(&self) -> Result<()> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::config(
                "drift.alpha",
                format!("{} is not a significance level in (0, 1)", self.alpha),
            ));
        }
        if self.mmd_permutations == 0 {
            return Err(Error::config(
                "drift.mmd_permutations",
                "needs at least one permutation",
            ));
        }
        if self.mmd_max_rows < stats::MMD_MIN_SAMPLES
            || self.min_window < stats::MMD_MIN_SAMPLES.max(stats::CHI2_MIN_TOTAL)
        {
            return Err(Error::config(
                "drift.min_window",
                format!(
                    "min_window and mmd_max_rows must be at least {}: the tests need that many observations",
                    stats::MMD_MIN_SAMPLES
                ),
            ));
        }
        Ok(())
    }
}

// ─────────────────────────────── verdicts ───────────────────────────────

/// The three detection methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Per-feature Kolmogorov–Smirnov on embeddings, multiple-testing corrected.
    Ks,
    /// Kernel maximum mean discrepancy on (projected) embeddings.
    Mmd,
    /// χ² homogeneity of predicted-class counts.
    ChiSquare,
}

impl Method {
    /// Short name for tables and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Mmd => "mmd",
            Method::ChiSquare => "chi_square",
        }
    }

    /// All methods, in report order.
    pub const ALL: [Method; 3] = [Method::Ks, Method::Mmd, Method::ChiSquare];
}

/// One method's answer for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub method: Method,
    /// `p_value ≤ α`.
    pub drift: bool,
    /// KS: the smallest corrected p-value; MMD: the permutation p-value; χ²: Pearson's.
    pub p_value: f64,
    /// KS: the largest D over features; MMD: MMD²_u; χ²: the χ² statistic.
    pub statistic: f64,
    /// What else the method measured, for a human.
    pub detail: String,
}

/// The three verdicts on one window.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReport {
    /// Images in the tested window.
    pub window: usize,
    /// The significance level used.
    pub alpha: f64,
    pub ks: Verdict,
    pub mmd: Verdict,
    pub chi_square: Verdict,
}

impl DriftReport {
    /// The verdicts in [`Method::ALL`] order.
    pub fn verdicts(&self) -> [&Verdict; 3] {
        [&self.ks, &self.mmd, &self.chi_square]
    }

    /// The verdict of `method`.
    pub fn verdict(&self, method: Method) -> &Verdict {
        match method {
            Method::Ks => &self.ks,
            Method::Mmd => &self.mmd,
            Method::ChiSquare => &self.chi_square,
        }
    }

    /// True when any method flags drift.
    pub fn any_drift(&self) -> bool {
        self.verdicts().iter().any(|v| v.drift)
    }

    /// One row per method: verdict, statistic, p-value, details.
    pub fn table(&self) -> Result<Table> {
        use polars::prelude::Column;
        let v = self.verdicts();
        Table::from_columns(
            format!(
                "Drift tests on a window of {} images (α = {})",
                self.window, self.alpha
            ),
            vec![
                Column::new("method".into(), v.map(|v| v.method.name())),
                Column::new("drift".into(), v.map(|v| v.drift)),
                Column::new("statistic".into(), v.map(|v| v.statistic)),
                Column::new("p_value".into(), v.map(|v| v.p_value)),
                Column::new("detail".into(), v.map(|v| v.detail.clone())),
            ],
        )
    }
}
