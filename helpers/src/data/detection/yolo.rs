//! YOLO txt (the coco128 layout): `images/<split>/<name>.jpg` beside
//! `labels/<split>/<name>.txt`, one line per box, `class cx cy width height`, the
//! centre and size as fractions of the image's width and height. An image without a
//! label file, or with an empty one, has no objects — the format's own convention for
//! background images.
use super::{assemble, files_with, image_size, skip_or_fail, RawImage};
use super::{BoundingBox, DetectionSet, ReadOptions};
use crate::{Error, Result};
use std::path::Path;

/// Every image in `images`, its boxes from `labels/<stem>.txt`; `names[i]` is class
/// `i`'s name (the `names` list of the dataset's YAML).
pub fn read(
    images: &Path,
    labels: &Path,
    names: &[String],
    opts: &ReadOptions,
) -> Result<DetectionSet> {
    let files = files_with(images, &["jpg", "jpeg", "png", "bmp"])?;
    if files.is_empty() {
        return Err(Error::data(images, "holds no image (jpg, jpeg, png, bmp)"));
    }
    let mut raw = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let label = labels.join(format!("{stem}.txt"));
        let (width, height) = match image_size(&path, &label) {
            Ok(s) => s,
            Err(e) => {
                skip_or_fail(e, opts, &mut skipped)?;
                continue;
            }
        };
        let text = match std::fs::read_to_string(&label) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&label, e)),
        };
        let mut boxes = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let element = format!("line {}", i + 1);
            match parse_line(line, names, (width, height)) {
                Ok((name, b)) => boxes.push((name, b, element)),
                Err(why) => skip_or_fail(
                    Error::data(&label, format!("{element}: {why}")),
                    opts,
                    &mut skipped,
                )?,
            }
        }
        raw.push(RawImage {
            path,
            width,
            height,
            boxes,
            source: label,
        });
    }
    let mut opts = opts.clone();
    if opts.classes.is_empty() {
        opts.classes = names.to_vec();
    }
    assemble(raw, &opts, skipped)
}

fn parse_line(
    line: &str,
    names: &[String],
    (w, h): (u32, u32),
) -> std::result::Result<(String, BoundingBox), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`{line}` has {} fields, not `class cx cy width height`",
            fields.len()
        ));
    }
    let class: usize = fields[0]
        .parse()
        .map_err(|_| format!("class `{}` is not an index", fields[0]))?;
    let name = names.get(class).ok_or_else(|| {
        format!(
            "class index {class} is beyond the {} names given",
            names.len()
        )
    })?;
    let mut v = [0f32; 4];
    for (slot, f) in v.iter_mut().zip(&fields[1..]) {
        *slot = f.parse().map_err(|_| format!("`{f}` is not a number"))?;
    }
    let (w, h) = (w as f32, h as f32);
    let [cx, cy, bw, bh] = v;
    let b = BoundingBox::new(
        (cx - bw / 2.0) * w,
        (cy - bh / 2.0) * h,
        (cx + bw / 2.0) * w,
        (cy + bh / 2.0) * h,
    );
    Ok((name.clone(), b))
}
