//! Box-preserving augmentation of square tiles: horizontal and vertical flips, 90°
//! rotations and scale jitter (resize, then a random crop or a black border back to the
//! tile size), each box moved with its pixels. Aerial views have no "up", so all eight
//! flips and rotations are views a drone could have taken.
use crate::data::detection::{Annotation, BoundingBox};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionAugment {
    /// Flip left-right and top-bottom, each with probability ½.
    pub flips: bool,
    /// Rotate by 0, 90, 180 or 270°, uniformly.
    pub rotate90: bool,
    /// Resize by a factor in `[1 − j, 1 + j]`; 0 = off.
    pub scale_jitter: f64,
    /// A box pushed partly out of the tile by the jitter is kept when this fraction of it
    /// stays inside.
    pub min_visible: f32,
    /// Brightness and contrast each scaled by a factor in `[1 − c, 1 + c]` (sun angle and
    /// exposure differ between flights); 0 = off. Boxes do not move.
    pub color_jitter: f64,
}

impl Default for DetectionAugment {
    fn default() -> Self {
        DetectionAugment {
            flips: true,
            rotate90: true,
            scale_jitter: 0.2,
            min_visible: 0.5,
            color_jitter: 0.2,
        }
    }
}

impl DetectionAugment {
    pub fn none() -> DetectionAugment {
        DetectionAugment {
            flips: false,
            rotate90: false,
            scale_jitter: 0.0,
            color_jitter: 0.0,
            ..Default::default()
        }
    }

    /// A randomly changed copy of `image` (`[3, T, T]` float) and its boxes.
    pub fn apply(
        &self,
        image: &Tensor,
        boxes: &[Annotation],
        rng: &mut Rng,
    ) -> (Tensor, Vec<Annotation>) {
        let t = image.size()[2] as f32;
        let mut img = image.shallow_clone();
        let mut out = boxes.to_vec();
        if self.flips && rng.below(2) == 1 {
            img = img.flip([2]);
            out.iter_mut().for_each(|a| a.bbox = hflip(&a.bbox, t));
        }
        if self.flips && rng.below(2) == 1 {
            img = img.flip([1]);
            out.iter_mut().for_each(|a| a.bbox = vflip(&a.bbox, t));
        }
        if self.rotate90 {
            let k = rng.below(4);
            for _ in 0..k {
                img = img.rot90(1, [1, 2]);
                out.iter_mut().for_each(|a| a.bbox = rot90(&a.bbox, t));
            }
        }
        if self.scale_jitter > 0.0 {
            let s = 1.0 + self.scale_jitter * (2.0 * rng.uniform() - 1.0);
            (img, out) = rescale(&img, &out, s as f32, self.min_visible, rng);
        }
        if self.color_jitter > 0.0 {
            let mut factor = || 1.0 + self.color_jitter * (2.0 * rng.uniform() - 1.0);
            let (brightness, contrast) = (factor(), factor());
            let mean = img.mean(Kind::Float);
            img = ((&img - &mean) * contrast + &mean * brightness).clamp(0.0, 1.0);
        }
        (img, out)
    }
}

fn hflip(b: &BoundingBox, t: f32) -> BoundingBox {
    BoundingBox::new(t - b.x1, b.y0, t - b.x0, b.y1)
}

fn vflip(b: &BoundingBox, t: f32) -> BoundingBox {
    BoundingBox::new(b.x0, t - b.y1, b.x1, t - b.y0)
}

/// `torch.rot90(k=1, dims=[1, 2])` turns an image a quarter counter-clockwise: the pixel
/// at (x, y) moves to (y, T − x).
fn rot90(b: &BoundingBox, t: f32) -> BoundingBox {
    BoundingBox::new(b.y0, t - b.x1, b.y1, t - b.x0)
}

