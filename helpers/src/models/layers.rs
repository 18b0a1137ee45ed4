//! [`Layer`]: the building blocks of the from-scratch models, small enough to list,
//! summarise and walk (no hooks needed for Grad-CAM).
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
        }
    }

    /// Trainable parameters of this layer.
    pub fn num_parameters(&self) -> i64 {
        let n = |t: &Tensor| t.numel() as i64;
        match self {
            Layer::Conv(c) => n(&c.ws) + c.bs.as_ref().map_or(0, n),
            Layer::BatchNorm(bn) => bn.ws.as_ref().map_or(0, n) + bn.bs.as_ref().map_or(0, n),
            Layer::Linear(l) => n(&l.ws) + l.bs.as_ref().map_or(0, n),
            _ => 0,
        }
    }
}
