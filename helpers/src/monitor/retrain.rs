//! Retraining on drift, behind a validation gate.
//!
//! When drift is detected, [`retrain`] fine-tunes a *candidate* from the deployed run's best
//! weights on a mix of reference data and new labelled data from the shifted distribution,
//! then lets a gate decide: the candidate is promoted only if it
//!
//! 1. beats the deployed model on held-out new (shifted) data, and
//! 2. loses at most [`RetrainOptions::margin_points`] percentage points of accuracy on
//!    the original test set (no silent regression on the data it was built for).
//!
//! Every decision — both models' version ids and accuracies, the reason — is appended to
//! `<root>/deployments.jsonl`. `<root>/deployed.json` names the deployed run; it is
//! rewritten atomically on promotion only, so a rejected candidate leaves production as it
//! was (the rollback is "do nothing"), and the candidate's run directory stays on disk
//! for inspection.
//!
//! Data, all from the deployed run's own split so nothing it is scored on was seen in
//! fine-tuning: the *reference* part of the mix is a random sample of the run's training
//! split (unshifted: it keeps the old distribution in memory); the validation split —
//! never trained on — is shuffled and halved: one half, shifted, is the *new labelled*
//! part of the mix, the other half, shifted with another seed, is the gate's *held-out new*
//! data. The original test set is only ever evaluated. Fine-tuning runs a fixed number of
//! epochs with a constant learning rate and keeps the last weights: no epoch is chosen on
//! the gate's data, which would bias the gate.
//!
//! The candidate is written as an ordinary run directory (config, the parent's split,
//! best weights, meta, history, test metrics), so [`crate::tasks::image::TrainedRun::load`] opens
//! it with the original dataset, like any other run.
use super::shifts::{self, Shift};
use crate::data::{Dataset, ImageSet, Loader, Normalization};
use crate::evaluate::predict;
use crate::io::jsonl::{append_jsonl, now, read_jsonl, JsonlRead};
use crate::models::{self, Model};
use crate::rng::Rng;
use crate::run::{RunDir, Status};
use crate::tasks::image::{Batches, ImageClassification, TrainedRun};
use crate::train::{History, LoopState, Optimizer, Schedule, Trainer};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// File in the runs root naming the deployed run.
pub const POINTER_FILE: &str = "deployed.json";
/// File in the runs root logging every gate decision.
pub const DEPLOYMENTS_FILE: &str = "deployments.jsonl";

const MIX_STREAM: u64 = 0x4D49_5852;

/// Settings of [`retrain`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainOptions {
    /// The drift to adapt to (simulated here; in production, new labelled data).
    pub shift: Shift,
    pub severity: u8,
    /// Fine-tuning epochs over the mix.
    pub epochs: usize,
    /// Constant learning rate; `None` = a tenth of the deployed run's `train.lr`.
    pub lr: Option<f64>,
    /// Clean examples from the deployed run's training split in the mix.
    pub reference_examples: usize,
    /// Shifted, labelled examples (from half of the validation split) in the mix; capped by
    /// the half's size.
    pub new_examples: usize,
    /// Shifted held-out examples (the other half of the validation split) the gate scores;
    /// capped by the half's size.
    pub holdout_examples: usize,
    /// Largest accepted loss of accuracy on the original test set, percentage points
    /// (negative: the candidate must gain that much).
    pub margin_points: f64,
    /// Drives the data draw, the shifts, the batch order and dropout.
    pub seed: u64,
}

impl RetrainOptions {
    /// Defaults for `shift` at `severity`: 2 epochs on 6 000 clean + up to 2 000 shifted
    /// examples, gate on up to 2 000 held-out shifted examples, margin 0.5 points.
    pub fn new(shift: Shift, severity: u8) -> RetrainOptions {
        RetrainOptions {
            shift,
            severity,
            epochs: 2,
            lr: None,
            reference_examples: 6000,
            new_examples: 2000,
            holdout_examples: 2000,
            margin_points: 0.5,
            seed: 0,
        }
    }
}

/// A model's identity and scores at the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// Run directory.
    pub run: PathBuf,
    /// `<run name>@<first 12 hex digits of the SHA-256 of its best weights>`.
    pub version: String,
    /// Accuracy on the held-out new (shifted) data.
    pub shifted_accuracy: f64,
    /// Accuracy on the original test set.
    pub original_accuracy: f64,
}

