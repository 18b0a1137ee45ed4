//! What the regression and text tracks' `fit` share: the fresh / resume / reuse decision
//! for a run whose config is a task's own TOML file and whose data has a fingerprint, the
//! loop state to start from, and the loop with the standard callbacks (best checkpoint
//! restored at the end, early stopping, TensorBoard, last checkpoint, run files,
//! progress).
use crate::run::{decide_on, Existing, FitOptions, Found, RunDir, RunFiles, RunMeta, Start};
use crate::train::callbacks::{
    self, BestCheckpoint, EarlyStopping, LastCheckpoint, ReportProgress, TensorBoard,
};
use crate::train::tensorboard::HParam;
use crate::train::{
    Callback, LoopState, Optimizer, Outcome, Progress, Schedule, Task, TrainConfig, Trainer,
};
use crate::{Error, Result};
use std::path::Path;
use tch::Tensor;

/// Fresh, resume or reuse of the run in `run` (by [`decide_on`]): `config_file` names the
/// task's saved config, `differing` lists the keys in which it differs from the requested
/// one, and a `data_fingerprint` in `meta.json` other than `fingerprint` counts as a
/// differing key too.
pub fn decide(
    run: &RunDir,
    config_file: &str,
    existing: Existing,
    differing: impl FnOnce(&Path) -> Result<Vec<String>>,
    fingerprint: &str,
) -> Result<Start> {
    let config = run.file(config_file);
    if !config.is_file() {
        return Ok(Start::Fresh);
    }
    if existing == Existing::Force {
        run.wipe()?;
        return Ok(Start::Fresh);
    }
    let mut differing_keys = differing(&config)?;
    let meta: Option<serde_json::Value> = crate::io::read_json(&run.file("meta.json")).ok();
    let field = |k: &str| {
        meta.as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_str().map(String::from))
    };
    if field("data_fingerprint").is_some_and(|f| f != fingerprint) {
        differing_keys.push("data (file, split or preprocessing)".into());
    }
    let finished = field("status").is_some_and(|s| s == "finished");
    decide_on(
        run,
        &Found {
            differing_keys,
            finished,
        },
        existing,
    )
}

/// A track config's run: sets libtorch's threads (`threads` > 0), opens the run
/// directory `opts.root/<name>`, decides how to start it ([`decide`]), then seeds
/// libtorch's generator with `seed` so the network built next is the same every time.
pub fn open_run(
    (name, threads, seed): (&str, usize, u64),
    config_file: &str,
    opts: &FitOptions,
    differing: impl FnOnce(&Path) -> Result<Vec<String>>,
    fingerprint: &str,
) -> Result<(RunDir, Start)> {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let run = RunDir::at(opts.root.join(name));
    let start = decide(&run, config_file, opts.existing, differing, fingerprint)?;
    tch::manual_seed(seed as i64);
    Ok((run, start))
}

/// The state to train from: the last checkpoint's (weights and optimiser restored into
/// `weights` and `opt`) when resuming, a fresh one otherwise.
pub fn initial_state(
    run: &RunDir,
    start: Start,
    train: &TrainConfig,
    steps_per_epoch: usize,
    (weights, opt): (&[(String, Tensor)], &mut Optimizer),
    progress: &mut dyn Progress,
) -> Result<LoopState> {
    if start == Start::Resume {
        let state = callbacks::resume(&run.last_checkpoint(), weights, opt)?;
        progress.on_message(&format!(
            "{}: resuming after epoch {}",
            run.path.display(),
            state.epochs_done
        ));
        return Ok(state);
    }
    Ok(LoopState::new(
        Schedule::new(train, steps_per_epoch),
        crate::backend::Precision::Fp32,
    ))
}

/// One track run's settings for [`train`].
pub struct TrackRun<'a> {
    pub run: &'a RunDir,
    pub train: &'a TrainConfig,
    pub seed: u64,
    /// TensorBoard's hyper-parameters (the config's keys).
    pub hparams: Vec<(String, HParam)>,
    /// TensorBoard's tag of the task's score.
    pub score_name: &'static str,
}

