//! The NEON tree-crown images DeepForest ships (PyPI `deepforest` 2.1.0, installed by
//! `scripts/setup packaged-data` into `data/neon_trees/`, each file checked by SHA-256):
//! 10 cm aerial RGB of four plots with hand-drawn crown boxes in Pascal VOC, and the
//! split that keeps every tree in one split.
use super::tiles::Region;
use super::{voc, DetectionSet, ReadOptions};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where `scripts/setup` puts the files, relative to the repository.
pub const DEFAULT_DIR: &str = "data/neon_trees";
/// The plot held out whole as the test set: another NEON tile of the same site
/// (Yellowstone), about 13 km from the training plot.
pub const TEST_IMAGE: &str = "2019_YELL_2_541000_4977000_image_crop";
/// The large training plot; its bottom strip is the validation set.
pub const SPLIT_IMAGE: &str = "2019_YELL_2_528000_4978000_image_crop2";

/// The four annotated plots, one class: SOAP_061's `Alive` and `Dead` crowns count as
/// `Tree` (they are crowns all the same; the 37 boxes are too few for classes of their own).
pub fn load(dir: &Path, skip_bad: bool) -> Result<DetectionSet> {
    if !dir.join(format!("{TEST_IMAGE}.xml")).is_file() {
        return Err(
            Error::data(dir, "does not hold the NEON tree-crown files").with_hint(
                "run scripts/setup packaged-data (it takes them from the deepforest wheel)",
            ),
        );
    }
    let mut opts = ReadOptions::with_classes(&["Tree"], &[("Alive", "Tree"), ("Dead", "Tree")]);
    opts.skip_bad = skip_bad;
    voc::read_dir(dir, dir, &opts)
}

/// Which pixels of which image each split sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionSplit {
    pub train: Vec<(usize, Region)>,
    pub val: Vec<(usize, Region)>,
    pub test: Vec<(usize, Region)>,
    /// The validation strip's top edge in the split image.
    pub cut_y: u32,
    /// Boxes the cut line passes through: each belongs to the side holding its centre
    /// and is unlabelled in the other side's pixels.
    pub crossing: usize,
}

/// `test_image` held out whole; the bottom `val_fraction` of `split_image` (its top edge
/// moved, within 5 % of the height, to the row crossing the fewest boxes) for validation;
/// the rest of it and every other image for training. Splitting by image and region
/// rather than by tile keeps overlapping tiles, which share trees, in one split.
pub fn split(
    set: &DetectionSet,
    (test_image, split_image): (&str, &str),
    val_fraction: f64,
) -> Result<RegionSplit> {
    let find = |stem: &str| {
        set.images
            .iter()
            .position(|i| i.stem() == stem)
            .ok_or_else(|| Error::argument("image", format!("no image named `{stem}` in the set")))
    };
    let (t, s) = (find(test_image)?, find(split_image)?);
    if t == s {
        return Err(Error::argument(
            "image",
            "the test image and the split image must differ",
        ));
    }
    let image = &set.images[s];
    let crossings = |y: f32| {
        image
            .boxes
            .iter()
            .filter(|a| a.bbox.y0 < y && y < a.bbox.y1)
            .count()
    };
    let target = (image.height as f64 * (1.0 - val_fraction)) as i64;
    let window = (image.height as f64 * 0.05) as i64;
    let cut_y = (target - window..=target + window)
        .filter(|&y| y > 0 && y < image.height as i64)
        .min_by_key(|&y| (crossings(y as f32), (y - target).abs()))
        .ok_or_else(|| {
            Error::argument(
                "val_fraction",
                format!("{val_fraction} leaves no row to cut at"),
            )
        })? as u32;
    let whole = |i: usize| (i, Region::whole(&set.images[i]));
    let top = Region {
        y1: cut_y,
        ..Region::whole(image)
    };
    let bottom = Region {
        y0: cut_y,
        ..Region::whole(image)
    };
    let mut train = vec![(s, top)];
    train.extend(
        (0..set.images.len())
            .filter(|&i| i != t && i != s)
            .map(whole),
    );
    Ok(RegionSplit {
        train,
        val: vec![(s, bottom)],
        test: vec![whole(t)],
        cut_y,
        crossing: crossings(cut_y as f32),
    })
}
