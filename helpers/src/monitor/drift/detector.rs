//! [`DriftDetector`]: fitted once on reference images, then tests windows of new ones
//! (KS per embedding feature, MMD on embeddings, χ² on predicted classes).
use super::*;

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

    /// Classes the χ² test counts predictions over.
    pub fn num_classes(&self) -> usize {
        self.reference_counts.len()
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
