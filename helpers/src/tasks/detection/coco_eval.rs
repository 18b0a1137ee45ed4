//! COCO-style box evaluation, the algorithm of `pycocotools.cocoeval.COCOeval` step for
//! step (and tested against it): per image and class, detections sorted by score (at
//! most 100) are matched greedily to the best unmatched ground truth above each IoU
//! threshold 0.50:0.05:0.95; ground truth outside an area range is ignored (and so are
//! unmatched detections outside it); precision is made monotone and read at 101 recall
//! points; AP is its mean, mAP the mean over classes that have ground truth.
use super::decode::Detection;
use crate::data::detection::Annotation;
use serde::{Deserialize, Serialize};

/// Area ranges (px²): all, small (< 32²), medium (32²–96²), large (> 96²).
pub const AREA_RANGES: [(&str, f64, f64); 4] = [
    ("all", 0.0, 1e10),
    ("small", 0.0, 1024.0),
    ("medium", 1024.0, 9216.0),
    ("large", 9216.0, 1e10),
];
const MAX_DETS: usize = 100;
const RECALL_POINTS: usize = 101;

/// `numpy.linspace(start, stop, n)` as numpy computes it (`i · step + start`, the last
/// value `stop` exactly), so thresholds equal COCOeval's to the last bit.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    v[n - 1] = stop;
    v
}

fn iou_thresholds() -> Vec<f64> {
    linspace(0.5, 0.95, 10)
}

/// A box as COCO stores it, `[x, y, w, h]` in f64 from the f32 corners (what a JSON
/// file written by [`coco_json`] gives Python).
fn xywh(b: &crate::data::detection::BoundingBox) -> [f64; 4] {
    let (x0, y0) = (b.x0 as f64, b.y0 as f64);
    [x0, y0, b.x1 as f64 - x0, b.y1 as f64 - y0]
}

/// `maskApi.c`'s `bbIou` for one pair (no crowd boxes here).
fn iou(d: &[f64; 4], g: &[f64; 4]) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    i / (d[2] * d[3] + g[2] * g[3] - i)
}

/// One image × class × area range: detections in score order with, per IoU threshold,
/// matched and ignored flags, and the count of ground truth not ignored.
struct ImageEval {
    scores: Vec<f64>,
    matched: Vec<Vec<bool>>,
    ignored: Vec<Vec<bool>>,
    gt_not_ignored: usize,
}

fn evaluate_image(
    gts: &[[f64; 4]],
    dts: &[([f64; 4], f64)],
    range: (f64, f64),
) -> Option<ImageEval> {
    if gts.is_empty() && dts.is_empty() {
        return None;
    }
    let area = |b: &[f64; 4]| b[2] * b[3];
    let outside = |a: f64| a < range.0 || a > range.1;
    // Ground truth not ignored first (stable), detections by score (stable), ≤ 100.
    let mut g_order: Vec<usize> = (0..gts.len()).collect();
    g_order.sort_by_key(|&g| outside(area(&gts[g])));
    let g_ignored: Vec<bool> = g_order.iter().map(|&g| outside(area(&gts[g]))).collect();
    let mut d_order: Vec<usize> = (0..dts.len()).collect();
    d_order.sort_by(|&a, &b| dts[b].1.total_cmp(&dts[a].1));
    d_order.truncate(MAX_DETS);
    let ious: Vec<Vec<f64>> = d_order
        .iter()
        .map(|&d| g_order.iter().map(|&g| iou(&dts[d].0, &gts[g])).collect())
        .collect();
    let thresholds = iou_thresholds();
    let mut matched = vec![vec![false; d_order.len()]; thresholds.len()];
    let mut ignored = vec![vec![false; d_order.len()]; thresholds.len()];
    for (t, &thr) in thresholds.iter().enumerate() {
        let mut g_taken = vec![false; g_order.len()];
        for (di, row) in ious.iter().enumerate() {
            let mut best_iou = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (gi, &v) in row.iter().enumerate() {
                if g_taken[gi] {
                    continue;
                }
                if m.is_some_and(|m| !g_ignored[m]) && g_ignored[gi] {
                    break;
                }
                if v < best_iou {
                    continue;
                }
                best_iou = v;
                m = Some(gi);
            }
            match m {
                Some(gi) => {
                    g_taken[gi] = true;
                    matched[t][di] = true;
                    ignored[t][di] = g_ignored[gi];
                }
                None => ignored[t][di] = outside(area(&dts[d_order[di]].0)),
            }
        }
    }
    Some(ImageEval {
        scores: d_order.iter().map(|&d| dts[d].1).collect(),
        matched,
        ignored,
        gt_not_ignored: g_ignored.iter().filter(|&&i| !i).count(),
    })
}

