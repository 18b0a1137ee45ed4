//! [`RunDir`]: one run's folder under `saved_models/`, the unit of exchange between the
//! notebook, the CLI and other machines. Everything in it is written atomically.
//!
//! ```text
//! config.toml                  the config, written before the first step
//! split.json                   train/val indices into the training set
//! model_checkpoint.safetensors best weights (by validation accuracy)
//! last_checkpoint.safetensors  weights + optimiser + trainer state, for --resume
//! meta.json                    status, epochs, best epoch, seed, versions, config hash
//! history.csv                  one row per epoch
//! metrics.json                 test metrics of the best weights
//! logs/                        TensorBoard event files (losses, accuracies, LR per epoch)
//! *.svg                        curves, confusion matrix, per-class F1
//! ```
use crate::backend::{PrecisionChoice, Versions};
use crate::config::RunConfig;
use crate::data::Normalization;
use crate::metrics::Metrics;
use crate::train::{Callback, EpochEnd, History, LoopState, Signal};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The folder holding run directories unless told otherwise ([`crate::session`]).
pub const DEFAULT_RUNS_ROOT: &str = "saved_models";

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Finished,
    Failed,
}

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub status: Status,
    /// Epochs completed.
    pub epochs_done: usize,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    pub stopped_early: bool,
    pub seed: u64,
    pub config_hash: String,
    pub normalization: Normalization,
    pub num_parameters: i64,
    /// Parameters that trained (fewer than `num_parameters` when layers were frozen).
    #[serde(default)]
    pub trainable_parameters: Option<i64>,
    /// Seconds spent computing a linear probe's cached embeddings (not in `train_seconds`).
    #[serde(default)]
    pub embed_seconds: Option<f64>,
    pub train_seconds: f64,
    pub test_accuracy: Option<f64>,
    pub test_macro_f1: Option<f64>,
    /// Why the run failed, when it did.
    pub message: Option<String>,
    /// The arithmetic it trained and evaluated in, and why (`auto`'s probe figures).
    #[serde(default)]
    pub precision: Option<PrecisionChoice>,
    pub versions: Versions,
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// The run directory at `path` (it may not exist yet).
    pub fn at(path: impl AsRef<Path>) -> RunDir {
        RunDir {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Path of a file inside the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// True when the folder holds a saved config.
    pub fn exists(&self) -> bool {
        self.file("config.toml").is_file()
    }

    /// The run's saved config.
    pub fn config(&self) -> Result<RunConfig> {
        if !self.exists() {
            return Err(Error::Run {
                path: self.path.clone(),
                reason: "no config.toml: not a run directory (train it first with `lab train`)"
                    .into(),
            });
        }
        RunConfig::from_toml_file(self.file("config.toml"))
    }

    /// Writes the config (before training starts).
    pub fn write_config(&self, cfg: &RunConfig) -> Result<()> {
        crate::io::write_text_atomic(&self.file("config.toml"), &cfg.to_toml())
    }

    /// `meta.json`.
    pub fn meta(&self) -> Result<Meta> {
        crate::io::read_json(&self.file("meta.json"))
    }

    pub fn write_meta(&self, meta: &Meta) -> Result<()> {
        crate::io::write_json(&self.file("meta.json"), meta)
    }

    /// Whether `meta.json` says the run finished (false when it is missing or unreadable).
    pub fn is_finished(&self) -> bool {
        self.meta().is_ok_and(|m| m.status == Status::Finished)
    }

    /// `history.csv`.
    pub fn history(&self) -> Result<History> {
        History::load_csv(&self.file("history.csv"))
    }

    /// `metrics.json` (test metrics of the best weights).
    pub fn metrics(&self) -> Result<Metrics> {
        crate::io::read_json(&self.file("metrics.json"))
    }

    pub fn write_metrics(&self, metrics: &Metrics) -> Result<()> {
        crate::io::write_json(&self.file("metrics.json"), metrics)
    }

    /// Best weights.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.file("model_checkpoint.safetensors")
    }

    /// The best weights as PyTorch opens them (`torch.load(…, weights_only=True)`), written
    /// when the run completes.
    pub fn pytorch_checkpoint(&self) -> PathBuf {
        self.file("best.pt")
    }

    /// [`RunDir::pytorch_checkpoint`], written from the safetensors checkpoint first for
    /// a run from before `best.pt` existed.
    pub fn pytorch_checkpoint_or_convert(&self) -> Result<PathBuf> {
        let path = self.pytorch_checkpoint();
        if !path.is_file() {
            crate::weights::torch_save::convert_safetensors(&self.best_checkpoint(), &path)?;
        }
        Ok(path)
    }

    /// Weights, optimiser and trainer state of the last finished epoch.
    pub fn last_checkpoint(&self) -> PathBuf {
        self.file("last_checkpoint.safetensors")
    }

    /// Removes the run's files (for a forced retrain), keeping nothing.
    pub fn wipe(&self) -> Result<()> {
        if self.path.exists() {
            std::fs::remove_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// How a task's `fit` treats the runs folder (every track's `fit_with` takes these).
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Folder holding run directories.
    pub root: PathBuf,
    pub existing: Existing,
    /// Stop (as if killed) after this many epochs in this call; for tests of resuming.
    pub stop_after_epochs: Option<usize>,
}

impl Default for FitOptions {
    /// Runs under `saved_models/`, finished ones reused, unfinished ones resumed.
    fn default() -> Self {
        FitOptions {
            root: PathBuf::from(DEFAULT_RUNS_ROOT),
            existing: Existing::Auto,
            stop_after_epochs: None,
        }
    }
}

/// What a task writes as `meta.json` at an epoch end (status running) and on a failure
/// (status failed, with the error's text).
pub trait RunMeta {
    type Meta: Serialize;
    fn meta(&self, state: &LoopState, status: Status, message: Option<String>) -> Self::Meta;
}

/// The run files every task keeps current: `history.csv` and `meta.json` after every
/// epoch; on a failure, the meta says why and the history keeps every finished epoch.
pub struct RunFiles<'a, S: RunMeta> {
    pub run: &'a RunDir,
    pub source: &'a S,
}

impl<S: RunMeta> Callback for RunFiles<'_, S> {
    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        end.state.history.save_csv(&self.run.file("history.csv"))?;
        let meta = self.source.meta(end.state, Status::Running, None);
        crate::io::write_json(&self.run.file("meta.json"), &meta)?;
        Ok(Signal::Continue)
    }

    fn on_failure(&mut self, state: &LoopState, error: &Error) {
        let meta = self
            .source
            .meta(state, Status::Failed, Some(error.to_string()));
        let _ = crate::io::write_json(&self.run.file("meta.json"), &meta);
        let _ = state.history.save_csv(&self.run.file("history.csv"));
    }
}

