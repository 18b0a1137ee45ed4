//! COCO JSON: `images` (`id`, `file_name`), `annotations` (`image_id`, `category_id`,
//! `bbox` as `[x, y, width, height]`) and `categories` (`id`, `name`) in one file.
use super::{assemble, image_size, skip_or_fail, RawImage};
use super::{BoundingBox, DetectionSet, ReadOptions};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    #[serde(default)]
    id: Option<i64>,
    image_id: i64,
    category_id: i64,
    bbox: Vec<f32>,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: i64,
    name: String,
}

/// The annotations in `json`, images looked up in `images` by `file_name`.
pub fn read(json: &Path, images: &Path, opts: &ReadOptions) -> Result<DetectionSet> {
    let text = std::fs::read_to_string(json).map_err(|e| Error::io(json, e))?;
    if text.trim().is_empty() {
        return Err(Error::data(
            json,
            "is empty (a COCO file needs images, annotations and categories)",
        ));
    }
    let file: CocoFile = serde_json::from_str(&text).map_err(|e| {
        Error::data(
            json,
            format!(
                "not a COCO annotation file: line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let names: HashMap<i64, &str> = file
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let mut skipped = Vec::new();
    let mut raw: Vec<RawImage> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for img in &file.images {
        let path = images.join(&img.file_name);
        match image_size(&path, json) {
            Ok((width, height)) => {
                index.insert(img.id, raw.len());
                raw.push(RawImage {
                    path,
                    width,
                    height,
                    boxes: Vec::new(),
                    source: json.to_path_buf(),
                });
            }
            Err(e) => skip_or_fail(
                Error::data(
                    json,
                    format!("image id {} (`{}`): {e}", img.id, img.file_name),
                ),
                opts,
                &mut skipped,
            )?,
        }
    }
    let known_ids: std::collections::HashSet<i64> = file.images.iter().map(|i| i.id).collect();
    for (i, a) in file.annotations.iter().enumerate() {
        let element = match a.id {
            Some(id) => format!("annotation id {id}"),
            None => format!("annotations[{i}]"),
        };
        let problem = if !known_ids.contains(&a.image_id) {
            Some(format!("image_id {} is not in `images`", a.image_id))
        } else if a.bbox.len() != 4 {
            Some(format!(
                "bbox has {} numbers, not [x, y, width, height]",
                a.bbox.len()
            ))
        } else if !names.contains_key(&a.category_id) {
            Some(format!(
                "category_id {} is not in `categories`",
                a.category_id
            ))
        } else {
            None
        };
        if let Some(why) = problem {
            skip_or_fail(
                Error::data(json, format!("{element}: {why}")),
                opts,
                &mut skipped,
            )?;
            continue;
        }
        // An image already skipped takes its boxes with it.
        let Some(&slot) = index.get(&a.image_id) else {
            continue;
        };
        let b = BoundingBox::from_xywh(a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]);
        raw[slot]
            .boxes
            .push((names[&a.category_id].to_string(), b, element));
    }
    let mut opts = opts.clone();
    if opts.classes.is_empty() {
        // COCO fixes the class order itself: categories sorted by id.
        let mut cats: Vec<&CocoCategory> = file.categories.iter().collect();
        cats.sort_by_key(|c| c.id);
        opts.classes = cats
            .iter()
            .map(|c| opts.rename.get(&c.name).cloned().unwrap_or(c.name.clone()))
            .collect();
        opts.classes.dedup();
    }
    assemble(raw, &opts, skipped)
}
