//! From the network's maps to boxes: heatmap peaks (a cell at least as high as its 3×3
//! neighbourhood), the top `max_detections` above the score threshold, each decoded from
//! its cell's offset and log size, then non-maximum suppression per class.
use super::model::{DetectorOutput, STRIDE};
use crate::data::detection::BoundingBox;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::Kind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Peaks below this score are not boxes (low, so that mAP sees the whole
    /// precision/recall curve; raise it for a deployed detector).
    pub score_threshold: f64,
    /// Boxes of a class overlapping a higher-scored one by more than this IoU are dropped.
    pub nms_iou: f64,
    /// Boxes per tile at most (COCO's evaluation counts 100).
    pub max_detections: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            score_threshold: 0.01,
            nms_iou: 0.5,
            max_detections: 100,
        }
    }
}

impl DecodeConfig {
    pub fn validate(&self) -> Result<()> {
        let in_unit = |key: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(key, format!("is {v}; it must be in [0, 1]")))
            }
        };
        in_unit("decode.score_threshold", self.score_threshold)?;
        in_unit("decode.nms_iou", self.nms_iou)?;
        if self.max_detections == 0 {
            return Err(Error::config("decode.max_detections", "must be > 0"));
        }
        Ok(())
    }
}

/// One predicted box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub bbox: BoundingBox,
}

/// The detections of every image of a batch, boxes in pixels of a `size`×`size` input.
pub fn decode(out: &DetectorOutput, size: i64, cfg: &DecodeConfig) -> Vec<Vec<Detection>> {
    let heat = out.heatmap.to_kind(Kind::Float).sigmoid();
    let peaks = heat.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
    let heat = &heat * heat.eq_tensor(&peaks).to_kind(Kind::Float);
    let s = heat.size();
    let (n, classes, g) = (s[0], s[1], s[3]);
    let k = (cfg.max_detections as i64).min(classes * s[2] * g);
    let (scores, index) = heat.view([n, -1]).topk(k, 1, true, true);
    let scores = Vec::<f32>::try_from(scores.flatten(0, -1)).expect("scores");
    let index = Vec::<i64>::try_from(index.flatten(0, -1)).expect("indices");
    let boxes = Vec::<f32>::try_from(out.boxes.to_kind(Kind::Float).contiguous().flatten(0, -1))
        .expect("boxes");
    let cells = (s[2] * g) as usize;
    let stride = STRIDE as f32;
    (0..n as usize)
        .map(|i| {
            let mut found = Vec::new();
            for j in 0..k as usize {
                let (score, idx) = (
                    scores[i * k as usize + j],
                    index[i * k as usize + j] as usize,
                );
                if (score as f64) < cfg.score_threshold {
                    break;
                }
                let (class, cell) = (idx / cells, idx % cells);
                let (row, col) = (cell / g as usize, cell % g as usize);
                let at = |c: usize| boxes[(i * 4 + c) * cells + cell];
                let (cx, cy) = ((col as f32 + at(0)) * stride, (row as f32 + at(1)) * stride);
                let (w, h) = (at(2).exp() * stride, at(3).exp() * stride);
                let frame = BoundingBox::new(0.0, 0.0, size as f32, size as f32);
                let bbox = BoundingBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
                    .intersection(&frame);
                if bbox.width() > 0.0 && bbox.height() > 0.0 {
                    found.push(Detection { class, score, bbox });
                }
            }
            nms_per_class(found, cfg.nms_iou as f32)
        })
        .collect()
}

/// Indices of the boxes greedy non-maximum suppression keeps, highest score first: a box
/// is dropped when its IoU with a kept one exceeds `iou` — `torchvision.ops.nms`.
pub fn nms(boxes: &[BoundingBox], scores: &[f32], iou: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep.iter().all(|&k| boxes[k].iou(&boxes[i]) <= iou) {
            keep.push(i);
        }
    }
    keep
}

/// [`nms`] within each class; the result sorted by score.
pub fn nms_per_class(dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    let mut out = Vec::with_capacity(dets.len());
    let classes: std::collections::BTreeSet<usize> = dets.iter().map(|d| d.class).collect();
    for c in classes {
        let of: Vec<&Detection> = dets.iter().filter(|d| d.class == c).collect();
        let boxes: Vec<BoundingBox> = of.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = of.iter().map(|d| d.score).collect();
        out.extend(nms(&boxes, &scores, iou).into_iter().map(|i| *of[i]));
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_every_distant_one() {
        let boxes = [
            BoundingBox::new(0.0, 0.0, 10.0, 10.0),
            BoundingBox::new(1.0, 0.0, 11.0, 10.0),
            BoundingBox::new(20.0, 20.0, 30.0, 30.0),
        ];
        assert_eq!(nms(&boxes, &[0.5, 0.9, 0.1], 0.5), vec![1, 2]);
        // IoU of the first two is 9/11 ≈ 0.82: above 0.9 both stay.
        assert_eq!(nms(&boxes, &[0.5, 0.9, 0.1], 0.9), vec![1, 0, 2]);
    }

    #[test]
    fn a_single_peak_decodes_to_its_box() {
        let mut heat = Tensor::full([1, 1, 8, 8], -10.0, (Kind::Float, tch::Device::Cpu));
        let _ = heat.get(0).get(0).get(5).get(4).fill_(3.0);
        let boxes = Tensor::zeros([1, 4, 8, 8], (Kind::Float, tch::Device::Cpu));
        let cell = |k: i64, v: f64| {
            let _ = boxes.get(0).get(k).get(5).get(4).fill_(v);
        };
        cell(0, 0.5);
        cell(1, 0.5);
        cell(2, 4f64.ln());
        cell(3, 2f64.ln());
        heat = heat.shallow_clone();
        let dets = decode(
            &DetectorOutput {
                heatmap: heat,
                boxes,
            },
            64,
            &DecodeConfig::default(),
        );
        assert_eq!(dets[0].len(), 1);
        let b = dets[0][0].bbox;
        for (p, q) in [(b.x0, 20.0), (b.y0, 36.0), (b.x1, 52.0), (b.y1, 52.0)] {
            assert!((p - q).abs() < 1e-4, "{b:?}");
        }
    }
}
