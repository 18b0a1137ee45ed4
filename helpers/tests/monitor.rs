//! Monitoring on small synthetic data: simulated shifts, the drift detector (no drift on
//! clean windows, drift on a strong shift, false-alarm rate near α), the JSONL prediction
//! log (with a torn last line), alerts, and the retraining gate's two outcomes.
mod common;

use common::{faint_dataset, faint_run, faint_set, serial, synth_set, tiny_config, CLASSES};
use helpers::data::ImageSet;
use helpers::io::tensors as checkpoint;
use helpers::monitor::drift::{
    self, detection_experiment, model_outputs, DriftDetector, DriftOptions, ExperimentOptions,
    Method,
};
use helpers::monitor::prediction_log::{
    append_jsonl, check_alerts, dashboard, iso_utc, read_jsonl, read_log, AlertRules, LogSummary,
    PredictionRecord, Predictor,
};
use helpers::monitor::retrain::{self, retrain, RetrainOptions};
use helpers::monitor::shifts::{self, Shift};
use helpers::tasks::image::TrainedRun;
use helpers::{models, Error, Result};
use std::io::Write;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn pixels(set: &ImageSet) -> Vec<u8> {
    Vec::<u8>::try_from(set.images.contiguous().view([-1])).unwrap()
}

/// One image `[1, 1, h, w]` from row-major values.
fn image(values: &[u8], h: i64, w: i64) -> ImageSet {
    ImageSet {
        images: Tensor::from_slice(values).view([1, 1, h, w]),
        labels: Tensor::from_slice(&[3i64]),
    }
}

// ─────────────────────────────── shifts ───────────────────────────────

#[test]
fn pixel_shifts_follow_their_documented_formulas_and_keep_labels() -> Result<()> {
    // Brightness adds c·255 (c = 0.05 … 0.30), then rounds and clips.
    let grey = image(&[100; 16], 4, 4);
    for (severity, c) in [(1, 0.05), (3, 0.15), (5, 0.30)] {
        let out = shifts::apply(&grey, &Shift::Brightness, severity, 0)?;
        let want = (100.0 + c * 255.0_f64).round() as u8;
        assert!(
            pixels(&out).iter().all(|&p| p == want),
            "severity {severity}"
        );
    }
    assert_eq!(
        pixels(&shifts::apply(
            &image(&[250; 4], 2, 2),
            &Shift::Brightness,
            5,
            0
        )?),
        [255; 4]
    );
    // Contrast pulls pixels towards the image mean: (x − m)·c + m with c = 0.15 at severity 5.
    let two = image(&[0, 0, 200, 200], 2, 2);
    let out = pixels(&shifts::apply(&two, &Shift::Contrast, 5, 0)?);
    assert_eq!(out, [85, 85, 115, 115]); // m = 100: 100 ∓ 15
                                         // Noise: seeded, zero-mean away from the clip, standard deviation c·255.
    let mid = ImageSet {
        images: Tensor::full([20, 1, 8, 8], 128, (Kind::Uint8, Device::Cpu)),
        labels: Tensor::arange(20, (Kind::Int64, Device::Cpu)),
    };
    let a = pixels(&shifts::apply(&mid, &Shift::GaussianNoise, 5, 7)?);
    assert_eq!(
        a,
        pixels(&shifts::apply(&mid, &Shift::GaussianNoise, 5, 7)?),
        "same seed"
    );
    assert_ne!(
        a,
        pixels(&shifts::apply(&mid, &Shift::GaussianNoise, 5, 8)?),
        "other seed"
    );
    let diffs: Vec<f64> = a.iter().map(|&p| p as f64 - 128.0).collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diffs.len() as f64).sqrt();
    assert!(
        mean.abs() < 1.5 && (sd - 25.5).abs() < 1.5,
        "mean {mean}, sd {sd}"
    );
    // Blur keeps a flat image, spreads a point more at higher severity, keeps its mass.
    assert_eq!(
        pixels(&shifts::apply(&grey, &Shift::GaussianBlur, 5, 0)?),
        [100; 16]
    );
    let mut dot = vec![0u8; 81];
    dot[40] = 255;
    let spread = |severity| -> Result<(u8, u32)> {
        let out = pixels(&shifts::apply(
            &image(&dot, 9, 9),
            &Shift::GaussianBlur,
            severity,
            0,
        )?);
        Ok((out[40], out.iter().map(|&p| p as u32).sum()))
    };
    let ((peak1, mass1), (peak5, mass5)) = (spread(1)?, spread(5)?);
    assert!(peak5 < peak1 && peak1 < 255, "peaks {peak1}, {peak5}");
    assert!(
        mass1.abs_diff(255) <= 12 && mass5.abs_diff(255) <= 12,
        "mass {mass1}, {mass5}"
    );
    // Rotation turns about the centre: the centre stays, corners fall outside and read 0.
    let rotated = pixels(&shifts::apply(
        &image(&[90; 49], 7, 7),
        &Shift::Rotation,
        5,
        0,
    )?);
    assert_eq!(rotated[24], 90);
    assert_eq!([rotated[0], rotated[6], rotated[42], rotated[48]], [0; 4]);
    // Every pixel shift keeps shape, order and labels.
    let set = synth_set(40, 3);
    for shift in Shift::all().into_iter().filter(Shift::is_pixel_shift) {
        let out = shifts::apply(&set, &shift, 3, 1)?;
        assert_eq!(out.images.size(), set.images.size(), "{}", shift.name());
        assert_eq!(out.images.kind(), Kind::Uint8);
        assert_eq!(out.label_vec(), set.label_vec(), "{}", shift.name());
        assert_ne!(
            pixels(&out),
            pixels(&set),
            "{} changes pixels",
            shift.name()
        );
    }
    Ok(())
}

