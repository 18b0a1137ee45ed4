//! Label-mixing of whole training batches: mixup (Zhang et al. 2018) and CutMix (Yun et
//! al. 2019). A [`BatchMixer`], seeded from (seed, epoch) so a resumed run mixes as an
//! unbroken one, plans each batch ([`MixPlan`]); the image task applies the plan to the
//! images and to the loss.
use crate::rng::Rng;
use tch::{Reduction, Tensor};

/// How one batch is mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixKind {
    /// Pixel-wise blend of two images.
    Mixup,
    /// A box of the partner image pasted in.
    CutMix,
}

/// One batch's mixing: each example `i` is mixed with example `perm[i]`, keeping the
/// share `lambda` of its own image (and of its loss).
#[derive(Debug, Clone, PartialEq)]
pub struct MixPlan {
    pub kind: MixKind,
    /// Share of each example's own image, in [0, 1]; for CutMix, the area outside the box.
    pub lambda: f64,
    /// Partner of each example.
    pub perm: Vec<i64>,
    /// CutMix's box `[y0, y1, x0, x1]` (end-exclusive), the same for the whole batch.
    pub bbox: Option<[usize; 4]>,
}

/// Draws a [`MixPlan`] per batch from the run's seed and the epoch, so a resumed run
/// mixes exactly as an unbroken one.
#[derive(Debug, Clone)]
pub struct BatchMixer {
    mixup_alpha: f64,
    cutmix_alpha: f64,
    rng: Rng,
}

/// Stream of the mixing generator (the loader's streams are the small epoch numbers).
const MIX_STREAM: u64 = 0x6d69_7875_7000_0000;

impl BatchMixer {
    /// A mixer for `epoch`; `None` when both alphas are 0 (mixing off).
    pub fn new(mixup_alpha: f64, cutmix_alpha: f64, seed: u64, epoch: usize) -> Option<BatchMixer> {
        (mixup_alpha > 0.0 || cutmix_alpha > 0.0).then(|| BatchMixer {
            mixup_alpha,
            cutmix_alpha,
            rng: Rng::new(seed, MIX_STREAM + epoch as u64),
        })
    }

    /// The plan of the next batch of `batch` images of `h`×`w` pixels. With both alphas
    /// set, mixup or CutMix with probability ½ each (timm's default switch).
    pub fn plan(&mut self, batch: usize, h: usize, w: usize) -> MixPlan {
        let cutmix = match (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0) {
            (true, true) => self.rng.uniform() < 0.5,
            (false, true) => true,
            _ => false,
        };
        let alpha = if cutmix {
            self.cutmix_alpha
        } else {
            self.mixup_alpha
        };
        let lambda = sample_beta(alpha, &mut self.rng);
        let mut perm: Vec<i64> = (0..batch as i64).collect();
        self.rng.shuffle(&mut perm);
        if !cutmix {
            return MixPlan {
                kind: MixKind::Mixup,
                lambda,
                perm,
                bbox: None,
            };
        }
        let bbox = cut_box(lambda, h, w, &mut self.rng);
        let [y0, y1, x0, x1] = bbox;
        // The box is clipped at the border, so λ is recomputed from the area pasted.
        let area = ((y1 - y0) * (x1 - x0)) as f64 / (h * w).max(1) as f64;
        MixPlan {
            kind: MixKind::CutMix,
            lambda: 1.0 - area,
            perm,
            bbox: Some(bbox),
        }
    }
}

/// CutMix's box: sides √(1 − λ) of the image's, centred on a uniform pixel, clipped.
fn cut_box(lambda: f64, h: usize, w: usize, rng: &mut Rng) -> [usize; 4] {
    let ratio = (1.0 - lambda).max(0.0).sqrt();
    let (ch, cw) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
    let (cy, cx) = (rng.below(h.max(1)), rng.below(w.max(1)));
    [
        cy.saturating_sub(ch / 2),
        (cy + ch / 2).min(h),
        cx.saturating_sub(cw / 2),
        (cx + cw / 2).min(w),
    ]
}

impl MixPlan {
    fn partners(&self, t: &Tensor) -> Tensor {
        let perm = Tensor::from_slice(&self.perm).to_device(t.device());
        t.index_select(0, &perm)
    }

    /// The mixed batch of images `[B, C, H, W]` (no gradient flows into `x`).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let other = self.partners(x);
        match self.bbox {
            None => x * self.lambda + other * (1.0 - self.lambda),
            Some([y0, y1, x0, x1]) => {
                let mixed = x.copy();
                if y1 > y0 && x1 > x0 {
                    let (y0, bh, x0, bw) =
                        (y0 as i64, (y1 - y0) as i64, x0 as i64, (x1 - x0) as i64);
                    let mut window = mixed.narrow(2, y0, bh).narrow(3, x0, bw);
                    window.copy_(&other.narrow(2, y0, bh).narrow(3, x0, bw));
                }
                mixed
            }
        }
    }

    /// λ·CE(logits, y) + (1 − λ)·CE(logits, y\[perm\]), each with label smoothing.
    pub fn loss(&self, logits: &Tensor, y: &Tensor, label_smoothing: f64) -> Tensor {
        let ce = |target: &Tensor| {
            logits.cross_entropy_loss::<Tensor>(
                target,
                None,
                Reduction::Mean,
                -100,
                label_smoothing,
            )
        };
        ce(y) * self.lambda + ce(&self.partners(y)) * (1.0 - self.lambda)
    }

    /// The label that dominates each mixed example (its own when λ ≥ ½): what training
    /// accuracy counts.
    pub fn dominant_labels(&self, y: &Tensor) -> Tensor {
        if self.lambda >= 0.5 {
            y.shallow_clone()
        } else {
            self.partners(y)
        }
    }
}

