//! `lab drift` and `lab retrain`: the monitoring chapter from the command line — test a
//! simulated shift with the three drift detectors, and retrain behind a validation gate.
use crate::load_data;
use anyhow::{Context, Result};
use clap::Args;
use helpers::data::{Dataset, ImageSet};
use helpers::monitor::drift::{
    self, detection_experiment, DriftDetector, DriftOptions, ExperimentOptions, Window,
};
use helpers::monitor::retrain::{self, RetrainOptions};
use helpers::monitor::shifts::{self, Shift};
use helpers::monitor::stats::Correction;
use helpers::run::RunDir;
use helpers::tasks::image::TrainedRun;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DriftArgs {
    /// Run directory of the deployed model, e.g. saved_models/fashion_cnn.
    #[arg(long)]
    run: PathBuf,
    /// Shift: brightness, contrast, noise, blur, rotation, prior, prior:<c1,c2,…>.
    #[arg(long, default_value = "noise")]
    shift: String,
    /// Severity 1 (mild) to 5.
    #[arg(long, default_value_t = 3)]
    severity: u8,
    /// Images in the production window.
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// Reference images (set aside from the test set; windows come from the rest).
    #[arg(long, default_value_t = ExperimentOptions::default().reference_size)]
    reference: usize,
    /// Seed of the reference split, the window, the shift and the tests.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Significance level of each test.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Bonferroni instead of Benjamini–Hochberg for the per-feature KS tests.
    #[arg(long)]
    bonferroni: bool,
    /// Run the whole detection experiment (every shift × severity) instead of one window.
    #[arg(long)]
    experiment: bool,
    /// Experiment: windows per shift and severity.
    #[arg(long, default_value_t = ExperimentOptions::default().repeats)]
    repeats: usize,
    /// Experiment: clean windows for the false-alarm rate.
    #[arg(long, default_value_t = ExperimentOptions::default().clean_windows)]
    clean_windows: usize,
    /// Experiment: folder for drift_detection.csv and .svg (default: <run>/drift).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The deployed run and the evaluation images production windows are drawn from.
fn load_run(run: &Path) -> Result<(TrainedRun, Dataset, ImageSet)> {
    let (data, trained) = crate::open_run(run)?;
    let cfg = &trained.config;
    let eval = match cfg.data.test_limit {
        0 => data.test.head(data.test.len()),
        n => data.test.head(n),
    };
    Ok((trained, data, eval))
}

fn detector_options(args: &DriftArgs) -> DriftOptions {
    DriftOptions {
        alpha: args.alpha,
        correction: if args.bonferroni {
            Correction::Bonferroni
        } else {
            Correction::BenjaminiHochberg
        },
        ..DriftOptions::default()
    }
}

pub fn drift_cmd(args: DriftArgs) -> Result<()> {
    let (trained, _, eval) = load_run(&args.run)?;
    if args.experiment {
        return experiment(&args, &trained, &eval);
    }
    let shift = Shift::parse(&args.shift)?;
    let (model, norm) = (&trained.model, &trained.loaders.norm);
    let (reference, pool) = drift::split_reference(&eval, args.reference, args.seed)?;
    let detector =
        DriftDetector::fit_images(model, norm, &reference.images, detector_options(&args))?;
    let clean = drift::draw_window(&pool, args.window, args.seed, 0)?;
    let shifted = match &shift {
        Shift::ClassPrior { dominant } => {
            shifts::prior_shift(&pool, dominant, args.severity, args.window, args.seed)?
        }
        _ => shifts::apply(&clean, &shift, args.severity, args.seed)?,
    };
    let outputs = drift::model_outputs(model, norm, &shifted.images)?;
    let window = Window::from_outputs(&outputs, model.num_classes as usize)?;
    let report = detector.test(&window, args.seed)?;
    println!(
        "{}: reference {} test images, window {} images, shift {} severity {} (parameter {})",
        args.run.display(),
        detector.reference_len(),
        report.window,
        shift.name(),
        args.severity,
        shift.parameter(args.severity)?
    );
    let clean_label = if shift.is_pixel_shift() {
        "same images unshifted"
    } else {
        "a clean window"
    };
    println!(
        "model accuracy on the window: {:.4} ({clean_label}: {:.4})",
        accuracy(&outputs.predictions, &shifted.label_vec()),
        accuracy(
            &drift::model_outputs(model, norm, &clean.images)?.predictions,
            &clean.label_vec()
        )
    );
    for v in report.verdicts() {
        println!(
            "{:>10}: {:<9} statistic {:<10.4} p-value {:<9} ({})",
            v.method.name(),
            if v.drift { "DRIFT" } else { "no drift" },
            v.statistic,
            p_text(v.p_value),
            v.detail
        );
    }
    Ok(())
}

/// A p-value readable at any size: scientific below 10⁻³.
fn p_text(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

fn accuracy(preds: &[i64], labels: &[i64]) -> f64 {
    let correct = preds.iter().zip(labels).filter(|(a, b)| a == b).count();
    correct as f64 / labels.len().max(1) as f64
}

fn experiment(args: &DriftArgs, trained: &TrainedRun, eval: &ImageSet) -> Result<()> {
    let options = ExperimentOptions {
        window: args.window,
        repeats: args.repeats,
        clean_windows: args.clean_windows,
        reference_size: args.reference,
        seed: args.seed,
        detector: detector_options(args),
        ..ExperimentOptions::default()
    };
    let results = detection_experiment(&trained.model, &trained.loaders.norm, eval, &options)?;
    let table = results.table()?;
    println!("{table}");
    let out = args.out.clone().unwrap_or_else(|| args.run.join("drift"));
    table.save(out.join("drift_detection.csv"))?;
    let svg = results.figure()?.save_in(&out)?;
    println!(
        "{:.1} s; wrote {} and {}",
        results.seconds,
        out.join("drift_detection.csv").display(),
        svg.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct RetrainArgs {
    /// Run directory of the deployed model, e.g. saved_models/fashion_cnn.
    #[arg(long)]
    run: PathBuf,
    /// Shift of the new data: brightness, contrast, noise, blur, rotation, prior, prior:<c1,c2,…>.
    #[arg(long)]
    shift: String,
    /// Severity 1 (mild) to 5.
    #[arg(long)]
    severity: u8,
    /// Fine-tuning epochs.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Constant learning rate (default: a tenth of the run's train.lr).
    #[arg(long)]
    lr: Option<f64>,
    /// Clean examples from the run's training split in the fine-tuning mix (default 6000).
    #[arg(long)]
    reference_examples: Option<usize>,
    /// Shifted labelled examples in the mix, at most half of the validation split
    /// (default 2000).
    #[arg(long)]
    new_examples: Option<usize>,
    /// Largest accepted loss on the original test set, percentage points.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    margin: f64,
    /// Seed of the data draw, the shifts, the batch order and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn retrain_cmd(args: RetrainArgs) -> Result<()> {
    let cfg = RunDir::at(&args.run).config()?;
    let data = load_data(&cfg)?;
    let mut options = RetrainOptions {
        epochs: args.epochs,
        lr: args.lr,
        margin_points: args.margin,
        seed: args.seed,
        ..RetrainOptions::new(Shift::parse(&args.shift)?, args.severity)
    };
    if let Some(n) = args.reference_examples {
        options.reference_examples = n;
    }
    if let Some(n) = args.new_examples {
        options.new_examples = n;
    }
    let root = args.run.parent().unwrap_or(Path::new("."));
    if let Some(p) = retrain::deployed_pointer(root)? {
        println!(
            "{} names {} as deployed ({})",
            root.join(retrain::POINTER_FILE).display(),
            p.run.display(),
            p.version
        );
    }
    let d = retrain::retrain(&args.run, &data, &options)
        .with_context(|| format!("retraining {}", args.run.display()))?;
    println!(
        "fine-tuned {} for {} epochs on {} clean + {} shifted examples in {:.1} s",
        d.deployed.version, options.epochs, d.mix.0, d.mix.1, d.fine_tune_seconds
    );
    println!(
        "{:>10}  {:<48} {:>14} {:>14}",
        "", "version", "new (shifted)", "original test"
    );
    for (name, s) in [("deployed", &d.deployed), ("candidate", &d.candidate)] {
        println!(
            "{name:>10}  {:<48} {:>13.2}% {:>13.2}%",
            s.version,
            100.0 * s.shifted_accuracy,
            100.0 * s.original_accuracy
        );
    }
    println!("gate: {}", d.reason);
    println!(
        "deployed model: {} (logged in {})",
        d.deployed_after.display(),
        root.join(retrain::DEPLOYMENTS_FILE).display()
    );
    Ok(())
}
