//! [`RunDir`]: one run's folder under `saved_models/`, the unit of exchange between the
//! notebook, the CLI and other machines. Everything in it is written atomically (a temp
//! file `.<name>.tmp<pid>` renamed over the file), so a reader sees the old file or the
//! new one, never a torn one.
//!
//! ```text
//! config.toml                  the config, written before the first step
//! split.json                   train/val indices into the training set
//! model_checkpoint.safetensors best weights (by validation accuracy)
//! best.pt                      the same weights as PyTorch loads them (at the end)
//! last_checkpoint.safetensors  weights + optimiser + loop state (with the history), for --resume
//! meta.json                    state, epochs, best epoch, seed, versions, config hash, data record
//! history.csv                  one row per epoch
//! metrics.json                 test metrics of the best weights
//! logs/                        TensorBoard event files (losses, accuracies, LR per epoch)
//! *.svg                        curves, confusion matrix, per-class F1
//! ```
//!
//! # The contract ([`RunState`], [`RunDir::state`])
//!
//! | state | files | meaning |
//! |---|---|---|
//! | created | `config.toml`, `split.json` | no epoch finished; nothing to score |
//! | training | + `meta.json` (`running`), `history.csv`, both checkpoints | training now, or killed: `--resume` continues from the last checkpoint |
//! | failed | `meta.json` (`failed`, with the error) | a step failed (e.g. a non-finite loss); the epochs before it are kept |
//! | finished | + `metrics.json`, `best.pt`, figures; `meta.json` (`finished`, test scores) | complete |
//!
//! After every epoch the best checkpoint (when validation improved), then the last
//! checkpoint, then `history.csv` and `meta.json` are replaced, in that order. The last
//! checkpoint is the truth: it holds the loop state and the whole history, so a resume
//! rewrites `history.csv` from it (a kill between the two leaves the file an epoch
//! short until then). At the finish `metrics.json`, the figures, `best.pt` and
//! `meta.json` are written; a kill before `meta.json` says `finished` leaves a run that
//! `--resume` finishes without training.
//!
//! What a tool may rely on: a run in any state with `model_checkpoint.safetensors` can be
//! scored, explained, exported and served ([`crate::tasks::image::TrainedRun::load`]);
//! `metrics.json`, `history.csv` and the figures are derived files, rebuilt from the
//! best checkpoint and the last checkpoint when they are missing; the data a tool is
//! given is checked against `meta.json`'s data record (class names and order, shape,
//! sizes, a digest of every pixel and label) before any number is produced. Temp files
//! left by a killed writer are removed when training starts.
use crate::backend::{PrecisionChoice, Versions};
use crate::config::RunConfig;
use crate::data::{DataRecord, Normalization};
use crate::metrics::Metrics;
use crate::train::{Callback, EpochEnd, History, LoopState, Signal};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The folder holding run directories unless told otherwise ([`crate::session`]).
pub const DEFAULT_RUNS_ROOT: &str = "saved_models";

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// What it trained on, checked before any tool scores it (absent in older runs).
    #[serde(default)]
    pub data: Option<DataRecord>,
    pub versions: Versions,
}

/// The fields of `meta.json` that every task writes (image, text, regression and
/// detection runs), enough to say where a run stands.
#[derive(Debug, Deserialize)]
struct MetaStatus {
    status: Status,
    epochs_done: usize,
    best_epoch: usize,
    #[serde(default)]
    message: Option<String>,
}

/// Where a run stands, read from its files ([`RunDir::state`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// No `config.toml`: not a run directory.
    Missing,
    /// A config but no finished epoch (no readable `meta.json`).
    Created,
    /// `meta.json` says running: training now, or killed.
    Training {
        epochs_done: usize,
        best_epoch: usize,
    },
    /// A step failed; `message` says why.
    Failed {
        epochs_done: usize,
        best_epoch: usize,
        message: String,
    },
    Finished {
        epochs_done: usize,
        best_epoch: usize,
    },
}

