//! Grad-CAM against an independent computation, on a trained model, and the error
//! analysis helpers.
mod common;

use common::{serial, synth_dataset, tiny_config};
use helpers::config::{Head, ModelConfig};
use helpers::data::{Dataset, ImageSet};
use helpers::explain::{calibration, cam, error_analysis, faithfulness::faithfulness, CamMethod};
use helpers::io::npy;
use helpers::rng::Rng;
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;
use helpers::{models, Result};
use tch::{Kind, Tensor};

#[test]
fn grad_cam_equals_the_analytic_map_of_a_flatten_head() -> Result<()> {
    let _guard = serial();
    let (data, mut cfg) = (synth_dataset(), tiny_config("g"));
    cfg.model.dropout = 0.0;
    tch::manual_seed(3);
    let model = models::build(&cfg.model, data.image_shape(), 4, tch::Device::Cpu)?;
    let images = Tensor::randn([3, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
    let targets = [0i64, 2, 3];
    let got = cam(&model, &images, Some(&targets), None, CamMethod::GradCam)?;
    // Independently: for logits = W · flatten(A) + b, d score_c / d A[k,i,j] = W[c, k·h·w + i·w + j].
    let feats = tch::no_grad(|| model.features_t(&images, false));
    let (k, h, w) = (feats.size()[1], feats.size()[2], feats.size()[3]);
    let fc = model.vs.variables()["fc.weight"].view([4, k, h, w]);
    for (n, &c) in targets.iter().enumerate() {
        let weights = fc.get(c).mean_dim([1i64, 2].as_slice(), true, Kind::Float); // [k, 1, 1]
        let expected = (feats.get(n as i64) * weights)
            .sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
            .relu();
        let diff = (&got.raw.get(n as i64) - expected)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "image {n}: max difference {diff}");
    }
    assert_eq!(got.maps.size(), vec![3, 8, 8]);
    assert!(
        got.maps.min().double_value(&[]) >= 0.0 && got.maps.max().double_value(&[]) <= 1.0 + 1e-6
    );
    let grads_defined = model
        .vs
        .trainable_variables()
        .iter()
        .any(|v| v.grad().defined() && v.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(
        !grads_defined,
        "parameters received no gradient: nothing leaks into the next call"
    );
    Ok(())
}

/// 16×16 noise images; class 0 holds a bright 4×4 square at a random place, class 1 none.
/// Returns the set and each image's square corner (for class 0).
fn square_set(n: usize, seed: u64) -> (ImageSet, Vec<(usize, usize)>) {
    let mut rng = Rng::new(seed, 5);
    let (mut pixels, mut labels, mut corners) =
        (vec![0u8; n * 256], vec![0i64; n], vec![(0, 0); n]);
    for i in 0..n {
        for p in &mut pixels[i * 256..(i + 1) * 256] {
            *p = rng.below(90) as u8;
        }
        labels[i] = (i % 2) as i64;
        if labels[i] == 0 {
            let (y0, x0) = (rng.below(13), rng.below(13));
            corners[i] = (y0, x0);
            for y in y0..y0 + 4 {
                for x in x0..x0 + 4 {
                    pixels[i * 256 + y * 16 + x] = 230;
                }
            }
        }
    }
    let set = ImageSet {
        images: Tensor::from_slice(&pixels).view([n as i64, 1, 16, 16]),
        labels: Tensor::from_slice(&labels),
    };
    (set, corners)
}

#[test]
fn on_a_trained_model_the_map_lights_the_object() -> Result<()> {
    let _guard = serial();
    let (train, _) = square_set(600, 1);
    let (test, corners) = square_set(80, 2);
    let data = Dataset {
        name: "squares".into(),
        classes: vec!["square".into(), "none".into()],
        train,
        test,
        files: vec![],
    };
    let mut cfg = tiny_config("sq");
    cfg.model = ModelConfig {
        widths: vec![8, 16],
        depths: vec![1, 1],
        head: Head::Gap,
        batch_norm: true,
        dropout: 0.0,
        ..ModelConfig::default()
    };
    cfg.data.augment.crop_padding = 0;
    cfg.train.epochs = 6;
    let dir = tempfile::tempdir().unwrap();
    let run = fit_with(
        &cfg,
        &data,
        &FitOptions {
            root: dir.path().into(),
            existing: Existing::Refuse,
            stop_after_epochs: None,
        },
        &mut Silent,
    )?;
    assert!(
        run.test.accuracy > 0.9,
        "the detector works: {}",
        run.test.accuracy
    );
    let idx: Vec<usize> = (0..80).step_by(2).collect(); // class-0 images
    let images = run.loaders.test.normalized(&idx);
    for method in [CamMethod::GradCam, CamMethod::GradCamPlusPlus] {
        let maps = cam(&run.model, &images, Some(&vec![0; idx.len()]), None, method)?;
        let mut hits = 0;
        for (n, &i) in idx.iter().enumerate() {
            let (y0, x0) = corners[i];
            let m = maps.maps.get(n as i64);
            let inside = m
                .narrow(0, y0 as i64, 4)
                .narrow(1, x0 as i64, 4)
                .mean(Kind::Float)
                .double_value(&[]);
            hits += usize::from(inside > 2.0 * m.mean(Kind::Float).double_value(&[]));
        }
        assert!(
            hits * 10 >= idx.len() * 8,
            "{method:?}: the square is the bright part of {hits}/{} maps",
            idx.len()
        );
    }
    let maps = cam(&run.model, &images, None, None, CamMethod::GradCam)?;
    let f = faithfulness(&run.model, &images, &maps, 0.2, 1)?;
    assert!(
        f.win_rate() >= 0.75,
        "CAM regions keep more confidence than random ones: {f:?}"
    );
    Ok(())
}

#[test]
fn bad_target_layers_are_named() -> Result<()> {
    let (data, cfg) = (synth_dataset(), tiny_config("l"));
    let model = models::build(&cfg.model, data.image_shape(), 4, tch::Device::Cpu)?;
    let x = Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
    let e = cam(&model, &x, None, Some("stages.9.conv"), CamMethod::GradCam)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stages.9.conv") && e.contains("stages.0.0.conv"),
        "{e}"
    );
    let ok = cam(
        &model,
        &x,
        None,
        Some("stages.0.0.relu"),
        CamMethod::GradCam,
    )?;
    assert_eq!(
        (ok.layer.as_str(), ok.raw.size()),
        ("stages.0.0.relu", vec![1, 8, 8])
    );
    Ok(())
}

#[test]
fn top_losses_and_calibration_and_npy() -> Result<()> {
    let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8, 0.6, 0.4]).view([3, 2]);
    let preds = helpers::evaluate::Predictions {
        labels: vec![0, 0, 1],
        preds: vec![0, 1, 0],
        probs,
        losses: vec![0.1, 1.6, 0.9],
    };
    assert_eq!(error_analysis::top_loss_indices(&preds, 2), vec![1, 2]);
    assert_eq!(error_analysis::misclassified_indices(&preds, 5), vec![1, 2]);
    let r = calibration::reliability(&preds, 10)?;
    assert!(r.ece > 0.0 && r.ece <= 1.0);
    let dir = tempfile::tempdir().unwrap();
    npy::write_f32(&dir.path().join("m.npy"), &[2, 2], &[0.0, 0.5, 1.0, 0.25])?;
    assert_eq!(
        std::fs::read(dir.path().join("m.npy")).unwrap().len(),
        128 + 16
    );
    Ok(())
}

#[test]
fn a_model_without_convolutions_has_no_automatic_target() -> Result<()> {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let fc = tch::nn::linear(vs.root() / "fc", 64, 4, Default::default());
    let layers = vec![
        ("flatten".to_string(), models::Layer::Flatten),
        ("fc".to_string(), models::Layer::Linear(fc)),
    ];
    let model = models::Model {
        vs,
        layers,
        features_end: 0,
        input_shape: [1, 8, 8],
        num_classes: 4,
        channels_last: false,
        trainable_from: 0,
        precision: helpers::backend::Precision::Fp32,
    };
    let x = Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
    let e = cam(&model, &x, None, None, CamMethod::GradCam)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no convolutional layer"), "{e}");
    Ok(())
}