#[test]
fn prior_shift_resamples_towards_the_dominant_classes_deterministically() -> Result<()> {
    let set = synth_set(400, 4); // 100 per class
    let mut shares = Vec::new();
    for severity in 1..=5 {
        let out = shifts::prior_shift(&set, &[2], severity, 200, 9)?;
        assert_eq!(out.len(), 200);
        // π' = (1 − λ)·0.25 + λ for class 2, (1 − λ)·0.25 for the others, times 200.
        // Largest-remainder rounding: within one of the exact share.
        let lambda = Shift::ClassPrior { dominant: vec![2] }.parameter(severity)?;
        let counts = out.class_counts(CLASSES);
        let exact = 200.0 * ((1.0 - lambda) * 0.25 + lambda);
        assert!(
            (counts[2] as f64 - exact).abs() < 1.0,
            "{counts:?} vs {exact}"
        );
        assert_eq!(counts.iter().sum::<usize>(), 200);
        shares.push(counts[2]);
        let again = shifts::prior_shift(&set, &[2], severity, 200, 9)?;
        assert_eq!(again.label_vec(), out.label_vec(), "seeded");
        assert_eq!(pixels(&again), pixels(&out));
    }
    assert!(shares.windows(2).all(|w| w[0] < w[1]), "{shares:?}");
    // Images are examples of the set with their own labels: class 2 lights quadrant 2.
    let out = shifts::prior_shift(&set, &[2], 5, 50, 1)?;
    let lit = out
        .images
        .to_kind(Kind::Float)
        .narrow(2, 4, 4)
        .narrow(3, 0, 4)
        .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float);
    for (i, label) in out.label_vec().iter().enumerate() {
        assert_eq!(*label == 2, lit.double_value(&[i as i64]) == 200.0);
    }
    let parsed = Shift::parse("prior:1,3")?;
    assert_eq!(
        parsed,
        Shift::ClassPrior {
            dominant: vec![1, 3]
        }
    );
    assert_eq!(Shift::parse(&parsed.name())?, parsed);
    for shift in Shift::all() {
        assert_eq!(Shift::parse(&shift.name())?, shift);
    }
    assert!(matches!(Shift::parse("fog"), Err(Error::Config { .. })));
    assert!(matches!(
        shifts::apply(&set, &Shift::Brightness, 0, 0),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        shifts::apply(&set, &Shift::Brightness, 6, 0),
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        shifts::prior_shift(&set, &[7], 1, 10, 0),
        Err(Error::Config { .. })
    ));
    Ok(())
}

// ─────────────────────────────── drift detection ───────────────────────────────

#[test]
fn detector_sees_no_drift_on_clean_windows_and_drift_on_strong_noise_by_every_method() -> Result<()>
{
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let (model, norm) = (&run.model, &run.loaders.norm);
    let (reference, pool) = drift::split_reference(&faint_set(1400, 11), 1000, 0)?;
    let detector =
        DriftDetector::fit_images(model, norm, &reference.images, DriftOptions::default())?;
    assert_eq!(detector.reference_len(), 1000);
    let clean = drift::draw_window(&pool, 200, 0, 0)?;
    let report = detector.test_images(model, norm, &clean.images, 0)?;
    for v in report.verdicts() {
        assert!(!v.drift && v.p_value > 0.05, "clean window: {v:?}");
    }
    let noisy = shifts::apply(&clean, &Shift::GaussianNoise, 5, 0)?;
    let report = detector.test_images(model, norm, &noisy.images, 0)?;
    for v in report.verdicts() {
        assert!(v.drift && v.p_value <= 0.05, "noise severity 5: {v:?}");
    }
    assert!(report.any_drift());
    assert_eq!(report.table()?.height(), 3);
    // Same seed, same report.
    assert_eq!(report, detector.test_images(model, norm, &noisy.images, 0)?);
    Ok(())
}

