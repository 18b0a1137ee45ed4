//! The training loop: seeded, checkpointed every epoch, resumable bit for bit, stopped
//! by a NaN guard or early stopping, ending with the best weights restored and evaluated.
//!
//! Optional per batch: mixup/CutMix ([`BatchMixer`], seeded from the epoch, so a resumed
//! run mixes as an unbroken one) and, on CUDA, mixed precision ([`amp`]: autocast to
//! bf16/fp16, dynamic loss scaling for fp16) and channels-last weights.
use super::checkpoint::{self, read_tensors, write_tensors};
use super::probe::{self, EmbeddingCache};
use super::{
    EpochRecord, History, Optimizer, PrintEpochs, Progress, Schedule, StepInfo, TrainedRun,
};
use crate::config::{Precision, RunConfig};
use crate::data::augment::BatchMixer;
use crate::data::{DataLoaders, Dataset, Loader, Split};
use crate::evaluate::{predict, predict_embeddings};
use crate::log::{EventWriter, HParam};
use crate::metrics::Metrics;
use crate::models::{self, Model};
use crate::report::versions;
use crate::run::{Meta, RunDir, Status};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

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

impl Existing {
    /// `Force` when `LAB_FRESH=1` (retrain everything, e.g. to check that a report
    /// reproduces from scratch), else `Auto`.
    pub fn from_env() -> Existing {
        if std::env::var("LAB_FRESH").is_ok_and(|v| v == "1") {
            Existing::Force
        } else {
            Existing::Auto
        }
    }
}

/// Options of [`fit_with`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Folder holding run directories.
    pub root: PathBuf,
    pub existing: Existing,
    /// Stop (as if killed) after this many epochs in this call; for tests of resuming.
    pub stop_after_epochs: Option<usize>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            root: crate::run::runs_root(),
            existing: Existing::from_env(),
            stop_after_epochs: None,
        }
    }
}

/// Trainer state saved with the last checkpoint (JSON inside the safetensors file, so
/// weights and state can never disagree).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    epochs_done: usize,
    global_step: usize,
    best_val_accuracy: f64,
    best_epoch: usize,
    epochs_since_best: usize,
    stopped_early: bool,
    train_seconds: f64,
    schedule: Schedule,
    history: History,
    /// fp16 loss scaling, carried across epochs and resumes.
    #[serde(default)]
    loss_scaler: Option<amp::LossScaler>,
}

/// Trains `cfg` on `data` into `saved_models/<name>/` (see [`crate::run::runs_root`]),
/// printing a line per epoch; reuses the run when it already finished with the same
/// config (unless `LAB_FRESH=1`).
pub fn fit(cfg: &RunConfig, data: &Dataset) -> Result<TrainedRun> {
    fit_with(cfg, data, &FitOptions::default(), &mut PrintEpochs)
}