impl RunState {
    /// The state `meta.json` says (a run with a readable one).
    pub fn of(meta: &Meta) -> RunState {
        RunState::from_status(&MetaStatus {
            status: meta.status,
            epochs_done: meta.epochs_done,
            best_epoch: meta.best_epoch,
            message: meta.message.clone(),
        })
    }

    fn from_status(meta: &MetaStatus) -> RunState {
        let (epochs_done, best_epoch) = (meta.epochs_done, meta.best_epoch);
        match meta.status {
            Status::Running => RunState::Training {
                epochs_done,
                best_epoch,
            },
            Status::Failed => RunState::Failed {
                epochs_done,
                best_epoch,
                message: meta.message.clone().unwrap_or_default(),
            },
            Status::Finished => RunState::Finished {
                epochs_done,
                best_epoch,
            },
        }
    }

    /// The state with its best checkpoint, as tools say it before their results
    /// (`finished (10 epochs); best checkpoint from epoch 10`).
    pub fn with_best_epoch(&self) -> String {
        format!("{self}; best checkpoint from epoch {}", self.best_epoch())
    }

    /// The epoch of the best checkpoint (0: none written yet).
    pub fn best_epoch(&self) -> usize {
        match self {
            RunState::Missing | RunState::Created => 0,
            RunState::Training { best_epoch, .. }
            | RunState::Failed { best_epoch, .. }
            | RunState::Finished { best_epoch, .. } => *best_epoch,
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunState::Missing => write!(f, "not a run directory (no config.toml)"),
            RunState::Created => write!(f, "created, no epoch finished yet"),
            RunState::Training { epochs_done, .. } => write!(
                f,
                "unfinished after {} (training now, or stopped: `lab train --resume` continues it)",
                epochs(*epochs_done)
            ),
            RunState::Failed {
                epochs_done,
                message,
                ..
            } => write!(f, "failed after {}: {message}", epochs(*epochs_done)),
            RunState::Finished { epochs_done, .. } => {
                write!(f, "finished ({})", epochs(*epochs_done))
            }
        }
    }
}

fn epochs(n: usize) -> String {
    match n {
        1 => "1 epoch".into(),
        n => format!("{n} epochs"),
    }
}

impl Meta {
    /// Checks `now` against the data this run recorded ([`DataRecord::check`]); `Ok(false)`
    /// when the run is from before records were kept and nothing could be checked.
    pub fn check_data(&self, now: &DataRecord, run: &Path, data_dir: &Path) -> Result<bool> {
        match &self.data {
            Some(record) => record.check(now, run, data_dir).map(|()| true),
            None => Ok(false),
        }
    }
}

/// How a task's runs are trained on, for the message of a run that has nothing to use.
pub struct Retrain {
    pub resume: &'static str,
    pub restart: &'static str,
}

impl Retrain {
    /// Runs that `lab train` trains (image classification).
    pub const LAB_TRAIN: Retrain = Retrain {
        resume: "`lab train --config <its config.toml> --resume`",
        restart: "`--force` instead of `--resume`",
    };
    /// Runs that `lab detect train` trains.
    pub const LAB_DETECT: Retrain = Retrain {
        resume: "`lab detect train --config <its detection.toml> --resume`",
        restart: "`--force` instead of `--resume`",
    };
    /// Runs a notebook's `fit` trains (text, regression): `fit` resumes unfinished runs.
    pub const FIT: Retrain = Retrain {
        resume: "its `fit` call, which resumes unfinished runs",
        restart: "`fit` with `FitOptions { existing: Existing::Force, .. }`",
    };
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

    /// Where the run stands, from `config.toml` and `meta.json`.
    pub fn state(&self) -> RunState {
        self.task_state("config.toml")
    }

    /// Where a run of any task stands: `config_file` is the task's saved config
    /// (`config.toml`, `text.toml`, `regression.toml`, `detection.toml`).
    pub fn task_state(&self, config_file: &str) -> RunState {
        if !self.file(config_file).is_file() {
            return RunState::Missing;
        }
        match crate::io::read_json::<MetaStatus>(&self.file("meta.json")) {
            Ok(meta) => RunState::from_status(&meta),
            Err(_) => RunState::Created,
        }
    }

