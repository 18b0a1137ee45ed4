//! [`DetectionData`]: the NEON set cut into tiles per split (region split, so no tree is
//! in two splits), with pixels in memory and a fingerprint of everything a run depends on.
use super::config::DetectionConfig;
use crate::data::detection::neon::{self, RegionSplit};
use crate::data::detection::{tiles, DetectionCard, DetectionSet, TileSet, TilingConfig};
use crate::{Error, Result};
use sha2::{Digest, Sha256};

#[derive(Debug)]
pub struct DetectionData {
    pub set: DetectionSet,
    pub split: RegionSplit,
    pub tiling: TilingConfig,
    pub train: TileSet,
    pub val: TileSet,
    pub test: TileSet,
    /// SHA-256 of the tiles' pixels and boxes and of the split.
    pub fingerprint: String,
}

impl DetectionData {
    /// Reads the set in `cfg.data.dir`, splits it and cuts every split into tiles.
    pub fn prepare(cfg: &DetectionConfig) -> Result<DetectionData> {
        cfg.tiles.validate()?;
        let set = neon::load(&cfg.data.dir, cfg.data.skip_bad)?;
        let split = neon::split(
            &set,
            (neon::TEST_IMAGE, neon::SPLIT_IMAGE),
            cfg.data.val_fraction,
        )?;
        let images: Vec<image::RgbImage> = set
            .images
            .iter()
            .map(|i| {
                image::open(&i.path)
                    .map(|im| im.into_rgb8())
                    .map_err(|e| Error::data(&i.path, format!("not a readable image: {e}")))
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&image::RgbImage> = images.iter().collect();
        let cut = |regions: &[(usize, tiles::Region)]| -> Result<TileSet> {
            let mut all = Vec::new();
            for &(i, r) in regions {
                all.extend(tiles::layout(&set, i, r, &cfg.tiles)?);
            }
            Ok(TileSet::cut(all, &refs))
        };
        let (train, val, test) = (cut(&split.train)?, cut(&split.val)?, cut(&split.test)?);
        let fingerprint = fingerprint(&[&train, &val, &test], &split);
        Ok(DetectionData {
            set,
            split,
            tiling: cfg.tiles.clone(),
            train,
            val,
            test,
            fingerprint,
        })
    }

    pub fn classes(&self) -> &[String] {
        &self.set.classes
    }

    /// The data card of the three splits' tiles.
    pub fn card(&self) -> DetectionCard {
        DetectionCard::of(
            &self.set,
            &self.split,
            &[
                ("train", &self.train.tiles),
                ("validation", &self.val.tiles),
                ("test", &self.test.tiles),
            ],
            &self.tiling,
        )
    }
}

fn fingerprint(sets: &[&TileSet], split: &RegionSplit) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(split).expect("split serialises"));
    for s in sets {
        h.update(serde_json::to_vec(&s.tiles).expect("tiles serialise"));
        let bytes = Vec::<u8>::try_from(s.pixels.flatten(0, -1)).expect("u8 pixels");
        h.update(&bytes);
    }
    crate::io::checksum::hex(&h.finalize())
}
