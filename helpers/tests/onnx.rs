//! ONNX export checked by the real tools from the setup venv: the ONNX checker and
//! ONNX Runtime, whose logits must equal tch's within 1e-4 — for the scratch CNNs,
//! pretrained EfficientNet-Lite0 (grey 28×28 resized to 64×64) and ResNet-18 (both stems).
mod common;
use common::venv_python;

use common::{serial, synth_dataset, tiny_config};
use helpers::config::{Arch, Head, ModelConfig};
use helpers::data::Normalization;
use helpers::io::npy;
use helpers::{deploy, models, Result};
use std::process::Command;
use tch::{Kind, Tensor};

fn check(model: &models::Model, batch: i64) -> Result<String> {
    let dir = tempfile::tempdir().unwrap();
    let [c, h, w] = model.input_shape;
    let x = Tensor::randn([batch, c, h, w], (Kind::Float, tch::Device::Cpu));
    let logits = tch::no_grad(|| model.forward_t(&x, false));
    let to_vec = |t: &Tensor| Vec::<f32>::try_from(t.contiguous().view([-1])).unwrap();
    npy::write_f32(
        &dir.path().join("x.npy"),
        &[batch as usize, c as usize, h as usize, w as usize],
        &to_vec(&x),
    )?;
    npy::write_f32(
        &dir.path().join("y.npy"),
        &[batch as usize, model.num_classes as usize],
        &to_vec(&logits),
    )?;
    let onnx_path = dir.path().join("model.onnx");
    deploy::export(model, &onnx_path)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check_onnx.py");
    let out = Command::new(venv_python())
        .args([
            script,
            onnx_path.to_str().unwrap(),
            dir.path().join("x.npy").to_str().unwrap(),
            dir.path().join("y.npy").to_str().unwrap(),
        ])
        .output()
        .expect("the setup venv's python (run scripts/setup)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    Ok(text)
}

/// A model whose batch-norm statistics are not the identity, so folding is exercised.
fn trained_like(cfg: &helpers::config::ModelConfig) -> Result<models::Model> {
    let data = synth_dataset();
    tch::manual_seed(5);
    let model = models::build(cfg, data.image_shape(), 4, tch::Device::Cpu)?;
    tch::no_grad(|| {
        for (name, t) in model.vs.variables() {
            if name.ends_with("running_mean") || name.ends_with("bn.bias") {
                t.shallow_clone()
                    .copy_(&(Tensor::randn(t.size(), (Kind::Float, tch::Device::Cpu)) * 0.3));
            }
            if name.ends_with("running_var") || name.ends_with("bn.weight") {
                t.shallow_clone()
                    .copy_(&(Tensor::rand(t.size(), (Kind::Float, tch::Device::Cpu)) + 0.5));
            }
        }
    });
    Ok(model)
}

#[test]
fn exported_scratch_cnns_match_tch_in_onnx_runtime() -> Result<()> {
    let _guard = serial();
    let mut cfg = tiny_config("o").model;
    cfg.dropout = 0.3;
    let text = check(&trained_like(&cfg)?, 5)?;
    assert!(
        text.contains("'Conv'") && text.contains("'Gemm'") && text.contains("'Flatten'"),
        "{text}"
    );
    cfg.head = Head::Gap;
    check(&trained_like(&cfg)?, 3)?;
    cfg.arch = Arch::ReferenceCnn;
    let text = check(&trained_like(&cfg)?, 2)?;
    assert!(text.contains("GlobalAveragePool"), "{text}");
    Ok(())
}

/// A registry model for `[c, h, w]` inputs with non-trivial batch-norm statistics and
/// dataset normalisation, so folding and the input adapter are exercised.
fn registry_model(cfg: &ModelConfig, shape: [i64; 3], classes: i64) -> Result<models::Model> {
    tch::manual_seed(11);
    let model = models::build(cfg, shape, classes, tch::Device::Cpu)?;
    let channels = shape[0] as usize;
    model.set_input_stats(&Normalization {
        mean: vec![0.3; channels],
        std: vec![0.35; channels],
    });
    if cfg.weights.is_empty() {
        tch::no_grad(|| {
            for (name, t) in model.vs.variables() {
                let like = (Kind::Float, tch::Device::Cpu);
                if name.ends_with("running_mean") {
                    t.shallow_clone()
                        .copy_(&(Tensor::randn(t.size(), like) * 0.1));
                }
                if name.ends_with("running_var") {
                    t.shallow_clone()
                        .copy_(&(Tensor::rand(t.size(), like) + 0.5));
                }
            }
        });
    }
    Ok(model)
}

#[test]
fn exported_efficientnet_lite0_matches_tch_in_onnx_runtime() -> Result<()> {
    let _guard = serial();
    let cfg = ModelConfig {
        arch: Arch::EfficientnetLite0,
        weights: "efficientnet-lite0".into(),
        input_size: 64,
        dropout: 0.2,
        ..ModelConfig::default()
    };
    let text = check(&registry_model(&cfg, [1, 28, 28], 10)?, 3)?;
    for op in ["'Resize'", "'Clip'", "'Add'", "'Conv'", "'Gemm'"] {
        assert!(text.contains(op), "{op} missing: {text}");
    }
    Ok(())
}

#[test]
fn exported_resnet18_matches_tch_in_onnx_runtime() -> Result<()> {
    let _guard = serial();
    let mut cfg = ModelConfig {
        arch: Arch::Resnet18,
        input_size: 0,
        ..ModelConfig::default()
    };
    let text = check(&registry_model(&cfg, [3, 32, 32], 10)?, 2)?;
    assert!(
        text.contains("'MaxPool'") && !text.contains("'Resize'"),
        "{text}"
    );
    cfg.arch = Arch::Resnet18Cifar;
    check(&registry_model(&cfg, [3, 32, 32], 10)?, 2)?;
    Ok(())
}

#[test]
fn a_layer_that_cannot_export_is_named() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let fc = tch::nn::linear(vs.root() / "fc", 16, 2, Default::default());
    let model = models::Model {
        layers: vec![("fc".into(), models::Layer::Linear(fc))],
        vs,
        features_end: 0,
        input_shape: [1, 4, 4],
        num_classes: 2,
        channels_last: false,
        trainable_from: 0,
        precision: helpers::backend::Precision::Fp32,
    };
    let err = deploy::to_onnx_bytes(&model).unwrap_err().to_string();
    assert!(
        err.contains("`fc`") && err.contains("no ONNX export"),
        "{err}"
    );
}

