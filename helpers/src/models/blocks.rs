//! Composite layers of the pretrained architectures: TensorFlow-"SAME" convolutions and
//! EfficientNet's MBConv block (EfficientNet-Lite), ResNet's basic block, and the input
//! adapter that turns the dataset's normalised images into ImageNet-normalised RGB at
//! the size the network expects. Parameter paths follow PyTorch's names, so state_dicts
//! saved by PyTorch load by name.
use super::layers::{BatchNorm, Conv};
use crate::data::Normalization;
use tch::{nn, Tensor};

/// ImageNet channel means and standard deviations (torchvision's constants), the
/// statistics the pretrained weights were trained with.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

fn count(t: &Tensor) -> i64 {
    t.numel() as i64
}

fn bn_params(bn: &BatchNorm) -> i64 {
    bn.ws.as_ref().map_or(0, count) + bn.bs.as_ref().map_or(0, count)
}

/// Batch norm with an explicit epsilon and PyTorch-convention momentum.
pub fn batch_norm(path: nn::Path, channels: i64, eps: f64, momentum: f64) -> BatchNorm {
    let config = nn::BatchNormConfig {
        eps,
        momentum,
        ..Default::default()
    };
    BatchNorm::new(path, channels, config)
}

/// A bias-free convolution with symmetric zero padding.
pub fn conv(path: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, padding: i64) -> Conv {
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ..Default::default()
    };
    Conv::new(path, c_in, c_out, kernel, config)
}

/// The classifier of the pretrained architectures: global average pooling, dropout (when
/// `dropout` > 0) and a linear layer named `name` (the name the PyTorch state_dict uses).
pub fn classifier(
    root: &nn::Path,
    name: &str,
    in_features: i64,
    num_classes: i64,
    dropout: f64,
) -> Vec<(String, super::Layer)> {
    use super::Layer;
    let mut out = vec![("gap".to_string(), Layer::GlobalAvgPool)];
    if dropout > 0.0 {
        out.push(("dropout".into(), Layer::Dropout(dropout)));
    }
    let fc = nn::linear(root / name, in_features, num_classes, Default::default());
    out.push((name.to_string(), Layer::Linear(fc)));
    out
}

/// A convolution padded like TensorFlow's `padding="SAME"`: the output has
/// `ceil(input / stride)` pixels and the extra padding pixel, if any, goes right/bottom
/// (what the EfficientNet-Lite weights were trained with; PyTorch's symmetric padding
/// would shift every stride-2 layer by one pixel).
#[derive(Debug)]
pub struct SameConv {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
    pub stride: i64,
    pub groups: i64,
}

impl SameConv {
    /// A `kernel`×`kernel` convolution `c_in → c_out` at `path` (`.weight`, `.bias`).
    pub fn new(
        path: nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        bias: bool,
    ) -> SameConv {
        let config = nn::ConvConfig {
            stride,
            groups,
            bias,
            ..Default::default()
        };
        let c = nn::conv2d(path, c_in, c_out, kernel, config);
        SameConv {
            ws: c.ws,
            bs: c.bs,
            stride,
            groups,
        }
    }

    /// Total padding along one axis for an input of `size` pixels.
    fn total_padding(&self, size: i64, kernel: i64) -> i64 {
        let out = (size + self.stride - 1) / self.stride;
        ((out - 1) * self.stride + kernel - size).max(0)
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (s, k) = (x.size(), self.ws.size());
        let pad_h = self.total_padding(s[2], k[2]);
        let pad_w = self.total_padding(s[3], k[3]);
        let stride = [self.stride, self.stride];
        if pad_h % 2 == 0 && pad_w % 2 == 0 {
            return x.conv2d(
                &self.ws,
                self.bs.as_ref(),
                stride,
                [pad_h / 2, pad_w / 2],
                [1, 1],
                self.groups,
            );
        }
        let padded =
            x.constant_pad_nd([pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2]);
        padded.conv2d(
            &self.ws,
            self.bs.as_ref(),
            stride,
            [0, 0],
            [1, 1],
            self.groups,
        )
    }
}

/// Shape of one EfficientNet block: kernel, stride, expansion, channels in and out.
#[derive(Debug, Clone, Copy)]
pub struct MbConvSpec {
    pub kernel: i64,
    pub stride: i64,
    pub expand: i64,
    pub c_in: i64,
    pub c_out: i64,
}

/// Mobile inverted bottleneck (MobileNetV2/EfficientNet) without squeeze-excitation, as
/// in EfficientNet-Lite: 1×1 expansion, depthwise k×k, 1×1 projection, ReLU6, and a
/// residual connection with stochastic depth ("drop connect") when shapes allow.
#[derive(Debug)]
pub struct MbConv {
    expand: Option<(Conv, BatchNorm)>,
    depthwise: SameConv,
    bn1: BatchNorm,
    project: Conv,
    bn2: BatchNorm,
    residual: bool,
    /// Probability of dropping the residual branch of a sample while training.
    pub drop_connect: f64,
    spec: MbConvSpec,
}

