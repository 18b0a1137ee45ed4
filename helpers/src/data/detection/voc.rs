//! Pascal VOC XML: one `<annotation>` file per image, `<object>` elements with a
//! `<name>` and a `<bndbox>` of `xmin ymin xmax ymax` in pixels.
use super::{assemble, files_with, image_size, sibling_image, skip_or_fail, RawImage};
use super::{BoundingBox, DetectionSet, ReadOptions};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Every `*.xml` in `dir`, each image looked up in `images` (the XML's `<filename>`,
/// else the file of the XML's stem with a PNG/JPEG extension, beside the XML or in
/// `images`).
pub fn read_dir(dir: &Path, images: &Path, opts: &ReadOptions) -> Result<DetectionSet> {
    let files = files_with(dir, &["xml"])?;
    if files.is_empty() {
        return Err(Error::data(dir, "holds no .xml annotation file"));
    }
    read_files(&files, images, opts)
}

/// The given XML files (see [`read_dir`]).
pub fn read_files(files: &[PathBuf], images: &Path, opts: &ReadOptions) -> Result<DetectionSet> {
    let mut raw = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        match read_one(file, images) {
            Ok(r) => raw.push(r),
            Err(e) => skip_or_fail(e, opts, &mut skipped)?,
        }
    }
    assemble(raw, opts, skipped)
}

fn read_one(file: &Path, images: &Path) -> Result<RawImage> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    if text.trim().is_empty() {
        return Err(Error::data(
            file,
            "is empty (a VOC annotation needs an <annotation> element)",
        ));
    }
    let doc = roxmltree::Document::parse(&text)
        .map_err(|e| Error::data(file, format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "annotation" {
        return Err(Error::data(
            file,
            format!(
                "root element is <{}>, not <annotation>",
                root.tag_name().name()
            ),
        ));
    }
    let filename = child_text(root, "filename");
    let path = locate_image(file, images, filename.as_deref())?;
    let (width, height) = image_size(&path, file)?;
    let mut boxes = Vec::new();
    for (i, obj) in root
        .children()
        .filter(|n| n.has_tag_name("object"))
        .enumerate()
    {
        let element = format!("<object> #{}", i + 1);
        let name = child_text(obj, "name")
            .ok_or_else(|| Error::data(file, format!("{element}: has no <name>")))?;
        let bndbox = obj
            .children()
            .find(|n| n.has_tag_name("bndbox"))
            .ok_or_else(|| Error::data(file, format!("{element}: has no <bndbox>")))?;
        let coord = |k: &str| -> Result<f32> {
            let v = child_text(bndbox, k)
                .ok_or_else(|| Error::data(file, format!("{element}: <bndbox> has no <{k}>")))?;
            v.trim()
                .parse::<f32>()
                .map_err(|_| Error::data(file, format!("{element}: <{k}> is `{v}`, not a number")))
        };
        let b = BoundingBox::new(
            coord("xmin")?,
            coord("ymin")?,
            coord("xmax")?,
            coord("ymax")?,
        );
        boxes.push((name.trim().to_string(), b, element));
    }
    Ok(RawImage {
        path,
        width,
        height,
        boxes,
        source: file.to_path_buf(),
    })
}

fn child_text(node: roxmltree::Node, tag: &str) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .map(str::to_string)
}

/// The image an XML describes: `<filename>` in `images`, else an image of the XML's stem
/// beside it or in `images` (tools often write the original `.tif` name while a PNG copy
/// is what is shipped).
fn locate_image(xml: &Path, images: &Path, filename: Option<&str>) -> Result<PathBuf> {
    if let Some(name) = filename {
        let p = images.join(name.trim());
        if p.is_file() {
            return Ok(p);
        }
    }
    let stem = xml.file_stem().unwrap_or_default();
    sibling_image(xml)
        .or_else(|| sibling_image(&images.join(stem)))
        .ok_or_else(|| {
            Error::data(
                xml,
                format!(
                    "its image ({}) is in neither {} nor beside the XML",
                    filename.unwrap_or("no <filename>"),
                    images.display()
                ),
            )
        })
}
