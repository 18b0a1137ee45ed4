//! ResNet-18 (He et al. 2016) with torchvision's parameter names (`conv1`, `bn1`,
//! `layer1.0.conv1`, …, `fc`), so any torchvision `resnet18` state_dict loads by name.
//! The `cifar` stem (3×3 stride-1 first convolution, no max-pool) keeps 32×32 images
//! at full resolution through the first stage, as in the CIFAR ResNets.
use super::blocks::{batch_norm, classifier, conv, BasicBlock, InputAdapter};
use super::Layer;
use tch::nn;

/// Channels of the four stages (two blocks each).
const WIDTHS: [i64; 4] = [64, 128, 256, 512];

/// Which first layers to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stem {
    /// 7×7 stride-2 convolution and 3×3 stride-2 max-pool (ImageNet, 224×224 inputs).
    ImageNet,
    /// 3×3 stride-1 convolution, no max-pool (32×32 inputs).
    Cifar,
}

/// Layers of ResNet-18 and the index of its last residual block. With `adapt`, an
/// [`InputAdapter`] first maps the data to ImageNet-normalised RGB of `size` pixels.
pub fn layers(
    root: &nn::Path,
    in_channels: i64,
    size: i64,
    num_classes: i64,
    dropout: f64,
    stem: Stem,
) -> (Vec<(String, Layer)>, usize) {
    let mut out: Vec<(String, Layer)> = Vec::new();
    let mut c_in = in_channels;
    if stem == Stem::ImageNet {
        let adapter = InputAdapter::new(root / "adapt", in_channels, size);
        out.push(("adapt".into(), Layer::Adapt(adapter)));
        c_in = 3;
    }
    let (kernel, stride, padding) = match stem {
        Stem::ImageNet => (7, 2, 3),
        Stem::Cifar => (3, 1, 1),
    };
    out.push((
        "conv1".into(),
        Layer::Conv(conv(root / "conv1", c_in, 64, kernel, stride, padding)),
    ));
    out.push((
        "bn1".into(),
        Layer::BatchNorm(batch_norm(root / "bn1", 64, 1e-5, 0.1)),
    ));
    out.push(("relu".into(), Layer::Relu));
    if stem == Stem::ImageNet {
        let pool = Layer::MaxPoolPadded {
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        out.push(("maxpool".into(), pool));
    }
    let mut channels = 64;
    for (stage, &width) in WIDTHS.iter().enumerate() {
        for b in 0..2 {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let name = format!("layer{}.{b}", stage + 1);
            let path = root / format!("layer{}", stage + 1) / b;
            let block = BasicBlock::new(&path, channels, width, stride);
            out.push((name, Layer::BasicBlock(Box::new(block))));
            channels = width;
        }
    }
    let features_end = out.len() - 1;
    out.extend(classifier(root, "fc", channels, num_classes, dropout));
    (out, features_end)
}
