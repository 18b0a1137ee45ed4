//! Simulated data drift: corruptions of `u8` images `[N, C, H, W]` at five severities,
//! and class-prior shift, for testing drift detectors and retraining on known shifts.
//!
//! The pixel corruptions follow Hendrycks & Dietterich (2019, "Benchmarking Neural Network
//! Robustness to Common Corruptions and Perturbations"), with the parameters of their
//! 32×32 variant CIFAR-10-C (`make_cifar_c.py`), the closest to Fashion-MNIST's 28×28.
//! Pixels are mapped to [0, 1], corrupted, then rounded and clipped back to 0..=255.
//!
//! | shift | operation on x ∈ [0, 1] | severity 1 → 5 |
//! |---|---|---|
//! | `brightness` | `x + c` (ImageNet-C's V channel of HSV; all channels for colour) | c = 0.05, 0.10, 0.15, 0.20, 0.30 |
//! | `contrast` | `(x − m)·c + m`, m the image's mean | c = 0.75, 0.50, 0.40, 0.30, 0.15 |
//! | `noise` | `x + N(0, c²)` per pixel | c = 0.04, 0.06, 0.08, 0.09, 0.10 |
//! | `blur` | Gaussian filter, σ = c, kernel radius ⌈4σ⌉, edges replicated (skimage's `gaussian`) | σ = 0.4, 0.6, 0.7, 0.8, 1.0 |
//! | `rotation` | rotation by ±c degrees about the centre (sign drawn per image), bilinear, zero fill | c = 6, 12, 18, 24, 30 |
//! | `prior` | resampling so the dominant classes gain weight: `π' = (1 − λ)·π + λ·uniform(dominant)` | λ = 0.10, 0.20, 0.35, 0.50, 0.75 |
//!
//! Rotation is not in ImageNet-C (it is one of ImageNet-P's perturbations); the angles are
//! ours. Every function is pure and deterministic given its seed; labels are unchanged
//! except by the prior shift, which changes which examples are present.
use crate::data::ImageSet;
use crate::rng::Rng;
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// Severities run from 1 (mild) to this (strongest).
pub const MAX_SEVERITY: u8 = 5;

const BRIGHTNESS: [f64; 5] = [0.05, 0.10, 0.15, 0.20, 0.30];
const CONTRAST: [f64; 5] = [0.75, 0.50, 0.40, 0.30, 0.15];
const NOISE: [f64; 5] = [0.04, 0.06, 0.08, 0.09, 0.10];
const BLUR: [f64; 5] = [0.4, 0.6, 0.7, 0.8, 1.0];
const ROTATION: [f64; 5] = [6.0, 12.0, 18.0, 24.0, 30.0];
const PRIOR: [f64; 5] = [0.10, 0.20, 0.35, 0.50, 0.75];

/// Random streams, one per purpose, so one seed drives independent choices.
const NOISE_STREAM: u64 = 0x5348_4E4F;
const ROTATION_STREAM: u64 = 0x5348_524F;
const PRIOR_STREAM: u64 = 0x5348_5052;

/// A kind of simulated drift (see the module documentation for the parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shift {
    Brightness,
    Contrast,
    GaussianNoise,
    GaussianBlur,
    Rotation,
    /// Class-prior shift towards these classes (label shift: images unchanged, mix changed).
    ClassPrior {
        dominant: Vec<i64>,
    },
}

impl Shift {
    /// Every shift, the prior shift towards class 0.
    pub fn all() -> Vec<Shift> {
        vec![
            Shift::Brightness,
            Shift::Contrast,
            Shift::GaussianNoise,
            Shift::GaussianBlur,
            Shift::Rotation,
            Shift::ClassPrior { dominant: vec![0] },
        ]
    }

    /// Short name, as [`Shift::parse`] reads it: `brightness`, `contrast`, `noise`,
    /// `blur`, `rotation`, `prior` (`prior:3,5` for other dominant classes than 0).
    pub fn name(&self) -> String {
        match self {
            Shift::Brightness => "brightness".into(),
            Shift::Contrast => "contrast".into(),
            Shift::GaussianNoise => "noise".into(),
            Shift::GaussianBlur => "blur".into(),
            Shift::Rotation => "rotation".into(),
            Shift::ClassPrior { dominant } if dominant.as_slice() == [0] => "prior".into(),
            Shift::ClassPrior { dominant } => {
                let list: Vec<String> = dominant.iter().map(|c| c.to_string()).collect();
                format!("prior:{}", list.join(","))
            }
        }
    }