/// Resized by `s`, then cropped (s > 1) or bordered with black (s < 1) back to the tile
/// size at a random offset; boxes follow and are clipped (kept when `min_visible` of
/// them stays in).
fn rescale(
    img: &Tensor,
    boxes: &[Annotation],
    s: f32,
    min_visible: f32,
    rng: &mut Rng,
) -> (Tensor, Vec<Annotation>) {
    let t = img.size()[2];
    let n = ((t as f32 * s).round() as i64).max(8);
    if n == t {
        return (img.shallow_clone(), boxes.to_vec());
    }
    let s = n as f32 / t as f32;
    let resized = img
        .unsqueeze(0)
        .upsample_bilinear2d([n, n], false, None, None)
        .squeeze_dim(0);
    let span = (n - t).unsigned_abs() as usize;
    let (ox, oy) = (rng.below(span + 1) as i64, rng.below(span + 1) as i64);
    let (out, dx, dy) = if n > t {
        (resized.narrow(1, oy, t).narrow(2, ox, t), -ox, -oy)
    } else {
        let canvas = Tensor::zeros([3, t, t], (Kind::Float, img.device()));
        canvas.narrow(1, oy, n).narrow(2, ox, n).copy_(&resized);
        (canvas, ox, oy)
    };
    let frame = BoundingBox::new(0.0, 0.0, t as f32, t as f32);
    let moved = boxes
        .iter()
        .filter_map(|a| {
            let b = a.bbox.scaled(s).shifted(dx as f32, dy as f32);
            let inside = b.intersection(&frame);
            let keep = inside.width() > 0.0
                && inside.height() > 0.0
                && inside.area() / b.area() >= min_visible;
            keep.then_some(Annotation {
                class: a.class,
                bbox: inside,
            })
        })
        .collect();
    (out, moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The box of the pixels above ½ in channel 0 of `[3, T, T]`.
    fn lit_box(img: &Tensor) -> BoundingBox {
        let mask = img.get(0).gt(0.5);
        let ys = mask.any_dim(1, false).nonzero().squeeze_dim(1);
        let xs = mask.any_dim(0, false).nonzero().squeeze_dim(1);
        let first = |t: &Tensor| t.int64_value(&[0]) as f32;
        let last = |t: &Tensor| t.int64_value(&[-1]) as f32 + 1.0;
        BoundingBox::new(first(&xs), first(&ys), last(&xs), last(&ys))
    }

    #[test]
    fn flips_and_rotations_move_boxes_with_their_pixels() {
        let img = Tensor::zeros([3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let _ = img.narrow(1, 4, 6).narrow(2, 20, 9).fill_(1.0);
        let b = BoundingBox::new(20.0, 4.0, 29.0, 10.0);
        assert_eq!(lit_box(&img), b);
        assert_eq!(lit_box(&img.flip([2])), hflip(&b, 32.0));
        assert_eq!(lit_box(&img.flip([1])), vflip(&b, 32.0));
        assert_eq!(lit_box(&img.rot90(1, [1, 2])), rot90(&b, 32.0));
        let twice = img.rot90(1, [1, 2]).rot90(1, [1, 2]);
        assert_eq!(lit_box(&twice), rot90(&rot90(&b, 32.0), 32.0));
    }

    #[test]
    fn every_augmented_box_still_covers_its_pixels() {
        let img = Tensor::zeros([3, 64, 64], (Kind::Float, tch::Device::Cpu));
        let _ = img.narrow(1, 10, 12).narrow(2, 30, 16).fill_(1.0);
        let boxes = [Annotation {
            class: 0,
            bbox: BoundingBox::new(30.0, 10.0, 46.0, 22.0),
        }];
        let aug = DetectionAugment {
            scale_jitter: 0.3,
            ..Default::default()
        };
        let mut rng = Rng::new(1, 2);
        for _ in 0..40 {
            let (out, moved) = aug.apply(&img, &boxes, &mut rng);
            assert_eq!(out.size(), vec![3, 64, 64]);
            let Some(a) = moved.first() else { continue };
            let lit = lit_box(&out);
            // Bilinear resizing blurs edges by at most a pixel.
            for (p, q) in [
                (a.bbox.x0, lit.x0),
                (a.bbox.y0, lit.y0),
                (a.bbox.x1, lit.x1),
                (a.bbox.y1, lit.y1),
            ] {
                assert!((p - q).abs() <= 1.5, "box {:?} vs pixels {lit:?}", a.bbox);
            }
        }
    }
}
