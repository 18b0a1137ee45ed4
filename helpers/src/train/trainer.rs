//! The training loop: the one place in the crate that computes a training loss, calls
//! `backward` and steps an optimiser. It knows nothing of images, text or boxes: a
//! [`Task`] supplies the batches, the loss and a score per batch, and its validation;
//! everything else that varies is a field of [`Trainer`] (precision, clipping,
//! validation cadence, reseeding, step limits, what a NaN does) or a [`Callback`]
//! (checkpoints, early stopping, TensorBoard, run files, progress, the LR range test).
//!
//! Resuming is exact: the state that the loop carries from epoch to epoch is one
//! serialisable [`LoopState`] (saved with the last checkpoint), data order and
//! augmentation depend only on (seed, epoch), and libtorch's generator is reseeded per
//! epoch ([`Trainer::reseed`]), so a resumed run draws what an unbroken one would.
use super::{EpochRecord, History, Optimizer, Schedule};
use crate::backend::autocast::{self, LossScaler};
use crate::backend::Precision;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Device, Tensor};

/// What one training batch gave: the loss to differentiate and a score to report.
#[derive(Debug)]
pub struct StepOutput {
    /// Scalar, differentiable mean loss of the batch.
    pub loss: Tensor,
    /// Examples in the batch (weights the running means).
    pub examples: usize,
    /// Sum over the batch of the task's per-example training score (for classification,
    /// the number of correct predictions); the loop reports `score / examples`.
    pub score: f64,
}

/// A validation pass: mean loss and the score that decides the best epoch (higher is
/// better; classification's accuracy).
#[derive(Debug, Clone, Copy)]
pub struct Validation {
    pub loss: f64,
    pub score: f64,
}

/// What a task gives the loop. Image classification implements it today
/// (`tasks::image::ImageClassification`); each further track implements the same five
/// methods:
///
/// | task | `Batch` | loss | score | `validate` |
/// |---|---|---|---|---|
/// | image classification | images, labels | cross-entropy (mixup/CutMix) | correct | val accuracy |
/// | text classification | token ids + lengths, labels | cross-entropy | correct | val accuracy or macro-F1 |
/// | regression | features or windows, targets | MSE / Huber | −squared error | −val RMSE |
/// | detection | images, boxes per image | focal + box (GIoU) + centre-ness | −loss | val mAP@0.5 |
pub trait Task {
    /// One training batch, as the task's data source yields it.
    type Batch;

    /// The batches of `epoch`, in an order fixed by (seed, epoch) so resuming replays them.
    fn train_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = Self::Batch> + '_>;

    /// Batches per epoch.
    fn steps_per_epoch(&self) -> usize;

    /// Called before the first batch of `epoch` (e.g. to seed a per-epoch batch mixer).
    fn begin_epoch(&self, _epoch: usize) {}

    /// Forward pass and loss of one batch, in training mode. Runs inside the loop's
    /// autocast region; must not call `backward`.
    fn training_step(&self, batch: Self::Batch) -> Result<StepOutput>;

    /// Loss and score on held-out data, in evaluation mode; `None` when there is none.
    fn validate(&self) -> Option<Validation>;

    /// Every tensor a checkpoint holds (parameters and buffers), by name.
    fn weights(&self) -> Vec<(String, Tensor)>;

    /// Where the model lives (autocast is per device type).
    fn device(&self) -> Device;
}

/// What the loop carries from epoch to epoch; saved with the last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub epochs_done: usize,
    pub global_step: usize,
    /// Best validation score so far (−1, and `best_epoch` 0, before the first validation).
    pub best_val_accuracy: f64,
    pub best_epoch: usize,
    pub epochs_since_best: usize,
    pub stopped_early: bool,
    pub train_seconds: f64,
    pub schedule: Schedule,
    pub history: History,
    /// fp16 loss scaling, carried across epochs and resumes.
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
    /// The precision the run computes in, so a resumed run keeps `auto`'s choice
    /// (checkpoints from before it was recorded trained in fp32).
    #[serde(default = "fp32")]
    pub precision: Precision,
}

fn fp32() -> Precision {
    Precision::Fp32
}

