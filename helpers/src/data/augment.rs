//! Augmentation of training data.
//!
//! Per example, while a batch is built, label-preserving: random crop after zero
//! padding, horizontal flip, colour jitter (brightness, contrast, saturation, as
//! torchvision's `ColorJitter`), Cutout (DeVries & Taylor 2017) and random erasing
//! (Zhong et al. 2017), in that order. Written on raw pixels in Rust so every choice
//! comes from the run's seeded [`Rng`].
//!
//! Per batch, label-mixing (mixup, CutMix) is [`super::mixing`]'s.
use super::config::AugmentConfig;
use crate::rng::Rng;

/// Writes one augmented `[C, H, W]` image from `src` (u8) into `dst` (f32, raw 0..255):
/// crop and flip, colour jitter, Cutout, random erasing. `fill` is the raw (0..255) value
/// per channel that Cutout writes: the training mean, which normalises to 0 as in the
/// paper. An augmentation that is off draws nothing from `rng`, so switching one on
/// never changes the draws of the others.
pub fn augment_into(
    src: &[u8],
    dst: &mut [f32],
    shape: [usize; 3],
    cfg: &AugmentConfig,
    fill: &[f32],
    rng: &mut Rng,
) {
    crop_and_flip(src, dst, shape, cfg, rng);
    color_jitter(dst, shape, cfg, rng);
    if cfg.cutout_size > 0 {
        cutout(dst, shape, cfg.cutout_size, fill, rng);
    }
    if cfg.random_erasing > 0.0 && rng.uniform() < cfg.random_erasing {
        erase(dst, shape, rng);
    }
}

/// Random crop after zero padding, and the horizontal flip.
fn crop_and_flip(
    src: &[u8],
    dst: &mut [f32],
    shape: [usize; 3],
    cfg: &AugmentConfig,
    rng: &mut Rng,
) {
    let [c, h, w] = shape;
    let pad = cfg.crop_padding as i64;
    let (dy, dx) = if pad > 0 {
        (
            rng.below(2 * pad as usize + 1) as i64 - pad,
            rng.below(2 * pad as usize + 1) as i64 - pad,
        )
    } else {
        (0, 0)
    };
    let flip = cfg.horizontal_flip && rng.uniform() < 0.5;
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let sy = y as i64 + dy;
                let sx0 = if flip { (w - 1 - x) as i64 } else { x as i64 };
                let sx = sx0 + dx;
                let inside = sy >= 0 && sy < h as i64 && sx >= 0 && sx < w as i64;
                dst[(ch * h + y) * w + x] = if inside {
                    src[(ch * h + sy as usize) * w + sx as usize] as f32
                } else {
                    0.0
                };
            }
        }
    }
}

/// Colour jitter as torchvision's `ColorJitter`: each enabled factor is drawn from
/// [1 − s, 1 + s] and the three adjustments run in a random order, each clamped to the
/// pixel range. Saturation needs colour and is skipped on grey images.
fn color_jitter(img: &mut [f32], shape: [usize; 3], cfg: &AugmentConfig, rng: &mut Rng) {
    let strengths = [cfg.brightness, cfg.contrast, cfg.saturation];
    if strengths.iter().all(|&s| s <= 0.0) {
        return;
    }
    let mut order = [0usize, 1, 2];
    rng.shuffle(&mut order);
    for op in order {
        let s = strengths[op];
        if s <= 0.0 {
            continue;
        }
        let factor = (1.0 + s * (2.0 * rng.uniform() - 1.0)).max(0.0) as f32;
        match op {
            0 => img
                .iter_mut()
                .for_each(|v| *v = (*v * factor).clamp(0.0, 255.0)),
            1 => {
                let mean = grey(img, shape).iter().sum::<f32>() / (shape[1] * shape[2]) as f32;
                blend(img, |_| mean, factor);
            }
            _ if shape[0] == 3 => {
                let g = grey(img, shape);
                let plane = g.len();
                blend(img, |i| g[i % plane], factor);
            }
            _ => {}
        }
    }
}

/// `v ← f·v + (1 − f)·other(i)`, clamped to 0..255 (torchvision's `_blend`).
fn blend(img: &mut [f32], other: impl Fn(usize) -> f32, f: f32) {
    for (i, v) in img.iter_mut().enumerate() {
        *v = (f * *v + (1.0 - f) * other(i)).clamp(0.0, 255.0);
    }
}

/// Grey level of each pixel (ITU-R 601 weights for RGB, as torchvision), `[H·W]`.
fn grey(img: &[f32], [c, h, w]: [usize; 3]) -> Vec<f32> {
    let plane = h * w;
    if c != 3 {
        return img[..plane].to_vec();
    }
    (0..plane)
        .map(|i| 0.299 * img[i] + 0.587 * img[plane + i] + 0.114 * img[2 * plane + i])
        .collect()
}

