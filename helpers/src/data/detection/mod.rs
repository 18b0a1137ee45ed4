//! Object-detection data: annotated images ([`DetectionSet`]) read from the formats
//! users bring — Pascal VOC XML ([`voc`]), COCO JSON ([`coco`]), YOLO txt ([`yolo`]),
//! instance-mask PNGs ([`masks`]) — the NEON tree-crown images DeepForest ships
//! ([`neon`]), tiling of large images ([`tiles`]) and the data card ([`card`]).
//!
//! Every reader checks each box against its image (inside it, positive area) and each
//! class name against the known classes, and names the file and element of a bad one;
//! with [`ReadOptions::skip_bad`] a bad box or file is left out and counted instead.
pub mod boxes;
pub mod card;
pub mod coco;
pub mod masks;
pub mod neon;
pub mod tiles;
pub mod voc;
pub mod yolo;

pub use boxes::BoundingBox;
pub use card::DetectionCard;
pub use tiles::{Tile, TileSet, TilingConfig};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One labelled box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Index into the set's class names.
    pub class: usize,
    pub bbox: BoundingBox,
}

/// An image file and its boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotatedImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<Annotation>,
}

impl AnnotatedImage {
    /// The file name without its extension: the image's name in cards and splits.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Annotated images with their class names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionSet {
    pub classes: Vec<String>,
    pub images: Vec<AnnotatedImage>,
    /// What [`ReadOptions::skip_bad`] left out, one line each (file, element, why).
    pub skipped: Vec<String>,
}

impl DetectionSet {
    pub fn num_boxes(&self) -> usize {
        self.images.iter().map(|i| i.boxes.len()).sum()
    }
}

/// How annotation files are read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The class names, in index order; empty = every name found, sorted.
    pub classes: Vec<String>,
    /// Names mapped to others before the lookup (e.g. `Alive` and `Dead` → `Tree`).
    pub rename: BTreeMap<String, String>,
    /// Leave out (and count in [`DetectionSet::skipped`]) a bad box or file instead of
    /// failing on it.
    pub skip_bad: bool,
}

impl ReadOptions {
    /// Only `classes`, with `rename` applied first.
    pub fn with_classes(classes: &[&str], rename: &[(&str, &str)]) -> ReadOptions {
        ReadOptions {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            rename: rename
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            skip_bad: false,
        }
    }
}

/// Box and class names as read, before classes get their indices: what every reader
/// produces, so the checks and the class lookup live here once.
pub(crate) struct RawImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// (class name, box, where in the annotation file: "object 3").
    pub boxes: Vec<(String, BoundingBox, String)>,
    /// The annotation file (for messages).
    pub source: PathBuf,
}

/// Checks each raw box, maps class names to indices and collects the set; a problem is
/// an error naming file and element, or a skipped line with `opts.skip_bad`.
pub(crate) fn assemble(
    raw: Vec<RawImage>,
    opts: &ReadOptions,
    mut skipped: Vec<String>,
) -> Result<DetectionSet> {
    let rename = |n: &str| opts.rename.get(n).cloned().unwrap_or_else(|| n.to_string());
    let classes: Vec<String> = if opts.classes.is_empty() {
        let mut found: Vec<String> = raw
            .iter()
            .flat_map(|r| r.boxes.iter().map(|b| rename(&b.0)))
            .collect();
        found.sort();
        found.dedup();
        found
    } else {
        opts.classes.clone()
    };
    let mut images = Vec::with_capacity(raw.len());
    for r in raw {
        let mut boxes = Vec::with_capacity(r.boxes.len());
        for (name, bbox, element) in &r.boxes {
            let problem = box_problem(bbox, r.width, r.height).or_else(|| {
                let name = rename(name);
                (!classes.contains(&name)).then(|| {
                    format!(
                        "unknown class name `{name}` (known: {}); add it to the classes or map it with a rename",
                        classes.join(", ")
                    )
                })
            });
            match problem {
                None => {
                    let class = classes.iter().position(|c| *c == rename(name)).unwrap();
                    boxes.push(Annotation { class, bbox: *bbox });
                }
                Some(why) => {
                    let err = Error::data(&r.source, format!("{element}: {why}"));
                    skip_or_fail(err, opts, &mut skipped)?;
                }
            }
        }
        images.push(AnnotatedImage {
            path: r.path,
            width: r.width,
            height: r.height,
            boxes,
        });
    }
    Ok(DetectionSet {
        classes,
        images,
        skipped,
    })
}

/// What is wrong with `b` on a `width`×`height` image, if anything.
fn box_problem(b: &BoundingBox, width: u32, height: u32) -> Option<String> {
    let finite = [b.x0, b.y0, b.x1, b.y1].iter().all(|v| v.is_finite());
    let (w, h) = (width as f32, height as f32);
    if !finite {
        Some(format!("box {b:?} has a non-finite coordinate"))
    } else if b.x1 <= b.x0 || b.y1 <= b.y0 {
        Some(format!(
            "box ({}, {}, {}, {}) has zero area (x1 must exceed x0 and y1 exceed y0)",
            b.x0, b.y0, b.x1, b.y1
        ))
    } else if b.x0 < 0.0 || b.y0 < 0.0 || b.x1 > w || b.y1 > h {
        Some(format!(
            "box ({}, {}, {}, {}) lies outside the {width}×{height} image",
            b.x0, b.y0, b.x1, b.y1
        ))
    } else {
        None
    }
}

/// `err` returned, or recorded in `skipped` when the options allow skipping.
pub(crate) fn skip_or_fail(
    err: Error,
    opts: &ReadOptions,
    skipped: &mut Vec<String>,
) -> Result<()> {
    if opts.skip_bad {
        skipped.push(err.to_string());
        Ok(())
    } else {
        Err(err.with_hint(
            "fix the annotation, or set `data.skip_bad = true` in the detection config to leave such boxes out and count them",
        ))
    }
}

/// The size of the image at `path` from its header, or an error naming the annotation
/// file that points to it.
pub(crate) fn image_size(path: &Path, annotation: &Path) -> Result<(u32, u32)> {
    if !path.is_file() {
        return Err(Error::data(
            annotation,
            format!("its image {} does not exist", path.display()),
        ));
    }
    image::image_dimensions(path)
        .map_err(|e| Error::data(path, format!("not a readable image: {e}")))
}

/// Files in `dir` with one of `extensions` (lower-case, no dot), sorted by name.
pub(crate) fn files_with(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The image beside `annotation` (same stem) with one of the usual extensions.
pub(crate) fn sibling_image(annotation: &Path) -> Option<PathBuf> {
    ["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
        .iter()
        .map(|e| annotation.with_extension(e))
        .find(|p| p.is_file())
}
