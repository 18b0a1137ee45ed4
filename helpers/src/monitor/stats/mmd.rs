//! Maximum mean discrepancy with a Gaussian kernel and a permutation p-value.
use super::too_few;
use crate::rng::Rng;
use crate::{Error, Result};

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