#[test]
fn false_alarm_rate_on_clean_windows_stays_near_alpha_and_the_experiment_reports_it() -> Result<()>
{
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let options = ExperimentOptions {
        window: 50,
        repeats: 3,
        clean_windows: 200,
        reference_size: 1000,
        shifts: vec![
            Shift::GaussianNoise,
            Shift::ClassPrior { dominant: vec![0] },
        ],
        severities: vec![5],
        seed: 3,
        detector: DriftOptions::default(),
    };
    let results = detection_experiment(
        &run.model,
        &run.loaders.norm,
        &faint_set(3000, 12),
        &options,
    )?;
    // Each test has level 0.05; over 200 windows a rate above 0.12 would be a 4.5-sigma
    // event for a calibrated test, so this bound does not flake yet catches a broken one.
    for method in Method::ALL {
        let rate = results.false_alarm_rate(method).unwrap();
        assert!(rate <= 0.12, "{}: false-alarm rate {rate}", method.name());
    }
    let clean = results.clean().unwrap();
    assert_eq!(clean.windows, 200);
    assert_eq!(results.rows.len(), 3);
    let noise = &results.rows[1];
    assert_eq!(
        (noise.shift.as_str(), noise.severity, noise.windows),
        ("noise", 5, 3)
    );
    assert!(noise.rates.iter().all(|&r| r == 1.0), "{noise:?}");
    assert!(noise.accuracy < clean.accuracy, "noise hurts: {noise:?}");
    let prior = &results.rows[2];
    assert_eq!(
        prior.rates[2], 1.0,
        "χ² sees the class-prior shift: {prior:?}"
    );
    let table = results.table()?;
    assert_eq!(table.height(), 3);
    assert_eq!(table.cell(1, "shift")?, "noise");
    assert!(results.figure()?.svg.contains("<svg"));
    Ok(())
}

#[test]
fn windows_below_the_minimum_are_refused_with_too_few_samples() -> Result<()> {
    let _guard = serial();
    tch::manual_seed(0);
    let model = models::build(
        &tiny_config("x").model,
        [1, 8, 8],
        CLASSES as i64,
        Device::Cpu,
    )?;
    let set = faint_set(200, 1);
    let norm = helpers::data::Normalization::of(&set.images);
    let options = DriftOptions::default();
    let small = set.head(options.min_window - 1);
    match DriftDetector::fit_images(&model, &norm, &small.images, options.clone()) {
        Err(Error::TooFewSamples { needed, got, .. }) => {
            assert_eq!((needed, got), (options.min_window, options.min_window - 1))
        }
        other => panic!("expected TooFewSamples, got {other:?}"),
    }
    let detector = DriftDetector::fit_images(&model, &norm, &set.images, options.clone())?;
    let err = detector
        .test_images(&model, &norm, &small.images, 0)
        .unwrap_err();
    assert!(matches!(err, Error::TooFewSamples { .. }), "{err}");
    assert!(err.to_string().contains("wait for more data"), "{err}");
    let bad = DriftOptions {
        alpha: 1.5,
        ..options
    };
    assert!(matches!(
        DriftDetector::fit_images(&model, &norm, &set.images, bad),
        Err(Error::Config { .. })
    ));
    let wrong_shape = Tensor::zeros([40, 1, 9, 9], (Kind::Uint8, Device::Cpu));
    assert!(matches!(
        model_outputs(&model, &norm, &wrong_shape),
        Err(Error::Shape { .. })
    ));
    Ok(())
}

// ─────────────────────────────── prediction log and alerts ───────────────────────────────