/// [`fit`] with explicit options and progress reporting.
pub fn fit_with(
    cfg: &RunConfig,
    data: &Dataset,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<TrainedRun> {
    cfg.validate()?;
    let run = RunDir::at(opts.root.join(&cfg.name));
    let start = decide_start(&run, cfg, opts.existing)?;
    if start == Start::Reuse {
        progress.on_message(&format!(
            "{}: finished run with the same config found; reusing it",
            run.path.display()
        ));
        let reused = TrainedRun::load(&run.path, data)?;
        // Replay the saved log, so a report shows the same lines whether it trained now or not.
        for record in &reused.history.epochs {
            progress.on_epoch(record, cfg.train.epochs);
        }
        return Ok(reused);
    }
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    let device = cfg.checked_device()?;
    let precision = effective_precision(cfg, device, progress)?;
    let split = match start {
        Start::Resume => Split::load(&run.file("split.json"))?,
        _ => Split::stratified(
            &data.train.label_vec(),
            cfg.data.val_fraction,
            cfg.data.train_limit,
            cfg.seed,
        ),
    };
    let loaders = DataLoaders::with_split(
        data,
        &cfg.data,
        split,
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        cfg.seed,
        device,
    );
    tch::manual_seed(cfg.seed as i64);
    let model = models::build(
        &cfg.model,
        data.image_shape(),
        data.num_classes() as i64,
        device,
    )?;
    let mut model = model;
    if device.is_cuda() && cfg.model.channels_last {
        // CPU models are built channels-last already; on CUDA it is asked for.
        model.channels_last = true;
        crate::models::memory_format::convert_conv_weights(&model);
    }
    model.set_input_stats(&loaders.norm);
    let mut opt = Optimizer::new(&cfg.train, model.trainable_named());
    scale_backbone_lr(&mut opt, &model, cfg.model.backbone_lr_scale);
    let cache = probe_cache(cfg, data, &model, &loaders, &opts.root, progress)?;
    let mut state = match start {
        Start::Resume => resume_state(&run, &model, &mut opt, progress)?,
        _ => {
            run.write_config(cfg)?;
            loaders.split.save(&run.file("split.json"))?;
            LoopState::new(cfg, loaders.train.num_batches(), precision)
        }
    };
    let ctx = Ctx {
        cfg,
        run: &run,
        model: &model,
        loaders: &loaders,
        cache: cache.as_ref(),
        precision,
    };
    train_epochs(&ctx, &mut opt, &mut state, opts.stop_after_epochs, progress)?;
    if state.epochs_done < cfg.train.epochs && !state.stopped_early {
        // Stopped on request (as a killed run would): leave it resumable.
        return TrainedRun::partial(run, cfg, model, loaders, state.history);
    }
    finish(ctx, &state, data)
}

/// Borrowed pieces of one training session.
struct Ctx<'a> {
    cfg: &'a RunConfig,
    run: &'a RunDir,
    model: &'a Model,
    loaders: &'a DataLoaders,
    /// Embeddings of a linear probe, when the frozen backbone's outputs are cached.
    cache: Option<&'a EmbeddingCache>,
    /// Arithmetic of the forward pass (fp32 on CPU whatever the config says).
    precision: Precision,
}

impl Ctx<'_> {
    /// Predictions on the validation or test split, from cached embeddings if any.
    fn predict_split(&self, test: bool) -> crate::evaluate::Predictions {
        let loader = if test {
            &self.loaders.test
        } else {
            &self.loaders.val
        };
        match self.cache {
            Some(c) => {
                let emb = if test { &c.test } else { &c.val };
                predict_embeddings(self.model, emb, loader.labels())
            }
            None => predict(self.model, loader),
        }
    }

    /// The epoch's training batches: (inputs, labels), where inputs are normalised
    /// images, or the cached embeddings of those images for a linear probe.
    fn training_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = (Tensor, Tensor)> + '_> {
        let loader = &self.loaders.train;
        match self.cache {
            Some(c) => Box::new(loader.batch_indices(epoch).into_iter().map(move |idx| {
                let pos: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
                let pos = Tensor::from_slice(&pos).to_device(c.train.device());
                let labels: Vec<i64> = idx.iter().map(|&i| loader.labels()[i]).collect();
                let y = Tensor::from_slice(&labels).to_device(c.train.device());
                (c.train.index_select(0, &pos), y)
            })),
            None => Box::new(loader.batches(epoch)),
        }
    }

    fn forward_train(&self, x: &Tensor) -> Tensor {
        match self.cache {
            Some(_) => self.model.head_from_embedding(x, true),
            None => self.model.forward_t(x, true),
        }
    }
}

/// A linear probe's cached embeddings, when the whole backbone is frozen and every epoch
/// would feed it the same pixels (no augmentation, no mixing); `None` otherwise.
fn probe_cache(
    cfg: &RunConfig,
    data: &Dataset,
    model: &Model,
    loaders: &DataLoaders,
    root: &std::path::Path,
    progress: &mut dyn Progress,
) -> Result<Option<EmbeddingCache>> {
    let mixes = cfg.train.mixup_alpha > 0.0 || cfg.train.cutmix_alpha > 0.0;
    if !model.is_linear_probe() || loaders.train.augments() || mixes {
        return Ok(None);
    }
    progress.on_message("linear probe: embedding every split once with the frozen backbone");
    let cache = probe::embeddings(root, cfg, data, model, loaders)?;
    let how = if cache.reused {
        "cached"
    } else {
        "computed now"
    };
    progress.on_message(&format!(
        "embeddings {:?} ({how}, {:.1} s to compute)",
        cache.train.size(),
        cache.seconds
    ));
    Ok(Some(cache))
}