/// Precision at the 101 recall points and the final recall, per IoU threshold, of one
/// class and area range over all images; `None` when it has no ground truth.
fn accumulate(evals: &[ImageEval]) -> Option<(Vec<Vec<f64>>, Vec<f64>)> {
    let npig: usize = evals.iter().map(|e| e.gt_not_ignored).sum();
    if npig == 0 {
        return None;
    }
    let mut order: Vec<(usize, usize)> = evals
        .iter()
        .enumerate()
        .flat_map(|(i, e)| (0..e.scores.len()).map(move |d| (i, d)))
        .collect();
    order.sort_by(|a, b| evals[b.0].scores[b.1].total_cmp(&evals[a.0].scores[a.1]));
    let recall_points = linspace(0.0, 1.0, RECALL_POINTS);
    let mut precisions = Vec::new();
    let mut recalls = Vec::new();
    for t in 0..iou_thresholds().len() {
        let (mut tp, mut fp) = (0f64, 0f64);
        let (mut rc, mut pr) = (Vec::new(), Vec::new());
        for &(i, d) in &order {
            let e = &evals[i];
            if e.ignored[t][d] {
                continue;
            }
            if e.matched[t][d] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            rc.push(tp / npig as f64);
            pr.push(tp / (fp + tp + f64::EPSILON));
        }
        recalls.push(rc.last().copied().unwrap_or(0.0));
        for i in (1..pr.len()).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        let q = recall_points
            .iter()
            .map(|&r| {
                let at = rc.partition_point(|&x| x < r);
                pr.get(at).copied().unwrap_or(0.0)
            })
            .collect();
        precisions.push(q);
    }
    Some((precisions, recalls))
}

/// The evaluation of a set of images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoMetrics {
    /// mAP@0.5:0.95 over all boxes.
    pub map: f64,
    pub map50: f64,
    pub map75: f64,
    /// mAP@0.5:0.95 per area range (small, medium, large); −1 when a range has no box.
    pub map_small: f64,
    pub map_medium: f64,
    pub map_large: f64,
    /// Recall at 100 detections, averaged over IoU thresholds (COCO's AR@100).
    pub ar100: f64,
    /// (class, AP@0.5:0.95, AP@0.5); −1 for a class without ground truth.
    pub per_class: Vec<(String, f64, f64)>,
    /// Precision at recall 0, 0.01, …, 1 at IoU 0.5, all areas, per class.
    pub pr_curve50: Vec<Vec<f64>>,
    pub images: usize,
    pub ground_truth: usize,
    pub detections: usize,
}

