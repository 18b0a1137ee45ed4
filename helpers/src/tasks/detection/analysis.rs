//! What the detection notebook shows of trained runs: a comparison table, precision /
//! recall curves, test tiles with predictions drawn over ground truth, and the errors —
//! false alarms and missed crowns at IoU 0.5 — counted by size and shown worst tile first.
use super::decode::Detection;
use super::fit::TrainedDetector;
use crate::data::detection::{Annotation, TileSet};
use crate::plot::{self, Figure, Series};
use crate::render::{escape, Table};
use crate::Result;
use polars::prelude::Column;

/// The score above which a box counts as a detection in drawings and error counts (mAP
/// itself uses every box).
pub const SHOWN_SCORE: f32 = 0.3;

/// One row per run: best epoch, validation and test mAP, AP by size, AR@100, time, speed.
pub fn comparison(title: &str, runs: &[(&str, &TrainedDetector)]) -> Result<Table> {
    let col = |name: &str, f: &dyn Fn(&TrainedDetector) -> f64| {
        Column::new(
            name.into(),
            runs.iter().map(|(_, r)| f(r)).collect::<Vec<_>>(),
        )
    };
    let names: Vec<String> = runs.iter().map(|(n, _)| n.to_string()).collect();
    Table::from_columns(
        title,
        vec![
            Column::new("run".into(), names),
            Column::new(
                "best epoch".into(),
                runs.iter()
                    .map(|(_, r)| r.meta.best_epoch as u64)
                    .collect::<Vec<_>>(),
            ),
            col("val mAP@0.5", &|r| r.meta.best_val_map50),
            col("test mAP@0.5", &|r| r.test.map50),
            col("test mAP@0.5:0.95", &|r| r.test.map),
            col("AP small", &|r| r.test.map_small),
            col("AP medium", &|r| r.test.map_medium),
            col("AR@100", &|r| r.test.ar100),
            col("train s", &|r| r.meta.train_seconds),
            col("test tiles/s", &|r| {
                r.meta.test_tiles_per_second.unwrap_or(f64::NAN)
            }),
        ],
    )
}

/// Precision against recall at IoU 0.5 on the test tiles (COCO's 101 recall points), one
/// line per run.
pub fn pr_curves(runs: &[(&str, &TrainedDetector)]) -> Result<Figure> {
    let series = runs
        .iter()
        .map(|(name, r)| {
            let curve = r.test.pr_curve50.first().cloned().unwrap_or_default();
            let points = curve
                .iter()
                .enumerate()
                .map(|(i, &p)| (i as f64 / 100.0, p))
                .collect();
            Series::new(format!("{name} (AP50 {:.3})", r.test.map50), points)
        })
        .collect();
    plot::lines(
        "precision_recall",
        &[(
            "precision / recall at IoU 0.5, test tiles",
            "recall",
            series,
        )],
    )
}

/// A detection's verdict at IoU 0.5 against one tile's truth (greedy by score, as COCO).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    TruePositive,
    FalsePositive,
}

/// Per shown detection its verdict, and per ground-truth box whether it was found.
pub fn match_tile(truth: &[Annotation], dets: &[Detection]) -> (Vec<Verdict>, Vec<bool>) {
    let mut found = vec![false; truth.len()];
    let verdicts = dets
        .iter()
        .map(|d| {
            let best = truth
                .iter()
                .enumerate()
                .filter(|(g, a)| !found[*g] && a.class == d.class)
                .map(|(g, a)| (g, a.bbox.iou(&d.bbox)))
                .filter(|&(_, iou)| iou >= 0.5)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((g, _)) => {
                    found[g] = true;
                    Verdict::TruePositive
                }
                None => Verdict::FalsePositive,
            }
        })
        .collect();
    (verdicts, found)
}

fn shown(dets: &[Detection]) -> Vec<Detection> {
    dets.iter()
        .filter(|d| d.score >= SHOWN_SCORE)
        .copied()
        .collect()
}

