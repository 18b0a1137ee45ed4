//! Instance masks → boxes (the Penn-Fudan layout): `images/<name>.png` beside
//! `masks/<name><suffix>.png`, where each object's pixels hold its own value (1, 2, …)
//! and 0 is background. Every object becomes the box of its pixels, of one class.
use super::{assemble, files_with, skip_or_fail, RawImage};
use super::{BoundingBox, DetectionSet, ReadOptions};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Every image in `images`, its mask `masks/<stem><suffix>.png` (Penn-Fudan's suffix is
/// `_mask`), each instance a box of class `class`.
pub fn read(
    images: &Path,
    masks: &Path,
    suffix: &str,
    class: &str,
    opts: &ReadOptions,
) -> Result<DetectionSet> {
    let files = files_with(images, &["png", "jpg", "jpeg"])?;
    if files.is_empty() {
        return Err(Error::data(images, "holds no image (png, jpg, jpeg)"));
    }
    let mut raw = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mask_path = masks.join(format!("{stem}{suffix}.png"));
        match boxes_of_mask(&mask_path, &path) {
            Ok((width, height, boxes)) => {
                let boxes = boxes
                    .into_iter()
                    .map(|(id, b)| (class.to_string(), b, format!("instance {id}")))
                    .collect();
                raw.push(RawImage {
                    path,
                    width,
                    height,
                    boxes,
                    source: mask_path,
                });
            }
            Err(e) => skip_or_fail(e, opts, &mut skipped)?,
        }
    }
    assemble(raw, opts, skipped)
}

/// The image's size and each instance value's box (pixel `x` covers `x..x+1`).
/// An image's width, height and its instances' boxes by instance id.
type MaskBoxes = (u32, u32, Vec<(u32, BoundingBox)>);

fn boxes_of_mask(mask_path: &Path, image: &Path) -> Result<MaskBoxes> {
    if !mask_path.is_file() {
        return Err(Error::data(
            image,
            format!("has no mask: {} does not exist", mask_path.display()),
        ));
    }
    let (mw, mh, ids) = instance_ids(mask_path)?;
    let (iw, ih) = image::image_dimensions(image)
        .map_err(|e| Error::data(image, format!("not a readable image: {e}")))?;
    if (mw, mh) != (iw, ih) {
        return Err(Error::data(
            mask_path,
            format!("is {mw}×{mh}, its image {iw}×{ih}: a mask must match its image"),
        ));
    }
    let mut extent: BTreeMap<u32, (u32, u32, u32, u32)> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let (x, y) = (i as u32 % mw, i as u32 / mw);
        if id == 0 {
            continue;
        }
        let e = extent.entry(id).or_insert((x, y, x, y));
        *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y));
    }
    let boxes = extent
        .into_iter()
        .map(|(id, (x0, y0, x1, y1))| {
            (
                id,
                BoundingBox::new(x0 as f32, y0 as f32, (x1 + 1) as f32, (y1 + 1) as f32),
            )
        })
        .collect();
    Ok((iw, ih, boxes))
}

/// The mask's size and its pixel values as stored: palette indices of an indexed PNG
/// (Penn-Fudan's masks) or grey levels of an 8- or 16-bit grey one — not expanded to
/// colours, since the values are the instance ids.
fn instance_ids(path: &Path) -> Result<(u32, u32, Vec<u32>)> {
    let bad = |why: String| Error::data(path, format!("not a readable PNG mask: {why}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| bad("too large".into()))?
    ];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    let bytes = &buf[..info.buffer_size()];
    use png::{BitDepth, ColorType};
    let ids = match (info.color_type, info.bit_depth) {
        (ColorType::Grayscale | ColorType::Indexed, BitDepth::Eight) => {
            bytes.iter().map(|&b| b as u32).collect()
        }
        (ColorType::Grayscale, BitDepth::Sixteen) => bytes
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .collect(),
        (c, d) => {
            return Err(bad(format!(
                "{c:?} at {d:?} bits; instance masks are 8-bit indexed or 8/16-bit grey"
            )))
        }
    };
    Ok((info.width, info.height, ids))
}
