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

// ─────────────────────────────── the detector ───────────────────────────────

/// A fixed linear map: centring on the reference mean, then projection on principal axes.
#[derive(Debug, Clone)]
struct Projection {
    mean: Vec<f64>,
    /// `k` axes of length C, largest variance first.
    axes: Vec<Vec<f64>>,
}

impl Projection {
    /// The top `k` principal axes of `x` (eigenvectors of its covariance); `k = 0` or
    /// `k ≥ C` keeps every feature unprojected.
    fn fit(x: &Matrix, k: usize) -> Result<Projection> {
        let (n, c) = (x.rows(), x.cols());
        let mean: Vec<f64> = (0..c)
            .map(|j| (0..n).map(|i| x.data()[i * c + j]).sum::<f64>() / n as f64)
            .collect();
        if k == 0 || k >= c {
            return Ok(Projection { mean, axes: vec![] });
        }
        let data = Tensor::from_slice(x.data()).view([n as i64, c as i64]);
        let centred = &data - Tensor::from_slice(&mean).view([1, c as i64]);
        let cov = centred.transpose(0, 1).matmul(&centred) / (n.max(2) - 1) as f64;
        // eigh: eigenvalues ascending; the last k columns are the leading axes.
        let (_, vectors) = cov.f_linalg_eigh("L")?;
        let axes = (0..k)
            .map(|i| Vec::<f64>::try_from(vectors.select(1, (c - 1 - i) as i64).contiguous()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Projection { mean, axes })
    }

    fn apply(&self, x: &Matrix) -> Result<Matrix> {
        if self.axes.is_empty() {
            return Ok(x.clone());
        }
        let c = x.cols();
        let mut out = Vec::with_capacity(x.rows() * self.axes.len());
        for i in 0..x.rows() {
            let row = &x.data()[i * c..(i + 1) * c];
            for axis in &self.axes {
                out.push(
                    row.iter()
                        .zip(&self.mean)
                        .zip(axis)
                        .map(|((v, m), a)| (v - m) * a)
                        .sum(),
                );
            }
        }
        Matrix::new(x.rows(), self.axes.len(), out)
    }
}

/// A drift detector fitted on a reference window (see the module documentation).
#[derive(Debug, Clone)]
pub struct DriftDetector {
    options: DriftOptions,
    /// Reference embeddings per feature (column-major, each sorted), for the KS tests.
    reference_columns: Vec<Vec<f64>>,
    projection: Projection,
    reference_projected: Matrix,
    reference_counts: Vec<u64>,
}

impl DriftDetector {
    /// Fits the detector on a reference window of undrifted, held-out data.
    pub fn fit(reference: &Window, options: DriftOptions) -> Result<DriftDetector> {
        options.validate()?;
        if reference.len() < options.min_window {
            return Err(Error::TooFewSamples {
                test: "drift reference window",
                needed: options.min_window,
                got: reference.len(),
            });
        }
        let projection = Projection::fit(&reference.embeddings, options.mmd_components)?;
        Ok(DriftDetector {
            reference_columns: sorted_columns(&reference.embeddings),
            reference_projected: projection.apply(&reference.embeddings)?,
            projection,
            reference_counts: reference.class_counts.clone(),
            options,
        })
    }

    /// Embeds `images` with `model` and fits on them.
    pub fn fit_images(
        model: &Model,
        norm: &Normalization,
        images: &Tensor,
        options: DriftOptions,
    ) -> Result<DriftDetector> {
        DriftDetector::fit(&Window::of_images(model, norm, images)?, options)
    }

    /// The options it was fitted with.
    pub fn options(&self) -> &DriftOptions {
        &self.options
    }

    /// Number of reference images.
    pub fn reference_len(&self) -> usize {
        self.reference_projected.rows()
    }

    /// Tests `current` against the reference; `seed` drives the MMD permutations and row
    /// subsampling (the same seed gives the same report).
    pub fn test(&self, current: &Window, seed: u64) -> Result<DriftReport> {
        if current.len() < self.options.min_window {
            return Err(Error::TooFewSamples {
                test: "drift window",
                needed: self.options.min_window,
                got: current.len(),
            });
        }
        if current.embeddings.cols() != self.reference_columns.len()
            || current.class_counts.len() != self.reference_counts.len()
        {
            return Err(Error::config(
                "drift.window",
                format!(
                    "{} features and {} classes; the reference has {} and {}: same model?",
                    current.embeddings.cols(),
                    current.class_counts.len(),
                    self.reference_columns.len(),
                    self.reference_counts.len()
                ),
            ));
        }
        Ok(DriftReport {
            window: current.len(),
            alpha: self.options.alpha,
            ks: self.ks(current)?,
            mmd: self.mmd(current, seed)?,
            chi_square: self.chi_square(current)?,
        })
    }

