//! [`Layer`]: the building blocks of the from-scratch models, small enough to list,
//! summarise and walk (no hooks needed for Grad-CAM).
pub use super::blocks::{BasicBlock, InputAdapter, MbConv, SameConv};
use tch::{nn, nn::ModuleT, Tensor};

/// A 2-D convolution that keeps its geometry: tch's `nn::Conv2D` holds its config
/// privately, and the ONNX exporter, summaries and analyses need stride, padding,
/// dilation and groups. Derefs to the tch module (`ws`, `bs`).
#[derive(Debug)]
pub struct Conv {
    pub module: nn::Conv2D,
    pub stride: i64,
    /// Symmetric zero padding on each side.
    pub padding: i64,
    pub dilation: i64,
    pub groups: i64,
    /// False for reflect/replicate/circular padding (which the ONNX exporter refuses).
    pub zero_padding: bool,
}

impl Conv {
    /// `nn::conv2d` at `path` with `config`.
    pub fn new(path: nn::Path, c_in: i64, c_out: i64, kernel: i64, config: nn::ConvConfig) -> Conv {
        Conv {
            stride: config.stride,
            padding: config.padding,
            dilation: config.dilation,
            groups: config.groups,
            zero_padding: matches!(config.padding_mode, nn::PaddingMode::Zeros),
            module: nn::conv2d(path, c_in, c_out, kernel, config),
        }
    }
}

impl std::ops::Deref for Conv {
    type Target = nn::Conv2D;
    fn deref(&self) -> &nn::Conv2D {
        &self.module
    }
}

impl nn::Module for Conv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.module.forward(xs)
    }
}

/// A 2-D batch norm that keeps its epsilon (private in tch's `nn::BatchNorm`).
/// Derefs to the tch module (`ws`, `bs`, running statistics).
#[derive(Debug)]
pub struct BatchNorm {
    pub module: nn::BatchNorm,
    pub eps: f64,
}

impl BatchNorm {
    /// `nn::batch_norm2d` at `path` with `config`.
    pub fn new(path: nn::Path, channels: i64, config: nn::BatchNormConfig) -> BatchNorm {
        BatchNorm {
            eps: config.eps,
            module: nn::batch_norm2d(path, channels, config),
        }
    }
}

impl std::ops::Deref for BatchNorm {
    type Target = nn::BatchNorm;
    fn deref(&self) -> &nn::BatchNorm {
        &self.module
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.module.forward_t(xs, train)
    }
}

/// One layer of a sequential network.
#[derive(Debug)]
pub enum Layer {
    Conv(Conv),
    BatchNorm(BatchNorm),
    Relu,
    /// Max pooling with this kernel and stride.
    MaxPool(i64),
    /// Global average pooling to `[N, C]`.
    GlobalAvgPool,
    /// `[N, C, H, W]` → `[N, C·H·W]`.
    Flatten,
    /// Dropout with this probability (training only).
    Dropout(f64),
    Linear(nn::Linear),
    /// `min(max(x, 0), 6)`, the activation of the EfficientNet-Lite family.
    Relu6,
    /// Max pooling with explicit kernel, stride and zero padding (ResNet's stem).
    MaxPoolPadded {
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    /// A convolution with TensorFlow's "SAME" padding (asymmetric when needed).
    SameConv(SameConv),
    /// EfficientNet's inverted-residual block.
    MbConv(Box<MbConv>),
    /// ResNet's two-convolution residual block.
    BasicBlock(Box<BasicBlock>),
    /// Maps the dataset's normalised images to what an ImageNet model expects.
    Adapt(InputAdapter),
}

impl Layer {
    /// Applies the layer; `train` switches dropout and batch-norm statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Layer::Conv(c) => x.apply(c),
            Layer::BatchNorm(bn) => bn.forward_t(x, train),
            Layer::Relu => x.relu(),
            Layer::MaxPool(k) => x.max_pool2d([*k, *k], [*k, *k], [0, 0], [1, 1], false),
            Layer::GlobalAvgPool => x.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
            Layer::Flatten => x.flatten(1, -1),
            Layer::Dropout(p) => x.dropout(*p, train),
            Layer::Linear(l) => x.apply(l),
            Layer::Relu6 => x.clamp(0.0, 6.0),
            Layer::MaxPoolPadded {
                kernel,
                stride,
                padding,
            } => x.max_pool2d(
                [*kernel, *kernel],
                [*stride, *stride],
                [*padding, *padding],
                [1, 1],
                false,
            ),
            Layer::SameConv(c) => c.forward(x),
            Layer::MbConv(b) => b.forward_t(x, train),
            Layer::BasicBlock(b) => b.forward_t(x, train),
            Layer::Adapt(a) => a.forward(x),
        }
    }

    /// Short type name for summaries.
    pub fn kind(&self) -> String {
        match self {
            Layer::Conv(c) => {
                let s = c.ws.size();
                format!("Conv2d {}→{} {}×{}", s[1], s[0], s[2], s[3])
            }
            Layer::BatchNorm(_) => "BatchNorm2d".into(),
            Layer::Relu => "ReLU".into(),
            Layer::MaxPool(k) => format!("MaxPool {k}×{k}"),
            Layer::GlobalAvgPool => "GlobalAvgPool".into(),
            Layer::Flatten => "Flatten".into(),
            Layer::Dropout(p) => format!("Dropout p={p}"),
            Layer::Linear(l) => {
                let s = l.ws.size();
                format!("Linear {}→{}", s[1], s[0])
            }
            Layer::Relu6 => "ReLU6".into(),
            Layer::MaxPoolPadded {
                kernel,
                stride,
                padding,
            } => format!("MaxPool {kernel}×{kernel} s{stride} p{padding}"),
            Layer::SameConv(c) => {
                let s = c.ws.size();
                format!(
                    "Conv2d(same) {}→{} {}×{} s{}",
                    s[1] * c.groups,
                    s[0],
                    s[2],
                    s[3],
                    c.stride
                )
            }
            Layer::MbConv(b) => b.describe(),
            Layer::BasicBlock(b) => b.describe(),
            Layer::Adapt(a) => a.describe(),
        }
    }

    /// Trainable parameters of this layer.
    pub fn num_parameters(&self) -> i64 {
        let n = |t: &Tensor| t.numel() as i64;
        match self {
            Layer::Conv(c) => n(&c.ws) + c.bs.as_ref().map_or(0, n),
            Layer::BatchNorm(bn) => bn.ws.as_ref().map_or(0, n) + bn.bs.as_ref().map_or(0, n),
            Layer::Linear(l) => n(&l.ws) + l.bs.as_ref().map_or(0, n),
            Layer::SameConv(c) => n(&c.ws),
            Layer::MbConv(b) => b.num_parameters(),
            Layer::BasicBlock(b) => b.num_parameters(),
            _ => 0,
        }
    }
}