/// A draw from Beta(α, α), as X / (X + Y) with X, Y ~ Gamma(α).
pub fn sample_beta(alpha: f64, rng: &mut Rng) -> f64 {
    let (x, y) = (sample_gamma(alpha, rng), sample_gamma(alpha, rng));
    if x + y > 0.0 {
        x / (x + y)
    } else {
        // Both underflowed (tiny α): Beta(α, α) puts its mass at 0 and 1 then.
        if rng.uniform() < 0.5 {
            0.0
        } else {
            1.0
        }
    }
}

/// Gamma(α, 1) by Marsaglia & Tsang (2000); α < 1 through Gamma(α + 1)·U^(1/α).
fn sample_gamma(alpha: f64, rng: &mut Rng) -> f64 {
    if alpha < 1.0 {
        let u = 1.0 - rng.uniform(); // in (0, 1]
        return sample_gamma(alpha + 1.0, rng) * u.powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = rng.standard_normal();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = 1.0 - rng.uniform();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_draws_are_in_range_with_the_right_mean_and_shape() {
        let mut rng = Rng::new(3, 0);
        let uniform: Vec<f64> = (0..4000).map(|_| sample_beta(1.0, &mut rng)).collect();
        assert!(uniform.iter().all(|l| (0.0..=1.0).contains(l)));
        let mean = uniform.iter().sum::<f64>() / 4000.0;
        assert!((mean - 0.5).abs() < 0.03, "Beta(1,1) mean {mean}");
        let low = uniform.iter().filter(|&&l| l < 0.25).count();
        assert!(
            (850..1150).contains(&low),
            "Beta(1,1) is uniform: {low}/4000 below ¼"
        );
        let peaked: Vec<f64> = (0..4000).map(|_| sample_beta(0.2, &mut rng)).collect();
        let extreme = peaked
            .iter()
            .filter(|&&l| !(0.1..=0.9).contains(&l))
            .count();
        assert!(peaked.iter().all(|l| (0.0..=1.0).contains(l)));
        // Beta(0.2, 0.2) puts ~61 % of its mass outside [0.1, 0.9].
        assert!(
            (2200..2700).contains(&extreme),
            "{extreme}/4000 extreme draws"
        );
    }

    #[test]
    fn mixer_is_seeded_by_epoch_and_off_without_alphas() {
        assert!(BatchMixer::new(0.0, 0.0, 1, 0).is_none());
        let plans = |epoch| {
            let mut m = BatchMixer::new(0.4, 1.0, 7, epoch).unwrap();
            (0..6).map(|_| m.plan(8, 32, 32)).collect::<Vec<_>>()
        };
        assert_eq!(plans(2), plans(2));
        assert_ne!(plans(2), plans(3));
        let all: Vec<MixPlan> = (0..10).flat_map(plans).collect();
        assert!(all.iter().any(|p| p.kind == MixKind::Mixup));
        assert!(all.iter().any(|p| p.kind == MixKind::CutMix));
        for p in &all {
            assert!((0.0..=1.0).contains(&p.lambda));
            let mut sorted = p.perm.clone();
            sorted.sort();
            assert_eq!(sorted, (0..8).collect::<Vec<i64>>(), "a permutation");
        }
    }

    #[test]
    fn mixup_blends_and_cutmix_pastes_with_lambda_the_kept_area() {
        let x = Tensor::arange(2 * 16, (tch::Kind::Float, tch::Device::Cpu)).view([2, 1, 4, 4]);
        let swap = vec![1i64, 0];
        let mix = MixPlan {
            kind: MixKind::Mixup,
            lambda: 0.25,
            perm: swap.clone(),
            bbox: None,
        };
        let m = mix.apply(&x);
        let expect = &x * 0.25 + x.flip([0]) * 0.75;
        assert!(m.allclose(&expect, 1e-6, 1e-6, false));

        let mut mixer = BatchMixer::new(0.0, 1.0, 5, 0).unwrap();
        for _ in 0..20 {
            let mut plan = mixer.plan(2, 4, 4);
            plan.perm = swap.clone();
            let [y0, y1, x0, x1] = plan.bbox.unwrap();
            let kept = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / 16.0;
            assert!((plan.lambda - kept).abs() < 1e-12);
            let out = plan.apply(&x);
            for y in 0..4 {
                for xx in 0..4 {
                    let inside = (y0..y1).contains(&y) && (x0..x1).contains(&xx);
                    let from = if inside { 1 } else { 0 };
                    let v = out.double_value(&[0, 0, y as i64, xx as i64]);
                    assert_eq!(v, x.double_value(&[from, 0, y as i64, xx as i64]));
                }
            }
        }
    }

    #[test]
    fn mixed_loss_weighs_both_labels_and_accuracy_counts_the_dominant_one() {
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 3.0]).view([2, 2]);
        let y = Tensor::from_slice(&[0i64, 1]);
        let ce = |t: &Tensor| {
            logits
                .cross_entropy_loss::<Tensor>(t, None, Reduction::Mean, -100, 0.0)
                .double_value(&[])
        };
        let plan = |lambda| MixPlan {
            kind: MixKind::Mixup,
            lambda,
            perm: vec![1, 0],
            bbox: None,
        };
        let flipped = Tensor::from_slice(&[1i64, 0]);
        let l = plan(0.3).loss(&logits, &y, 0.0).double_value(&[]);
        assert!((l - (0.3 * ce(&y) + 0.7 * ce(&flipped))).abs() < 1e-6);
        assert_eq!(
            Vec::<i64>::try_from(plan(0.3).dominant_labels(&y)).unwrap(),
            vec![1, 0]
        );
        assert_eq!(
            Vec::<i64>::try_from(plan(0.7).dominant_labels(&y)).unwrap(),
            vec![0, 1]
        );
    }
}