    /// The state of a run whose best checkpoint a tool is about to use; an error that says
    /// where the run stands and what to do when there is none. `train` says how this
    /// task's runs continue and restart ([`Retrain`]).
    pub fn scorable(&self, config_file: &str, train: &Retrain) -> Result<RunState> {
        let state = self.task_state(config_file);
        if matches!(state, RunState::Missing) {
            // `RunState::Missing` reads "no config.toml", the image runs' file.
            return Err(Error::Run {
                path: self.path.clone(),
                reason: format!(
                    "no {config_file}: not a run directory of this task (train one: {})",
                    train.resume
                ),
            });
        }
        if self.best_checkpoint().is_file() {
            return Ok(state);
        }
        let why = "no best checkpoint (model_checkpoint.safetensors) was written";
        let what_to_do = match state {
            RunState::Failed { .. } => {
                format!("fix the cause above and train it again ({})", train.restart)
            }
            _ => format!(
                "train it ({} continues it, {} restarts it)",
                train.resume, train.restart
            ),
        };
        Err(Error::Run {
            path: self.path.clone(),
            reason: format!("{state}; {why} — nothing to use: {what_to_do}"),
        })
    }

    /// Removes the temp files of atomic writes whose writing process is gone (a kill
    /// mid-write leaves one behind), in the run's folder and its sub-folders; returns
    /// their paths.
    pub fn remove_stale_temp_files(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let mut folders = vec![self.path.clone()];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    folders.push(path);
                } else if is_stale_temp(&path) && std::fs::remove_file(&path).is_ok() {
                    removed.push(path);
                }
            }
        }
        removed
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

/// `.<name>.tmp<pid>` ([`crate::io::replace_with`]'s temp name) of a process that no
/// longer runs.
fn is_stale_temp(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Some(pid) = name
        .strip_prefix('.')
        .and_then(|n| n.rsplit_once(".tmp"))
        .map(|(_, pid)| pid)
    else {
        return false;
    };
    let alive = |pid: &str| Path::new("/proc").join(pid).exists();
    !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !alive(pid)
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
    fn on_start(&mut self, state: &LoopState) -> Result<()> {
        self.run.remove_stale_temp_files();
        if state.epochs_done > 0 {
            // The last checkpoint holds the history and the loop state: a kill between
            // writing it and these files left them an epoch behind.
            state.history.save_csv(&self.run.file("history.csv"))?;
            let meta = self.source.meta(state, Status::Running, None);
            crate::io::write_json(&self.run.file("meta.json"), &meta)?;
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_tasks_run_says_its_state_and_is_refused_without_a_best_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::at(dir.path());
        assert_eq!(run.task_state("text.toml"), RunState::Missing);
        let refused = run
            .scorable("text.toml", &Retrain::FIT)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("no text.toml: not a run directory")
                && !refused.contains("config.toml"),
            "{refused}"
        );
        std::fs::write(run.file("text.toml"), "name = \"t\"\n").unwrap();
        assert_eq!(run.task_state("text.toml"), RunState::Created);
        // A text run's meta: other fields than an image run's, the same status fields.
        let meta = r#"{"status": "failed", "epochs_done": 2, "best_epoch": 1,
            "data_fingerprint": "ab", "message": "loss is NaN"}"#;
        std::fs::write(run.file("meta.json"), meta).unwrap();
        let refused = run
            .scorable("text.toml", &Retrain::FIT)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("failed after 2 epochs: loss is NaN")
                && refused.contains("no best checkpoint")
                && refused.contains("Existing::Force"),
            "{refused}"
        );
        std::fs::write(run.best_checkpoint(), b"weights").unwrap();
        assert_eq!(
            run.scorable("text.toml", &Retrain::FIT)
                .unwrap()
                .best_epoch(),
            1
        );
    }
}