    /// Embeds `images` with `model` and tests them.
    pub fn test_images(
        &self,
        model: &Model,
        norm: &Normalization,
        images: &Tensor,
        seed: u64,
    ) -> Result<DriftReport> {
        self.test(&Window::of_images(model, norm, images)?, seed)
    }

    fn ks(&self, current: &Window) -> Result<Verdict> {
        let tests = ks_per_feature(&self.reference_columns, &columns(&current.embeddings))?;
        let p_values: Vec<f64> = tests.iter().map(|r| r.p_value).collect();
        let largest_d = tests.iter().map(|r| r.statistic).fold(0.0, f64::max);
        let decision = reject(&p_values, self.options.alpha, self.options.correction)?;
        let p_value = decision.adjusted.iter().copied().fold(1.0, f64::min);
        let correction = match self.options.correction {
            Correction::Bonferroni => "Bonferroni",
            Correction::BenjaminiHochberg => "BH",
        };
        Ok(Verdict {
            method: Method::Ks,
            drift: decision.any,
            p_value,
            statistic: largest_d,
            detail: format!(
                "{} of {} features flagged ({correction}); statistic = max D",
                decision.count,
                p_values.len()
            ),
        })
    }

    fn mmd(&self, current: &Window, seed: u64) -> Result<Verdict> {
        let mut rng = Rng::new(seed, MMD_SUBSAMPLE_STREAM);
        let cap = self.options.mmd_max_rows;
        let x = subsample(&self.reference_projected, cap, &mut rng)?;
        let y = subsample(&self.projection.apply(&current.embeddings)?, cap, &mut rng)?;
        let r = mmd_test(
            &x,
            &y,
            &MmdOptions {
                n_permutations: self.options.mmd_permutations,
                seed,
                bandwidth: Bandwidth::MedianHeuristic,
            },
        )?;
        Ok(Verdict {
            method: Method::Mmd,
            drift: r.p_value <= self.options.alpha,
            p_value: r.p_value,
            statistic: r.mmd2,
            detail: format!(
                "{} vs {} rows in {} dimensions, σ = {:.3}, {} permutations; statistic = MMD²",
                x.rows(),
                y.rows(),
                x.cols(),
                r.sigma,
                r.n_permutations
            ),
        })
    }