/// The precision training will use: the configured one on CUDA, fp32 on the CPU (bf16
/// there is many times slower without native support, and fp16 autocast is CUDA's).
fn effective_precision(
    cfg: &RunConfig,
    device: Device,
    progress: &mut dyn Progress,
) -> Result<Precision> {
    let asked = cfg.train.precision;
    if asked == Precision::Fp32 {
        return Ok(asked);
    }
    if !device.is_cuda() {
        progress.on_message(&format!(
            "train.precision = {asked:?} applies on CUDA only; training in fp32 on the CPU"
        ));
        return Ok(Precision::Fp32);
    }
    if !amp::available() {
        return Err(Error::config(
            "train.precision",
            "libtorch's autocast functions were not found in this process; use \"fp32\"",
        ));
    }
    Ok(asked)
}

/// Applies `scale` to the learning rate of every trainable weight outside the classifier.
fn scale_backbone_lr(opt: &mut Optimizer, model: &Model, scale: f64) {
    if scale == 1.0 {
        return;
    }
    for (name, _) in &model.layers[..=model.features_end] {
        opt.set_lr_scale(&format!("{name}."), scale);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Start {
    Fresh,
    Resume,
    Reuse,
}

/// Chooses between a fresh start, a resume and reuse; refuses to overwrite silently.
fn decide_start(run: &RunDir, cfg: &RunConfig, existing: Existing) -> Result<Start> {
    if !run.exists() {
        return Ok(Start::Fresh);
    }
    if existing == Existing::Force {
        run.wipe()?;
        return Ok(Start::Fresh);
    }
    let saved = run.config()?;
    if saved.hash() != cfg.hash() {
        return Err(Error::Run {
            path: run.path.clone(),
            reason: format!(
                "holds a run of another config (differing keys: {}); choose another `name` or pass --force to replace it",
                saved.diff(cfg).join(", ")
            ),
        });
    }
    let finished = run
        .meta()
        .map(|m| m.status == Status::Finished)
        .unwrap_or(false);
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

impl LoopState {
    fn new(cfg: &RunConfig, steps_per_epoch: usize, precision: Precision) -> LoopState {
        LoopState {
            epochs_done: 0,
            global_step: 0,
            best_val_accuracy: -1.0,
            best_epoch: 0,
            epochs_since_best: 0,
            stopped_early: false,
            train_seconds: 0.0,
            schedule: Schedule::new(&cfg.train, steps_per_epoch),
            history: History::default(),
            loss_scaler: (precision == Precision::Fp16).then(amp::LossScaler::default),
        }
    }
}

/// Restores weights, optimiser and loop state from the last checkpoint.
fn resume_state(
    run: &RunDir,
    model: &Model,
    opt: &mut Optimizer,
    progress: &mut dyn Progress,
) -> Result<LoopState> {
    let path = run.last_checkpoint();
    let named = read_tensors(&path)?;
    checkpoint::copy_into(model, &named, "model.", &path)?;
    let optim: std::collections::HashMap<String, Tensor> = named
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("optim.")
                .map(|k| (k.to_string(), v.shallow_clone()))
        })
        .collect();
    opt.load_state(&optim)?;
    let json = named
        .get("state_json")
        .ok_or_else(|| Error::data(&path, "no `state_json` tensor: not a resume checkpoint"))?;
    let bytes = Vec::<u8>::try_from(json)?;
    let state: LoopState = serde_json::from_slice(&bytes)
        .map_err(|e| Error::data(&path, format!("unreadable trainer state: {e}")))?;
    progress.on_message(&format!(
        "{}: resuming after epoch {}",
        run.path.display(),
        state.epochs_done
    ));
    Ok(state)
}

/// Writes weights, optimiser state and loop state into one file, atomically.
fn save_last(ctx: &Ctx, opt: &Optimizer, state: &LoopState) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = checkpoint::model_tensors(ctx.model)
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t))
        .collect();
    named.extend(
        opt.state()
            .into_iter()
            .map(|(n, t)| (format!("optim.{n}"), t)),
    );
    let json = serde_json::to_vec(state).expect("state serialises");
    named.push(("state_json".into(), Tensor::from_slice(&json)));
    write_tensors(&ctx.run.last_checkpoint(), &named)
}