#[test]
fn prediction_log_round_trips_and_skips_a_torn_last_line() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let version = retrain::model_version(&run.run.path)?;
    assert!(
        version.starts_with("faint@") && version.len() == "faint@".len() + 12,
        "{version}"
    );
    let log = dir.path().join("logs/predictions.jsonl");
    let predictor = Predictor::from_run(run)?.with_log(&log);
    assert_eq!(predictor.version(), version);
    let batch = faint_set(30, 5);
    let first = predictor.predict(&batch.images)?;
    predictor.predict(&batch.images.narrow(0, 0, 10))?;
    let read = read_log(&log)?;
    assert_eq!((read.records.len(), read.skipped), (40, 0));
    let expected_mean = batch
        .images
        .to_kind(Kind::Double)
        .get(0)
        .mean(Kind::Double)
        .double_value(&[])
        / 255.0;
    let r0 = &read.records[0];
    assert_eq!(
        (r0.class, r0.confidence),
        (first[0].class, first[0].confidence)
    );
    assert_eq!(
        (r0.model_version.as_str(), r0.batch),
        (version.as_str(), 30)
    );
    assert!((r0.input_mean - expected_mean).abs() < 1e-9);
    assert!(r0.input_std > 0.0 && r0.latency_ms >= 0.0);
    assert!(r0.time.ends_with('Z') && r0.time.len() == 24, "{}", r0.time);
    for r in &read.records {
        assert!(
            (0..CLASSES as i64).contains(&r.class) && r.confidence > 0.0 && r.confidence <= 1.0
        );
    }
    // A crash mid-write leaves half a line: skipped and counted, and the next append
    // starts on a fresh line so no record is lost to it.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"{\"ts\": 17000000, \"time\": \"2026-")
        .unwrap();
    drop(file);
    let torn = read_log(&log)?;
    assert_eq!((torn.records.len(), torn.skipped), (40, 1));
    predictor.predict(&batch.images.narrow(0, 0, 5))?;
    let after = read_log(&log)?;
    assert_eq!((after.records.len(), after.skipped), (45, 1));
    let summary = LogSummary::of(&after, CLASSES);
    assert_eq!(summary.predictions, 45);
    assert_eq!(summary.class_counts.iter().sum::<u64>(), 45);
    assert_eq!(summary.versions, vec![(version.clone(), 45)]);
    assert_eq!(summary.skipped, 1);
    assert!(summary.latency_p50_ms <= summary.latency_p95_ms);
    assert!(summary.mean_confidence > 0.25);
    assert_eq!(summary.table()?.height(), 10);
    let figures = dashboard(&after.records, &data.classes, 10)?;
    assert_eq!(figures.len(), 2);
    assert!(figures.iter().all(|f| f.svg.contains("<svg")));
    // Generic JSONL helpers: a missing file reads as empty.
    let none = read_jsonl::<PredictionRecord>(&dir.path().join("missing.jsonl"))?;
    assert_eq!((none.records.len(), none.skipped), (0, 0));
    assert_eq!(iso_utc(0.0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_utc(1_709_210_096.5), "2024-02-29T12:34:56.500Z");
    Ok(())
}

#[test]
fn alerts_fire_on_low_confidence_and_on_drift_and_are_appended() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let (model, norm) = (&run.model, &run.loaders.norm);
    let record = |confidence| PredictionRecord {
        ts: 1.0,
        time: iso_utc(1.0),
        model_version: "v".into(),
        class: 0,
        confidence,
        latency_ms: 1.0,
        batch: 1,
        input_mean: 0.1,
        input_std: 0.1,
    };
    let records: Vec<PredictionRecord> = (0..60)
        .map(|i| record(if i < 20 { 0.99 } else { 0.6 }))
        .collect();
    let alerts_file = dir.path().join("alerts.jsonl");
    let rules = AlertRules {
        min_mean_confidence: 0.7,
        confidence_window: 40,
        drift_alpha: 0.05,
    };
    let fired = check_alerts(&rules, &records, None, Some(&alerts_file))?;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].rule, "low_confidence");
    assert!((fired[0].value - 0.6).abs() < 1e-12);
    // Below the threshold nothing fires; too few predictions never fire.
    let relaxed = AlertRules {
        min_mean_confidence: 0.5,
        ..rules.clone()
    };
    assert!(check_alerts(&relaxed, &records, None, Some(&alerts_file))?.is_empty());
    assert!(check_alerts(&rules, &records[..39], None, None)?.is_empty());
    // A drift report with small p-values fires one alert per method.
    let (reference, pool) = drift::split_reference(&faint_set(1400, 11), 1000, 0)?;
    let detector =
        DriftDetector::fit_images(model, norm, &reference.images, DriftOptions::default())?;
    let noisy = shifts::apply(
        &drift::draw_window(&pool, 200, 0, 0)?,
        &Shift::GaussianNoise,
        5,
        0,
    )?;
    let report = detector.test_images(model, norm, &noisy.images, 0)?;
    let fired = check_alerts(&relaxed, &records, Some(&report), Some(&alerts_file))?;
    let rules_fired: Vec<&str> = fired.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules_fired, ["drift_ks", "drift_mmd", "drift_chi_square"]);
    let logged = read_jsonl::<helpers::monitor::prediction_log::Alert>(&alerts_file)?;
    assert_eq!(logged.records.len(), 4);
    let first = &logged.records[0];
    assert_eq!(
        (first.rule.as_str(), first.threshold),
        ("low_confidence", 0.7)
    );
    assert_eq!(first.model_version.as_deref(), Some("v"));
    assert_eq!(logged.records[1..], fired[..]);
    Ok(())
}