/// Errors per test tile: (tile index, false positives, missed boxes), the worst first.
pub fn worst_tiles(run: &TrainedDetector, tiles: &TileSet) -> Vec<(usize, usize, usize)> {
    let mut rows: Vec<(usize, usize, usize)> = tiles
        .tiles
        .iter()
        .zip(&run.test_detections)
        .enumerate()
        .map(|(i, (t, d))| {
            let (v, f) = match_tile(&t.boxes, &shown(d));
            let fp = v.iter().filter(|&&x| x == Verdict::FalsePositive).count();
            (i, fp, f.iter().filter(|&&x| !x).count())
        })
        .collect();
    rows.sort_by_key(|&(i, fp, miss)| (std::cmp::Reverse(fp + miss), i));
    rows
}

/// False alarms and misses at score ≥ [`SHOWN_SCORE`], by box size (√area), over the test tiles.
pub fn error_table(run: &TrainedDetector, tiles: &TileSet) -> Result<Table> {
    let bins: [(&str, f32, f32); 4] = [
        ("< 24 px", 0.0, 24.0),
        ("24–40 px", 24.0, 40.0),
        ("40–64 px", 40.0, 64.0),
        ("≥ 64 px", 64.0, f32::MAX),
    ];
    let bin = |b: &crate::data::detection::BoundingBox| {
        bins.iter()
            .position(|&(_, lo, hi)| (lo..hi).contains(&b.area().sqrt()))
            .unwrap_or(0)
    };
    let (mut truth, mut missed, mut dets, mut fps) = ([0u64; 4], [0u64; 4], [0u64; 4], [0u64; 4]);
    for (t, d) in tiles.tiles.iter().zip(&run.test_detections) {
        let d = shown(d);
        let (verdicts, found) = match_tile(&t.boxes, &d);
        for (a, f) in t.boxes.iter().zip(&found) {
            truth[bin(&a.bbox)] += 1;
            missed[bin(&a.bbox)] += u64::from(!f);
        }
        for (x, v) in d.iter().zip(&verdicts) {
            dets[bin(&x.bbox)] += 1;
            fps[bin(&x.bbox)] += u64::from(*v == Verdict::FalsePositive);
        }
    }
    let rate = |a: &[u64; 4], b: &[u64; 4]| {
        (0..4)
            .map(|i| {
                if b[i] == 0 {
                    f64::NAN
                } else {
                    a[i] as f64 / b[i] as f64
                }
            })
            .collect::<Vec<_>>()
    };
    Table::from_columns(
        format!("Errors on the test tiles by box size (score ≥ {SHOWN_SCORE}, IoU 0.5)"),
        vec![
            Column::new(
                "size (√area)".into(),
                bins.iter().map(|b| b.0).collect::<Vec<_>>(),
            ),
            Column::new("true boxes".into(), truth.to_vec()),
            Column::new("missed".into(), missed.to_vec()),
            Column::new("miss rate".into(), rate(&missed, &truth)),
            Column::new("detections".into(), dets.to_vec()),
            Column::new("false alarms".into(), fps.to_vec()),
            Column::new("false-alarm rate".into(), rate(&fps, &dets)),
        ],
    )
}

/// Test tiles `indices` with ground truth (green), found crowns (blue) and false alarms
/// (red, dashed) at score ≥ [`SHOWN_SCORE`]; the caption counts each.
pub fn drawn_tiles(
    title: &str,
    run: &TrainedDetector,
    tiles: &TileSet,
    indices: &[usize],
) -> Result<Figure> {
    draw(title, tiles, indices, Some(&run.test_detections))
}

/// Tiles `indices` of a split with their ground truth only.
pub fn truth_tiles(title: &str, tiles: &TileSet, indices: &[usize]) -> Result<Figure> {
    draw(title, tiles, indices, None)
}

/// The worst `n` test tiles of `run` (most false alarms plus misses), drawn.
pub fn worst_drawn(run: &TrainedDetector, tiles: &TileSet, n: usize) -> Result<Figure> {
    let worst: Vec<usize> = worst_tiles(run, tiles)
        .iter()
        .take(n)
        .map(|r| r.0)
        .collect();
    drawn_tiles("The test tiles with the most errors", run, tiles, &worst)
}

