//! CenterNet's training targets and loss. Each box puts a Gaussian peak (value 1 at its
//! centre cell, radius from the box size so that a centre that far off still gives a box
//! of IoU ≥ 0.7) on its class's heatmap, and, at its centre cell, regression targets:
//! the centre's offset inside the cell and the box's log width and height in cells.
//! The heatmap loss is the penalty-reduced focal loss (α = 2, β = 4), normalised by the
//! number of boxes; the box loss is L1 at the centre cells.
use super::model::{DetectorOutput, STRIDE};
use crate::data::detection::Annotation;
use tch::{Kind, Reduction, Tensor};

/// Targets of a batch at stride [`STRIDE`].
pub struct Targets {
    /// `[N, classes, h, w]`, 1 at centres, Gaussian around them, 0 elsewhere.
    pub heatmap: Tensor,
    /// `[N, 4, h, w]`: offset x, offset y, log width, log height (cells).
    pub boxes: Tensor,
    /// `[N, 1, h, w]`: 1 at centre cells.
    pub mask: Tensor,
    pub num_boxes: usize,
}

/// The targets of `tiles` (boxes in pixels of `size`×`size` tiles) for `classes`.
pub fn encode(tiles: &[Vec<Annotation>], classes: usize, size: i64) -> Targets {
    let g = (size / STRIDE) as usize;
    let n = tiles.len();
    let mut heat = vec![0f32; n * classes * g * g];
    let mut boxes = vec![0f32; n * 4 * g * g];
    let mut mask = vec![0f32; n * g * g];
    let mut num_boxes = 0;
    for (i, tile) in tiles.iter().enumerate() {
        for a in tile {
            let s = STRIDE as f32;
            let (cx, cy) = a.bbox.center();
            let (cx, cy) = (cx / s, cy / s);
            let (w, h) = (a.bbox.width() / s, a.bbox.height() / s);
            let (col, row) = ((cx as usize).min(g - 1), (cy as usize).min(g - 1));
            let radius = gaussian_radius(h, w, 0.7).floor().max(0.0) as i64;
            let plane = &mut heat[(i * classes + a.class) * g * g..][..g * g];
            draw_gaussian(plane, g, (col, row), radius);
            let cell = row * g + col;
            let values = [
                cx - col as f32,
                cy - row as f32,
                w.max(1e-3).ln(),
                h.max(1e-3).ln(),
            ];
            for (k, v) in values.into_iter().enumerate() {
                boxes[(i * 4 + k) * g * g + cell] = v;
            }
            mask[i * g * g + cell] = 1.0;
            num_boxes += 1;
        }
    }
    let (n, c, g) = (n as i64, classes as i64, g as i64);
    Targets {
        heatmap: Tensor::from_slice(&heat).view([n, c, g, g]),
        boxes: Tensor::from_slice(&boxes).view([n, 4, g, g]),
        mask: Tensor::from_slice(&mask).view([n, 1, g, g]),
        num_boxes,
    }
}

/// CenterNet's radius (in cells) within which a shifted centre keeps IoU ≥ `min_overlap`
/// with the box (the smallest root of its three corner cases).
pub fn gaussian_radius(h: f32, w: f32, min_overlap: f32) -> f32 {
    let root = |a: f32, b: f32, c: f32| (b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / 2.0;
    let r1 = root(
        1.0,
        h + w,
        w * h * (1.0 - min_overlap) / (1.0 + min_overlap),
    );
    let r2 = root(4.0, 2.0 * (h + w), (1.0 - min_overlap) * w * h);
    let r3 = root(
        4.0 * min_overlap,
        -2.0 * min_overlap * (h + w),
        (min_overlap - 1.0) * w * h,
    );
    r1.min(r2).min(r3)
}

/// Max-merges a Gaussian of `radius` (σ = diameter / 6) centred on `(col, row)` into `plane`.
fn draw_gaussian(plane: &mut [f32], g: usize, (col, row): (usize, usize), radius: i64) {
    let sigma = (2 * radius + 1) as f32 / 6.0;
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            let (x, y) = (col as i64 + dx, row as i64 + dy);
            if x < 0 || y < 0 || x >= g as i64 || y >= g as i64 {
                continue;
            }
            let v = (-((dx * dx + dy * dy) as f32) / (2.0 * sigma * sigma)).exp();
            let p = &mut plane[y as usize * g + x as usize];
            *p = p.max(v);
        }
    }
}

