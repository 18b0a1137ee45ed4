//! Transfer learning: the Rust EfficientNet-Lite0 and ResNet-18 give the logits of the
//! PyTorch references for the same weights and input, the shipped ImageNet weights
//! recognise a real photo, mismatched weights are refused by name, and the freezing
//! modes train exactly the weights they say.
mod common;

use helpers::config::{Arch, Freeze, ModelConfig, RunConfig};
use helpers::models::pretrained::{self, Fate};
use helpers::models::{self, Model};
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;
use helpers::weights;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Runs scripts/reference_logits.py; returns (input, logits) it wrote.
fn reference(which: &str, dir: &Path) -> (Tensor, Tensor) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/reference_logits.py");
    let out = std::process::Command::new(common::venv_python())
        .arg(script)
        .arg(which)
        .arg(dir)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shapes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("shapes.json")).unwrap()).unwrap();
    let read = |name: &str, key: &str| {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape: Vec<i64> = shapes[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        Tensor::from_slice(&floats).view(shape.as_slice())
    };
    (read("input.f32", "input"), read("logits.f32", "logits"))
}

fn model_cfg(arch: Arch, weights: &str, input_size: i64) -> ModelConfig {
    ModelConfig {
        arch,
        weights: weights.into(),
        input_size,
        dropout: 0.2,
        ..ModelConfig::default()
    }
}

