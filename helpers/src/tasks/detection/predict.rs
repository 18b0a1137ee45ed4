//! A trained detector on a whole image of any size: cut into the run's tiles (with their
//! overlap), detected tile by tile, boxes moved to image coordinates and merged across
//! tiles by per-class NMS (a crown in an overlap is found twice). Also the drawing of
//! boxes onto the image, and the run loaded back from its directory.
use super::config::DetectionConfig;
use super::decode::{nms_per_class, Detection};
use super::fit::CONFIG_FILE;
use super::model::Detector;
use crate::data::detection::tiles::{self, Region, TileSet};
use crate::data::detection::{AnnotatedImage, DetectionSet};
use crate::io::read_json;
use crate::run::RunDir;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// A run's detector with its config and class names.
pub struct LoadedDetector {
    pub config: DetectionConfig,
    pub classes: Vec<String>,
    pub net: Detector,
}

impl LoadedDetector {
    /// The best weights of the detection run at `run_dir`.
    pub fn load(run_dir: &Path) -> Result<LoadedDetector> {
        let run = RunDir::at(run_dir);
        run.scorable(CONFIG_FILE, &crate::run::Retrain::LAB_DETECT)?;
        let config = DetectionConfig::from_toml_file(&run.file(CONFIG_FILE)).map_err(|e| {
            e.with_hint("not a detection run directory (train one with `lab detect train`)")
        })?;
        let classes: Vec<String> = read_json(&run.file("classes.json"))?;
        let net = Detector::for_checkpoint(&config.net, classes.len() as i64, tch::Device::Cpu)?;
        crate::io::tensors::load_named(&net.weights(), &run.best_checkpoint())?;
        Ok(LoadedDetector {
            config,
            classes,
            net,
        })
    }

    /// The detections on `image` (any size ≥ one tile; smaller images are padded with
    /// black), in image pixels, highest score first.
    pub fn detect(&self, image: &image::RgbImage) -> Result<Vec<Detection>> {
        let t = self.config.tiles.size;
        let padded;
        let image = if image.width() < t || image.height() < t {
            let mut canvas = image::RgbImage::new(image.width().max(t), image.height().max(t));
            image::imageops::replace(&mut canvas, image, 0, 0);
            padded = canvas;
            &padded
        } else {
            image
        };
        let set = DetectionSet {
            classes: self.classes.clone(),
            images: vec![AnnotatedImage {
                path: "input".into(),
                width: image.width(),
                height: image.height(),
                boxes: vec![],
            }],
            skipped: vec![],
        };
        let layout = tiles::layout(&set, 0, Region::whole(&set.images[0]), &self.config.tiles)?;
        let tile_set = TileSet::cut(layout, &[image]);
        let batch = self.config.train.eval_batch_size;
        let per_tile = super::task::detect_tiles(&self.net, &tile_set, &self.config.decode, batch);
        let all: Vec<Detection> = tile_set
            .tiles
            .iter()
            .zip(per_tile)
            .flat_map(|(tile, dets)| {
                dets.into_iter().map(move |d| Detection {
                    bbox: d.bbox.shifted(tile.x as f32, tile.y as f32),
                    ..d
                })
            })
            .collect();
        Ok(nms_per_class(all, self.config.decode.nms_iou as f32))
    }
}

/// What `lab detect predict` writes as JSON.
#[derive(Debug, Serialize)]
pub struct ImagePrediction {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<NamedDetection>,
}

#[derive(Debug, Serialize)]
pub struct NamedDetection {
    pub class: String,
    pub score: f32,
    /// `[x0, y0, x1, y1]` in pixels.
    pub bbox: [f32; 4],
}

/// Detects on the image at `path` with the run at `run_dir`, keeping boxes scored at
/// least `min_score`; writes `<out>/<stem>_boxes.png` and `<out>/<stem>.json`.
pub fn predict_file(
    run_dir: &Path,
    path: &Path,
    out: &Path,
    min_score: f32,
) -> Result<ImagePrediction> {
    let det = LoadedDetector::load(run_dir)?;
    let image = image::open(path)
        .map_err(|e| Error::data(path, format!("not a readable image: {e}")))?
        .into_rgb8();
    let found: Vec<Detection> = det
        .detect(&image)?
        .into_iter()
        .filter(|d| d.score >= min_score)
        .collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let drawn = draw_boxes(&image, &found, [255, 64, 32]);
    let png = out.join(format!("{stem}_boxes.png"));
    let mut bytes = Vec::new();
    drawn
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::data(&png, format!("cannot encode PNG: {e}")))?;
    crate::io::write_atomic(&png, &bytes)?;
    let prediction = ImagePrediction {
        image: path.display().to_string(),
        width: image.width(),
        height: image.height(),
        detections: found
            .iter()
            .map(|d| NamedDetection {
                class: det.classes[d.class].clone(),
                score: d.score,
                bbox: [d.bbox.x0, d.bbox.y0, d.bbox.x1, d.bbox.y1],
            })
            .collect(),
    };
    crate::io::write_json(&out.join(format!("{stem}.json")), &prediction)?;
    Ok(prediction)
}

/// `image` with a 2-pixel rectangle of `color` around each detection.
pub fn draw_boxes(image: &image::RgbImage, dets: &[Detection], color: [u8; 3]) -> image::RgbImage {
    let mut out = image.clone();
    let (w, h) = (out.width() as i64, out.height() as i64);
    let mut put = |x: i64, y: i64| {
        if x >= 0 && y >= 0 && x < w && y < h {
            out.put_pixel(x as u32, y as u32, image::Rgb(color));
        }
    };
    for d in dets {
        let (x0, y0, x1, y1) = (
            d.bbox.x0 as i64,
            d.bbox.y0 as i64,
            d.bbox.x1 as i64 - 1,
            d.bbox.y1 as i64 - 1,
        );
        for k in 0..2 {
            for x in x0..=x1 {
                put(x, y0 + k);
                put(x, y1 - k);
            }
            for y in y0..=y1 {
                put(x0 + k, y);
                put(x1 - k, y);
            }
        }
    }
    out
}
