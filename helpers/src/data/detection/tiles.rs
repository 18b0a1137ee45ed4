//! Large images cut into fixed square tiles with overlap. A box cut by a tile's edge is
//! clipped to the tile and kept when at least [`TilingConfig::min_visible`] of its area
//! is inside; a smaller sliver is dropped (a network cannot be asked to find a crown
//! from its last few pixels). Tiles can be confined to a region of their image, so a
//! split by region never lets a tile see the other split's pixels.
use super::{AnnotatedImage, Annotation, BoundingBox, DetectionSet};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TilingConfig {
    /// Side of a tile in pixels (a multiple of 32: the detector's coarsest stride).
    pub size: u32,
    /// Pixels shared by neighbouring tiles.
    pub overlap: u32,
    /// Fraction of a cut box's area that must lie inside a tile for it to be kept.
    pub min_visible: f32,
}

impl Default for TilingConfig {
    fn default() -> Self {
        TilingConfig {
            size: 256,
            overlap: 64,
            min_visible: 0.5,
        }
    }
}

impl TilingConfig {
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 || !self.size.is_multiple_of(32) {
            return Err(Error::config(
                "tiles.size",
                format!(
                    "is {}; it must be a positive multiple of 32 (the detector's coarsest stride)",
                    self.size
                ),
            ));
        }
        if self.overlap >= self.size {
            return Err(Error::config(
                "tiles.overlap",
                format!("is {}, not below tiles.size {}", self.overlap, self.size),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_visible) || self.min_visible == 0.0 {
            return Err(Error::config(
                "tiles.min_visible",
                format!("is {}; it must be in (0, 1]", self.min_visible),
            ));
        }
        Ok(())
    }
}

/// A rectangle of an image in pixels, `x0..x1` × `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Region {
    pub fn whole(image: &AnnotatedImage) -> Region {
        Region {
            x0: 0,
            y0: 0,
            x1: image.width,
            y1: image.height,
        }
    }

    fn contains(&self, (x, y): (f32, f32)) -> bool {
        x >= self.x0 as f32 && x < self.x1 as f32 && y >= self.y0 as f32 && y < self.y1 as f32
    }
}

/// One tile: where it lies in which image, and its boxes in tile coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    /// Index of the image in its [`DetectionSet`].
    pub image: usize,
    pub x: u32,
    pub y: u32,
    pub size: u32,
    pub boxes: Vec<Annotation>,
    /// Boxes clipped by the tile's edge and kept.
    pub clipped: usize,
    /// Boxes reaching into the tile whose visible part was too small to keep.
    pub dropped: usize,
}

/// Start positions along one axis: every `stride` from `start`, the last flush with
/// `end`, so the tiles cover `start..end` and none passes it.
fn positions(start: u32, end: u32, size: u32, stride: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut p = start;
    while p + size <= end {
        out.push(p);
        p += stride;
    }
    if out.last().is_none_or(|&l| l + size < end) {
        out.push(end - size);
    }
    out
}

/// The tiles of `region` of image `index`, with the boxes whose centre is in the region.
pub fn layout(
    set: &DetectionSet,
    index: usize,
    region: Region,
    cfg: &TilingConfig,
) -> Result<Vec<Tile>> {
    let image = &set.images[index];
    let (w, h) = (
        region.x1.saturating_sub(region.x0),
        region.y1.saturating_sub(region.y0),
    );
    if w < cfg.size || h < cfg.size {
        return Err(Error::data(
            &image.path,
            format!(
                "region {w}×{h} is smaller than a {0}×{0} tile; lower tiles.size",
                cfg.size
            ),
        ));
    }
    let owned: Vec<&Annotation> = image
        .boxes
        .iter()
        .filter(|a| region.contains(a.bbox.center()))
        .collect();
    let stride = cfg.size - cfg.overlap;
    let mut tiles = Vec::new();
    for &y in &positions(region.y0, region.y1, cfg.size, stride) {
        for &x in &positions(region.x0, region.x1, cfg.size, stride) {
            tiles.push(cut_boxes(index, (x, y), cfg, &owned));
        }
    }
    Ok(tiles)
}

fn cut_boxes(image: usize, (x, y): (u32, u32), cfg: &TilingConfig, owned: &[&Annotation]) -> Tile {
    let frame = BoundingBox::new(
        x as f32,
        y as f32,
        (x + cfg.size) as f32,
        (y + cfg.size) as f32,
    );
    let mut tile = Tile {
        image,
        x,
        y,
        size: cfg.size,
        boxes: Vec::new(),
        clipped: 0,
        dropped: 0,
    };
    for a in owned {
        let inside = a.bbox.intersection(&frame);
        if inside.width() <= 0.0 || inside.height() <= 0.0 {
            continue;
        }
        let visible = inside.area() / a.bbox.area();
        if visible < cfg.min_visible {
            tile.dropped += 1;
            continue;
        }
        if visible < 1.0 {
            tile.clipped += 1;
        }
        let bbox = inside.shifted(-(x as f32), -(y as f32));
        tile.boxes.push(Annotation {
            class: a.class,
            bbox,
        });
    }
    tile
}

