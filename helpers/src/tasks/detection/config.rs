//! [`DetectionConfig`]: a detection run — name, seed, data, tiling, network, augmentation,
//! decoding and the shared `[train]` table — as TOML, saved with the run.
use super::augment::DetectionAugment;
use super::decode::DecodeConfig;
use super::model::DetectorConfig;
use crate::config::validate_run_name;
use crate::data::detection::TilingConfig;
use crate::tasks::common;
use crate::train::{ScheduleKind, TrainConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the images come from and how they split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionDataConfig {
    /// The NEON tree-crown folder (`scripts/setup` fills it).
    pub dir: PathBuf,
    /// Bottom fraction of the large training plot kept for validation.
    pub val_fraction: f64,
    /// Leave out (and count) bad boxes and files instead of failing on them.
    pub skip_bad: bool,
}

impl Default for DetectionDataConfig {
    fn default() -> Self {
        DetectionDataConfig {
            dir: PathBuf::from(crate::data::detection::neon::DEFAULT_DIR),
            val_fraction: 0.25,
            skip_bad: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    pub name: String,
    pub seed: u64,
    pub threads: usize,
    pub data: DetectionDataConfig,
    pub tiles: TilingConfig,
    pub net: DetectorConfig,
    pub augment: DetectionAugment,
    pub decode: DecodeConfig,
    /// Weight of the box (offset and size) L1 loss beside the heatmap focal loss.
    pub box_loss_weight: f64,
    pub train: TrainConfig,
}

impl Default for DetectionConfig {
    /// EfficientNet-Lite0 from ImageNet under the CenterNet heads, 256-px tiles with all
    /// flips, rotations and ±20 % scale, AdamW at a one-cycle peak of 2e-3, batches of 8.
    fn default() -> Self {
        DetectionConfig {
            name: "trees".into(),
            seed: 0,
            threads: 0,
            data: DetectionDataConfig::default(),
            tiles: TilingConfig::default(),
            net: DetectorConfig::default(),
            augment: DetectionAugment::default(),
            decode: DecodeConfig::default(),
            box_loss_weight: 1.0,
            train: TrainConfig {
                epochs: 24,
                batch_size: 8,
                eval_batch_size: 16,
                lr: 2e-3,
                weight_decay: 1e-4,
                schedule: ScheduleKind::OneCycle,
                ..TrainConfig::default()
            },
        }
    }
}

impl DetectionConfig {
    pub fn validate(&self) -> Result<()> {
        validate_run_name(&self.name)?;
        if !(0.05..=0.5).contains(&self.data.val_fraction) {
            return Err(Error::config(
                "data.val_fraction",
                format!("is {}; keep it in [0.05, 0.5]", self.data.val_fraction),
            ));
        }
        self.tiles.validate()?;
        self.net.validate()?;
        self.decode.validate()?;
        if !(0.0..=1.0).contains(&(self.augment.scale_jitter)) || self.augment.scale_jitter >= 1.0 {
            return Err(Error::config(
                "augment.scale_jitter",
                format!("is {}; it must be in [0, 1)", self.augment.scale_jitter),
            ));
        }
        if !(0.0..1.0).contains(&self.augment.color_jitter) {
            return Err(Error::config(
                "augment.color_jitter",
                format!("is {}; it must be in [0, 1)", self.augment.color_jitter),
            ));
        }
        if self.box_loss_weight < 0.0 || !self.box_loss_weight.is_finite() {
            return Err(Error::config(
                "box_loss_weight",
                format!("must be ≥ 0, found {}", self.box_loss_weight),
            ));
        }
        self.train.validate()?;
        for (key, v) in [
            ("train.mixup_alpha", self.train.mixup_alpha),
            ("train.cutmix_alpha", self.train.cutmix_alpha),
            ("train.label_smoothing", self.train.label_smoothing),
        ] {
            if v != 0.0 {
                return Err(Error::config(
                    key,
                    format!("is {v}; it applies to classification, not detection — set it to 0"),
                ));
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        common::config_to_toml(self)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self> {
        common::config_from_toml_file(path, "a detection config")
    }

    /// Keys whose values differ, as `key: saved → requested` (the name is not compared).
    pub fn diff(&self, other: &DetectionConfig) -> Vec<String> {
        common::config_diff(self, other)
    }

    pub fn flat_values(&self) -> Vec<(String, toml::Value)> {
        common::config_flat(self)
    }

    /// A copy named `name`, changed by `edit`.
    pub fn variant(&self, name: &str, edit: impl FnOnce(&mut DetectionConfig)) -> DetectionConfig {
        let mut c = self.clone();
        c.name = name.into();
        edit(&mut c);
        c
    }
}
