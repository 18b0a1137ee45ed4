//! [`DataConfig`]: which dataset a run reads, how it is split and augmented — the
//! `[data]` table of a run config.
use crate::error::{in_range, Result};
use crate::Error;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The datasets `data.dataset` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// The official Fashion-MNIST IDX files (installed by `scripts/setup`).
    FashionMnist,
    /// The user's images, one folder per class.
    ImageFolder,
    /// An official CIFAR-10 release (python pickles, extracted or `.tar.gz`).
    Cifar10,
    /// An official CIFAR-100 release.
    Cifar100,
}

impl DatasetKind {
    /// Every dataset, in the order errors list them.
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::FashionMnist,
        DatasetKind::ImageFolder,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
    ];

    /// The name in TOML (`fashion_mnist`, …).
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion_mnist",
            DatasetKind::ImageFolder => "image_folder",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// The dataset called `name`; the error lists the known ones.
    pub fn parse(name: &str) -> Result<DatasetKind> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|d| d.name()).collect();
                Error::argument(
                    "dataset",
                    format!("unknown dataset `{name}`; known: {}", known.join(", ")),
                )
            })
    }

    /// The folder its files are looked for in by default, relative to the repository
    /// root (`None` for `image_folder`, which has no default).
    pub fn default_dir(self) -> Option<&'static str> {
        match self {
            DatasetKind::FashionMnist => Some(super::fashion_mnist::DEFAULT_DIR),
            DatasetKind::Cifar10 => Some(super::cifar::Cifar::Cifar10.default_dir()),
            DatasetKind::Cifar100 => Some(super::cifar::Cifar::Cifar100.default_dir()),
            DatasetKind::ImageFolder => None,
        }
    }
}

/// Dataset, split and augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Folder of the dataset's files.
    pub dir: PathBuf,
    /// Fraction of the training set held out for validation, stratified by class.
    pub val_fraction: f64,
    /// Use only this many training examples (stratified); 0 = all.
    pub train_limit: usize,
    /// Use only the first this many test examples; 0 = all.
    pub test_limit: usize,
    pub augment: AugmentConfig,
    /// `image_folder` only: side every image is resized to.
    pub image_size: u32,
    /// `image_folder` only: 1 (grey) or 3 (RGB; alpha dropped).
    pub channels: usize,
    /// `image_folder` only: skip unreadable files and empty class folders (counted and
    /// listed) instead of stopping at them.
    pub skip_bad_files: bool,
    /// `cifar100` only: the 100 `fine` classes or the 20 `coarse` superclasses.
    pub cifar100_labels: Cifar100Labels,
}

/// Which labels of CIFAR-100 a run learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cifar100Labels {
    /// The 100 classes (`fine_labels`).
    #[default]
    Fine,
    /// The 20 superclasses (`coarse_labels`).
    Coarse,
}

/// Label-preserving augmentation of training examples, applied per example in this
/// order: crop and flip, colour jitter, Cutout, random erasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels per side; 0 = off.
    pub crop_padding: usize,
    /// Mirror left-right with probability 0.5.
    pub horizontal_flip: bool,
    /// Probability of erasing one random rectangle (Zhong et al. 2017); 0 = off.
    pub random_erasing: f64,
    /// Colour jitter: brightness factor drawn from [1 − b, 1 + b] (torchvision's
    /// `ColorJitter(brightness=b)`); 0 = off.
    pub brightness: f64,
    /// Colour jitter: contrast factor from [1 − c, 1 + c], blending with the image's mean
    /// grey level; 0 = off.
    pub contrast: f64,
    /// Colour jitter: saturation factor from [1 − s, 1 + s], blending with each pixel's
    /// grey value (RGB images only); 0 = off.
    pub saturation: f64,
    /// Cutout (DeVries & Taylor 2017): side in pixels of one square, centred anywhere in
    /// the image and clipped at its border, set to the training mean (0 after
    /// normalisation); 0 = off. The paper used 16 for CIFAR-10 and 8 for CIFAR-100.
    pub cutout_size: usize,
}

impl AugmentConfig {
    /// Every augmentation off.
    pub const OFF: AugmentConfig = AugmentConfig {
        crop_padding: 0,
        horizontal_flip: false,
        random_erasing: 0.0,
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
        cutout_size: 0,
    };

    /// True when any augmentation is on.
    pub fn any(&self) -> bool {
        *self != Self::OFF
    }

    /// Checks each value's range; errors name the `data.augment.*` key.
    pub fn validate(&self) -> Result<()> {
        in_range(
            "data.augment.random_erasing",
            self.random_erasing,
            0.0,
            1.0,
            true,
        )?;
        in_range("data.augment.brightness", self.brightness, 0.0, 1.0, true)?;
        in_range("data.augment.contrast", self.contrast, 0.0, 1.0, true)?;
        in_range("data.augment.saturation", self.saturation, 0.0, 1.0, true)?;
        if self.cutout_size > 4096 {
            return Err(Error::config(
                "data.augment.cutout_size",
                format!("must be at most 4096 pixels, found {}", self.cutout_size),
            ));
        }
        Ok(())
    }
}

impl DataConfig {
    /// Checks each value's range; errors name the `data.*` key.
    pub fn validate(&self) -> Result<()> {
        in_range("data.val_fraction", self.val_fraction, 0.0, 1.0, false)?;
        self.augment.validate()
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::FashionMnist,
            dir: PathBuf::from(super::fashion_mnist::DEFAULT_DIR),
            val_fraction: 0.1,
            train_limit: 0,
            test_limit: 0,
            augment: AugmentConfig::default(),
            image_size: 64,
            channels: 3,
            skip_bad_files: false,
            cifar100_labels: Cifar100Labels::Fine,
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            crop_padding: 2,
            horizontal_flip: true,
            ..AugmentConfig::OFF
        }
    }
}
