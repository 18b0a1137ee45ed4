//! CNNs from scratch: stages of 3×3 convolutions (each followed by batch norm and ReLU),
//! 2×2 max pooling between stages, then global average pooling or flattening, dropout and
//! a linear classifier. Parameter paths: `stages.{s}.{i}.conv`, `.bn`, then `fc`.
use super::config::{Head, ModelConfig};
use super::layers::{BatchNorm, Conv};
use super::Layer;
use tch::nn;

/// Layers of the configurable CNN, and the index ending its last convolutional block.
pub fn layers(
    root: &nn::Path,
    cfg: &ModelConfig,
    input_shape: [i64; 3],
    num_classes: i64,
) -> (Vec<(String, Layer)>, usize) {
    let [in_channels, h, w] = input_shape;
    let (mut out, last_channels, features_end) =
        conv_stages(root, &cfg.widths, &cfg.depths, cfg.batch_norm, in_channels);
    let fc_inputs = match cfg.head {
        Head::Gap => {
            out.push(("gap".into(), Layer::GlobalAvgPool));
            last_channels
        }
        Head::Flatten => {
            out.push(("flatten".into(), Layer::Flatten));
            // Each stage after the first halves the resolution (floor, as max-pool does).
            let halvings = cfg.widths.len().saturating_sub(1) as u32;
            last_channels * (h >> halvings) * (w >> halvings)
        }
    };
    if cfg.dropout > 0.0 {
        out.push(("dropout".into(), Layer::Dropout(cfg.dropout)));
    }
    out.push((
        "fc".into(),
        Layer::Linear(nn::linear(
            root / "fc",
            fc_inputs,
            num_classes,
            Default::default(),
        )),
    ));
    (out, features_end)
}

/// The benchmarking CNN of the project: 3×3 pad-1 convs 1→32, 32→32, max-pool, 32→64,
/// 64→64, max-pool, 64→128, each with BatchNorm and ReLU, global average pool, linear.
pub fn reference_layers(
    root: &nn::Path,
    in_channels: i64,
    num_classes: i64,
) -> (Vec<(String, Layer)>, usize) {
    let (mut out, last, features_end) =
        conv_stages(root, &[32, 64, 128], &[2, 2, 1], true, in_channels);
    out.push(("gap".into(), Layer::GlobalAvgPool));
    out.push((
        "fc".into(),
        Layer::Linear(nn::linear(
            root / "fc",
            last,
            num_classes,
            Default::default(),
        )),
    ));
    (out, features_end)
}

/// Convolutional stages; returns layers, the last width, and the last block's end index.
fn conv_stages(
    root: &nn::Path,
    widths: &[i64],
    depths: &[usize],
    batch_norm: bool,
    in_channels: i64,
) -> (Vec<(String, Layer)>, i64, usize) {
    let mut out = Vec::new();
    let mut channels = in_channels;
    for (s, (&width, &depth)) in widths.iter().zip(depths).enumerate() {
        if s > 0 {
            out.push((format!("stages.{s}.pool"), Layer::MaxPool(2)));
        }
        for i in 0..depth {
            let p = root / "stages" / s / i;
            let conv_cfg = nn::ConvConfig {
                padding: 1,
                bias: !batch_norm,
                ..Default::default()
            };
            out.push((
                format!("stages.{s}.{i}.conv"),
                Layer::Conv(Conv::new(&p / "conv", channels, width, 3, conv_cfg)),
            ));
            if batch_norm {
                out.push((
                    format!("stages.{s}.{i}.bn"),
                    Layer::BatchNorm(BatchNorm::new(&p / "bn", width, Default::default())),
                ));
            }
            out.push((format!("stages.{s}.{i}.relu"), Layer::Relu));
            channels = width;
        }
    }
    let features_end = out.len() - 1;
    (out, channels, features_end)
}