/// Logits for inputs that are already ImageNet-normalised RGB (the adapter skipped).
fn logits_after_adapter(model: &Model, x: &Tensor) -> Tensor {
    assert_eq!(model.layers[0].0, "adapt");
    tch::no_grad(|| model.head_from(x, 0))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn efficientnet_lite0_matches_the_pytorch_reference_and_sees_the_cat() {
    let _guard = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let (input, expected) = reference("efficientnet", dir.path());
    let cfg = model_cfg(Arch::EfficientnetLite0, "efficientnet-lite0", 224);
    let model = models::build(&cfg, [3, 224, 224], 1000, Device::Cpu).unwrap();
    let logits = logits_after_adapter(&model, &input);
    let diff = max_abs_diff(&logits, &expected);
    eprintln!("EfficientNet-Lite0 max |Δlogit| vs PyTorch: {diff:.2e}");
    assert!(diff <= 1e-3, "max |Δlogit| = {diff}");

    // The same photo read and prepared in Rust: centre square, adapter resizes to 224.
    let photo = chelsea_photo();
    let x = tch::no_grad(|| model.forward_t(&photo, false));
    assert_eq!(x.argmax(-1, false).int64_value(&[0]), 285, "Egyptian cat");
}

/// scikit-image's `chelsea.png` as `[1, 3, side, side]` pixels in [0, 1] (centre square).
fn chelsea_photo() -> Tensor {
    let venv = common::venv_python()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let png = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .join("site-packages/skimage/data/chelsea.png")
        })
        .find(|p| p.is_file())
        .expect("scikit-image installed by scripts/setup");
    let img = image::open(&png).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let side = w.min(h);
    let (left, top) = ((w - side) / 2, (h - side) / 2);
    let crop = image::imageops::crop_imm(&img, left, top, side, side).to_image();
    Tensor::from_slice(crop.as_raw())
        .view([side as i64, side as i64, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        / 255.0
}

#[test]
fn resnet18_matches_torchvision_for_the_same_state_dict() {
    let _guard = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let (input, expected) = reference("resnet18", dir.path());
    let file = dir.path().join("resnet18.pth");
    let cfg = model_cfg(Arch::Resnet18, file.to_str().unwrap(), 0);
    let model = models::build(&cfg, [3, 64, 64], 1000, Device::Cpu).unwrap();
    let diff = max_abs_diff(&logits_after_adapter(&model, &input), &expected);
    eprintln!("ResNet-18 max |Δlogit| vs torchvision: {diff:.2e}");
    assert!(diff <= 1e-3, "max |Δlogit| = {diff}");
}

#[test]
fn weights_of_another_architecture_are_refused_by_name() {
    let _guard = common::serial();
    let cfg = model_cfg(Arch::Resnet18, "efficientnet-lite0", 64);
    let err = models::build(&cfg, [1, 28, 28], 10, Device::Cpu)
        .unwrap_err()
        .to_string();
    for needle in [
        "missing keys",
        "unexpected keys",
        "layer4.1",
        "_conv_stem",
        "efficientnet-lite0-57934424.pth",
    ] {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    let missing = models::build(
        &model_cfg(Arch::Resnet18, "/no/such/file.pth", 0),
        [3, 32, 32],
        10,
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("/no/such/file.pth") && missing.contains("efficientnet-lite0"),
        "{missing}"
    );
}

#[test]
fn a_new_class_count_keeps_the_backbone_and_renews_the_head() {
    let _guard = common::serial();
    tch::manual_seed(0);
    let model = models::build(
        &model_cfg(Arch::EfficientnetLite0, "", 64),
        [1, 28, 28],
        10,
        Device::Cpu,
    )
    .unwrap();
    let path = weights::resolve("efficientnet-lite0").unwrap();
    let named = weights::read_file(&path).unwrap();
    let stem = named
        .iter()
        .find(|(n, _)| n == "_conv_stem.weight")
        .unwrap()
        .1
        .shallow_clone();
    let report = pretrained::load_state_dict(&model, named, &path).unwrap();
    assert_eq!(report.count(&Fate::NewHead), 2, "_fc.weight and _fc.bias");
    assert_eq!(report.count(&Fate::ModelOnly), 2, "adapter statistics");
    assert_eq!(
        report.count(&Fate::Loaded),
        296 - 2 - 49,
        "all but the head and 49 counters"
    );
    let loaded = model.vs.variables()["_conv_stem.weight"].contiguous();
    assert!(loaded.equal(&stem));
    let table = report.table().unwrap();
    assert!(
        table.height() >= 20,
        "one row per layer: {}",
        table.height()
    );
}

#[test]
fn freezing_modes_train_what_they_say() {
    let _guard = common::serial();
    let data = common::synth_dataset();
    let mut cfg = RunConfig::default().with_name("probe").with_epochs(2);
    cfg.model = model_cfg(Arch::EfficientnetLite0, "efficientnet-lite0", 32);
    cfg.model.freeze = Freeze::Backbone;
    cfg.data.augment.crop_padding = 0;
    cfg.data.augment.horizontal_flip = false;
    cfg.train.batch_size = 16;
    let before = models::build(&cfg.model, data.image_shape(), 4, Device::Cpu).unwrap();
    assert_eq!(before.num_trainable(), 1280 * 4 + 4);
    let root = tempfile::tempdir().unwrap();
    let opts = FitOptions {
        root: root.path().to_path_buf(),
        ..FitOptions::default()
    };
    let run = fit_with(&cfg, &data, &opts, &mut Silent).unwrap();
    // Backbone weights and batch-norm statistics are exactly the pretrained ones.
    let (a, b) = (before.vs.variables(), run.model.vs.variables());
    for name in [
        "_blocks.15._bn2.running_mean",
        "_blocks.3._depthwise_conv.weight",
        "_bn1.running_var",
    ] {
        assert!(
            a[name].contiguous().equal(&b[name].contiguous()),
            "{name} changed"
        );
    }
    assert!(!a["_fc.weight"].equal(&b["_fc.weight"]), "the head trained");
    assert!(run.meta.embed_seconds.is_some(), "embeddings were cached");
    assert!(root.path().join(".embeddings").read_dir().unwrap().count() == 1);

    let mut partial = cfg.model.clone();
    partial.freeze = Freeze::Partial;
    partial.unfreeze_blocks = 2;
    let m = models::build(&partial, data.image_shape(), 4, Device::Cpu).unwrap();
    let trainable: Vec<String> = m.trainable_named().into_iter().map(|(n, _)| n).collect();
    assert!(trainable.iter().any(|n| n.starts_with("_blocks.14.")));
    assert!(trainable.iter().any(|n| n.starts_with("_conv_head.")));
    assert!(!trainable
        .iter()
        .any(|n| n.starts_with("_blocks.13.") || n.starts_with("_conv_stem")));
    assert_eq!(
        m.trainable_from,
        m.layers
            .iter()
            .position(|(n, _)| n == "_blocks.14")
            .unwrap()
    );
}