/// What to do when the run directory already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop with an error (the CLI's default: never overwrite silently).
    Refuse,
    /// Continue an unfinished run from its last checkpoint.
    Resume,
    /// Reuse a finished run with the same config, resume an unfinished one (notebook).
    Auto,
    /// Delete it and train again.
    Force,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// No run (or a wiped one): train from the first step.
    Fresh,
    /// An unfinished run of this config: continue from its last checkpoint.
    Resume,
    /// A finished run of this config: load it.
    Reuse,
}

/// Chooses between a fresh start, a resume and reuse of the run `cfg` names; refuses
/// to overwrite silently.
pub fn decide_start(run: &RunDir, cfg: &RunConfig, existing: Existing) -> Result<Start> {
    if !run.exists() {
        return Ok(Start::Fresh);
    }
    if existing == Existing::Force {
        run.wipe()?;
        return Ok(Start::Fresh);
    }
    let saved = run.config()?;
    let found = Found {
        differing_keys: if saved.hash() == cfg.hash() {
            Vec::new()
        } else {
            saved.diff(cfg)
        },
        finished: run
            .meta()
            .map(|m| m.status == Status::Finished)
            .unwrap_or(false),
    };
    decide_on(run, &found, existing)
}

/// What an existing run directory holds, as [`decide_on`] needs it.
#[derive(Debug, Clone)]
pub struct Found {
    /// Config keys whose saved value differs from the requested one (empty: same config).
    pub differing_keys: Vec<String>,
    pub finished: bool,
}

/// [`decide_start`]'s rule for any task's run, given what its directory holds (the
/// caller handled a missing directory and [`Existing::Force`]).
pub fn decide_on(run: &RunDir, found: &Found, existing: Existing) -> Result<Start> {
    if !found.differing_keys.is_empty() {
        return Err(Error::Run {
            path: run.path.clone(),
            reason: format!(
                "holds a run of another config (differing keys: {}); choose another `name` or pass --force to replace it",
                found.differing_keys.join(", ")
            ),
        });
    }
    let finished = found.finished;
    let resumable = run.last_checkpoint().is_file();
    match (existing, finished) {
        (Existing::Auto | Existing::Resume, true) => Ok(Start::Reuse),
        (Existing::Auto | Existing::Resume, false) if resumable => Ok(Start::Resume),
        (Existing::Auto | Existing::Resume, false) => {
            run.wipe()?;
            Ok(Start::Fresh)
        }
        (_, true) => Err(Error::Run { path: run.path.clone(), reason: "already finished with this config; pass --force to train it again".into() }),
        (_, false) => Err(Error::Run { path: run.path.clone(), reason: "an unfinished run of this config exists; pass --resume to continue it or --force to restart".into() }),
    }
}