#[test]
fn ort_runtime_from_rust_matches_tch() -> Result<()> {
    let _guard = serial();
    let cfg = ModelConfig {
        arch: Arch::Resnet18,
        input_size: 48,
        ..ModelConfig::default()
    };
    let model = registry_model(&cfg, [1, 28, 28], 10)?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    deploy::export(&model, &path)?;
    let x = Tensor::randn([3, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
    let expected = tch::no_grad(|| model.forward_t(&x, false));
    for optimization in [deploy::Optimization::All, deploy::Optimization::Disabled] {
        let options = deploy::OrtOptions {
            optimization,
            ..Default::default()
        };
        let mut ort = deploy::OrtModel::load(&path, &options)?;
        let got = ort.run(&x)?;
        assert_eq!(got.size(), vec![3, 10]);
        let diff = (got - &expected).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{optimization:?}: max |Δ| {diff}");
    }
    Ok(())
}

#[test]
fn ort_runtime_names_a_file_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.onnx");
    std::fs::write(&path, b"not a protobuf model").unwrap();
    let err = deploy::OrtModel::load(&path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weights.onnx") && err.contains("not an ONNX model"),
        "{err}"
    );
    let missing = dir.path().join("missing.onnx");
    let err = deploy::OrtModel::load(&missing, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.onnx"), "{err}");
}
