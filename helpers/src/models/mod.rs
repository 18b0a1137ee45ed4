//! Models: a layer list ([`Layer`]) that runs, summarises itself and exposes its last
//! convolutional block (for Grad-CAM), and the registry that builds one from config.
pub mod blocks;
pub mod cnn;
pub mod config;
pub mod efficientnet;
pub mod layers;
pub mod pretrained;
pub mod resnet;
pub mod summary;

pub use layers::Layer;

use crate::backend::autocast::autocast;
use crate::backend::Precision;
use crate::data::Normalization;
use crate::io::tensors;
use crate::Result;
pub use config::{Arch, Freeze, Head, ModelConfig};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// A network with its weights: a sequence of named layers over one VarStore.
#[derive(Debug)]
pub struct Model {
    /// The weights (parameters and batch-norm statistics).
    pub vs: nn::VarStore,
    /// Layers in order, each with its parameter path.
    pub layers: Vec<(String, Layer)>,
    /// Index of the layer that ends the last convolutional block (its output is the
    /// Grad-CAM target: `[N, C, h, w]` after the activation).
    pub features_end: usize,
    /// Input shape `[C, H, W]`.
    pub input_shape: [i64; 3],
    pub num_classes: i64,
    /// Whether activations and conv weights use the channels-last (NHWC) layout,
    /// which oneDNN convolutions run faster on CPU.
    pub channels_last: bool,
    /// Layers before this index are frozen: they run in evaluation mode (batch norm
    /// keeps its statistics) and without gradients. 0 = everything trains.
    pub trainable_from: usize,
    /// The arithmetic of every pass (training, evaluation, Grad-CAM, embeddings): bf16
    /// runs the layers under autocast and returns fp32 outputs. Set from the run's
    /// [`crate::backend::PrecisionChoice`]; fp32 when built.
    pub precision: Precision,
}

impl Model {
    /// Logits `[N, num_classes]` for images `[N, C, H, W]` (normalised floats).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let feats = self.features_t(xs, train);
        self.head_t(&feats, train)
    }

    /// Logits in evaluation mode computed in fp32 whatever [`Model::precision`] says: the
    /// arithmetic of an fp32 export (ONNX), which is checked against it.
    pub fn forward_fp32(&self, xs: &Tensor) -> Tensor {
        self.run_layers_as_is(xs, 0..=self.layers.len() - 1, false)
    }

    /// Output of the last convolutional block, `[N, C, h, w]`.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.run_layers(xs, 0..=self.features_end, train)
    }

    /// From the last convolutional block's output to logits.
    pub fn head_t(&self, feats: &Tensor, train: bool) -> Tensor {
        self.run_layers(feats, self.features_end + 1..=self.layers.len() - 1, train)
    }

    /// Output of layer `index` (inclusive) in evaluation mode: the split point of
    /// Grad-CAM when another layer than the last convolutional block is explained.
    pub fn features_upto(&self, xs: &Tensor, index: usize) -> Tensor {
        self.run_layers(xs, 0..=index, false)
    }

    /// Logits from the output of layer `index`, in evaluation mode.
    pub fn head_from(&self, feats: &Tensor, index: usize) -> Tensor {
        self.run_layers(feats, index + 1..=self.layers.len() - 1, false)
    }

    /// Runs `range` of the layers; inputs enter channels-last when the model uses it.
    fn run_layers(
        &self,
        xs: &Tensor,
        range: std::ops::RangeInclusive<usize>,
        train: bool,
    ) -> Tensor {
        if self.precision == Precision::Fp32 {
            return self.run_layers_as_is(xs, range, train);
        }
        autocast(self.device(), self.precision, || {
            self.run_layers_as_is(xs, range, train).to_kind(Kind::Float)
        })
    }

    fn run_layers_as_is(
        &self,
        xs: &Tensor,
        range: std::ops::RangeInclusive<usize>,
        train: bool,
    ) -> Tensor {
        let (start, end) = (*range.start(), *range.end());
        let mut x = if start == 0 && self.channels_last {
            crate::backend::memory_format::to_channels_last(xs)
        } else {
            xs.shallow_clone()
        };
        // A frozen prefix needs no graph when the pass starts at the input; a pass that
        // starts inside it (Grad-CAM's head part) must keep gradients w.r.t. its input.
        let frozen_end = self.trainable_from.min(end + 1);
        let mut next = start;
        if start == 0 && frozen_end > 0 {
            x = tch::no_grad(|| self.run_plain(&x, 0..frozen_end, false));
            next = frozen_end;
        }
        for i in next..=end.min(self.layers.len().saturating_sub(1)) {
            let frozen = i < self.trainable_from;
            x = self.layers[i].1.forward_t(&x, train && !frozen);
        }
        x
    }

    fn run_plain(&self, xs: &Tensor, range: std::ops::Range<usize>, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (_, layer) in &self.layers[range] {
            x = layer.forward_t(&x, train);
        }
        x
    }

    /// Output of the frozen prefix (evaluation mode, no gradients): what a linear probe
    /// caches. With global average pooling right after the features, the pooled vector.
    pub fn frozen_embedding(&self, xs: &Tensor) -> Tensor {
        match self.trainable_from {
            0 => xs.shallow_clone(),
            n => self.run_layers(xs, 0..=n - 1, false),
        }
    }

    /// Logits from a [`Model::frozen_embedding`] output.
    pub fn head_from_embedding(&self, emb: &Tensor, train: bool) -> Tensor {
        self.run_layers(emb, self.trainable_from..=self.layers.len() - 1, train)
    }

    /// True when only layers after the features train, so embeddings can be cached.
    pub fn is_linear_probe(&self) -> bool {
        self.trainable_from > self.features_end
    }

    /// Records the data loaders' normalisation in the input adapter (ImageNet
    /// architectures); other models ignore it.
    pub fn set_input_stats(&self, norm: &Normalization) {
        for (_, layer) in &self.layers {
            if let Layer::Adapt(a) = layer {
                a.set_data_stats(norm);
            }
        }
    }

    /// Names of the classifier's layers (after the features), whose weights a
    /// pretrained checkpoint for another class count cannot fill.
    pub fn head_layer_names(&self) -> Vec<&str> {
        self.layers[self.features_end + 1..]
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Freezes the layers before `index`: no gradients, batch norm in eval mode.
    pub fn freeze_before(&mut self, index: usize) {
        self.trainable_from = index;
        let frozen: Vec<&str> = self.layers[..index]
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for (name, var) in self.vs.variables() {
            let in_frozen = frozen
                .iter()
                .any(|l| name == *l || name.starts_with(&format!("{l}.")));
            if in_frozen {
                let _ = var.shallow_clone().set_requires_grad(false);
            }
        }
    }

    /// Number of parameters that train (after freezing).
    pub fn num_trainable(&self) -> i64 {
        self.trainable_named()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    /// Trainable tensors with their names, sorted by name (a stable order, e.g. for
    /// optimiser state).
    pub fn trainable_named(&self) -> Vec<(String, Tensor)> {
        sorted_variables(&self.vs, true)
    }

    /// Number of trainable parameters.
    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Every weight (parameters and batch-norm statistics) by name, sorted by name.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// Saves the weights to `path` (safetensors), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        tensors::write_tensors(path, &self.weights())
    }

    /// Loads weights saved by [`Model::save`] (or any safetensors file with the same
    /// names and shapes), keeping the model's memory layout.
    pub fn load(&self, path: &Path) -> Result<()> {
        tensors::load_named(&self.weights(), path)
    }

    /// Copies `named[prefix + name]` into each weight; `origin` names them in errors.
    pub fn copy_from(
        &self,
        named: &std::collections::HashMap<String, Tensor>,
        prefix: &str,
        origin: &Path,
    ) -> Result<()> {
        tensors::copy_named(&self.weights(), named, prefix, origin)
    }
}