/// Runs epochs until done, early-stopped, or `stop_after` epochs in this call.
fn train_epochs(
    ctx: &Ctx,
    opt: &mut Optimizer,
    state: &mut LoopState,
    stop_after: Option<usize>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let (cfg, mut ran) = (ctx.cfg, 0);
    // One event file per session; TensorBoard merges the files of a run's logs/ folder.
    let mut tb = EventWriter::create(&ctx.run.file("logs"))?;
    if state.epochs_done == 0 {
        log_run_start(ctx, &mut tb)?;
    }
    while state.epochs_done < cfg.train.epochs
        && !state.stopped_early
        && stop_after.is_none_or(|n| ran < n)
    {
        let epoch = state.epochs_done;
        // Dropout draws from libtorch's generator: reseed per epoch so a resumed run
        // draws the same masks as an unbroken one.
        tch::manual_seed(cfg.seed as i64 + 1_000_003 * (epoch as i64 + 1));
        let started = Instant::now();
        let (train_loss, train_acc, lr, images) = match train_one_epoch(ctx, opt, state, progress) {
            Ok(v) => v,
            Err(e) => {
                let _ = tb.hparams_end(false);
                return Err(mark_failed(ctx, state, e));
            }
        };
        let train_secs = started.elapsed().as_secs_f64();
        let val = ctx.predict_split(false);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            train_accuracy: train_acc,
            val_loss: val.mean_loss(),
            val_accuracy: val.accuracy(),
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_sec: images as f64 / train_secs,
        };
        end_epoch(ctx, state, &record)?;
        log_epoch(&mut tb, &record)?;
        save_last(ctx, opt, state)?;
        write_progress(ctx, state)?;
        progress.on_epoch(&record, cfg.train.epochs);
        ran += 1;
    }
    if state.epochs_done == cfg.train.epochs || state.stopped_early {
        tb.hparams_end(true)?;
        tb.flush()?;
    }
    Ok(())
}

/// What TensorBoard shows of a run before its first step: the hyper-parameters (every
/// config key) and one training batch as the model sees it.
fn log_run_start(ctx: &Ctx, tb: &mut EventWriter) -> Result<()> {
    let hparams: Vec<(String, HParam)> = ctx
        .cfg
        .flat_values()
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::Float(x) => HParam::Number(x),
                toml::Value::Integer(i) => HParam::Number(i as f64),
                toml::Value::Boolean(b) => HParam::Bool(b),
                toml::Value::String(s) => HParam::Text(s),
                other => HParam::Text(other.to_string()),
            };
            (k, value)
        })
        .collect();
    tb.hparams(&hparams)?;
    if let Some((x, _)) = ctx.loaders.train.batches(0).next() {
        let n = x.size()[0].min(16);
        let shown = ctx
            .loaders
            .norm
            .denormalize(&x.narrow(0, 0, n).to_device(tch::Device::Cpu));
        tb.image("train/augmented_batch", 0, &crate::plot::tile(&shown, 4))?;
    }
    Ok(())
}

/// The epoch's scalars for TensorBoard (step = epoch number).
fn log_epoch(tb: &mut EventWriter, r: &EpochRecord) -> Result<()> {
    let step = r.epoch as i64;
    for (tag, value) in [
        ("loss/train", r.train_loss),
        ("loss/val", r.val_loss),
        ("accuracy/train", r.train_accuracy),
        ("accuracy/val", r.val_accuracy),
        ("lr", r.lr),
        ("images_per_sec", r.images_per_sec),
    ] {
        tb.scalar(tag, step, value)?;
    }
    tb.flush()
}

