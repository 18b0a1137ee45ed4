//! The callbacks every training run can use, in the order a run passes them: best
//! checkpoint, early stopping, TensorBoard, last checkpoint (for `--resume`), progress.
//! A task's own run files (meta data, history) are its orchestrator's callback.
use super::tensorboard::{EventWriter, HParam};
use super::trainer::{Callback, EpochEnd, LoopState, Signal, StepInfo};
use super::{EpochRecord, Optimizer, Progress};
use crate::io::tensors::{self as checkpoint, read_tensors, write_tensors};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use tch::Tensor;

/// Saves the weights whenever the validation score improves; at the end of a complete
/// run, restores them into the model (restore-best) and writes their PyTorch copy.
pub struct BestCheckpoint {
    pub path: PathBuf,
    /// The model's tensors, to copy the best weights back into at the end.
    pub restore_into: Option<Vec<(String, Tensor)>>,
    /// Where the best weights go as a `torch.save` file once the run completes (once,
    /// not at every improvement: the safetensors file is what resuming reads).
    pub pytorch_copy: Option<PathBuf>,
}

impl Callback for BestCheckpoint {
    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        if end.improved {
            write_tensors(&self.path, end.weights)?;
        }
        Ok(Signal::Continue)
    }

    fn on_end(&mut self, _state: &LoopState) -> Result<()> {
        if let Some(copy) = &self.pytorch_copy {
            crate::weights::torch_save::convert_safetensors(&self.path, copy)?;
        }
        match &self.restore_into {
            Some(vars) => checkpoint::load_named(vars, &self.path),
            None => Ok(()),
        }
    }
}

/// Stops after `patience` epochs without a better validation score (0 = off); the
/// last epoch is never "early".
pub struct EarlyStopping {
    pub patience: usize,
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        let s = end.state;
        let stop =
            self.patience > 0 && s.epochs_since_best >= self.patience && s.epochs_done < end.epochs;
        Ok(if stop { Signal::Stop } else { Signal::Continue })
    }
}

/// Weights, optimiser state and loop state in one file after every epoch, atomically
/// (JSON inside the safetensors file, so weights and state can never disagree).
pub struct LastCheckpoint {
    pub path: PathBuf,
}

impl Callback for LastCheckpoint {
    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        let mut named: Vec<(String, Tensor)> = end
            .weights
            .iter()
            .map(|(n, t)| (format!("model.{n}"), t.shallow_clone()))
            .collect();
        named.extend(
            end.optimizer
                .state()
                .into_iter()
                .map(|(n, t)| (format!("optim.{n}"), t)),
        );
        let json = serde_json::to_vec(end.state).expect("loop state serialises");
        named.push(("state_json".into(), Tensor::from_slice(&json)));
        write_tensors(&self.path, &named)?;
        Ok(Signal::Continue)
    }
}

/// Restores weights (into `vars`), optimiser and loop state from a [`LastCheckpoint`].
pub fn resume(
    path: &std::path::Path,
    vars: &[(String, Tensor)],
    opt: &mut Optimizer,
) -> Result<LoopState> {
    let named = read_tensors(path)?;
    checkpoint::copy_named(vars, &named, "model.", path)?;
    let optim: HashMap<String, Tensor> = named
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("optim.")
                .map(|k| (k.to_string(), v.shallow_clone()))
        })
        .collect();
    opt.load_state(&optim)?;
    loop_state_in(&named, path)
}

/// The loop state (epochs, best epoch, the whole history) of a [`LastCheckpoint`], without
/// its weights: what rebuilds a run's `history.csv`.
pub fn read_loop_state(path: &std::path::Path) -> Result<LoopState> {
    loop_state_in(&read_tensors(path)?, path)
}

fn loop_state_in(named: &HashMap<String, Tensor>, path: &std::path::Path) -> Result<LoopState> {
    let json = named
        .get("state_json")
        .ok_or_else(|| Error::data(path, "no `state_json` tensor: not a resume checkpoint"))?;
    let bytes = Vec::<u8>::try_from(json)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::data(path, format!("unreadable trainer state: {e}")))
}

/// TensorBoard event files in `dir` (one per session; TensorBoard merges a folder's
/// files): hyper-parameters and start images before the first step, the epoch's
/// scalars after each epoch, the hparams session's end.
pub struct TensorBoard {
    pub dir: PathBuf,
    pub hparams: Vec<(String, HParam)>,
    /// Images logged at step 0 of a fresh run (e.g. one batch as the model sees it).
    pub start_images: Vec<(String, Tensor)>,
    /// Tag prefix of the task's score (`accuracy`; regression's `neg_rmse`).
    pub score_name: &'static str,
    writer: Option<EventWriter>,
}

impl TensorBoard {
    pub fn new(
        dir: PathBuf,
        hparams: Vec<(String, HParam)>,
        start_images: Vec<(String, Tensor)>,
    ) -> Self {
        TensorBoard {
            dir,
            hparams,
            start_images,
            score_name: "accuracy",
            writer: None,
        }
    }

    /// Logs the task's score under `name/train` and `name/val`.
    pub fn with_score_name(mut self, name: &'static str) -> Self {
        self.score_name = name;
        self
    }
}

impl Callback for TensorBoard {
    fn on_start(&mut self, state: &LoopState) -> Result<()> {
        let mut tb = EventWriter::create(&self.dir)?;
        if state.epochs_done == 0 {
            tb.hparams(&self.hparams)?;
            for (tag, image) in &self.start_images {
                tb.image(tag, 0, image)?;
            }
        }
        self.writer = Some(tb);
        Ok(())
    }

    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        if let Some(tb) = self.writer.as_mut() {
            log_epoch(tb, end.record, self.score_name)?;
        }
        Ok(Signal::Continue)
    }

    fn on_end(&mut self, _state: &LoopState) -> Result<()> {
        if let Some(tb) = self.writer.as_mut() {
            tb.hparams_end(true)?;
            tb.flush()?;
        }
        Ok(())
    }

    fn on_failure(&mut self, _state: &LoopState, _error: &Error) {
        if let Some(tb) = self.writer.as_mut() {
            let _ = tb.hparams_end(false);
        }
    }
}

/// The epoch's scalars (step = epoch number).
fn log_epoch(tb: &mut EventWriter, r: &EpochRecord, score: &str) -> Result<()> {
    let step = r.epoch as i64;
    for (tag, value) in [
        ("loss/train".to_string(), r.train_loss),
        ("loss/val".to_string(), r.val_loss),
        (format!("{score}/train"), r.train_accuracy),
        (format!("{score}/val"), r.val_accuracy),
        ("lr".to_string(), r.lr),
        ("images_per_sec".to_string(), r.images_per_sec),
    ] {
        tb.scalar(&tag, step, value)?;
    }
    tb.flush()
}

/// Passes steps and epochs on to a [`Progress`] (a line per epoch, a bar, nothing).
pub struct ReportProgress<'a>(pub &'a mut dyn Progress);

impl Callback for ReportProgress<'_> {
    fn on_step(&mut self, info: &StepInfo) -> Signal {
        self.0.on_step(info);
        Signal::Continue
    }

    fn on_epoch_end(&mut self, end: &EpochEnd) -> Result<Signal> {
        self.0.on_epoch(end.record, end.epochs);
        Ok(Signal::Continue)
    }
}