    fn chi_square(&self, current: &Window) -> Result<Verdict> {
        let r = chi_square_homogeneity(&self.reference_counts, &current.class_counts)?;
        Ok(Verdict {
            method: Method::ChiSquare,
            drift: r.p_value <= self.options.alpha,
            p_value: r.p_value,
            statistic: r.statistic,
            detail: format!(
                "{} dof, smallest expected count {:.1}; statistic = χ²",
                r.dof, r.min_expected
            ),
        })
    }
}

/// One two-sample KS test per feature, the features split over up to four threads (the
/// tests are independent, so the results do not depend on the split).
fn ks_per_feature(reference: &[Vec<f64>], current: &[Vec<f64>]) -> Result<Vec<KsResult>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = reference.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = reference
            .chunks(chunk)
            .zip(current.chunks(chunk))
            .map(|(r, c)| {
                scope.spawn(move || {
                    r.iter()
                        .zip(c)
                        .map(|(a, b)| ks_2samp(a, b))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(reference.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| Error::config("drift.ks", "a KS worker thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// The columns of `x`, each sorted ascending (ks_2samp sorts its inputs; a sorted input
/// makes that sort linear, which matters for the large reference tested many times).
fn sorted_columns(x: &Matrix) -> Vec<Vec<f64>> {
    let mut cols = columns(x);
    cols.iter_mut().for_each(|c| c.sort_by(f64::total_cmp));
    cols
}

/// The columns of `x`.
fn columns(x: &Matrix) -> Vec<Vec<f64>> {
    let (n, c) = (x.rows(), x.cols());
    (0..c)
        .map(|j| (0..n).map(|i| x.data()[i * c + j]).collect())
        .collect()
}

/// At most `cap` rows of `x`, a random subset in random order (all rows when fewer).
fn subsample(x: &Matrix, cap: usize, rng: &mut Rng) -> Result<Matrix> {
    if x.rows() <= cap {
        return Ok(x.clone());
    }
    let mut order: Vec<usize> = (0..x.rows()).collect();
    rng.shuffle(&mut order);
    let c = x.cols();
    let data: Vec<f64> = order[..cap]
        .iter()
        .flat_map(|&i| x.data()[i * c..(i + 1) * c].iter().copied())
        .collect();
    Matrix::new(cap, c, data)
}

// ─────────────────────────────── the experiment ───────────────────────────────

/// Settings of [`detection_experiment`].
#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    /// Images per production window.
    pub window: usize,
    /// Windows per shift and severity.
    pub repeats: usize,
    /// Clean windows for the false-alarm rate.
    pub clean_windows: usize,
    /// Reference images, drawn from the evaluation set; windows come from the rest.
    pub reference_size: usize,
    pub shifts: Vec<Shift>,
    pub severities: Vec<u8>,
    /// Drives the reference split, window draws, shifts and tests.
    pub seed: u64,
    pub detector: DriftOptions,
}

impl Default for ExperimentOptions {
    /// Sized for the notebook's default profile: 35 s on an idle 2-core CPU with the
    /// Fashion-MNIST CNN (up to twice that when other work shares the cores) — 6 shifts ×
    /// 5 severities × 10 windows of 200 images, each embedded and tested (≈ 0.09 s a
    /// window), plus 200 clean windows, which reuse the pool's embeddings computed once and
    /// cost only the tests (≈ 0.045 s a window). Detection rates come in steps of 1/10;
    /// `repeats: 20` halves the step and doubles the time. The reference
    /// (2 000 images) is ten times a window, so that every window is compared with nearly
    /// the same reference distribution: with a small reference, the one fixed sample all
    /// windows meet can, by chance, sit off the true distribution and raise the false-alarm
    /// rate of every window it is compared with.
    fn default() -> Self {
        ExperimentOptions {
            window: 200,
            repeats: 10,
            clean_windows: 200,
            reference_size: 2000,
            shifts: Shift::all(),
            severities: (1..=shifts::MAX_SEVERITY).collect(),
            seed: 0,
            detector: DriftOptions::default(),
        }
    }
}

/// Detection rates of one shift at one severity (severity 0: clean windows).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRow {
    /// Shift name, `clean` for the false-alarm row.
    pub shift: String,
    pub severity: u8,
    /// The shift's parameter at this severity (NaN for clean windows).
    pub parameter: f64,
    /// Windows tested.
    pub windows: usize,
    /// The model's accuracy on these windows' images.
    pub accuracy: f64,
    /// Share of windows flagged, per method in [`Method::ALL`] order.
    pub rates: [f64; 3],
}

/// The outcome of [`detection_experiment`].
#[derive(Debug, Clone)]
pub struct DetectionResults {
    /// The clean row first, then one row per shift and severity.
    pub rows: Vec<DetectionRow>,
    pub window: usize,
    pub alpha: f64,
    /// Wall time of the whole experiment.
    pub seconds: f64,
}

impl DetectionResults {
    /// The false-alarm row (clean windows).
    pub fn clean(&self) -> Option<&DetectionRow> {
        self.rows.iter().find(|r| r.severity == 0)
    }

    /// False-alarm rate of `method` on clean windows.
    pub fn false_alarm_rate(&self, method: Method) -> Option<f64> {
        let index = Method::ALL.iter().position(|&m| m == method)?;
        self.clean().map(|r| r.rates[index])
    }

    /// Every row, detection rates per method.
    pub fn table(&self) -> Result<Table> {
        use polars::prelude::Column;
        let rows = &self.rows;
        let mut columns = vec![
            Column::new(
                "shift".into(),
                rows.iter().map(|r| r.shift.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "severity".into(),
                rows.iter().map(|r| r.severity as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                "parameter".into(),
                rows.iter().map(|r| r.parameter).collect::<Vec<_>>(),
            ),
            Column::new(
                "windows".into(),
                rows.iter().map(|r| r.windows as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "accuracy".into(),
                rows.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
            ),
        ];
        for (i, m) in Method::ALL.iter().enumerate() {
            columns.push(Column::new(
                m.name().into(),
                rows.iter().map(|r| r.rates[i]).collect::<Vec<_>>(),
            ));
        }
        Table::from_columns(
            format!(
                "Detection rate per method (windows of {}, α = {}; severity 0 = clean windows: false-alarm rate; {:.0} s)",
                self.window, self.alpha, self.seconds
            ),
            columns,
        )
    }

    /// One panel per method (detection rate vs severity, one line per shift, severity 0
    /// = the false-alarm rate on clean windows, a flat line at α) and one of the model's
    /// accuracy.
    pub fn figure(&self) -> Result<Figure> {
        let clean = self.clean();
        let shift_names: Vec<&str> =
            self.rows
                .iter()
                .filter(|r| r.severity > 0)
                .fold(Vec::new(), |mut names, r| {
                    if !names.contains(&r.shift.as_str()) {
                        names.push(r.shift.as_str());
                    }
                    names
                });
        let series = |value: &dyn Fn(&DetectionRow) -> f64| -> Vec<Series> {
            shift_names
                .iter()
                .map(|&name| {
                    let points = clean
                        .into_iter()
                        .chain(self.rows.iter().filter(|r| r.shift == name))
                        .map(|r| (r.severity as f64, value(r)))
                        .collect();
                    Series::new(name, points)
                })
                .collect()
        };
        let mut panels: Vec<(&str, &str, Vec<Series>)> = Method::ALL
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let title = match m {
                    Method::Ks => "KS on embeddings: detection rate",
                    Method::Mmd => "MMD on embeddings: detection rate",
                    Method::ChiSquare => "χ² on predictions: detection rate",
                };
                let mut lines = series(&|r: &DetectionRow| r.rates[i]);
                let top = self.rows.iter().map(|r| r.severity).max().unwrap_or(1) as f64;
                lines.push(Series::new(
                    format!("α = {}", self.alpha),
                    vec![(0.0, self.alpha), (top, self.alpha)],
                ));
                (title, "severity", lines)
            })
            .collect();
        panels.push(("model accuracy", "severity", series(&|r| r.accuracy)));
        plot::lines("drift_detection", &panels)
    }
}

/// Splits `set` at random into a reference part of `reference_size` examples and the
/// rest (the pool production windows are drawn from), disjoint.
pub fn split_reference(
    set: &ImageSet,
    reference_size: usize,
    seed: u64,
) -> Result<(ImageSet, ImageSet)> {
    if reference_size >= set.len() {
        return Err(Error::config(
            "drift.reference_size",
            format!(
                "{reference_size} reference images leave none of the {} for windows",
                set.len()
            ),
        ));
    }
    let mut order: Vec<i64> = (0..set.len() as i64).collect();
    Rng::new(seed, 0x5245_4645).shuffle(&mut order);
    let (reference, pool) = order.split_at(reference_size);
    Ok((set.select(reference), set.select(pool)))
}

/// Positions of window `index`: `size` of `0..pool_len` drawn without replacement.
pub fn window_indices(pool_len: usize, size: usize, seed: u64, index: u64) -> Result<Vec<usize>> {
    if size > pool_len {
        return Err(Error::config(
            "drift.window",
            format!("a window of {size} images needs a pool at least that large, got {pool_len}"),
        ));
    }
    let mut order: Vec<usize> = (0..pool_len).collect();
    let mut rng = Rng::new(seed, 0x5749_4E00 + index);
    // A partial Fisher–Yates shuffle: only the first `size` positions are needed.
    for i in 0..size {
        let j = i + rng.below(pool_len - i);
        order.swap(i, j);
    }
    order.truncate(size);
    Ok(order)
}

/// The examples of `pool` at [`window_indices`].
pub fn draw_window(pool: &ImageSet, size: usize, seed: u64, index: u64) -> Result<ImageSet> {
    let indices = window_indices(pool.len(), size, seed, index)?;
    Ok(pool.select(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>()))
}

/// For each shift × severity, `repeats` windows of `window` images drawn from `eval_set`
/// (after setting `reference_size` of them aside as the detector's reference) are
/// shifted and tested; plus `clean_windows` unshifted windows for the false-alarm rate.
/// Window `r` uses the same images for every shift and severity (common random numbers:
/// the curves differ by the shift only).
pub fn detection_experiment(
    model: &Model,
    norm: &Normalization,
    eval_set: &ImageSet,
    options: &ExperimentOptions,
) -> Result<DetectionResults> {
    let started = Instant::now();
    let (reference, pool) = split_reference(eval_set, options.reference_size, options.seed)?;
    let detector =
        DriftDetector::fit_images(model, norm, &reference.images, options.detector.clone())?;
    let mut rows = vec![clean_row(model, norm, &detector, &pool, options)?];
    for shift in &options.shifts {
        for &severity in &options.severities {
            rows.push(shifted_row(
                model, norm, &detector, &pool, shift, severity, options,
            )?);
        }
    }
    Ok(DetectionResults {
        rows,
        window: options.window,
        alpha: options.detector.alpha,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Detection counts and accuracy accumulated over windows.
#[derive(Default)]
struct Tally {
    windows: usize,
    flagged: [usize; 3],
    correct: usize,
    images: usize,
}

impl Tally {
    /// Tests one window, given the model's outputs on it and its labels.
    fn add(
        &mut self,
        detector: &DriftDetector,
        outputs: &ModelOutputs,
        labels: &[i64],
        seed: u64,
    ) -> Result<()> {
        let num_classes = detector.reference_counts.len();
        let report = detector.test(&Window::from_outputs(outputs, num_classes)?, seed)?;
        for (count, verdict) in self.flagged.iter_mut().zip(report.verdicts()) {
            *count += verdict.drift as usize;
        }
        self.correct += labels
            .iter()
            .zip(&outputs.predictions)
            .filter(|(a, b)| a == b)
            .count();
        self.images += labels.len();
        self.windows += 1;
        Ok(())
    }

    fn row(&self, shift: String, severity: u8, parameter: f64) -> DetectionRow {
        let n = self.windows.max(1) as f64;
        DetectionRow {
            shift,
            severity,
            parameter,
            windows: self.windows,
            accuracy: self.correct as f64 / self.images.max(1) as f64,
            rates: self.flagged.map(|f| f as f64 / n),
        }
    }
}

/// Seed of window `index`'s test (and shift), derived from the experiment's seed.
fn window_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed, 0x5345_4544 + index).next_u64()
}

/// Clean windows are rows of the pool's outputs, computed once: the model sees each
/// image alone (evaluation mode), so a window's outputs do not depend on its batch.
fn clean_row(
    model: &Model,
    norm: &Normalization,
    detector: &DriftDetector,
    pool: &ImageSet,
    options: &ExperimentOptions,
) -> Result<DetectionRow> {
    let mut tally = Tally::default();
    if options.clean_windows > 0 {
        let outputs = model_outputs(model, norm, &pool.images)?;
        let labels = pool.label_vec();
        for r in 0..options.clean_windows as u64 {
            let idx = window_indices(pool.len(), options.window, options.seed, r)?;
            let window_labels: Vec<i64> = idx.iter().map(|&i| labels[i]).collect();
            tally.add(
                detector,
                &outputs.select(&idx)?,
                &window_labels,
                window_seed(options.seed, r),
            )?;
        }
    }
    Ok(tally.row("clean".into(), 0, f64::NAN))
}

fn shifted_row(
    model: &Model,
    norm: &Normalization,
    detector: &DriftDetector,
    pool: &ImageSet,
    shift: &Shift,
    severity: u8,
    options: &ExperimentOptions,
) -> Result<DetectionRow> {
    let mut tally = Tally::default();
    for r in 0..options.repeats as u64 {
        let seed = window_seed(options.seed, r);
        let set = match shift {
            Shift::ClassPrior { dominant } => {
                shifts::prior_shift(pool, dominant, severity, options.window, seed)?
            }
            _ => shifts::apply(
                &draw_window(pool, options.window, options.seed, r)?,
                shift,
                severity,
                seed,
            )?,
        };
        let outputs = model_outputs(model, norm, &set.images)?;
        tally.add(detector, &outputs, &set.label_vec(), seed)?;
    }
    Ok(tally.row(shift.name(), severity, shift.parameter(severity)?))
}
