//! [`DetectionCard`]: what a reader must know about a detection set before trusting a
//! detector on it — source, images and sizes, boxes per image and per tile, box sizes,
//! class balance per split, how the split keeps trees apart, and what tiling cut.
use super::neon::RegionSplit;
use super::tiles::{Tile, TilingConfig};
use super::DetectionSet;
use crate::metrics::quantile;
use crate::plot::{self, Figure};
use crate::render::Table;
use crate::Result;
use polars::prelude::Column;

/// Bins of the box-size histogram, in pixels of √area.
const SIZE_BIN: f64 = 8.0;

#[derive(Debug, Clone)]
pub struct DetectionCard {
    pub facts: Vec<(String, String)>,
    /// √area of every box in each split's tiles, by split name.
    pub sizes: Vec<(String, Vec<f64>)>,
}

impl DetectionCard {
    /// The card of `set` split by `split` into the named tile lists.
    pub fn of(
        set: &DetectionSet,
        split: &RegionSplit,
        splits: &[(&str, &[Tile])],
        tiling: &TilingConfig,
    ) -> DetectionCard {
        let images: Vec<String> = set
            .images
            .iter()
            .map(|i| {
                format!(
                    "{} {}×{} ({} boxes)",
                    i.stem(),
                    i.width,
                    i.height,
                    i.boxes.len()
                )
            })
            .collect();
        let mut facts = vec![
            ("source".to_string(), "NEON aerial RGB (10 cm/pixel) with hand-drawn tree-crown boxes, shipped in PyPI deepforest 2.1.0 (Weinstein et al.)".to_string()),
            ("images".into(), images.join("; ")),
            ("boxes".into(), format!("{} in {} classes ({}); skipped on reading: {}", set.num_boxes(), set.classes.len(), set.classes.join(", "), set.skipped.len())),
            ("split".into(), format!(
                "test: {} whole; validation: {} below y = {} ({} boxes cross that row: each is labelled only on the side of its centre); train: the rest",
                stem(set, &split.test), stem(set, &split.val), split.cut_y, split.crossing
            )),
            ("tiling".into(), format!("{0}×{0} px tiles, {1} px overlap; a cut box is kept when ≥ {2:.0} % of it is inside the tile", tiling.size, tiling.overlap, 100.0 * tiling.min_visible)),
        ];
        let mut sizes = Vec::new();
        for (name, tiles) in splits {
            facts.push((name.to_string(), split_line(set, tiles)));
            let s: Vec<f64> = tiles
                .iter()
                .flat_map(|t| t.boxes.iter().map(|a| (a.bbox.area() as f64).sqrt()))
                .collect();
            sizes.push((name.to_string(), s));
        }
        DetectionCard { facts, sizes }
    }

    pub fn table(&self) -> Result<Table> {
        let (f, v): (Vec<String>, Vec<String>) = self.facts.iter().cloned().unzip();
        Table::from_columns(
            "Data card: NEON tree crowns",
            vec![
                Column::new("field".into(), f),
                Column::new("value".into(), v),
            ],
        )
    }

    /// Histogram of box sizes (√area, bins of 8 px) per split, as fractions of the split's boxes.
    pub fn size_figure(&self) -> Result<Figure> {
        let max = self
            .sizes
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .fold(0.0, f64::max);
        let bins = (max / SIZE_BIN) as usize + 1;
        let labels: Vec<String> = (0..bins)
            .map(|b| format!("{}", b * SIZE_BIN as usize))
            .collect();
        let series: Vec<(&str, Vec<f64>)> = self
            .sizes
            .iter()
            .map(|(name, s)| {
                let mut counts = vec![0.0; bins];
                s.iter()
                    .for_each(|&v| counts[(v / SIZE_BIN) as usize] += 1.0 / s.len().max(1) as f64);
                (name.as_str(), counts)
            })
            .collect();
        plot::bars(
            "Box size (√area, px) per split",
            &labels,
            &series,
            "fraction of boxes",
        )
    }

    pub fn evcxr_display(&self) {
        match self.table() {
            Ok(t) => t.evcxr_display(),
            Err(e) => println!("{e}"),
        }
    }
}

fn stem(set: &DetectionSet, regions: &[(usize, super::tiles::Region)]) -> String {
    regions
        .iter()
        .map(|(i, _)| set.images[*i].stem())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Tiles, boxes, boxes per tile, sizes, class balance and tiling cuts of one split.
fn split_line(set: &DetectionSet, tiles: &[Tile]) -> String {
    let per_tile: Vec<f64> = {
        let mut v: Vec<f64> = tiles.iter().map(|t| t.boxes.len() as f64).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let mut sizes: Vec<f64> = tiles
        .iter()
        .flat_map(|t| t.boxes.iter().map(|a| (a.bbox.area() as f64).sqrt()))
        .collect();
    sizes.sort_by(f64::total_cmp);
    let mut classes = vec![0usize; set.classes.len()];
    tiles
        .iter()
        .flat_map(|t| &t.boxes)
        .for_each(|a| classes[a.class] += 1);
    let balance: Vec<String> = set
        .classes
        .iter()
        .zip(&classes)
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let (clipped, dropped): (usize, usize) = tiles
        .iter()
        .fold((0, 0), |(c, d), t| (c + t.clipped, d + t.dropped));
    if sizes.is_empty() {
        return format!("{} tiles, no boxes", tiles.len());
    }
    format!(
        "{} tiles, {} boxes ({}); per tile median {} / max {}; size √area min {:.0} / median {:.0} / 95th pct {:.0} / max {:.0} px; tiling clipped {clipped} and dropped {dropped} slivers",
        tiles.len(), sizes.len(), balance.join(", "),
        quantile(&per_tile, 0.5), per_tile[per_tile.len() - 1],
        sizes[0], quantile(&sizes, 0.5), quantile(&sizes, 0.95), sizes[sizes.len() - 1],
    )
}
