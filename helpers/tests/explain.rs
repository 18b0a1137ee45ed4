//! Grad-CAM against an independent computation, on a trained model, and the error
//! analysis helpers.
mod common;

use common::{serial, synth_dataset, tiny_config};
use helpers::explain::{calibration, cam, errors, faithfulness::faithfulness, npy, CamMethod};
use helpers::train::{fit_with, Existing, FitOptions, Silent};
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
        let expected = (feats.get(n as i64) * weights).sum_dim_intlist([0i64].as_slice(), false, Kind::Float).relu();
        let diff = (&got.raw.get(n as i64) - expected).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "image {n}: max difference {diff}");
    }
    assert_eq!(got.maps.size(), vec![3, 8, 8]);
    assert!(got.maps.min().double_value(&[]) >= 0.0 && got.maps.max().double_value(&[]) <= 1.0 + 1e-6);
    let grads_defined = model.vs.trainable_variables().iter().any(|v| v.grad().defined() && v.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(!grads_defined, "parameters received no gradient: nothing leaks into the next call");
    Ok(())
}

#[test]
fn on_a_trained_model_the_map_lights_the_quadrant_of_the_class() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let mut cfg = tiny_config("q");
    cfg.train.epochs = 4;
    let run = fit_with(&cfg, &data, &FitOptions { root: dir.path().into(), existing: Existing::Refuse, stop_after_epochs: None }, &mut Silent)?;
    let idx: Vec<usize> = (0..8).collect();
    let images = errors::normalized(&run.loaders.test, &idx);
    let labels: Vec<i64> = idx.iter().map(|&i| run.loaders.test.labels()[i]).collect();
    for method in [CamMethod::GradCam, CamMethod::GradCamPlusPlus] {
        let maps = cam(&run.model, &images, Some(&labels), None, method)?;
        let mut hits = 0;
        for (n, &class) in labels.iter().enumerate() {
            let m = maps.maps.get(n as i64);
            let (qy, qx) = (class / 2 * 4, class % 2 * 4);
            let inside = m.narrow(0, qy, 4).narrow(1, qx, 4).mean(Kind::Float).double_value(&[]);
            hits += usize::from(inside > m.mean(Kind::Float).double_value(&[]));
        }
        assert!(hits >= 7, "{method:?}: the class quadrant is brighter than average in {hits}/8 maps");
    }
    let maps = cam(&run.model, &images, None, None, CamMethod::GradCam)?;
    let f = faithfulness(&run.model, &images, &maps, 0.25, 1)?;
    assert!(f.win_rate() >= 0.75, "CAM regions keep more confidence than random ones: {f:?}");
    Ok(())
}

#[test]
fn bad_target_layers_are_named() -> Result<()> {
    let (data, cfg) = (synth_dataset(), tiny_config("l"));
    let model = models::build(&cfg.model, data.image_shape(), 4, tch::Device::Cpu)?;
    let x = Tensor::zeros([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
    let e = cam(&model, &x, None, Some("stages.9.conv"), CamMethod::GradCam).unwrap_err().to_string();
    assert!(e.contains("stages.9.conv") && e.contains("stages.0.0.conv"), "{e}");
    let ok = cam(&model, &x, None, Some("stages.0.0.relu"), CamMethod::GradCam)?;
    assert_eq!((ok.layer.as_str(), ok.raw.size()), ("stages.0.0.relu", vec![1, 8, 8]));
    Ok(())
}

#[test]
fn top_losses_and_calibration_and_npy() -> Result<()> {
    let probs = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.8, 0.6, 0.4]).view([3, 2]);
    let preds = helpers::evaluate::Predictions { labels: vec![0, 0, 1], preds: vec![0, 1, 0], probs, losses: vec![0.1, 1.6, 0.9] };
    assert_eq!(errors::top_loss_indices(&preds, 2), vec![1, 2]);
    assert_eq!(errors::misclassified_indices(&preds, 5), vec![1, 2]);
    let r = calibration::reliability(&preds, 10)?;
    assert!(r.ece > 0.0 && r.ece <= 1.0);
    let dir = tempfile::tempdir().unwrap();
    npy::write_f32(&dir.path().join("m.npy"), &[2, 2], &[0.0, 0.5, 1.0, 0.25])?;
    assert_eq!(std::fs::read(dir.path().join("m.npy")).unwrap().len(), 128 + 16);
    Ok(())
}