impl LoopState {
    /// The state before the first step, for `schedule` and `precision`.
    pub fn new(schedule: Schedule, precision: Precision) -> LoopState {
        LoopState {
            epochs_done: 0,
            global_step: 0,
            best_val_accuracy: -1.0,
            best_epoch: 0,
            epochs_since_best: 0,
            stopped_early: false,
            train_seconds: 0.0,
            schedule,
            history: History::default(),
            loss_scaler: (precision == Precision::Fp16).then(LossScaler::default),
            precision,
        }
    }
}

/// Where the loop is, after a step.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// 1-based epoch and step within the epoch.
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps: usize,
    /// Steps taken since the run began (1 after the first).
    pub global_step: usize,
    /// This batch's loss, its examples and the LR it was stepped with.
    pub batch_loss: f64,
    pub batch_examples: usize,
    pub lr: f64,
    /// Running means over the epoch so far.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_sec: f64,
}

/// What a callback sees at the end of an epoch, after the loop's own bookkeeping.
pub struct EpochEnd<'a> {
    pub record: &'a EpochRecord,
    pub state: &'a LoopState,
    /// The run's epoch budget.
    pub epochs: usize,
    /// True when this epoch's validation score is the best so far.
    pub improved: bool,
    pub optimizer: &'a Optimizer,
    /// The task's [`Task::weights`] after this epoch.
    pub weights: &'a [(String, Tensor)],
}

/// A callback's answer: go on, or stop training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Continue,
    Stop,
}

/// Something that acts at fixed points of the loop. Every method has a default that does
/// nothing, so a callback implements only what it needs.
pub trait Callback {
    /// Before the first epoch of this call (also when resuming).
    fn on_start(&mut self, _state: &LoopState) -> Result<()> {
        Ok(())
    }
    /// After each optimiser step; `Stop` ends training at once (no epoch end).
    fn on_step(&mut self, _info: &StepInfo) -> Signal {
        Signal::Continue
    }
    /// After each epoch; `Stop` marks the run stopped early (later callbacks see it).
    fn on_epoch_end(&mut self, _end: &EpochEnd) -> Result<Signal> {
        Ok(Signal::Continue)
    }
    /// When the run is complete: every epoch done, or stopped early.
    fn on_end(&mut self, _state: &LoopState) -> Result<()> {
        Ok(())
    }
    /// When a training step failed (e.g. a non-finite loss), before the error returns.
    fn on_failure(&mut self, _state: &LoopState, _error: &Error) {}
}

/// What a non-finite loss does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNonFinite {
    /// Stop with [`Error::NonFinite`] (training).
    Fail,
    /// End training quietly, before that step (the LR range test, which looks for it).
    Stop,
}

/// How a call of [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch done.
    Finished,
    /// A callback stopped it at an epoch end (early stopping).
    StoppedEarly,
    /// `stop_after_epochs` reached in this call: resumable.
    Paused,
    /// A step limit, a callback's step signal or a non-finite loss under
    /// [`OnNonFinite::Stop`] ended it mid-epoch.
    Stopped,
}

/// The loop's settings; see the module notes.
#[derive(Debug, Clone)]
pub struct Trainer {
    pub epochs: usize,
    /// Autocast arithmetic of the forward pass (fp16 adds dynamic loss scaling).
    pub precision: Precision,
    /// Clip the global gradient norm to this; 0 = off.
    pub grad_clip: f64,
    /// Validate after every this many epochs and after the last; 0 = never (the
    /// record's validation fields are NaN and no epoch counts as best).
    pub validate_every: usize,
    /// Reseed libtorch's generator (dropout) per epoch from this seed, so a resumed run
    /// draws the masks an unbroken one would; `None` leaves the generator alone.
    pub reseed: Option<u64>,
    /// End after this many optimiser steps in total.
    pub max_steps: Option<usize>,
    pub on_non_finite: OnNonFinite,
    /// Return (as if killed) after this many epochs in this call; for tests of resuming.
    pub stop_after_epochs: Option<usize>,
}