/// Room under each drawn tile for its two caption lines.
const CAPTION_HEIGHT: u32 = 29;

fn draw(
    title: &str,
    tiles: &TileSet,
    indices: &[usize],
    detections: Option<&[Vec<Detection>]>,
) -> Result<Figure> {
    let size = tiles.tiles.first().map(|t| t.size).unwrap_or(0);
    let cols = 3usize;
    let cell = size + 16;
    let rows = indices.len().div_ceil(cols) as u32;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        cols as u32 * cell,
        rows * (cell + CAPTION_HEIGHT) + 18
    );
    let legend = match detections {
        Some(_) => format!(
            "{title} — green: truth, blue: found (score ≥ {SHOWN_SCORE}), red dashed: false alarm"
        ),
        None => format!("{title} — green: the labelled crowns"),
    };
    svg += &format!("<text x=\"6\" y=\"13\">{}</text>\n", escape(&legend));
    for (k, &i) in indices.iter().enumerate() {
        let (x, y) = (
            (k % cols) as u32 * cell + 8,
            (k / cols) as u32 * (cell + CAPTION_HEIGHT) + 22,
        );
        // JPEG: a PNG of an aerial tile is ~6× larger, and the notebook shows a dozen.
        let jpeg = plot::jpeg_base64(&tiles.pixels.get(i as i64), 85)?;
        svg += &format!("<image x=\"{x}\" y=\"{y}\" width=\"{size}\" height=\"{size}\" href=\"data:image/jpeg;base64,{jpeg}\"/>\n");
        let t = &tiles.tiles[i];
        let d = detections.map(|all| shown(&all[i])).unwrap_or_default();
        let (verdicts, found) = match_tile(&t.boxes, &d);
        let rect = |b: &crate::data::detection::BoundingBox, style: &str| {
            format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" {style}/>\n", x as f32 + b.x0, y as f32 + b.y0, b.width(), b.height())
        };
        for a in &t.boxes {
            svg += &rect(&a.bbox, "stroke=\"#2ca02c\" stroke-width=\"2\"");
        }
        for (det, v) in d.iter().zip(&verdicts) {
            svg += &match v {
                Verdict::TruePositive => rect(&det.bbox, "stroke=\"#1f77b4\" stroke-width=\"1.5\""),
                Verdict::FalsePositive => rect(
                    &det.bbox,
                    "stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"4 2\"",
                ),
            };
        }
        let fp = verdicts
            .iter()
            .filter(|&&v| v == Verdict::FalsePositive)
            .count();
        let missed = found.iter().filter(|&&f| !f).count();
        // Two lines: one is wider than the tile and ran into its neighbour's.
        let counts = match detections {
            Some(_) => format!(
                "{} true, {} found, {fp} false, {missed} missed",
                t.boxes.len(),
                d.len() - fp
            ),
            None => format!("{} crowns", t.boxes.len()),
        };
        let place = format!("tile {i} at ({}, {})", t.x, t.y);
        for (line, text) in [place, counts].iter().enumerate() {
            svg += &format!(
                "<text x=\"{x}\" y=\"{}\">{}</text>\n",
                y + size + 13 + 13 * line as u32,
                escape(text)
            );
        }
    }
    svg += "</svg>\n";
    Ok(Figure::from_svg(title, svg))
}

