//! Models: a layer list ([`Layer`]) that runs, summarises itself and exposes its last
//! convolutional block (for Grad-CAM), and the registry that builds one from config.
pub mod cnn;
pub mod layers;
pub mod memory_format;
pub mod summary;

pub use layers::Layer;

use crate::config::{Arch, ModelConfig};
use crate::Result;
use tch::{nn, Device, Tensor};

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
}

impl Model {
    /// Logits `[N, num_classes]` for images `[N, C, H, W]` (normalised floats).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let feats = self.features_t(xs, train);
        self.head_t(&feats, train)
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
        let mut x = if *range.start() == 0 && self.channels_last {
            memory_format::to_channels_last(xs)
        } else {
            xs.shallow_clone()
        };
        for (_, layer) in self.layers.get(range).unwrap_or_default() {
            x = layer.forward_t(&x, train);
        }
        x
    }

    /// Trainable tensors with their names, sorted by name (a stable order, e.g. for
    /// optimiser state).
    pub fn trainable_named(&self) -> Vec<(String, Tensor)> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
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
    let (layers, features_end) = match cfg.arch {
        Arch::Cnn => cnn::layers(&vs.root(), cfg, input_shape, num_classes),
        Arch::ReferenceCnn => cnn::reference_layers(&vs.root(), input_shape[0], num_classes),
    };
    // Channels-last pays off for oneDNN on CPU; CUDA kernels prefer the default layout here.
    let channels_last = device == Device::Cpu;
    let model = Model {
        vs,
        layers,
        features_end,
        input_shape,
        num_classes,
        channels_last,
    };
    if channels_last {
        memory_format::convert_conv_weights(&model);
    }
    Ok(model)
}