impl Trainer {
    /// `epochs` epochs in fp32, validating every epoch, failing on a non-finite loss.
    pub fn new(epochs: usize) -> Trainer {
        Trainer {
            epochs,
            precision: Precision::Fp32,
            grad_clip: 0.0,
            validate_every: 1,
            reseed: None,
            max_steps: None,
            on_non_finite: OnNonFinite::Fail,
            stop_after_epochs: None,
        }
    }

    /// Trains `task` with `opt` from `state` until the run is complete, paused or
    /// stopped, telling `callbacks` (in order) at each point.
    pub fn run<T: Task>(
        &self,
        task: &T,
        opt: &mut Optimizer,
        state: &mut LoopState,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<Outcome> {
        for cb in callbacks.iter_mut() {
            cb.on_start(state)?;
        }
        let mut ran = 0;
        while state.epochs_done < self.epochs
            && !state.stopped_early
            && self.stop_after_epochs.is_none_or(|n| ran < n)
        {
            if self.epoch(task, opt, state, callbacks)? == Signal::Stop {
                return Ok(Outcome::Stopped);
            }
            ran += 1;
        }
        if state.epochs_done < self.epochs && !state.stopped_early {
            return Ok(Outcome::Paused);
        }
        for cb in callbacks.iter_mut() {
            cb.on_end(state)?;
        }
        Ok(if state.stopped_early {
            Outcome::StoppedEarly
        } else {
            Outcome::Finished
        })
    }

    /// One epoch: training steps, validation if due, bookkeeping, callbacks.
    fn epoch<T: Task>(
        &self,
        task: &T,
        opt: &mut Optimizer,
        state: &mut LoopState,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<Signal> {
        let epoch = state.epochs_done;
        if let Some(seed) = self.reseed {
            tch::manual_seed(seed as i64 + 1_000_003 * (epoch as i64 + 1));
        }
        let started = Instant::now();
        task.begin_epoch(epoch);
        let pass = match self.train_pass(task, opt, state, callbacks) {
            Ok(pass) => pass,
            Err(e) => {
                for cb in callbacks.iter_mut() {
                    cb.on_failure(state, &e);
                }
                return Err(e);
            }
        };
        if pass.stopped {
            return Ok(Signal::Stop);
        }
        let train_secs = started.elapsed().as_secs_f64();
        let val = self
            .validation_due(epoch)
            .then(|| autocast::autocast(task.device(), self.precision, || task.validate()))
            .flatten();
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: pass.mean_loss(),
            train_accuracy: pass.mean_score(),
            val_loss: val.map_or(f64::NAN, |v| v.loss),
            val_accuracy: val.map_or(f64::NAN, |v| v.score),
            lr: pass.lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_sec: pass.examples as f64 / train_secs.max(1e-9),
        };
        let improved = record_epoch(state, &record);
        let weights = task.weights();
        for cb in callbacks.iter_mut() {
            let end = EpochEnd {
                record: &record,
                state,
                epochs: self.epochs,
                improved,
                optimizer: opt,
                weights: &weights,
            };
            if cb.on_epoch_end(&end)? == Signal::Stop {
                state.stopped_early = true;
            }
        }
        Ok(Signal::Continue)
    }

    fn validation_due(&self, epoch: usize) -> bool {
        self.validate_every > 0
            && ((epoch + 1).is_multiple_of(self.validate_every) || epoch + 1 == self.epochs)
    }

    /// One pass over the epoch's training batches.
    fn train_pass<T: Task>(
        &self,
        task: &T,
        opt: &mut Optimizer,
        state: &mut LoopState,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<Pass> {
        let mut pass = Pass::default();
        let (started, steps) = (Instant::now(), task.steps_per_epoch());
        // Loss scaling must see every trainable tensor's gradient.
        let params: Vec<Tensor> = match state.loss_scaler {
            Some(_) => opt.tensors(),
            None => Vec::new(),
        };
        for (step, batch) in task.train_batches(state.epochs_done).enumerate() {
            pass.lr = state.schedule.lr(state.global_step);
            opt.zero_grad();
            let out =
                autocast::autocast(task.device(), self.precision, || task.training_step(batch))?;
            let loss = out.loss.double_value(&[]);
            if !loss.is_finite() {
                if self.on_non_finite == OnNonFinite::Stop {
                    pass.stopped = true;
                    return Ok(pass);
                }
                return Err(Error::NonFinite {
                    epoch: state.epochs_done + 1,
                    step: step + 1,
                    loss,
                    lr: pass.lr,
                    best_epoch: state.best_epoch,
                });
            }
            self.backward_and_step(opt, state, &params, &out.loss, pass.lr);
            state.global_step += 1;
            pass.add(loss, &out);
            let info = StepInfo {
                epoch: state.epochs_done + 1,
                epochs: self.epochs,
                step: step + 1,
                steps,
                global_step: state.global_step,
                batch_loss: loss,
                batch_examples: out.examples,
                lr: pass.lr,
                loss: pass.mean_loss(),
                accuracy: pass.mean_score(),
                images_per_sec: pass.examples as f64 / started.elapsed().as_secs_f64(),
            };
            let signal = notify_step(callbacks, &info);
            if signal == Signal::Stop || self.max_steps.is_some_and(|m| state.global_step >= m) {
                pass.stopped = true;
                return Ok(pass);
            }
        }
        Ok(pass)
    }

    /// Gradients and the optimiser step; with fp16 loss scaling, a step whose gradients
    /// overflowed is skipped (and the scale lowered), as PyTorch's `GradScaler` does.
    fn backward_and_step(
        &self,
        opt: &mut Optimizer,
        state: &mut LoopState,
        params: &[Tensor],
        loss: &Tensor,
        lr: f64,
    ) {
        match state.loss_scaler.as_mut() {
            Some(scaler) => {
                scaler.scale(loss).backward();
                if !scaler.unscale_and_update(params) {
                    return;
                }
            }
            None => loss.backward(),
        }
        if self.grad_clip > 0.0 {
            opt.clip_grad_norm(self.grad_clip);
        }
        opt.step(lr);
    }
}

/// Gradients of one batch's training loss, without an optimiser step (for the
/// gradient-flow sanity check): added to the tensors' gradients, which the caller
/// zeroes before and reads after. Returns the loss.
pub fn gradients_of<T: Task>(task: &T, batch: T::Batch) -> Result<f64> {
    let out = task.training_step(batch)?;
    out.loss.backward();
    Ok(out.loss.double_value(&[]))
}

/// Tells every callback about a step (all of them, even after one asks to stop).
fn notify_step(callbacks: &mut [&mut dyn Callback], info: &StepInfo) -> Signal {
    let mut signal = Signal::Continue;
    for cb in callbacks.iter_mut() {
        if cb.on_step(info) == Signal::Stop {
            signal = Signal::Stop;
        }
    }
    signal
}

/// Book-keeping after an epoch: history, schedule, best score. True when it improved.
fn record_epoch(state: &mut LoopState, record: &EpochRecord) -> bool {
    state.epochs_done += 1;
    state.train_seconds += record.seconds;
    state.history.epochs.push(record.clone());
    state.schedule.on_epoch_end(record.val_loss);
    // Scores may be negative (regression's −RMSE): the first validated epoch is always
    // the best so far, whatever the initial −1 says.
    let improved = record.val_accuracy.is_finite()
        && (state.best_epoch == 0 || record.val_accuracy > state.best_val_accuracy);
    if improved {
        state.best_val_accuracy = record.val_accuracy;
        state.best_epoch = record.epoch;
        state.epochs_since_best = 0;
    } else {
        state.epochs_since_best += 1;
    }
    improved
}

/// Sums over one pass (so far).
#[derive(Debug, Default)]
struct Pass {
    loss_sum: f64,
    score_sum: f64,
    examples: usize,
    /// LR of the last step.
    lr: f64,
    /// Ended mid-epoch (step limit, a callback, a tolerated non-finite loss).
    stopped: bool,
}

impl Pass {
    fn add(&mut self, loss: f64, out: &StepOutput) {
        self.loss_sum += loss * out.examples as f64;
        self.score_sum += out.score;
        self.examples += out.examples;
    }

    /// Mean loss per example.
    fn mean_loss(&self) -> f64 {
        self.loss_sum / self.examples.max(1) as f64
    }

    /// Mean training score per example.
    fn mean_score(&self) -> f64 {
        self.score_sum / self.examples.max(1) as f64
    }
}