/// Book-keeping after an epoch: history, schedule, best checkpoint, early stopping.
fn end_epoch(ctx: &Ctx, state: &mut LoopState, record: &EpochRecord) -> Result<()> {
    state.epochs_done += 1;
    state.train_seconds += record.seconds;
    state.history.epochs.push(record.clone());
    state.schedule.on_epoch_end(record.val_loss);
    if record.val_accuracy > state.best_val_accuracy {
        state.best_val_accuracy = record.val_accuracy;
        state.best_epoch = record.epoch;
        state.epochs_since_best = 0;
        checkpoint::save_model(ctx.model, &ctx.run.best_checkpoint())?;
    } else {
        state.epochs_since_best += 1;
    }
    let patience = ctx.cfg.train.early_stopping_patience;
    state.stopped_early = patience > 0
        && state.epochs_since_best >= patience
        && state.epochs_done < ctx.cfg.train.epochs;
    Ok(())
}

/// One pass over the training loader; returns (mean loss, accuracy, last LR, images).
/// With mixing on, the loss is the mixed one and accuracy counts each example's
/// dominant label.
fn train_one_epoch(
    ctx: &Ctx,
    opt: &mut Optimizer,
    state: &mut LoopState,
    progress: &mut dyn Progress,
) -> Result<(f64, f64, f64, usize)> {
    let (cfg, loader): (&RunConfig, &Loader) = (ctx.cfg, &ctx.loaders.train);
    let (mut loss_sum, mut correct, mut seen, mut lr) = (0.0, 0i64, 0usize, 0.0);
    let started = Instant::now();
    let steps = loader.num_batches();
    let mut mixer = BatchMixer::new(
        cfg.train.mixup_alpha,
        cfg.train.cutmix_alpha,
        cfg.seed,
        state.epochs_done,
    );
    let params: Vec<Tensor> = match state.loss_scaler {
        Some(_) => ctx
            .model
            .trainable_named()
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
        None => Vec::new(),
    };
    for (step, (x, y)) in ctx.training_batches(state.epochs_done).enumerate() {
        lr = state.schedule.lr(state.global_step);
        opt.zero_grad();
        let s = x.size();
        let plan = mixer
            .as_mut()
            .map(|m| m.plan(s[0] as usize, s[2] as usize, s[3] as usize));
        let (logits, loss) = amp::autocast(ctx.model.device(), ctx.precision, || {
            let x = match &plan {
                Some(p) => p.apply(&x),
                None => x.shallow_clone(),
            };
            let logits = ctx.forward_train(&x);
            let smoothing = cfg.train.label_smoothing;
            let loss = match &plan {
                Some(p) => p.loss(&logits, &y, smoothing),
                None => {
                    logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, smoothing)
                }
            };
            (logits, loss)
        });
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(Error::NonFinite {
                epoch: state.epochs_done + 1,
                step: step + 1,
                loss: loss_value,
                lr,
            });
        }
        backward_and_step(ctx, opt, state, &params, &loss, lr);
        state.global_step += 1;
        let batch = y.size()[0] as usize;
        loss_sum += loss_value * batch as f64;
        let target = plan
            .as_ref()
            .map_or_else(|| y.shallow_clone(), |p| p.dominant_labels(&y));
        correct += logits
            .argmax(-1, false)
            .eq_tensor(&target)
            .sum(Kind::Int64)
            .int64_value(&[]);
        seen += batch;
        progress.on_step(&StepInfo {
            epoch: state.epochs_done + 1,
            epochs: cfg.train.epochs,
            step: step + 1,
            steps,
            loss: loss_sum / seen as f64,
            accuracy: correct as f64 / seen as f64,
            images_per_sec: seen as f64 / started.elapsed().as_secs_f64(),
        });
    }
    Ok((
        loss_sum / seen.max(1) as f64,
        correct as f64 / seen.max(1) as f64,
        lr,
        seen,
    ))
}

