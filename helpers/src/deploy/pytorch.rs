//! A PyTorch definition of a layer-list model: `lab export --pytorch model.py` writes an
//! `nn.Module` whose submodules sit at the crate's parameter paths, so the run's
//! `best.pt` (see [`crate::weights::torch_save`]) loads into it with `strict=True` and
//! a grader with only Python reruns the test set. The file also carries the run's input
//! normalisation and class names, and a `preprocess` that turns `uint8` images into
//! the model's input as the crate's loaders do.
//!
//! The scratch CNNs (`cnn`, `reference_cnn`) translate: convolutions, batch norm, ReLU,
//! max pooling, global average pooling, flattening, dropout and linear layers. Other
//! layers (EfficientNet's and ResNet's blocks, the ImageNet input adapter) are refused
//! by name.
use crate::data::Normalization;
use crate::models::{Layer, Model};
use crate::{Error, Result};
use std::fmt::Write;
use std::path::Path;

/// What the generated file says about where it came from.
#[derive(Debug, Clone)]
pub struct Provenance<'a> {
    /// The run directory's name.
    pub run: &'a str,
    /// The run config's hash (`RunConfig::hash`).
    pub config_hash: &'a str,
    pub classes: &'a [String],
    pub norm: &'a Normalization,
}

/// Writes the Python definition of `model` at `path`, atomically.
pub fn export_definition(model: &Model, about: &Provenance, path: &Path) -> Result<()> {
    crate::io::write_text_atomic(path, &definition(model, about)?)
}

/// The Python source of `model`'s definition.
pub fn definition(model: &Model, about: &Provenance) -> Result<String> {
    let mut body = String::new();
    for (name, layer) in &model.layers {
        let line = module_of(name, layer)?;
        let _ = writeln!(body, "        self._add({line})");
    }
    let [c, h, w] = model.input_shape;
    Ok(format!(
        r#""""PyTorch definition of run `{run}` (config hash {hash}), written by `lab export --pytorch`.

    import torch, model
    net = model.load("best.pt")                  # strict: every tensor of the run, by name
    logits = net(model.preprocess(images_uint8)) # [N, H, W] or [N, C, H, W] uint8
"""
import torch
from torch import nn

INPUT_SHAPE = ({c}, {h}, {w})
# Per-channel statistics of the run's training split, on images scaled to [0, 1].
MEAN = {mean}
STD = {std}
CLASSES = {classes}


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, H, W] or [N, C, H, W] -> the normalised float input [N, C, H, W],
    with the crate's arithmetic: (v - 255 mean) / (255 std) in float32."""
    x = images.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return (x - mean * 255.0) / (std * 255.0)


class Net(nn.Module):
    """The run's layers in order; each with weights sits at the run's parameter path."""

    def __init__(self):
        super().__init__()
        self._sequence = []
{body}
    def _add(self, path, module):
        if path is not None:
            parent = self
            *parents, leaf = path.split(".")
            for part in parents:
                if part not in parent._modules:
                    parent.add_module(part, nn.Module())
                parent = parent._modules[part]
            parent.add_module(leaf, module)
        self._sequence.append(module)

    def train(self, mode: bool = True):
        # Modules without weights (dropout, pooling) are not registered, so that the
        # state_dict holds the run's names only; they follow the mode from here.
        super().train(mode)
        for module in self._sequence:
            module.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self._sequence:
            x = module(x)
        return x


def load(path: str = "best.pt") -> Net:
    """The network with the run's best weights, in evaluation mode."""
    net = Net()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()
"#,
        run = about.run,
        hash = about.config_hash,
        mean = floats(&about.norm.mean),
        std = floats(&about.norm.std),
        classes = python_strings(about.classes),
    ))
}

/// The `_add` arguments of one layer: its path (or `None`) and the module.
fn module_of(name: &str, layer: &Layer) -> Result<String> {
    let path = format!("{name:?}");
    Ok(match layer {
        Layer::Conv(conv) => {
            if !conv.zero_padding {
                return Err(refused(name, "a convolution with non-zero padding mode"));
            }
            let size = conv.ws.size();
            let (out, per_group, k) = (size[0], size[1], size[2]);
            format!(
                "{path}, nn.Conv2d({}, {out}, {k}, stride={}, padding={}, dilation={}, groups={}, bias={})",
                per_group * conv.groups,
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.groups,
                python_bool(conv.bs.is_some())
            )
        }
        Layer::BatchNorm(bn) => format!(
            "{path}, nn.BatchNorm2d({}, eps={:e})",
            bn.running_mean.size()[0],
            bn.eps
        ),
        Layer::Linear(linear) => {
            let size = linear.ws.size();
            format!(
                "{path}, nn.Linear({}, {}, bias={})",
                size[1],
                size[0],
                python_bool(linear.bs.is_some())
            )
        }
        Layer::Relu => "None, nn.ReLU()".into(),
        Layer::MaxPool(k) => format!("None, nn.MaxPool2d({k}, {k})"),
        Layer::GlobalAvgPool => "None, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())".into(),
        Layer::Flatten => "None, nn.Flatten()".into(),
        Layer::Dropout(p) => format!("None, nn.Dropout({p})"),
        Layer::Relu6 => "None, nn.ReLU6()".into(),
        Layer::MaxPoolPadded { .. }
        | Layer::SameConv(_)
        | Layer::MbConv(_)
        | Layer::BasicBlock(_)
        | Layer::Adapt(_) => return Err(refused(name, "a pretrained architecture's block")),
    })
}

fn refused(name: &str, what: &str) -> Error {
    Error::Argument {
        name: "pytorch".into(),
        reason: format!(
            "layer `{name}` is {what}, which the PyTorch definition does not write; it covers the scratch CNNs (model.arch = \"cnn\" or \"reference_cnn\"). The run's best.pt still loads with torch.load, and `lab export` writes an ONNX file of every architecture"
        ),
    }
}

fn python_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// `[0.2860, …]` with every digit an f32 needs to round-trip.
fn floats(values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// A Python list of string literals (JSON's escapes are Python's for these).
fn python_strings(values: &[String]) -> String {
    serde_json::to_string(values).expect("strings serialise")
}