    /// Reads a name written by [`Shift::name`].
    pub fn parse(text: &str) -> Result<Shift> {
        let text = text.trim().to_ascii_lowercase();
        let shift = match text.as_str() {
            "brightness" => Shift::Brightness,
            "contrast" => Shift::Contrast,
            "noise" | "gaussian_noise" => Shift::GaussianNoise,
            "blur" | "gaussian_blur" => Shift::GaussianBlur,
            "rotation" | "rotate" => Shift::Rotation,
            "prior" => Shift::ClassPrior { dominant: vec![0] },
            other => match other.strip_prefix("prior:") {
                Some(list) => Shift::ClassPrior {
                    dominant: parse_classes(list)?,
                },
                None => {
                    return Err(Error::config(
                        "shift",
                        format!("unknown shift `{other}`; allowed: brightness, contrast, noise, blur, rotation, prior, prior:<c1,c2,…>"),
                    ))
                }
            },
        };
        Ok(shift)
    }

    /// The documented parameter `c` (or λ) of `severity`.
    pub fn parameter(&self, severity: u8) -> Result<f64> {
        let table = match self {
            Shift::Brightness => &BRIGHTNESS,
            Shift::Contrast => &CONTRAST,
            Shift::GaussianNoise => &NOISE,
            Shift::GaussianBlur => &BLUR,
            Shift::Rotation => &ROTATION,
            Shift::ClassPrior { .. } => &PRIOR,
        };
        check_severity(severity)?;
        Ok(table[severity as usize - 1])
    }

    /// True for the pixel corruptions (every shift but the class-prior one).
    pub fn is_pixel_shift(&self) -> bool {
        !matches!(self, Shift::ClassPrior { .. })
    }
}

fn parse_classes(list: &str) -> Result<Vec<i64>> {
    let classes: std::result::Result<Vec<i64>, _> =
        list.split(',').map(|c| c.trim().parse::<i64>()).collect();
    match classes {
        Ok(c) if !c.is_empty() && c.iter().all(|&v| v >= 0) => Ok(c),
        _ => Err(Error::config(
            "shift",
            format!("`prior:{list}`: expected class indices ≥ 0 separated by commas"),
        )),
    }
}

fn check_severity(severity: u8) -> Result<()> {
    if (1..=MAX_SEVERITY).contains(&severity) {
        Ok(())
    } else {
        Err(Error::config(
            "severity",
            format!("{severity} is out of range: severities run from 1 to {MAX_SEVERITY}"),
        ))
    }
}

/// `set` with `shift` applied at `severity` (1..=5), deterministically for `seed`.
/// Pixel shifts keep every example and label in order; the prior shift resamples as many
/// examples as `set` holds (see [`prior_shift`]).
pub fn apply(set: &ImageSet, shift: &Shift, severity: u8, seed: u64) -> Result<ImageSet> {
    let c = shift.parameter(severity)?;
    let transform: fn(&mut Pixels, f64, u64) = match shift {
        Shift::Brightness => brightness,
        Shift::Contrast => contrast,
        Shift::GaussianNoise => gaussian_noise,
        Shift::GaussianBlur => gaussian_blur,
        Shift::Rotation => rotation,
        Shift::ClassPrior { dominant } => {
            return prior_shift(set, dominant, severity, set.len(), seed)
        }
    };
    let mut pixels = Pixels::of(set)?;
    transform(&mut pixels, c, seed);
    Ok(ImageSet {
        images: pixels.to_tensor(),
        labels: set.labels.copy(),
    })
}