/// Gradients and the optimiser step; with fp16 loss scaling, a step whose gradients
/// overflowed is skipped (and the scale lowered), as PyTorch's `GradScaler` does.
fn backward_and_step(
    ctx: &Ctx,
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
    if ctx.cfg.train.grad_clip > 0.0 {
        opt.clip_grad_norm(ctx.cfg.train.grad_clip);
    }
    opt.step(lr);
}

/// Records a failure in meta.json (the best checkpoint stays) and passes the error on.
fn mark_failed(ctx: &Ctx, state: &LoopState, err: Error) -> Error {
    let mut meta = base_meta(ctx, state, Status::Failed);
    meta.message = Some(err.to_string());
    let _ = ctx.run.write_meta(&meta);
    let _ = state.history.save_csv(&ctx.run.file("history.csv"));
    err
}

fn base_meta(ctx: &Ctx, state: &LoopState, status: Status) -> Meta {
    Meta {
        status,
        epochs_done: state.epochs_done,
        best_epoch: state.best_epoch,
        best_val_accuracy: state.best_val_accuracy.max(0.0),
        stopped_early: state.stopped_early,
        seed: ctx.cfg.seed,
        config_hash: ctx.cfg.hash(),
        normalization: ctx.loaders.norm.clone(),
        num_parameters: ctx.model.num_parameters(),
        trainable_parameters: Some(ctx.model.num_trainable()),
        embed_seconds: ctx.cache.map(|c| c.seconds),
        train_seconds: state.train_seconds,
        test_accuracy: None,
        test_macro_f1: None,
        message: None,
        versions: versions(),
    }
}

fn write_progress(ctx: &Ctx, state: &LoopState) -> Result<()> {
    state.history.save_csv(&ctx.run.file("history.csv"))?;
    ctx.run.write_meta(&base_meta(ctx, state, Status::Running))
}

/// Restores the best weights, evaluates them on the test set, writes the report files.
fn finish(ctx: Ctx, state: &LoopState, data: &Dataset) -> Result<TrainedRun> {
    checkpoint::load_model(ctx.model, &ctx.run.best_checkpoint())?;
    let preds = ctx.predict_split(true);
    let test = preds.metrics(&data.classes);
    ctx.run.write_metrics(&test)?;
    let mut meta = base_meta(&ctx, state, Status::Finished);
    meta.test_accuracy = Some(test.accuracy);
    meta.test_macro_f1 = Some(test.macro_avg.f1);
    save_figures(ctx.run, &state.history, &test)?;
    ctx.run.write_meta(&meta)?;
    let (run, config) = (ctx.run.clone(), ctx.cfg.clone());
    let model = rebuild_with_best(ctx.model, &config, data)?;
    Ok(TrainedRun {
        run,
        config,
        model,
        loaders: ctx.loaders.clone(),
        history: state.history.clone(),
        test,
        meta,
        reused: false,
    })
}

/// A model of its own holding the best weights (the training one is borrowed).
fn rebuild_with_best(trained: &Model, cfg: &RunConfig, data: &Dataset) -> Result<Model> {
    let model = models::build(
        &cfg.model,
        data.image_shape(),
        data.num_classes() as i64,
        trained.device(),
    )?;
    let named: std::collections::HashMap<String, Tensor> =
        checkpoint::model_tensors(trained).into_iter().collect();
    checkpoint::copy_into(&model, &named, "", &PathBuf::from("(memory)"))?;
    Ok(model)
}

/// Curves, confusion matrix and per-class F1 into the run directory.
fn save_figures(run: &RunDir, history: &History, test: &Metrics) -> Result<()> {
    history.curves()?.save_in(&run.path)?;
    test.confusion_figure()?.save_in(&run.path)?;
    test.f1_figure()?.save_in(&run.path)?;
    Ok(())
}

/// Mixed precision through libtorch's own autocast: tch 0.26 only switches CUDA autocast
/// on with its default dtype (fp16), so the C++ functions that choose the device and the
/// dtype are looked up by their exported (mangled) names in libtorch_cpu, which every
/// libtorch build has; `DeviceType` and `ScalarType` are `int8_t` enums in C++.
pub(crate) mod amp {
    use crate::config::Precision;
    use crate::report::env::torch_symbol;
    use serde::{Deserialize, Serialize};
    use std::ffi::CStr;
    use std::sync::OnceLock;
    use tch::{Device, Kind, Tensor};