/// The gate's decision, as appended to `deployments.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    pub ts: f64,
    pub time: String,
    pub promoted: bool,
    /// Why, in words, with the numbers.
    pub reason: String,
    pub shift: String,
    pub severity: u8,
    pub margin_points: f64,
    pub deployed: ModelScore,
    pub candidate: ModelScore,
    /// Run directory the pointer names after the decision.
    pub deployed_after: PathBuf,
    /// Examples in the fine-tuning mix: (clean reference, shifted new); held-out shifted.
    pub mix: (usize, usize),
    pub holdout: usize,
    pub fine_tune_seconds: f64,
}

/// `<root>/deployed.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployedPointer {
    /// The deployed run directory.
    pub run: PathBuf,
    pub version: String,
    /// When it was promoted (ISO 8601 UTC).
    pub since: String,
}

/// The deployed-run pointer of `root`, if one was written.
pub fn deployed_pointer(root: &Path) -> Result<Option<DeployedPointer>> {
    let path = root.join(POINTER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::data(&path, format!("not a deployment pointer: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Every decision logged in `root`'s `deployments.jsonl`.
pub fn deployments(root: &Path) -> Result<JsonlRead<GateDecision>> {
    read_jsonl(&root.join(DEPLOYMENTS_FILE))
}

/// Version id of a run's best weights: `<dir name>@<12 hex digits of their SHA-256>`.
pub fn model_version(run: &Path) -> Result<String> {
    let weights = RunDir::at(run).best_checkpoint();
    let bytes = std::fs::read(&weights).map_err(|e| Error::io(&weights, e))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(format!("{name}@{hex}"))
}

/// Fine-tunes a candidate from the run at `deployed` (loaded with `data`, its dataset),
/// scores both at the gate, logs the decision in the runs root (the parent folder of
/// `deployed`) and moves the pointer on promotion. See the module documentation.
pub fn retrain(deployed: &Path, data: &Dataset, options: &RetrainOptions) -> Result<GateDecision> {
    let root = deployed.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent = TrainedRun::load(deployed, data)?;
    let sets = RetrainData::draw(&parent, data, options)?;
    let candidate_dir = root.join(candidate_name(&parent.config.name, options));
    prepare_candidate_dir(&root, &candidate_dir, deployed)?;
    let started = Instant::now();
    let (model, history) = fine_tune(&parent, &sets.mix, options)?;
    let fine_tune_seconds = started.elapsed().as_secs_f64();
    let test = predict(&model, &parent.loaders.test).metrics(&data.classes);
    write_candidate(
        &parent,
        &candidate_dir,
        &model,
        history,
        &test,
        options,
        &sets,
    )?;
    let norm = &parent.loaders.norm;
    let deployed_score = ModelScore {
        run: deployed.to_path_buf(),
        version: model_version(deployed)?,
        shifted_accuracy: accuracy(&parent.model, norm, &sets.holdout)?,
        original_accuracy: predict(&parent.model, &parent.loaders.test).accuracy(),
    };
    let candidate_score = ModelScore {
        run: candidate_dir.clone(),
        version: model_version(&candidate_dir)?,
        shifted_accuracy: accuracy(&model, norm, &sets.holdout)?,
        original_accuracy: test.accuracy,
    };
    let (promoted, reason) = gate(&deployed_score, &candidate_score, options.margin_points);
    let (ts, time) = now();
    let decision = GateDecision {
        ts,
        time: time.clone(),
        promoted,
        reason,
        shift: options.shift.name(),
        severity: options.severity,
        margin_points: options.margin_points,
        deployed_after: if promoted {
            candidate_dir.clone()
        } else {
            deployed.to_path_buf()
        },
        deployed: deployed_score,
        candidate: candidate_score,
        mix: (sets.reference_count, sets.new_count),
        holdout: sets.holdout.len(),
        fine_tune_seconds,
    };
    append_jsonl(
        &root.join(DEPLOYMENTS_FILE),
        std::slice::from_ref(&decision),
    )?;
    if promoted {
        set_deployed(&root, &candidate_dir)?;
    }
    Ok(decision)
}

/// Points `<root>/deployed.json` at the run `run` (atomically: readers see the old pointer
/// or the new one, never a torn file) and returns the pointer written.
pub fn set_deployed(root: &Path, run: &Path) -> Result<DeployedPointer> {
    let pointer = DeployedPointer {
        run: run.to_path_buf(),
        version: model_version(run)?,
        since: now().1,
    };
    let path = root.join(POINTER_FILE);
    let json = serde_json::to_string_pretty(&pointer)
        .map_err(|e| Error::data(&path, format!("pointer not serialisable: {e}")))?;
    crate::io::write_text_atomic(&path, &(json + "\n"))?;
    Ok(pointer)
}

/// The gate: strictly better on new data, and within the margin on the original test set.
fn gate(deployed: &ModelScore, candidate: &ModelScore, margin_points: f64) -> (bool, String) {
    let gain_new = 100.0 * (candidate.shifted_accuracy - deployed.shifted_accuracy);
    let loss_original = 100.0 * (deployed.original_accuracy - candidate.original_accuracy);
    let beats = gain_new > 0.0;
    let keeps = loss_original <= margin_points;
    let reason = format!(
        "new data: {:.2}% vs deployed {:.2}% ({gain_new:+.2} points, must be > 0: {}); original test: {:.2}% vs {:.2}% (loss {loss_original:.2} points, must be ≤ {margin_points}: {})",
        100.0 * candidate.shifted_accuracy,
        100.0 * deployed.shifted_accuracy,
        if beats { "yes" } else { "no" },
        100.0 * candidate.original_accuracy,
        100.0 * deployed.original_accuracy,
        if keeps { "yes" } else { "no" },
    );
    let verdict = if beats && keeps {
        "promoted"
    } else {
        "rejected"
    };
    (beats && keeps, format!("{verdict}: {reason}"))
}

/// `<parent>-ft-<shift>-s<severity>-seed<seed>`, file-name safe.
fn candidate_name(parent: &str, options: &RetrainOptions) -> String {
    let shift: String = options
        .shift
        .name()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!(
        "{parent}-ft-{shift}-s{}-seed{}",
        options.severity, options.seed
    )
}

/// Clears a stale candidate directory of the same name; refuses when it is the deployed run
/// (the retrain is deterministic, so the same seed would only rebuild what is serving).
fn prepare_candidate_dir(root: &Path, dir: &Path, deployed: &Path) -> Result<()> {
    let pointed = deployed_pointer(root)?.map(|p| p.run);
    if same_path(dir, deployed) || pointed.as_deref().is_some_and(|p| same_path(p, dir)) {
        return Err(Error::Run {
            path: dir.to_path_buf(),
            reason: "is the deployed model; retrain with another seed to build a new candidate"
                .into(),
        });
    }
    RunDir::at(dir).wipe()
}

/// True when both paths name the same file (compared canonically when both exist).
fn same_path(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The fine-tuning mix and the gate's held-out data.
struct RetrainData {
    mix: ImageSet,
    reference_count: usize,
    new_count: usize,
    holdout: ImageSet,
}

impl RetrainData {
    fn draw(parent: &TrainedRun, data: &Dataset, options: &RetrainOptions) -> Result<RetrainData> {
        let split = &parent.loaders.split;
        let mut rng = Rng::new(options.seed, MIX_STREAM);
        let reference =
            data.train
                .select(&sample(&split.train, options.reference_examples, &mut rng));
        let mut val = split.val.clone();
        rng.shuffle(&mut val);
        let half = val.len() / 2;
        let (new_idx, holdout_idx) = val.split_at(half);
        let new_idx = &new_idx[..new_idx.len().min(options.new_examples)];
        let holdout_idx = &holdout_idx[..holdout_idx.len().min(options.holdout_examples)];
        if new_idx.is_empty() || holdout_idx.is_empty() {
            return Err(Error::config(
                "retrain",
                format!("the validation split has {} examples: too few to halve into new and held-out data", val.len()),
            ));
        }
        let shift =
            |set: &ImageSet, seed: u64| shifts::apply(set, &options.shift, options.severity, seed);
        let new = shift(
            &data.train.select(new_idx),
            options.seed.wrapping_mul(2) + 1,
        )?;
        let holdout = shift(
            &data.train.select(holdout_idx),
            options.seed.wrapping_mul(2) + 2,
        )?;
        let mix = ImageSet {
            images: Tensor::cat(&[&reference.images, &new.images], 0),
            labels: Tensor::cat(&[&reference.labels, &new.labels], 0),
        };
        Ok(RetrainData {
            mix,
            reference_count: reference.len(),
            new_count: new.len(),
            holdout,
        })
    }
}

/// `n` of `indices` at random (all of them when fewer).
fn sample(indices: &[i64], n: usize, rng: &mut Rng) -> Vec<i64> {
    let mut v = indices.to_vec();
    rng.shuffle(&mut v);
    v.truncate(n);
    v
}

/// Two candidates through the gate, as the report shows it: `deployed` is made the
/// deployed run, a candidate retrained with `options` is judged, then a second one
/// (another seed) that must gain 5 points on the original test set, which it cannot.
pub struct TwoCandidates {
    pub promoted: GateDecision,
    pub rejected: GateDecision,
    /// The version `deployed.json` names afterwards.
    pub deployed_after: String,
    pub epochs: usize,
}

/// Runs [`TwoCandidates`] under `root` from the run at `deployed`.
pub fn two_candidates(
    root: &Path,
    deployed: &Path,
    data: &Dataset,
    options: &RetrainOptions,
) -> Result<TwoCandidates> {
    set_deployed(root, deployed)?;
    let promoted = retrain(deployed, data, options)?;
    let mut strict = options.clone();
    strict.margin_points = -5.0;
    strict.seed = options.seed + 1; // another candidate: the first may be deployed by now
    let rejected = retrain(deployed, data, &strict)?;
    let deployed_after = deployed_pointer(root)?
        .map(|p| p.version)
        .unwrap_or_default();
    Ok(TwoCandidates {
        promoted,
        rejected,
        deployed_after,
        epochs: options.epochs,
    })
}

/// The parent's architecture with its best weights, fine-tuned on `mix`: constant LR,
/// the parent's optimiser, augmentation and label smoothing, libtorch reseeded per epoch.
fn fine_tune(
    parent: &TrainedRun,
    mix: &ImageSet,
    options: &RetrainOptions,
) -> Result<(Model, History)> {
    let cfg = &parent.config;
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    let device = cfg.device();
    tch::manual_seed(options.seed as i64);
    let mut model = models::build(
        &cfg.model,
        parent.model.input_shape,
        parent.model.num_classes,
        device,
    )?;
    model.load(&parent.run.best_checkpoint())?;
    // The parent's arithmetic (its meta.json, which the candidate's copies).
    model.precision = parent.model.precision;
    let norm: &Normalization = &parent.loaders.norm;
    model.set_input_stats(norm);
    let augment = Some(cfg.data.augment.clone());
    let loader = Loader::new(
        mix,
        cfg.train.batch_size,
        true,
        augment,
        norm.clone(),
        options.seed,
        device,
    );
    let lr = options.lr.unwrap_or(cfg.train.lr / 10.0);
    let mut opt = Optimizer::new(&cfg.train, model.trainable_named());
    let mut trainer = Trainer::new(options.epochs);
    trainer.grad_clip = cfg.train.grad_clip;
    trainer.reseed = Some(options.seed);
    // No validation during fine-tuning: the gate's data must not steer training.
    trainer.validate_every = 0;
    let task = ImageClassification::new(&model, Batches::Pixels(&loader))
        .with_label_smoothing(cfg.train.label_smoothing);
    trainer.precision = model.precision;
    let mut state = LoopState::new(Schedule::constant(lr), model.precision);
    trainer.run(&task, &mut opt, &mut state, &mut [])?;
    Ok((model, state.history))
}

/// Accuracy of `model` on `set` (evaluation mode).
fn accuracy(model: &Model, norm: &Normalization, set: &ImageSet) -> Result<f64> {
    let outputs = super::drift::model_outputs(model, norm, &set.images)?;
    let labels = set.label_vec();
    let correct = labels
        .iter()
        .zip(&outputs.predictions)
        .filter(|(a, b)| a == b)
        .count();
    Ok(correct as f64 / labels.len().max(1) as f64)
}

/// Writes the candidate as a run directory the original dataset reloads.
fn write_candidate(
    parent: &TrainedRun,
    dir: &Path,
    model: &Model,
    history: History,
    test: &crate::metrics::Metrics,
    options: &RetrainOptions,
    sets: &RetrainData,
) -> Result<()> {
    let run = RunDir::at(dir);
    let mut cfg = parent.config.clone();
    cfg.name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    run.write_config(&cfg)?;
    parent.loaders.split.save(&run.file("split.json"))?;
    model.save(&run.best_checkpoint())?;
    crate::weights::torch_save::convert_safetensors(
        &run.best_checkpoint(),
        &run.pytorch_checkpoint(),
    )?;
    history.save_csv(&run.file("history.csv"))?;
    run.write_metrics(test)?;
    let mut meta = parent.meta.clone();
    meta.status = Status::Finished;
    meta.epochs_done = options.epochs;
    meta.best_epoch = options.epochs;
    meta.stopped_early = false;
    meta.seed = options.seed;
    meta.config_hash = cfg.hash();
    meta.train_seconds = history.seconds();
    meta.test_accuracy = Some(test.accuracy);
    meta.test_macro_f1 = Some(test.macro_avg.f1);
    meta.versions = crate::backend::versions();
    meta.message = Some(format!(
        "fine-tuned from {} for {} epochs on {} clean + {} {}-shifted (severity {}) examples; best_val_accuracy is the parent's (its validation split fed the fine-tuning and the gate)",
        model_version(&parent.run.path)?,
        options.epochs,
        sets.reference_count,
        sets.new_count,
        options.shift.name(),
        options.severity
    ));
    run.write_meta(&meta)
}
