//! ONNX export of a detector: tiles in (`input` `[batch, 3, T, T]`, floats in [0, 1]),
//! the two maps out — `heatmap` (centre logits `[batch, classes, T/8, T/8]`) and `boxes`
//! (offsets and log sizes `[batch, 4, T/8, T/8]`); decoding and NMS run after, on the
//! maps, as [`super::decode::decode`] does for tch. The backbone goes through the layer
//! exporter (batch norm folded, "SAME" pads, MBConv, the ImageNet adapter), the neck as
//! 1×1 `Conv`s, nearest `Resize` and `Add`, group norm as `Reshape` →
//! `InstanceNormalization` over each group → `Reshape` → per-channel `Mul`/`Add`
//! (opset 17 has no `GroupNormalization`).
use super::data::DetectionData;
use super::decode::decode;
use super::fit::TrainedDetector;
use super::model::{Detector, DetectorOutput};
use crate::deploy::onnx::{GraphBuilder, Value};
use crate::deploy::ort_runtime::{OrtModel, OrtOptions};
use crate::render::Table;
use crate::Result;
use polars::prelude::Column;
use std::path::Path;
use tch::Tensor;

/// The serialised graph for `size`×`size` tiles.
pub fn to_onnx_bytes(det: &Detector, size: i64) -> Result<Vec<u8>> {
    tch::no_grad(|| {
        let mut g = GraphBuilder::default();
        let input = Value::image("input", 3, [size, size]);
        let (layers, taps) = det.backbone_layers();
        let mut feats: Vec<Value> = Vec::new();
        g.add_layers(layers, input, |i, v| {
            if taps.contains(&i) {
                feats.push(v.clone());
            }
        })?;
        let mut merged = g.plain_conv("neck.lateral2", &feats[2], det.lateral(2))?;
        for level in [1, 0] {
            let lateral = g.plain_conv(
                &format!("neck.lateral{level}"),
                &feats[level],
                det.lateral(level),
            )?;
            let up = g.resize_nearest(
                &format!("neck.up{level}"),
                &merged.name,
                lateral.spatial_size(),
            );
            merged = lateral.renamed(g.node(
                "Add",
                &format!("neck.sum{level}"),
                &[&lateral.name, &up],
                vec![],
            ));
        }
        let (conv, gn) = det.merge_parts();
        let merged = conv_gn_relu(&mut g, "neck.merge", &merged, conv, gn)?;
        let mut outputs = Vec::new();
        for (name, (hidden_conv, hidden_gn, out)) in [
            ("heatmap", det.head_parts(true)),
            ("boxes", det.head_parts(false)),
        ] {
            let h = conv_gn_relu(
                &mut g,
                &format!("head.{name}.hidden"),
                &merged,
                hidden_conv,
                hidden_gn,
            )?;
            let o = g.plain_conv(&format!("head.{name}.out"), &h, out)?;
            outputs.push((o, name));
        }
        let classes = det.num_classes;
        let cells = size / super::model::STRIDE;
        Ok(g.finish_with(
            ("input", [3, size, size]),
            &[
                (&outputs[0].0.name, outputs[0].1, [classes, cells, cells]),
                (&outputs[1].0.name, outputs[1].1, [4, cells, cells]),
            ],
        ))
    })
}

/// Conv → group norm → ReLU.
fn conv_gn_relu(
    g: &mut GraphBuilder,
    name: &str,
    x: &Value,
    conv: &crate::models::layers::Conv,
    gn: &tch::nn::GroupNorm,
) -> Result<Value> {
    let c = g.plain_conv(&format!("{name}.conv"), x, conv)?;
    let (scale, shift) = (
        gn.ws.as_ref().expect("affine group norm"),
        gn.bs.as_ref().expect("affine group norm"),
    );
    let eps = super::model::NORM_EPS as f32;
    let normed = g.group_norm(
        &format!("{name}.gn"),
        &c,
        super::model::NORM_GROUPS,
        eps,
        scale,
        shift,
    )?;
    Ok(normed.renamed(g.node("Relu", &format!("{name}.relu"), &[&normed.name], vec![])))
}

/// Writes the graph for the run's tile size at `path`, atomically.
pub fn export(det: &Detector, size: i64, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &to_onnx_bytes(det, size)?)
}

/// What [`export_checked`] measured.
#[derive(Debug, Clone)]
pub struct OnnxCheck {
    pub path: std::path::PathBuf,
    pub bytes: u64,
    pub tiles: usize,
    /// Largest absolute difference between ONNX Runtime's and tch's maps.
    pub heatmap_gap: f64,
    pub boxes_gap: f64,
    /// Tiles whose decoded boxes are the same (class, and IoU > 0.999 each).
    pub identical_tiles: usize,
    pub ort_tiles_per_second: f64,
}

impl OnnxCheck {
    pub fn table(&self) -> Result<Table> {
        Table::from_columns(
            format!("ONNX export checked by ONNX Runtime on {} test tiles (tiles in; heatmap and box maps out, decoded after)", self.tiles),
            vec![
                Column::new("file".into(), vec![self.path.file_name().unwrap_or_default().to_string_lossy().into_owned()]),
                Column::new("MB".into(), vec![self.bytes as f64 / 1e6]),
                Column::new("max |Δ heatmap logit|".into(), vec![self.heatmap_gap]),
                Column::new("max |Δ box map|".into(), vec![self.boxes_gap]),
                Column::new("tiles with identical boxes".into(), vec![format!("{} / {}", self.identical_tiles, self.tiles)]),
                Column::new("ONNX Runtime tiles/s".into(), vec![self.ort_tiles_per_second]),
            ],
        )
    }
}

/// Exports `run` to `<run>/model.onnx`, runs up to 16 test tiles through ONNX Runtime and
/// through tch, and compares the maps and the decoded boxes.
pub fn export_checked(run: &TrainedDetector, data: &DetectionData) -> Result<OnnxCheck> {
    let size = run.config.tiles.size as i64;
    let path = run.run.file("model.onnx");
    export(&run.net, size, &path)?;
    let mut ort = OrtModel::load(&path, &OrtOptions::default())?;
    let n = data.test.len().min(16) as i64;
    let x = data
        .test
        .images(&Tensor::arange(n, (tch::Kind::Int64, tch::Device::Cpu)));
    let ours = tch::no_grad(|| run.net.forward_t(&x, false));
    let started = std::time::Instant::now();
    let maps = ort.run_all(&x)?;
    let ort_seconds = started.elapsed().as_secs_f64();
    let theirs = DetectorOutput {
        heatmap: maps[0].shallow_clone(),
        boxes: maps[1].shallow_clone(),
    };
    let gap = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
    let (a, b) = (
        decode(&ours, size, &run.config.decode),
        decode(&theirs, size, &run.config.decode),
    );
    let same = |p: &Vec<super::Detection>, q: &Vec<super::Detection>| {
        p.len() == q.len()
            && p.iter()
                .zip(q)
                .all(|(d, e)| d.class == e.class && d.bbox.iou(&e.bbox) > 0.999)
    };
    Ok(OnnxCheck {
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        path,
        tiles: n as usize,
        heatmap_gap: gap(&ours.heatmap, &theirs.heatmap),
        boxes_gap: gap(&ours.boxes, &theirs.boxes),
        identical_tiles: a.iter().zip(&b).filter(|(p, q)| same(p, q)).count(),
        ort_tiles_per_second: n as f64 / ort_seconds.max(1e-9),
    })
}
