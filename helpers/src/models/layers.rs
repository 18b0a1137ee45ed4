//! [`Layer`]: the building blocks of the from-scratch models, small enough to list,
//! summarise and walk (no hooks needed for Grad-CAM).
pub use super::blocks::{BasicBlock, InputAdapter, MbConv, SameConv};
use tch::{nn, nn::ModuleT, Tensor};

/// One layer of a sequential network.
#[derive(Debug)]
pub enum Layer {
    Conv(nn::Conv2D),
    BatchNorm(nn::BatchNorm),
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