/// `n` examples of `set` resampled so that `dominant` classes gain weight: the class mix
/// becomes `π' = (1 − λ)·π + λ·uniform(dominant)` (π the mix of `set`, λ by severity),
/// per-class counts are `n·π'` rounded by largest remainder, examples of a class are drawn
/// without replacement while it has some left (then from a reshuffled copy, so duplicates
/// appear only when a class is asked for more examples than it has), and the result is
/// shuffled.
pub fn prior_shift(
    set: &ImageSet,
    dominant: &[i64],
    severity: u8,
    n: usize,
    seed: u64,
) -> Result<ImageSet> {
    check_severity(severity)?;
    let lambda = PRIOR[severity as usize - 1];
    let labels = set.label_vec();
    let by_class = indices_by_class(&labels, dominant)?;
    let weights = shifted_prior(&by_class, dominant, lambda, labels.len());
    let counts = largest_remainder(&weights, n);
    let mut rng = Rng::new(seed, PRIOR_STREAM);
    let mut chosen: Vec<i64> = Vec::with_capacity(n);
    for (class_indices, &count) in by_class.iter().zip(&counts) {
        chosen.extend(draw(class_indices, count, &mut rng));
    }
    rng.shuffle(&mut chosen);
    Ok(set.select(&chosen))
}

/// Indices of each class 0..K (K covering every label and dominant class); refuses a
/// dominant class without examples, which could not gain weight.
fn indices_by_class(labels: &[i64], dominant: &[i64]) -> Result<Vec<Vec<i64>>> {
    if dominant.is_empty() {
        return Err(Error::config(
            "shift.prior",
            "needs at least one dominant class",
        ));
    }
    let top = labels.iter().chain(dominant).copied().max().unwrap_or(0);
    let mut by_class = vec![Vec::new(); top.max(0) as usize + 1];
    for (i, &l) in labels.iter().enumerate() {
        if l >= 0 {
            by_class[l as usize].push(i as i64);
        }
    }
    if let Some(&c) = dominant
        .iter()
        .find(|&&c| c < 0 || by_class[c as usize].is_empty())
    {
        return Err(Error::config(
            "shift.prior",
            format!("dominant class {c} has no example in the set to resample"),
        ));
    }
    Ok(by_class)
}

/// `π'_c = (1 − λ)·π_c + λ·[c ∈ dominant]/|dominant|`.
fn shifted_prior(by_class: &[Vec<i64>], dominant: &[i64], lambda: f64, total: usize) -> Vec<f64> {
    let mut unique = dominant.to_vec();
    unique.sort_unstable();
    unique.dedup();
    (0..by_class.len())
        .map(|c| {
            let base = by_class[c].len() as f64 / total.max(1) as f64;
            let boost = if unique.contains(&(c as i64)) {
                lambda / unique.len() as f64
            } else {
                0.0
            };
            (1.0 - lambda) * base + boost
        })
        .collect()
}

/// Integer counts summing to `n`, proportional to `weights` (which sum to 1), by the
/// largest-remainder method (ties to the lower class index).
fn largest_remainder(weights: &[f64], n: usize) -> Vec<usize> {
    let exact: Vec<f64> = weights.iter().map(|w| w * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let assigned: usize = counts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &c in order.iter().cycle().take(n.saturating_sub(assigned)) {
        counts[c] += 1;
    }
    counts
}

/// `count` indices from `pool`: a shuffled pass without replacement, repeated as needed.
fn draw(pool: &[i64], count: usize, rng: &mut Rng) -> Vec<i64> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count && !pool.is_empty() {
        let mut pass = pool.to_vec();
        rng.shuffle(&mut pass);
        out.extend(pass.into_iter().take(count - out.len()));
    }
    out
}

// ─────────────────────────────── pixel corruptions ───────────────────────────────

/// Images as floats in [0, 1], `[N, C, H, W]` row-major.
struct Pixels {
    values: Vec<f64>,
    shape: [usize; 4],
}

impl Pixels {
    fn of(set: &ImageSet) -> Result<Pixels> {
        let size = set.images.size();
        if size.len() != 4 || set.images.kind() != Kind::Uint8 {
            return Err(Error::Shape {
                op: "monitor::shifts",
                expected: "u8 images [N, C, H, W]".into(),
                got: size,
            });
        }
        let bytes = Vec::<u8>::try_from(set.images.contiguous().view([-1]))?;
        Ok(Pixels {
            values: bytes.iter().map(|&b| b as f64 / 255.0).collect(),
            shape: [0, 1, 2, 3].map(|i| size[i] as usize),
        })
    }

    fn plane(&self) -> usize {
        self.shape[2] * self.shape[3]
    }

    fn image_len(&self) -> usize {
        self.shape[1] * self.plane()
    }