/// Trains `task` through the loop with the standard callbacks; the best weights are
/// restored into `task.weights()` when the run completes. A paused run is an error
/// saying how to resume.
pub fn train<T: Task, M: RunMeta>(
    track: &TrackRun,
    task: &T,
    meta: &M,
    opts: &FitOptions,
    (opt, state): (&mut Optimizer, &mut LoopState),
    progress: &mut dyn Progress,
) -> Result<()> {
    let (run, t) = (track.run, track.train);
    let mut trainer = Trainer::new(t.epochs);
    trainer.grad_clip = t.grad_clip;
    trainer.reseed = Some(track.seed);
    trainer.stop_after_epochs = opts.stop_after_epochs;
    let mut best = BestCheckpoint {
        path: run.best_checkpoint(),
        restore_into: Some(task.weights()),
        pytorch_copy: Some(run.pytorch_checkpoint()),
    };
    let mut early = EarlyStopping {
        patience: t.early_stopping_patience,
    };
    let mut tb = TensorBoard::new(run.file("logs"), track.hparams.clone(), Vec::new())
        .with_score_name(track.score_name);
    let mut last = LastCheckpoint {
        path: run.last_checkpoint(),
    };
    let mut files = RunFiles { run, source: meta };
    let mut report = ReportProgress(progress);
    let callbacks: &mut [&mut dyn Callback] = &mut [
        &mut best,
        &mut early,
        &mut tb,
        &mut last,
        &mut files,
        &mut report,
    ];
    if trainer.run(task, opt, state, callbacks)? == Outcome::Paused {
        return Err(Error::Run {
            path: run.path.clone(),
            reason: format!(
                "paused after epoch {} on request; fit again to resume",
                state.epochs_done
            ),
        });
    }
    Ok(())
}

/// A config's keys as TensorBoard hyper-parameters.
pub fn hparams(flat: Vec<(String, toml::Value)>) -> Vec<(String, HParam)> {
    flat.into_iter()
        .map(|(k, v)| (k, HParam::from_toml(v)))
        .collect()
}

/// A reused run's saved epoch lines replayed, so a report reads the same either way.
pub fn replay(
    run: &RunDir,
    epochs: usize,
    progress: &mut dyn Progress,
) -> Result<crate::train::History> {
    progress.on_message(&format!(
        "{}: finished run with the same config and data found; reusing it",
        run.path.display()
    ));
    let history = run.history()?;
    history
        .epochs
        .iter()
        .for_each(|r| progress.on_epoch(r, epochs));
    Ok(history)
}

/// A track config as TOML.
pub fn config_to_toml<T: serde::Serialize>(cfg: &T) -> String {
    toml::to_string(cfg).expect("config serialises")
}

/// A track config read back; `what` names it in the error ("a regression config").
pub fn config_from_toml_file<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| match crate::config::syntax_error(&text, &e, "") {
        Error::Syntax {
            line,
            column,
            reason,
            ..
        } => Error::data(
            path,
            format!("not {what}: line {line}, column {column}: {reason}"),
        ),
        other => other,
    })
}

/// Keys whose values differ between two configs, as `key: saved → requested` (the run
/// name is not compared).
pub fn config_diff<T: serde::Serialize>(saved: &T, requested: &T) -> Vec<String> {
    let a = toml::Value::try_from(saved).expect("config serialises");
    let b = toml::Value::try_from(requested).expect("config serialises");
    let mut out = Vec::new();
    crate::config::diff_values(&a, &b, "", &mut out);
    out.retain(|k| !k.starts_with("name:"));
    out
}

/// Every key and value of a config, flattened to dotted keys.
pub fn config_flat<T: serde::Serialize>(cfg: &T) -> Vec<(String, toml::Value)> {
    let mut rows = Vec::new();
    crate::config::flatten(
        &toml::Value::try_from(cfg).expect("config serialises"),
        "",
        &mut rows,
    );
    rows
}

/// The training batches of `epoch` as row indices: `0..rows` shuffled by a generator
/// fixed by (seed, `stream` + epoch), so a resumed run replays them, cut into chunks of
/// `batch_size`; a last chunk shorter than `min_len` is dropped (batch norm needs two).
pub fn epoch_batches(
    rows: usize,
    batch_size: usize,
    (seed, stream): (u64, u64),
    epoch: usize,
    min_len: usize,
) -> Vec<Vec<i64>> {
    let mut order: Vec<i64> = (0..rows as i64).collect();
    crate::rng::Rng::new(seed, stream + epoch as u64).shuffle(&mut order);
    let chunks = order.chunks(batch_size).filter(|c| c.len() >= min_len);
    chunks.map(<[i64]>::to_vec).collect()
}