/// The run against the track's goals, in words: mAP@0.5 ≥ `goal_map50` on the held-out
/// plot's tiles, training within `budget_s` seconds, and the inference speed.
pub fn verdict(run: &TrainedDetector, goal_map50: f64, budget_s: f64) -> crate::render::Markdown {
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let m = &run.test;
    crate::render::Markdown(format!(
        "On the {} tiles of the held-out plot ({} labelled crowns), the detector reaches **mAP@0.5 {:.3}** (goal ≥ {goal_map50:.2}: {}) and mAP@0.5:0.95 {:.3}, with AR@100 {:.3}. Training took {:.0} s on this CPU (goal ≤ {budget_s:.0} s: {}); inference runs at {:.1} tiles/s ({}×{} px, network and decoding, batches of {}).",
        m.images, m.ground_truth, m.map50, met(m.map50 >= goal_map50), m.map, m.ar100,
        run.meta.train_seconds, met(run.meta.train_seconds <= budget_s),
        run.meta.test_tiles_per_second.unwrap_or(f64::NAN), run.config.tiles.size, run.config.tiles.size,
        run.config.train.eval_batch_size,
    ))
}

/// The run on a whole image (tiled, detected, merged across tiles): boxes kept at three
/// score thresholds beside the crowns labelled in the image's annotation, if given.
pub fn whole_image(
    run: &TrainedDetector,
    image: &std::path::Path,
    labelled: Option<usize>,
) -> Result<Table> {
    // Loaded back from the run directory, as `lab detect predict` does.
    let loaded = super::predict::LoadedDetector::load(&run.run.path)?;
    let pixels = image::open(image)
        .map_err(|e| crate::Error::data(image, format!("not a readable image: {e}")))?
        .into_rgb8();
    let started = std::time::Instant::now();
    let found = loaded.detect(&pixels)?;
    let seconds = started.elapsed().as_secs_f64();
    let thresholds = [0.2f32, SHOWN_SCORE, 0.5];
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Table::from_columns(
        format!(
            "{name} ({}×{} px) detected whole in {seconds:.1} s; labelled crowns: {}",
            pixels.width(),
            pixels.height(),
            labelled.map(|n| n.to_string()).unwrap_or("—".into())
        ),
        vec![
            Column::new(
                "score ≥".into(),
                thresholds.iter().map(|&t| t as f64).collect::<Vec<_>>(),
            ),
            Column::new(
                "boxes".into(),
                thresholds
                    .iter()
                    .map(|&t| found.iter().filter(|d| d.score >= t).count() as u64)
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

/// The run's test mAP with and without test-time flips ([`super::model::Detector::forward_flips`]):
/// the same weights, the maps of four flipped passes averaged before decoding.
pub fn flip_test(run: &TrainedDetector, tiles: &TileSet, classes: &[String]) -> Result<Table> {
    let size = tiles.tiles.first().map(|t| t.size as i64).unwrap_or(0);
    let started = std::time::Instant::now();
    let mut found = Vec::with_capacity(tiles.len());
    let batch = run.config.train.eval_batch_size.max(1);
    tch::no_grad(|| {
        for start in (0..tiles.len()).step_by(batch) {
            let idx: Vec<i64> = (start as i64..(start + batch).min(tiles.len()) as i64).collect();
            let out = run
                .net
                .forward_flips(&tiles.images(&tch::Tensor::from_slice(&idx)));
            found.extend(super::decode::decode(&out, size, &run.config.decode));
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let truth: Vec<Vec<Annotation>> = tiles.tiles.iter().map(|t| t.boxes.clone()).collect();
    let flipped = super::coco_eval::evaluate(&truth, &found, classes);
    let rows = [
        (
            "one pass",
            &run.test,
            run.meta.test_tiles_per_second.unwrap_or(f64::NAN),
        ),
        (
            "four flips averaged",
            &flipped,
            tiles.len() as f64 / seconds.max(1e-9),
        ),
    ];
    let col = |name: &str, f: &dyn Fn(&super::CocoMetrics) -> f64| {
        Column::new(name.into(), rows.iter().map(|r| f(r.1)).collect::<Vec<_>>())
    };
    Table::from_columns(
        "Test-time flips, same weights",
        vec![
            Column::new(
                "inference".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            col("test mAP@0.5", &|m| m.map50),
            col("test mAP@0.5:0.95", &|m| m.map),
            col("AR@100", &|m| m.ar100),
            Column::new(
                "tiles/s".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
        ],
    )
}
