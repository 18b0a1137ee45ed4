//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant without squeeze-excitation,
//! with ReLU6 and a fixed stem and head), laid out with the parameter names of the
//! PyTorch port `efficientnet-lite-pytorch`, so its ImageNet state_dict loads by name.
use super::blocks::{batch_norm, classifier, conv, InputAdapter, MbConv, MbConvSpec, SameConv};
use super::Layer;
use tch::nn;

/// (repeats, kernel, stride, expansion, channels in, channels out) of each stage.
const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Stochastic-depth rate of the last block (scaled linearly from 0 at the first).
const DROP_CONNECT: f64 = 0.2;

/// Width of the embedding (the head convolution's channels).
pub const EMBEDDING_DIM: i64 = 1280;

/// Every block's shape, in order (16 blocks).
fn block_specs() -> Vec<MbConvSpec> {
    let mut specs = Vec::new();
    for (repeats, kernel, stride, expand, c_in, c_out) in STAGES {
        for r in 0..repeats {
            specs.push(MbConvSpec {
                kernel,
                expand,
                stride: if r == 0 { stride } else { 1 },
                c_in: if r == 0 { c_in } else { c_out },
                c_out,
            });
        }
    }
    specs
}

/// The stem and the 16 blocks of EfficientNet-Lite0 (320 channels at stride 32), after
/// an input adapter for `in_channels`-channel images resized to `size` (0 = as given):
/// the backbone a detector taps, without the head convolution and classifier.
pub fn block_layers(root: &nn::Path, in_channels: i64, size: i64) -> Vec<(String, Layer)> {
    let bn = |name: &str, c| batch_norm(root / name, c, 1e-3, 0.01);
    let mut out = vec![
        (
            "adapt".to_string(),
            Layer::Adapt(InputAdapter::new(root / "adapt", in_channels, size)),
        ),
        (
            "_conv_stem".into(),
            Layer::SameConv(SameConv::new(root / "_conv_stem", 3, 32, 3, 2, 1, false)),
        ),
        ("_bn0".into(), Layer::BatchNorm(bn("_bn0", 32))),
        ("relu6_stem".into(), Layer::Relu6),
    ];
    let specs = block_specs();
    let blocks = root / "_blocks";
    for (i, spec) in specs.iter().enumerate() {
        let rate = DROP_CONNECT * i as f64 / specs.len() as f64;
        let block = MbConv::new(&(&blocks / i), *spec, rate);
        out.push((format!("_blocks.{i}"), Layer::MbConv(Box::new(block))));
    }
    out
}

/// Layers of EfficientNet-Lite0 for `in_channels`-channel images resized to `size`
/// (0 = as given), and the index of the layer ending the features (after the head
/// convolution's activation).
pub fn layers(
    root: &nn::Path,
    in_channels: i64,
    size: i64,
    num_classes: i64,
    dropout: f64,
) -> (Vec<(String, Layer)>, usize) {
    let bn = |name: &str, c| batch_norm(root / name, c, 1e-3, 0.01);
    let mut out = block_layers(root, in_channels, size);
    out.push((
        "_conv_head".into(),
        Layer::Conv(conv(root / "_conv_head", 320, EMBEDDING_DIM, 1, 1, 0)),
    ));
    out.push(("_bn1".into(), Layer::BatchNorm(bn("_bn1", EMBEDDING_DIM))));
    out.push(("relu6_head".into(), Layer::Relu6));
    let features_end = out.len() - 1;
    out.extend(classifier(root, "_fc", EMBEDDING_DIM, num_classes, dropout));
    (out, features_end)
}