/// Cutout: a `size`×`size` square centred on a uniformly drawn pixel, clipped at the
/// border (so it may be smaller), set to `fill` per channel (mid-grey without one).
fn cutout(img: &mut [f32], [c, h, w]: [usize; 3], size: usize, fill: &[f32], rng: &mut Rng) {
    let (cy, cx) = (rng.below(h), rng.below(w));
    let (y0, y1) = (cy.saturating_sub(size / 2), (cy + size - size / 2).min(h));
    let (x0, x1) = (cx.saturating_sub(size / 2), (cx + size - size / 2).min(w));
    for ch in 0..c {
        let value = fill.get(ch).copied().unwrap_or(127.5);
        for y in y0..y1 {
            img[(ch * h + y) * w + x0..(ch * h + y) * w + x1].fill(value);
        }
    }
}

/// Erases one rectangle of 2–33 % of the area, aspect ratio 0.3–3.3 (the paper's
/// defaults), filling it with mid-grey so it reads as "no information" after normalising.
fn erase(dst: &mut [f32], [c, h, w]: [usize; 3], rng: &mut Rng) {
    let area = (h * w) as f64 * (0.02 + 0.31 * rng.uniform());
    let log_ratio = (0.3f64).ln() + ((3.3f64).ln() - (0.3f64).ln()) * rng.uniform();
    let ratio = log_ratio.exp();
    let eh = ((area * ratio).sqrt().round() as usize).clamp(1, h);
    let ew = ((area / ratio).sqrt().round() as usize).clamp(1, w);
    let (y0, x0) = (rng.below(h - eh + 1), rng.below(w - ew + 1));
    for ch in 0..c {
        for y in y0..y0 + eh {
            dst[(ch * h + y) * w + x0..(ch * h + y) * w + x0 + ew].fill(127.5);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Vec<u8> {
        (0..12).collect() // 1×3×4
    }

    #[test]
    fn off_is_identity() {
        let cfg = AugmentConfig {
            crop_padding: 0,
            horizontal_flip: false,
            random_erasing: 0.0,
            ..AugmentConfig::OFF
        };
        let mut out = vec![0f32; 12];
        augment_into(&img(), &mut out, [1, 3, 4], &cfg, &[], &mut Rng::new(0, 0));
        assert_eq!(out, (0..12).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn flip_mirrors_rows_and_crop_shifts_in_zeros() {
        let flip_only = AugmentConfig {
            crop_padding: 0,
            horizontal_flip: true,
            random_erasing: 0.0,
            ..AugmentConfig::OFF
        };
        let mut flipped = 0;
        for seed in 0..20 {
            let mut out = vec![0f32; 12];
            augment_into(
                &img(),
                &mut out,
                [1, 3, 4],
                &flip_only,
                &[],
                &mut Rng::new(seed, 0),
            );
            if out[..4] == [3.0, 2.0, 1.0, 0.0] {
                flipped += 1;
            } else {
                assert_eq!(out[..4], [0.0, 1.0, 2.0, 3.0]);
            }
        }
        assert!(
            (4..=16).contains(&flipped),
            "flip happens about half the time: {flipped}/20"
        );

        let crop = AugmentConfig {
            crop_padding: 1,
            horizontal_flip: false,
            random_erasing: 0.0,
            ..AugmentConfig::OFF
        };
        for seed in 0..20 {
            let mut out = vec![0f32; 12];
            augment_into(
                &img(),
                &mut out,
                [1, 3, 4],
                &crop,
                &[],
                &mut Rng::new(seed, 0),
            );
            let kept: f32 = out.iter().sum();
            assert!(
                kept <= 66.0 && out.iter().all(|v| (0.0..12.0).contains(v)),
                "{out:?}"
            );
        }
    }

    #[test]
    fn erasing_fills_a_rectangle() {
        let cfg = AugmentConfig {
            crop_padding: 0,
            horizontal_flip: false,
            random_erasing: 1.0,
            ..AugmentConfig::OFF
        };
        let mut out = vec![0f32; 28 * 28];
        augment_into(
            &[0u8; 28 * 28],
            &mut out,
            [1, 28, 28],
            &cfg,
            &[],
            &mut Rng::new(5, 0),
        );
        let erased = out.iter().filter(|&&v| v == 127.5).count();
        assert!(
            (15..=270).contains(&erased),
            "2–33 % of 784 pixels, found {erased}"
        );
    }

    fn natural(
        brightness: f64,
        contrast: f64,
        saturation: f64,
        cutout_size: usize,
    ) -> AugmentConfig {
        AugmentConfig {
            brightness,
            contrast,
            saturation,
            cutout_size,
            ..AugmentConfig::OFF
        }
    }

    /// A 3×8×8 image with varied colours.
    fn rgb() -> Vec<u8> {
        (0..3 * 64).map(|i| (i * 37 % 256) as u8).collect()
    }

    fn run(natural: &AugmentConfig, fill: &[f32], seed: u64) -> Vec<f32> {
        let mut out = vec![0f32; 3 * 64];
        augment_into(
            &rgb(),
            &mut out,
            [3, 8, 8],
            natural,
            fill,
            &mut Rng::new(seed, 0),
        );
        out
    }

    #[test]
    fn natural_off_draws_exactly_as_before() {
        let cfg = AugmentConfig {
            crop_padding: 2,
            horizontal_flip: true,
            random_erasing: 0.5,
            ..AugmentConfig::OFF
        };
        for seed in 0..10 {
            let (mut a, mut b) = (vec![0f32; 192], vec![0f32; 192]);
            let (mut ra, mut rb) = (Rng::new(seed, 3), Rng::new(seed, 3));
            augment_into(&rgb(), &mut a, [3, 8, 8], &cfg, &[1.0, 2.0, 3.0], &mut ra);
            // The geometric steps alone, by hand: colour jitter and Cutout add no draw.
            crop_and_flip(&rgb(), &mut b, [3, 8, 8], &cfg, &mut rb);
            if rb.uniform() < cfg.random_erasing {
                erase(&mut b, [3, 8, 8], &mut rb);
            }
            assert_eq!(a, b);
            assert_eq!(ra.next_u64(), rb.next_u64(), "same number of draws");
        }
    }

    #[test]
    fn brightness_scales_every_pixel_by_one_factor_in_range() {
        for seed in 0..20 {
            let out = run(&natural(0.4, 0.0, 0.0, 0), &[], seed);
            let src = rgb();
            let (i, &v) = src.iter().enumerate().find(|(_, &v)| v > 100).unwrap();
            let f = out[i] / v as f32;
            assert!((0.6..=1.4).contains(&f), "factor {f}");
            for (o, &p) in out.iter().zip(&src) {
                assert!((*o - (p as f32 * f).min(255.0)).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn colour_jitter_stays_in_pixel_range_and_is_deterministic() {
        let cfg = natural(1.0, 1.0, 1.0, 0);
        let mut changed = 0;
        for seed in 0..30 {
            let out = run(&cfg, &[], seed);
            assert!(out.iter().all(|v| (0.0..=255.0).contains(v)), "{out:?}");
            assert_eq!(out, run(&cfg, &[], seed), "same seed, same image");
            changed += usize::from(out != rgb().iter().map(|&v| v as f32).collect::<Vec<_>>());
        }
        assert!(changed >= 29, "jitter changes images: {changed}/30");
    }

    #[test]
    fn zero_saturation_makes_grey_and_grey_images_skip_it() {
        // Saturation factor 0 (strength 1, drawn at the low end) gives each pixel its grey
        // value in all three channels; check the blend itself.
        let mut img: Vec<f32> = rgb().iter().map(|&v| v as f32).collect();
        let g = grey(&img, [3, 8, 8]);
        blend(&mut img, |i| g[i % 64], 0.0);
        for i in 0..64 {
            assert!((img[i] - img[64 + i]).abs() < 1e-4 && (img[i] - img[128 + i]).abs() < 1e-4);
        }
        let mut one = vec![50f32; 64];
        color_jitter(
            &mut one,
            [1, 8, 8],
            &natural(0.0, 0.0, 1.0, 0),
            &mut Rng::new(1, 0),
        );
        assert_eq!(one, vec![50f32; 64], "saturation needs colour");
    }

    #[test]
    fn cutout_fills_a_clipped_square_with_the_mean() {
        let fill = [10.0f32, 20.0, 30.0];
        let mut sizes = Vec::new();
        for seed in 0..40 {
            let out = run(&natural(0.0, 0.0, 0.0, 4), &fill, seed);
            let filled: Vec<usize> = (0..64).filter(|&i| out[i] == 10.0).collect();
            assert!(filled
                .iter()
                .all(|&i| out[64 + i] == 20.0 && out[128 + i] == 30.0));
            assert!(!filled.is_empty() && filled.len() <= 16, "{}", filled.len());
            sizes.push(filled.len());
        }
        assert!(sizes.contains(&16), "an unclipped square is 4×4: {sizes:?}");
        assert!(
            sizes.iter().any(|&n| n < 16),
            "squares at the border are clipped"
        );
    }
}