/// EfficientNet's batch norm: epsilon 1e-3, momentum 0.01 (TensorFlow's 0.99).
fn efficientnet_bn(path: nn::Path, channels: i64) -> BatchNorm {
    batch_norm(path, channels, 1e-3, 0.01)
}

impl MbConv {
    /// A block at `path` (`_expand_conv`, `_bn0`, `_depthwise_conv`, `_bn1`,
    /// `_project_conv`, `_bn2`, the names of the PyTorch port).
    pub fn new(path: &nn::Path, spec: MbConvSpec, drop_connect: f64) -> MbConv {
        let hidden = spec.c_in * spec.expand;
        let expand = (spec.expand != 1).then(|| {
            (
                conv(path / "_expand_conv", spec.c_in, hidden, 1, 1, 0),
                efficientnet_bn(path / "_bn0", hidden),
            )
        });
        MbConv {
            expand,
            depthwise: SameConv::new(
                path / "_depthwise_conv",
                hidden,
                hidden,
                spec.kernel,
                spec.stride,
                hidden,
                false,
            ),
            bn1: efficientnet_bn(path / "_bn1", hidden),
            project: conv(path / "_project_conv", hidden, spec.c_out, 1, 1, 0),
            bn2: efficientnet_bn(path / "_bn2", spec.c_out),
            residual: spec.stride == 1 && spec.c_in == spec.c_out,
            drop_connect,
            spec,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let relu6 = |t: Tensor| t.clamp(0.0, 6.0);
        let mut h = match &self.expand {
            Some((c, bn)) => relu6(x.apply(c).apply_t(bn, train)),
            None => x.shallow_clone(),
        };
        h = relu6(self.depthwise.forward(&h).apply_t(&self.bn1, train));
        h = h.apply(&self.project).apply_t(&self.bn2, train);
        if !self.residual {
            return h;
        }
        if train && self.drop_connect > 0.0 {
            // Per-sample Bernoulli keep mask, rescaled so the expectation is unchanged.
            let keep = 1.0 - self.drop_connect;
            let n = h.size()[0];
            let mask = (Tensor::rand([n, 1, 1, 1], (h.kind(), h.device())) + keep).floor();
            h = h * mask / keep;
        }
        h + x
    }

    pub fn describe(&self) -> String {
        let s = self.spec;
        format!(
            "MBConv{} k{} s{} {}→{}",
            s.expand, s.kernel, s.stride, s.c_in, s.c_out
        )
    }

    pub fn num_parameters(&self) -> i64 {
        let expand = self
            .expand
            .as_ref()
            .map_or(0, |(c, bn)| count(&c.ws) + bn_params(bn));
        expand
            + count(&self.depthwise.ws)
            + bn_params(&self.bn1)
            + count(&self.project.ws)
            + bn_params(&self.bn2)
    }
}

/// ResNet's basic block (two 3×3 convolutions with batch norm, identity or 1×1
/// projection shortcut), with torchvision's names: `conv1`, `bn1`, `conv2`, `bn2`,
/// `downsample.0` (conv), `downsample.1` (batch norm).
#[derive(Debug)]
pub struct BasicBlock {
    conv1: Conv,
    bn1: BatchNorm,
    conv2: Conv,
    bn2: BatchNorm,
    downsample: Option<(Conv, BatchNorm)>,
    c_in: i64,
    c_out: i64,
    stride: i64,
}

impl BasicBlock {
    pub fn new(path: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> BasicBlock {
        let bn = |p: nn::Path, c| batch_norm(p, c, 1e-5, 0.1);
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = path / "downsample";
            (
                conv(&d / "0", c_in, c_out, 1, stride, 0),
                bn(&d / "1", c_out),
            )
        });
        BasicBlock {
            conv1: conv(path / "conv1", c_in, c_out, 3, stride, 1),
            bn1: bn(path / "bn1", c_out),
            conv2: conv(path / "conv2", c_out, c_out, 3, 1, 1),
            bn2: bn(path / "bn2", c_out),
            downsample,
            c_in,
            c_out,
            stride,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = x
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.conv2)
            .apply_t(&self.bn2, train);
        let shortcut = match &self.downsample {
            Some((c, bn)) => x.apply(c).apply_t(bn, train),
            None => x.shallow_clone(),
        };
        (h + shortcut).relu()
    }

    pub fn describe(&self) -> String {
        format!("BasicBlock {}→{} s{}", self.c_in, self.c_out, self.stride)
    }

    pub fn num_parameters(&self) -> i64 {
        let down = self
            .downsample
            .as_ref()
            .map_or(0, |(c, bn)| count(&c.ws) + bn_params(bn));
        count(&self.conv1.ws)
            + bn_params(&self.bn1)
            + count(&self.conv2.ws)
            + bn_params(&self.bn2)
            + down
    }
}