    /// libtorch's autocast functions.
    struct Api {
        set_enabled: extern "C" fn(i8, bool),
        is_enabled: extern "C" fn(i8) -> bool,
        set_dtype: extern "C" fn(i8, i8),
        get_dtype: extern "C" fn(i8) -> i8,
        increment_nesting: extern "C" fn() -> i32,
        decrement_nesting: extern "C" fn() -> i32,
        clear_cache: extern "C" fn(),
    }

    const SET_ENABLED: &CStr = c"_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb";
    const IS_ENABLED: &CStr = c"_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE";
    const SET_DTYPE: &CStr =
        c"_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE";
    const GET_DTYPE: &CStr = c"_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE";
    const INCREMENT: &CStr = c"_ZN2at8autocast17increment_nestingEv";
    const DECREMENT: &CStr = c"_ZN2at8autocast17decrement_nestingEv";
    const CLEAR_CACHE: &CStr = c"_ZN2at8autocast11clear_cacheEv";

    /// c10's `ScalarType` codes.
    const HALF: i8 = 5;
    const BFLOAT16: i8 = 15;

    fn api() -> Option<&'static Api> {
        static API: OnceLock<Option<Api>> = OnceLock::new();
        API.get_or_init(|| {
            // SAFETY: each symbol is the C++ function of the stated signature (checked by
            // the tests against libtorch's behaviour); a missing one disables autocast.
            unsafe {
                Some(Api {
                    set_enabled: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8, bool)>(torch_symbol(SET_ENABLED)?),
                    is_enabled: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8) -> bool>(torch_symbol(IS_ENABLED)?),
                    set_dtype: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8, i8)>(torch_symbol(SET_DTYPE)?),
                    get_dtype: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8) -> i8>(torch_symbol(GET_DTYPE)?),
                    increment_nesting: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn() -> i32>(torch_symbol(INCREMENT)?),
                    decrement_nesting: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn() -> i32>(torch_symbol(DECREMENT)?),
                    clear_cache: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn()>(torch_symbol(CLEAR_CACHE)?),
                })
            }
        })
        .as_ref()
    }

    /// True when libtorch's autocast functions were found.
    pub fn available() -> bool {
        api().is_some()
    }

    fn device_type(device: Device) -> i8 {
        match device {
            Device::Cuda(_) => 1,
            _ => 0,
        }
    }

    /// Restores autocast's previous state when the region ends (even by a panic).
    struct Region {
        api: &'static Api,
        device: i8,
        was_enabled: bool,
        was_dtype: i8,
    }

    impl Drop for Region {
        fn drop(&mut self) {
            let a = self.api;
            // Cached low-precision copies of the weights are stale after the next
            // optimiser step: drop them when the outermost region ends.
            if (a.decrement_nesting)() == 0 {
                (a.clear_cache)();
            }
            (a.set_enabled)(self.device, self.was_enabled);
            (a.set_dtype)(self.device, self.was_dtype);
        }
    }

    /// Runs `f` with autocast to `precision` on `device`'s type; fp32 (or no autocast
    /// functions) runs it as it is. Differentiable ops inside record their casts, so
    /// `backward` is called after the region, as in PyTorch.
    pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
        let dtype = match precision {
            Precision::Fp32 => return f(),
            Precision::Bf16 => BFLOAT16,
            Precision::Fp16 => HALF,
        };
        let Some(a) = api() else { return f() };
        let dev = device_type(device);
        let _region = Region {
            api: a,
            device: dev,
            was_enabled: (a.is_enabled)(dev),
            was_dtype: (a.get_dtype)(dev),
        };
        (a.set_dtype)(dev, dtype);
        (a.set_enabled)(dev, true);
        (a.increment_nesting)();
        f()
    }

    /// Dynamic loss scaling for fp16 (PyTorch's `GradScaler` defaults): the loss is
    /// multiplied by `scale` so small gradients survive fp16; a step with an inf/NaN
    /// gradient is skipped and the scale halved; after 2 000 clean steps it doubles.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct LossScaler {
        pub scale: f64,
        pub clean_steps: usize,
    }

    const GROWTH_INTERVAL: usize = 2000;

    impl Default for LossScaler {
        fn default() -> Self {
            LossScaler {
                scale: 65536.0,
                clean_steps: 0,
            }
        }
    }

    impl LossScaler {
        /// The loss to call `backward` on.
        pub fn scale(&self, loss: &Tensor) -> Tensor {
            loss * self.scale
        }

        /// Divides the gradients of `params` by the scale and updates it; false when a
        /// gradient is not finite (skip this step).
        pub fn unscale_and_update(&mut self, params: &[Tensor]) -> bool {
            let finite = tch::no_grad(|| {
                let mut bad: Option<Tensor> = None;
                for p in params {
                    let mut g = p.grad();
                    if !g.defined() {
                        continue;
                    }
                    let _ = g.g_mul_scalar_(1.0 / self.scale);
                    let b = g.isfinite().logical_not().any();
                    bad = Some(match bad {
                        Some(acc) => acc.logical_or(&b),
                        None => b,
                    });
                }
                bad.is_none_or(|b| b.to_kind(Kind::Int64).int64_value(&[]) == 0)
            });
            if finite {
                self.clean_steps += 1;
                if self.clean_steps >= GROWTH_INTERVAL {
                    self.scale *= 2.0;
                    self.clean_steps = 0;
                }
            } else {
                self.scale = (self.scale * 0.5).max(1.0);
                self.clean_steps = 0;
            }
            finite
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cpu_autocast_runs_matmul_in_bf16_and_restores_state() {
            let a = api().expect("libtorch's autocast symbols are exported");
            let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
            let w = Tensor::ones([3, 4], (Kind::Float, Device::Cpu));
            let before = ((a.is_enabled)(0), (a.get_dtype)(0));
            let y = autocast(Device::Cpu, Precision::Bf16, || x.matmul(&w));
            assert_eq!(y.kind(), Kind::BFloat16);
            assert_eq!(
                ((a.is_enabled)(0), (a.get_dtype)(0)),
                before,
                "state restored"
            );
            assert_eq!(
                x.matmul(&w).kind(),
                Kind::Float,
                "off again after the region"
            );
            let z = autocast(Device::Cpu, Precision::Fp32, || x.matmul(&w));
            assert_eq!(z.kind(), Kind::Float);
        }

        #[test]
        fn cuda_dtype_is_set_and_read_back_without_a_gpu() {
            // The dtype is per device type and thread; setting CUDA's needs no GPU.
            let a = api().unwrap();
            let was = (a.get_dtype)(1);
            (a.set_dtype)(1, BFLOAT16);
            assert_eq!((a.get_dtype)(1), BFLOAT16);
            (a.set_dtype)(1, was);
            assert_eq!(was, HALF, "CUDA autocast defaults to fp16");
        }

        #[test]
        fn loss_scaler_skips_overflow_and_grows_after_clean_steps() {
            let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
            let mut s = LossScaler::default();
            let loss = (&w * &w).sum(Kind::Float);
            s.scale(&loss).backward();
            assert!(s.unscale_and_update(&[w.shallow_clone()]));
            let g = Vec::<f32>::try_from(w.grad()).unwrap();
            assert!(
                (g[0] - 2.0).abs() < 1e-6 && (g[1] - 4.0).abs() < 1e-6,
                "{g:?}"
            );
            let mut grad = w.grad();
            let _ = grad.fill_(f64::INFINITY);
            assert!(!s.unscale_and_update(&[w.shallow_clone()]));
            assert_eq!(s.scale, 32768.0);
            s.clean_steps = GROWTH_INTERVAL - 1;
            let _ = w.grad().zero_();
            assert!(s.unscale_and_update(&[w.shallow_clone()]));
            assert_eq!((s.scale, s.clean_steps), (65536.0, 0));
        }
    }
}