/// Builds the model a config describes, with freshly initialised weights. Seed libtorch
/// (`tch::manual_seed`) first for reproducible initialisation.
pub fn build(
    cfg: &ModelConfig,
    input_shape: [i64; 3],
    num_classes: i64,
    device: Device,
) -> Result<Model> {
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let [channels, size] = [input_shape[0], cfg.input_size];
    let (layers, features_end) = match cfg.arch {
        Arch::Cnn => cnn::layers(&root, cfg, input_shape, num_classes),
        Arch::ReferenceCnn => cnn::reference_layers(&root, channels, num_classes),
        Arch::EfficientnetLite0 => {
            efficientnet::layers(&root, channels, size, num_classes, cfg.dropout)
        }
        Arch::Resnet18 | Arch::Resnet18Cifar => {
            let stem = match cfg.arch {
                Arch::Resnet18 => resnet::Stem::ImageNet,
                _ => resnet::Stem::Cifar,
            };
            resnet::layers(&root, channels, size, num_classes, cfg.dropout, stem)
        }
    };
    if cfg.arch.is_imagenet() && ![1, 3].contains(&channels) {
        return Err(crate::Error::config(
            "model.arch",
            format!("ImageNet architectures read grey or RGB images, not {channels} channels"),
        ));
    }
    let channels_last = crate::backend::memory_format::use_channels_last(device, cfg.channels_last);
    let mut model = Model {
        vs,
        layers,
        features_end,
        input_shape,
        num_classes,
        channels_last,
        trainable_from: 0,
        precision: Precision::Fp32,
    };
    if !cfg.weights.is_empty() {
        pretrained::load_pretrained(&model, &cfg.weights)?;
    }
    apply_freeze(&mut model, cfg);
    if channels_last {
        crate::backend::memory_format::convert_conv_weights(model.vs.variables().into_values());
    }
    Ok(model)
}

/// Freezes what `cfg.freeze` asks: nothing, the whole backbone (up to and including
/// the pooling after the features), or all but the last `unfreeze_blocks` blocks.
fn apply_freeze(model: &mut Model, cfg: &ModelConfig) {
    let index = match cfg.freeze {
        Freeze::None => 0,
        Freeze::Backbone => {
            let after = model.features_end + 1;
            match model.layers.get(after) {
                Some((_, Layer::GlobalAvgPool)) => after + 1,
                _ => after,
            }
        }
        Freeze::Partial => {
            let blocks: Vec<usize> = model
                .layers
                .iter()
                .enumerate()
                .filter(|(_, (_, l))| matches!(l, Layer::MbConv(_) | Layer::BasicBlock(_)))
                .map(|(i, _)| i)
                .collect();
            let n = cfg.unfreeze_blocks.min(blocks.len());
            blocks.get(blocks.len() - n).copied().unwrap_or(0)
        }
    };
    model.freeze_before(index);
}

/// A store's tensors by name, sorted (a stable order for checkpoints and optimiser
/// state); only those that train when `trainable_only`.
pub fn sorted_variables(vs: &tch::nn::VarStore, trainable_only: bool) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| !trainable_only || t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}