/// The two losses of a batch: (heatmap focal loss, box L1 loss), each a scalar.
pub fn losses(out: &DetectorOutput, t: &Targets) -> (Tensor, Tensor) {
    let x = out.heatmap.to_kind(Kind::Float);
    let pos = t.heatmap.eq(1.0).to_kind(Kind::Float);
    let p = x.sigmoid();
    let pos_loss = x.log_sigmoid() * p.neg().g_add_scalar(1.0).pow_tensor_scalar(2) * &pos;
    let neg_weight =
        t.heatmap.neg().g_add_scalar(1.0).pow_tensor_scalar(4) * pos.neg().g_add_scalar(1.0);
    let neg_loss = (-&x).log_sigmoid() * p.pow_tensor_scalar(2) * neg_weight;
    let norm = (t.num_boxes.max(1)) as f64;
    let focal = -(pos_loss.sum(Kind::Float) + neg_loss.sum(Kind::Float)) / norm;
    let l1 = out
        .boxes
        .to_kind(Kind::Float)
        .l1_loss(&t.boxes, Reduction::None)
        .multiply(&t.mask)
        .sum(Kind::Float)
        / (4.0 * norm);
    (focal, l1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::detection::BoundingBox;

    #[test]
    fn a_box_peaks_at_its_centre_cell_with_its_offset_and_log_size() {
        let b = Annotation {
            class: 1,
            bbox: BoundingBox::new(20.0, 36.0, 52.0, 52.0),
        };
        let t = encode(&[vec![b]], 2, 64);
        assert_eq!(t.heatmap.size(), vec![1, 2, 8, 8]);
        // Centre (36, 44) px = (4.5, 5.5) cells → cell (4, 5), offset ½, size 4 × 2 cells.
        assert_eq!(t.heatmap.double_value(&[0, 1, 5, 4]), 1.0);
        assert_eq!(
            t.heatmap.get(0).get(0).sum(Kind::Float).double_value(&[]),
            0.0
        );
        assert_eq!(t.mask.sum(Kind::Float).double_value(&[]), 1.0);
        let at = |k: i64| t.boxes.double_value(&[0, k, 5, 4]);
        assert!((at(0) - 0.5).abs() < 1e-6 && (at(1) - 0.5).abs() < 1e-6);
        assert!((at(2) - 4f64.ln()).abs() < 1e-6 && (at(3) - 2f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn the_loss_is_lower_for_the_right_heatmap() {
        let b = Annotation {
            class: 0,
            bbox: BoundingBox::new(8.0, 8.0, 40.0, 40.0),
        };
        let t = encode(&[vec![b]], 1, 64);
        let logit = |h: &Tensor| h.clamp(1e-4, 1.0 - 1e-4).logit(None);
        let good = DetectorOutput {
            heatmap: logit(&t.heatmap),
            boxes: t.boxes.shallow_clone(),
        };
        let flat = DetectorOutput {
            heatmap: Tensor::full([1, 1, 8, 8], -2.0, (Kind::Float, tch::Device::Cpu)),
            boxes: t.boxes.zeros_like(),
        };
        let (fg, lg) = losses(&good, &t);
        let (ff, lf) = losses(&flat, &t);
        assert!(
            fg.double_value(&[]) < 0.1 * ff.double_value(&[]),
            "{fg} vs {ff}"
        );
        assert_eq!(lg.double_value(&[]), 0.0);
        assert!(lf.double_value(&[]) > 0.0);
    }
}
