//! TensorBoard captures (`report::tensorboard_shots`) with the real TensorBoard and
//! headless Chromium: every view is written, shows TensorBoard's page, and the loss view
//! draws the run's curves.
mod common;

use common::{serial, synth_dataset, tiny_config};
use helpers::report::tensorboard_shots::{capture, ShotOptions};
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;

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
    let out = dir.path().join("shots");
    let options = ShotOptions {
        run_filter: "shots".into(),
        metric: "accuracy".into(),
    };
    let pngs = capture(&root, &out, &options).unwrap();
    assert_eq!(pngs.len(), 5);
    for png in &pngs {
        let (_, header) = coloured_pixels(png);
        assert!(header, "{} shows TensorBoard's header", png.display());
    }
    let (curve, _) = coloured_pixels(&out.join("loss.png"));
    assert!(
        curve > 300,
        "the loss view draws curves: {curve} coloured pixels"
    );
}
