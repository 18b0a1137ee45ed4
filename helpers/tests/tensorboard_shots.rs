//! TensorBoard captures (`report::tensorboard_shots`) with the real TensorBoard and
//! headless Chromium: every view is written, shows TensorBoard's page, and the loss view
//! draws the run's curves, and an LR range test's events get a view of their own.
mod common;

use common::{serial, synth_dataset, tiny_config};
use helpers::report::tensorboard_shots::{capture, ShotOptions, LR_FIND_RUN};
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::{LrFinder, Silent};

/// Pixels of `png` that are clearly coloured (not grey), below TensorBoard's header.
fn coloured_pixels(png: &std::path::Path) -> (usize, bool) {
    let img = image::open(png).unwrap().to_rgb8();
    let header = img.get_pixel(5, 5);
    let orange_header = header[0] > 200 && header[2] < 80;
    let coloured = img
        .enumerate_pixels()
        .filter(|(_, y, _)| *y > 80)
        .filter(|(_, _, p)| {
            let (max, min) = (p.0.iter().max().unwrap(), p.0.iter().min().unwrap());
            max - min > 60
        })
        .count();
    (coloured, orange_header)
}

#[test]
fn captures_show_the_runs_curves_in_tensorboard() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    {
        let _lock = serial();
        let opts = FitOptions {
            root: root.clone(),
            existing: Existing::Force,
            stop_after_epochs: None,
        };
        fit_with(&tiny_config("shots"), &synth_dataset(), &opts, &mut Silent).unwrap();
    }
    // A range test's curve: flat, falling, then diverging, over 40 exponential steps.
    let lrs: Vec<f64> = (0..40).map(|i| 1e-5 * 10f64.powf(i as f64 / 8.0)).collect();
    let losses: Vec<f64> = (0..40)
        .map(|i| 2.3 - 1.5 / (1.0 + (-(i as f64 - 20.0) / 3.0).exp()) + 0.002 * (i * i) as f64)
        .collect();
    let finder = LrFinder {
        smoothed: losses.clone(),
        losses,
        lrs,
        steepest: 1e-3,
        valley: 1e-2,
    };
    finder
        .log_tensorboard(&root.join(LR_FIND_RUN).join("shots"))
        .unwrap();
    let out = dir.path().join("shots");
    let options = ShotOptions {
        run_filter: "shots".into(),
        metric: "accuracy".into(),
    };
    let pngs = capture(&root, &out, &options).unwrap();
    assert_eq!(pngs.len(), 6);
    for png in &pngs {
        let (_, header) = coloured_pixels(png);
        assert!(header, "{} shows TensorBoard's header", png.display());
    }
    for view in ["loss.png", "lr_find.png"] {
        let (curve, _) = coloured_pixels(&out.join(view));
        assert!(curve > 300, "{view} draws curves: {curve} coloured pixels");
    }
}