/// Tiles with their pixels, `[N, 3, size, size]` `u8`.
#[derive(Debug)]
pub struct TileSet {
    pub tiles: Vec<Tile>,
    pub pixels: Tensor,
}

impl TileSet {
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    pub fn num_boxes(&self) -> usize {
        self.tiles.iter().map(|t| t.boxes.len()).sum()
    }

    /// Tiles `index` as floats in [0, 1], `[n, 3, size, size]`.
    pub fn images(&self, index: &Tensor) -> Tensor {
        self.pixels.index_select(0, index).to_kind(Kind::Float) / 255.0
    }

    /// Cuts the pixels of `tiles` out of their images (`images[tile.image]`, RGB).
    pub fn cut(tiles: Vec<Tile>, images: &[&image::RgbImage]) -> TileSet {
        let pixels: Vec<Tensor> = tiles
            .iter()
            .map(|t| tile_pixels(images[t.image], t))
            .collect();
        let pixels = if pixels.is_empty() {
            Tensor::zeros([0, 3, 1, 1], (Kind::Uint8, tch::Device::Cpu))
        } else {
            Tensor::stack(&pixels, 0)
        };
        TileSet { tiles, pixels }
    }
}

/// The tile's pixels `[3, size, size]`.
fn tile_pixels(image: &image::RgbImage, t: &Tile) -> Tensor {
    let view = image::imageops::crop_imm(image, t.x, t.y, t.size, t.size).to_image();
    Tensor::from_slice(view.as_raw())
        .view([t.size as i64, t.size as i64, 3])
        .permute([2, 0, 1])
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_with(boxes: &[(f32, f32, f32, f32)], w: u32, h: u32) -> DetectionSet {
        DetectionSet {
            classes: vec!["tree".into()],
            images: vec![AnnotatedImage {
                path: "x.png".into(),
                width: w,
                height: h,
                boxes: boxes
                    .iter()
                    .map(|&(a, b, c, d)| Annotation {
                        class: 0,
                        bbox: BoundingBox::new(a, b, c, d),
                    })
                    .collect(),
            }],
            skipped: vec![],
        }
    }

    #[test]
    fn positions_cover_the_axis_and_end_flush() {
        assert_eq!(positions(0, 400, 256, 192), vec![0, 144]);
        assert_eq!(positions(0, 256, 256, 192), vec![0]);
        assert_eq!(positions(0, 2299, 256, 192).last(), Some(&2043));
        assert_eq!(positions(100, 600, 256, 192), vec![100, 292, 344]);
    }

    #[test]
    fn cut_boxes_are_clipped_kept_or_dropped_by_visible_fraction() {
        // Tiles of 256 at x = 0 and 144 (overlap 112); a box straddling x = 256.
        let cfg = TilingConfig {
            size: 256,
            overlap: 112,
            min_visible: 0.5,
        };
        let set = set_with(
            &[(236.0, 10.0, 276.0, 50.0), (10.0, 10.0, 30.0, 30.0)],
            400,
            256,
        );
        let tiles = layout(&set, 0, Region::whole(&set.images[0]), &cfg).unwrap();
        assert_eq!(tiles.len(), 2);
        // First tile: the straddling box is half inside (kept, clipped) + the small one.
        assert_eq!(tiles[0].boxes.len(), 2);
        assert_eq!(tiles[0].clipped, 1);
        assert_eq!(
            tiles[0].boxes[0].bbox,
            BoundingBox::new(236.0, 10.0, 256.0, 50.0)
        );
        // Second tile (x 144..400): the straddling box whole, shifted; the small one absent.
        assert_eq!(
            tiles[1].boxes,
            vec![Annotation {
                class: 0,
                bbox: BoundingBox::new(92.0, 10.0, 132.0, 50.0)
            }]
        );
        let strict = TilingConfig {
            min_visible: 0.6,
            ..cfg
        };
        let tiles = layout(&set, 0, Region::whole(&set.images[0]), &strict).unwrap();
        assert_eq!((tiles[0].boxes.len(), tiles[0].dropped), (1, 1));
    }

    #[test]
    fn a_region_keeps_only_boxes_centred_in_it() {
        let cfg = TilingConfig {
            size: 64,
            overlap: 0,
            min_visible: 0.5,
        };
        let set = set_with(
            &[(10.0, 50.0, 30.0, 70.0), (10.0, 100.0, 30.0, 120.0)],
            64,
            128,
        );
        let top = layout(
            &set,
            0,
            Region {
                x0: 0,
                y0: 0,
                x1: 64,
                y1: 64,
            },
            &cfg,
        )
        .unwrap();
        let bottom = layout(
            &set,
            0,
            Region {
                x0: 0,
                y0: 64,
                x1: 64,
                y1: 128,
            },
            &cfg,
        )
        .unwrap();
        // The first box's centre (y 60) is in the top region: cut to y < 64 there, absent below.
        assert_eq!(top[0].boxes.len(), 1);
        assert_eq!(bottom[0].boxes.len(), 1);
        assert_eq!(bottom[0].boxes[0].bbox.y0, 36.0);
        let err = layout(
            &set,
            0,
            Region {
                x0: 0,
                y0: 0,
                x1: 64,
                y1: 32,
            },
            &cfg,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("smaller than a 64×64 tile"),
            "{err}"
        );
    }
}