// ─────────────────────────────── retraining gate ───────────────────────────────

#[test]
fn retraining_on_a_harmful_shift_is_promoted_and_moves_the_pointer() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let deployed = run.run.path.clone();
    let original = retrain::set_deployed(dir.path(), &deployed)?;
    assert_eq!(original.version, retrain::model_version(&deployed)?);
    let mut options = RetrainOptions::new(Shift::Brightness, 5);
    options.epochs = 5;
    let decision = retrain(&deployed, &data, &options)?;
    assert!(decision.promoted, "{}", decision.reason);
    assert!(decision.candidate.shifted_accuracy > decision.deployed.shifted_accuracy);
    assert_eq!(decision.deployed.version, original.version);
    assert_ne!(decision.candidate.version, decision.deployed.version);
    let pointer = retrain::deployed_pointer(dir.path())?.unwrap();
    assert_eq!(pointer.run, decision.candidate.run);
    assert_eq!(pointer.version, decision.candidate.version);
    let log = retrain::deployments(dir.path())?;
    assert_eq!((log.records.len(), log.skipped), (1, 0));
    assert_eq!(log.records[0], decision);
    // The candidate is an ordinary run: it reloads with the original dataset, and its
    // test accuracy is the one the gate saw.
    let candidate = TrainedRun::load(&decision.candidate.run, &data)?;
    assert_eq!(
        candidate.test_predictions().accuracy(),
        decision.candidate.original_accuracy
    );
    assert_eq!(candidate.history.epochs.len(), 5);
    // Rebuilding the deployed candidate is refused rather than overwriting it.
    let again = retrain(&deployed, &data, &options).unwrap_err();
    assert!(matches!(again, Error::Run { .. }), "{again}");
    Ok(())
}

#[test]
fn a_rejected_candidate_leaves_the_pointer_untouched_and_is_logged() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), faint_dataset());
    let run = faint_run(dir.path(), &data);
    let deployed = run.run.path.clone();
    retrain::set_deployed(dir.path(), &deployed)?;
    let pointer_file = dir.path().join(retrain::POINTER_FILE);
    let before = std::fs::read(&pointer_file).unwrap();
    let weights_before = std::fs::read(checkpoint_path(&deployed)).unwrap();
    // An impossible margin: the candidate would have to gain 100 points on the test set.
    let mut options = RetrainOptions::new(Shift::Brightness, 5);
    options.margin_points = -100.0;
    let decision = retrain(&deployed, &data, &options)?;
    assert!(!decision.promoted);
    assert!(
        decision.reason.starts_with("rejected"),
        "{}",
        decision.reason
    );
    assert_eq!(decision.deployed_after, deployed);
    assert_eq!(
        std::fs::read(&pointer_file).unwrap(),
        before,
        "pointer untouched"
    );
    assert_eq!(
        std::fs::read(checkpoint_path(&deployed)).unwrap(),
        weights_before
    );
    assert!(
        decision
            .candidate
            .run
            .join("model_checkpoint.safetensors")
            .is_file(),
        "kept for inspection"
    );
    let log = retrain::deployments(dir.path())?;
    assert_eq!(log.records.len(), 1);
    assert!(!log.records[0].promoted);
    // Same seed, same candidate: fine-tuning is deterministic.
    let repeat = retrain(&deployed, &data, &options)?;
    assert_eq!(repeat.candidate.version, decision.candidate.version);
    assert_eq!(retrain::deployments(dir.path())?.records.len(), 2);
    let _ = checkpoint::read_tensors(&checkpoint_path(&decision.candidate.run))?;
    Ok(())
}

fn checkpoint_path(run: &Path) -> std::path::PathBuf {
    run.join("model_checkpoint.safetensors")
}

#[test]
fn jsonl_appends_start_on_a_fresh_line_after_a_torn_one() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    append_jsonl(&path, &[1, 2])?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"[3,")
        .unwrap();
    append_jsonl(&path, &[4])?;
    let read = read_jsonl::<i64>(&path)?;
    assert_eq!((read.records, read.skipped), (vec![1, 2, 4], 1));
    Ok(())
}