/// Turns the dataset's normalised images `[N, C, H, W]` into ImageNet-normalised RGB of
/// `size`×`size`: undo the dataset normalisation, replicate a grey channel to three,
/// resize bilinearly, normalise with ImageNet's statistics. The dataset statistics are
/// variables of the model (`adapt.data_mean`, `adapt.data_std`, not trained), so every
/// checkpoint carries them and a reloaded model reads the same inputs.
#[derive(Debug)]
pub struct InputAdapter {
    data_mean: Tensor,
    data_std: Tensor,
    /// Output side in pixels; 0 keeps the input size.
    pub size: i64,
    in_channels: i64,
}

impl InputAdapter {
    pub fn new(path: nn::Path, in_channels: i64, size: i64) -> InputAdapter {
        let data_mean = path.zeros_no_train("data_mean", &[in_channels]);
        let data_std = path.ones_no_train("data_std", &[in_channels]);
        InputAdapter {
            data_mean,
            data_std,
            size,
            in_channels,
        }
    }

    /// Records the statistics the data loaders normalise with.
    pub fn set_data_stats(&self, norm: &Normalization) {
        let to_tensor = |v: &[f32]| Tensor::from_slice(v).to_device(self.data_mean.device());
        tch::no_grad(|| {
            self.data_mean.shallow_clone().copy_(&to_tensor(&norm.mean));
            self.data_std.shallow_clone().copy_(&to_tensor(&norm.std));
        });
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let per_channel = |t: &Tensor| t.view([1, -1, 1, 1]).to_kind(x.kind());
        let mut pixels = x * per_channel(&self.data_std) + per_channel(&self.data_mean);
        if self.in_channels == 1 {
            pixels = pixels.expand([-1, 3, -1, -1], false);
        }
        let s = x.size();
        if self.size > 0 && (s[2] != self.size || s[3] != self.size) {
            pixels = pixels.upsample_bilinear2d([self.size, self.size], false, None, None);
        }
        let imagenet = |v: [f64; 3]| {
            Tensor::from_slice(&v.map(|x| x as f32))
                .to_device(x.device())
                .to_kind(x.kind())
                .view([1, 3, 1, 1])
        };
        (pixels - imagenet(IMAGENET_MEAN)) / imagenet(IMAGENET_STD)
    }

    pub fn describe(&self) -> String {
        let size = if self.size > 0 {
            format!("{0}×{0}", self.size)
        } else {
            "same size".into()
        };
        format!(
            "Input adapter {}→3 ch, {size}, ImageNet norm",
            self.in_channels
        )
    }
}

/// Read-only access to the parts, in forward order, for exporters (ONNX) that rebuild
/// the block as a graph.
impl MbConv {
    /// The 1×1 expansion convolution and its batch norm (absent when `expand` is 1).
    pub fn expand_parts(&self) -> Option<(&Conv, &BatchNorm)> {
        self.expand.as_ref().map(|(c, bn)| (c, bn))
    }

    /// The depthwise convolution and its batch norm.
    pub fn depthwise_parts(&self) -> (&SameConv, &BatchNorm) {
        (&self.depthwise, &self.bn1)
    }

    /// The 1×1 projection convolution and its batch norm.
    pub fn project_parts(&self) -> (&Conv, &BatchNorm) {
        (&self.project, &self.bn2)
    }

    /// Whether the input is added to the output (stride 1, same channels).
    pub fn has_residual(&self) -> bool {
        self.residual
    }
}

/// Read-only access to the parts for exporters (ONNX).
impl BasicBlock {
    /// The first convolution and its batch norm.
    pub fn first_parts(&self) -> (&Conv, &BatchNorm) {
        (&self.conv1, &self.bn1)
    }

    /// The second convolution and its batch norm.
    pub fn second_parts(&self) -> (&Conv, &BatchNorm) {
        (&self.conv2, &self.bn2)
    }

    /// The projection shortcut (1×1 convolution, batch norm), absent for the identity.
    pub fn downsample_parts(&self) -> Option<(&Conv, &BatchNorm)> {
        self.downsample.as_ref().map(|(c, bn)| (c, bn))
    }
}

/// Read-only access to the adapter's statistics for exporters (ONNX).
impl InputAdapter {
    /// Per-channel mean the data loaders subtracted (`[in_channels]`).
    pub fn data_mean(&self) -> &Tensor {
        &self.data_mean
    }

    /// Per-channel standard deviation the data loaders divided by (`[in_channels]`).
    pub fn data_std(&self) -> &Tensor {
        &self.data_std
    }

    /// Channels of the dataset's images (1 or 3).
    pub fn in_channels(&self) -> i64 {
        self.in_channels
    }
}