/// COCO's box metrics of `detections` against `truth` (one entry per image, same order).
pub fn evaluate(
    truth: &[Vec<Annotation>],
    detections: &[Vec<Detection>],
    classes: &[String],
) -> CocoMetrics {
    let mut precision = vec![vec![None; AREA_RANGES.len()]; classes.len()];
    let mut recall = vec![None; classes.len()];
    for (c, slot) in precision.iter_mut().enumerate() {
        for (a, &(_, lo, hi)) in AREA_RANGES.iter().enumerate() {
            let evals: Vec<ImageEval> = truth
                .iter()
                .zip(detections)
                .filter_map(|(gt, dt)| {
                    let g: Vec<[f64; 4]> = gt
                        .iter()
                        .filter(|x| x.class == c)
                        .map(|x| xywh(&x.bbox))
                        .collect();
                    let d: Vec<([f64; 4], f64)> = dt
                        .iter()
                        .filter(|x| x.class == c)
                        .map(|x| (xywh(&x.bbox), x.score as f64))
                        .collect();
                    evaluate_image(&g, &d, (lo, hi))
                })
                .collect();
            let acc = accumulate(&evals);
            if a == 0 {
                recall[c] = acc.as_ref().map(|(_, r)| r.clone());
            }
            slot[a] = acc.map(|(p, _)| p);
        }
    }
    // Mean over every (threshold, recall point, class) present, as COCOeval.summarize.
    let mean = |area: usize, thresholds: &[usize]| {
        let vals: Vec<f64> = precision
            .iter()
            .filter_map(|per_area| per_area[area].as_ref())
            .flat_map(|p| thresholds.iter().flat_map(move |&t| p[t].iter().copied()))
            .collect();
        if vals.is_empty() {
            -1.0
        } else {
            vals.iter().sum::<f64>() / vals.len() as f64
        }
    };
    let all: Vec<usize> = (0..10).collect();
    let recalls: Vec<f64> = recall.iter().flatten().flatten().copied().collect();
    let per_class = classes
        .iter()
        .enumerate()
        .map(|(c, name)| match &precision[c][0] {
            Some(p) => {
                let ap = p.iter().flatten().sum::<f64>() / (p.len() * RECALL_POINTS) as f64;
                let ap50 = p[0].iter().sum::<f64>() / RECALL_POINTS as f64;
                (name.clone(), ap, ap50)
            }
            None => (name.clone(), -1.0, -1.0),
        })
        .collect();
    CocoMetrics {
        map: mean(0, &all),
        map50: mean(0, &[0]),
        map75: mean(0, &[5]),
        map_small: mean(1, &all),
        map_medium: mean(2, &all),
        map_large: mean(3, &all),
        ar100: if recalls.is_empty() {
            -1.0
        } else {
            recalls.iter().sum::<f64>() / recalls.len() as f64
        },
        per_class,
        pr_curve50: precision
            .iter()
            .map(|p| p[0].as_ref().map(|p| p[0].clone()).unwrap_or_default())
            .collect(),
        images: truth.len(),
        ground_truth: truth.iter().map(Vec::len).sum(),
        detections: detections.iter().map(|d| d.len().min(MAX_DETS)).sum(),
    }
}

/// The ground truth as a COCO annotation file and the detections as a COCO results list
/// (image ids 1…n, category ids 1…C), coordinates as f64 of the f32 values, so a tool
/// reading them sees exactly the boxes evaluated here.
pub fn coco_json(
    truth: &[Vec<Annotation>],
    detections: &[Vec<Detection>],
    classes: &[String],
    size: u32,
) -> (serde_json::Value, serde_json::Value) {
    let images: Vec<_> = (0..truth.len())
        .map(|i| serde_json::json!({"id": i + 1, "file_name": format!("tile_{i}.png"), "width": size, "height": size}))
        .collect();
    let mut annotations = Vec::new();
    for (i, gt) in truth.iter().enumerate() {
        for a in gt {
            let b = xywh(&a.bbox);
            annotations.push(serde_json::json!({
                "id": annotations.len() + 1, "image_id": i + 1, "category_id": a.class + 1,
                "bbox": b, "area": b[2] * b[3], "iscrowd": 0
            }));
        }
    }
    let categories: Vec<_> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({"id": i + 1, "name": c}))
        .collect();
    let results: Vec<_> = detections
        .iter()
        .enumerate()
        .flat_map(|(i, ds)| {
            ds.iter().map(move |d| serde_json::json!({
                "image_id": i + 1, "category_id": d.class + 1, "bbox": xywh(&d.bbox), "score": d.score as f64
            }))
        })
        .collect();
    (
        serde_json::json!({"images": images, "annotations": annotations, "categories": categories}),
        serde_json::Value::Array(results),
    )
}
