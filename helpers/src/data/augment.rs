//! Label-preserving augmentation, applied per example while a training batch is built:
//! random crop after zero padding, horizontal flip, random erasing (Zhong et al. 2017).
//! Written on raw pixels in Rust so every choice comes from the run's seeded [`Rng`].
use crate::config::AugmentConfig;
use crate::rng::Rng;

/// Writes one augmented `[C, H, W]` image from `src` (u8) into `dst` (f32, raw 0..255).
pub fn augment_into(
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
    if cfg.random_erasing > 0.0 && rng.uniform() < cfg.random_erasing {
        erase(dst, shape, rng);
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
        };
        let mut out = vec![0f32; 12];
        augment_into(&img(), &mut out, [1, 3, 4], &cfg, &mut Rng::new(0, 0));
        assert_eq!(out, (0..12).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn flip_mirrors_rows_and_crop_shifts_in_zeros() {
        let flip_only = AugmentConfig {
            crop_padding: 0,
            horizontal_flip: true,
            random_erasing: 0.0,
        };
        let mut flipped = 0;
        for seed in 0..20 {
            let mut out = vec![0f32; 12];
            augment_into(
                &img(),
                &mut out,
                [1, 3, 4],
                &flip_only,
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
        };
        for seed in 0..20 {
            let mut out = vec![0f32; 12];
            augment_into(&img(), &mut out, [1, 3, 4], &crop, &mut Rng::new(seed, 0));
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
        };
        let mut out = vec![0f32; 28 * 28];
        augment_into(
            &[0u8; 28 * 28],
            &mut out,
            [1, 28, 28],
            &cfg,
            &mut Rng::new(5, 0),
        );
        let erased = out.iter().filter(|&&v| v == 127.5).count();
        assert!(
            (15..=270).contains(&erased),
            "2–33 % of 784 pixels, found {erased}"
        );
    }
}