    /// Rounded and clipped back to `u8`.
    fn to_tensor(&self) -> Tensor {
        let bytes: Vec<u8> = self
            .values
            .iter()
            .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect();
        let [n, c, h, w] = self.shape.map(|d| d as i64);
        Tensor::from_slice(&bytes).view([n, c, h, w])
    }
}

fn brightness(p: &mut Pixels, c: f64, _seed: u64) {
    p.values
        .iter_mut()
        .for_each(|v| *v = (*v + c).clamp(0.0, 1.0));
}

fn contrast(p: &mut Pixels, c: f64, _seed: u64) {
    let len = p.image_len();
    if len == 0 {
        return;
    }
    for image in p.values.chunks_mut(len) {
        let mean = image.iter().sum::<f64>() / len as f64;
        image
            .iter_mut()
            .for_each(|v| *v = ((*v - mean) * c + mean).clamp(0.0, 1.0));
    }
}

fn gaussian_noise(p: &mut Pixels, c: f64, seed: u64) {
    let mut rng = Rng::new(seed, NOISE_STREAM);
    p.values
        .iter_mut()
        .for_each(|v| *v = (*v + c * rng.standard_normal()).clamp(0.0, 1.0));
}

fn gaussian_blur(p: &mut Pixels, sigma: f64, _seed: u64) {
    let kernel = gaussian_kernel(sigma);
    let [_, _, h, w] = p.shape;
    let plane = p.plane();
    if plane == 0 {
        return;
    }
    let mut tmp = vec![0.0; plane];
    for channel in p.values.chunks_mut(plane) {
        // Separable: rows into `tmp`, then columns back into the channel.
        convolve_1d(channel, &mut tmp, &kernel, h, w, false);
        convolve_1d(&tmp, channel, &kernel, h, w, true);
    }
}

/// Normalised weights of a Gaussian of width σ over offsets −r..=r, r = ⌈4σ⌉.
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma).ceil() as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|v| v / total).collect()
}

/// One pass of a centred 1-D filter over a `h × w` plane, along columns when `vertical`;
/// out-of-range neighbours take the edge value.
fn convolve_1d(src: &[f64], dst: &mut [f64], kernel: &[f64], h: usize, w: usize, vertical: bool) {
    let radius = (kernel.len() / 2) as i64;
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, weight) in kernel.iter().enumerate() {
                let d = k as i64 - radius;
                let (yy, xx) = if vertical {
                    ((y as i64 + d).clamp(0, h as i64 - 1) as usize, x)
                } else {
                    (y, (x as i64 + d).clamp(0, w as i64 - 1) as usize)
                };
                acc += weight * src[yy * w + xx];
            }
            dst[y * w + x] = acc;
        }
    }
}

fn rotation(p: &mut Pixels, degrees: f64, seed: u64) {
    let mut rng = Rng::new(seed, ROTATION_STREAM);
    let [_, channels, h, w] = p.shape;
    let (plane, len) = (p.plane(), p.image_len());
    if len == 0 {
        return;
    }
    let mut rotated = vec![0.0; plane];
    for image in p.values.chunks_mut(len) {
        let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
        let angle = (sign * degrees).to_radians();
        for channel in image.chunks_mut(plane).take(channels) {
            rotate_plane(channel, &mut rotated, h, w, angle);
            channel.copy_from_slice(&rotated);
        }
    }
}

/// Rotates a plane by `angle` (radians) about its centre: each output pixel samples the
/// input bilinearly at the inversely rotated position; positions outside the image read 0
/// (the background of Fashion-MNIST).
fn rotate_plane(src: &[f64], dst: &mut [f64], h: usize, w: usize, angle: f64) {
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let at = |y: i64, x: i64| -> f64 {
        if (0..h as i64).contains(&y) && (0..w as i64).contains(&x) {
            src[y as usize * w + x as usize]
        } else {
            0.0
        }
    };
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = (y as f64 - cy, x as f64 - cx);
            let sx = cos * dx - sin * dy + cx;
            let sy = sin * dx + cos * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            dst[y * w + x] = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                + at(y0, x0 + 1) * fx * (1.0 - fy)
                + at(y0 + 1, x0) * (1.0 - fx) * fy
                + at(y0 + 1, x0 + 1) * fx * fy;
        }
    }
}
