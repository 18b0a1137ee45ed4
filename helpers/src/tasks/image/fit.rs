//! [`fit`]: a run config trained end to end into its run directory — split, loaders,
//! model, optimiser, the training loop with its callbacks, then the best weights
//! restored, evaluated on the test set and reported. Seeded, checkpointed every epoch,
//! resumable bit for bit, stopped by a NaN guard or early stopping.
use super::probe::{self, EmbeddingCache};
use super::task::{Batches, Held, ImageClassification, Mixing};
use super::trained_run::save_figures;
use super::TrainedRun;
use crate::backend::precision::cached_probe;
use crate::backend::{versions, PrecisionChoice};
use crate::config::RunConfig;
use crate::data::{DataLoaders, DataRecord, Dataset, Loader, Split};
use crate::models::{self, Model};
use crate::run::{decide_start, Meta, RunDir, RunFiles, RunMeta, RunState, Start, Status};
use crate::train::callbacks::{
    self, BestCheckpoint, EarlyStopping, LastCheckpoint, ReportProgress, TensorBoard,
};
use crate::train::tensorboard::HParam;
use crate::train::{
    precision_probe, Callback, LoopState, Optimizer, Outcome, PrintEpochs, Progress, Schedule,
    Trainer,
};
use crate::Result;
use std::path::Path;
use tch::Tensor;

pub use crate::run::FitOptions;

/// Trains `cfg` on `data` into `saved_models/<name>/`, printing a line per epoch; reuses
/// the run when it already finished with the same config.
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
        return reuse(&run, cfg, data, progress);
    }
    let device = run_device(cfg)?;
    refuse_single_class(cfg, data)?;
    let record = DataRecord::of(data);
    if start == Start::Resume {
        check_resumed_data(&run, cfg, &record)?;
    }
    let loaders = loaders_for(&run, start, cfg, data, device)?;
    warn_if_tiny(&loaders, data.num_classes(), progress);
    tch::manual_seed(cfg.seed as i64);
    let mut model = models::build(
        &cfg.model,
        data.image_shape(),
        data.num_classes() as i64,
        device,
    )?;
    model.set_input_stats(&loaders.norm);
    let mut opt = Optimizer::new(&cfg.train, model.trainable_named());
    scale_backbone_lr(&mut opt, &model, cfg.model.backbone_lr_scale);
    let cache = probe_cache(cfg, data, &model, &loaders, &opts.root, progress)?;
    let task = || image_task(cfg, &model, &loaders, cache.as_ref());
    let (mut state, precision) = match start {
        Start::Resume => {
            let state = callbacks::resume(&run.last_checkpoint(), &model.weights(), &mut opt)?;
            let done = state.epochs_done;
            progress.on_message(&format!(
                "{}: resuming after epoch {done}",
                run.path.display()
            ));
            let precision = PrecisionChoice::resumed(cfg.train.precision, state.precision);
            (state, precision)
        }
        _ => {
            run.write_config(cfg)?;
            loaders.split.save(&run.file("split.json"))?;
            let key = probe_key(cfg);
            let precision = PrecisionChoice::choose(cfg.train.precision, device, || {
                cached_probe(&key, || precision_probe::measure(&task()))
            })?;
            let schedule = Schedule::new(&cfg.train, loaders.train.num_batches());
            (LoopState::new(schedule, precision.used), precision)
        }
    };
    progress.on_message(&format!("precision: {}", precision.reason));
    model.precision = precision.used;
    let training = Training {
        cfg,
        run: &run,
        model: &model,
        loaders: &loaders,
        cache: cache.as_ref(),
        precision,
        data: record,
    };
    let outcome = training.train(opts, &mut opt, &mut state, progress)?;
    if outcome == Outcome::Paused {
        // Stopped on request (as a killed run would): leave it resumable.
        return TrainedRun::partial(run, cfg, model, loaders, state.history);
    }
    training.finish(&state, data)
}

/// A resumed run continues on the data it started on (its `meta.json` data record).
fn check_resumed_data(run: &RunDir, cfg: &RunConfig, now: &DataRecord) -> Result<()> {
    if let Ok(meta) = run.meta() {
        meta.check_data(now, &run.path, &cfg.data.dir)?;
    }
    Ok(())
}

/// A classifier needs two classes; with one, every prediction is right and the scores
/// say nothing.
fn refuse_single_class(cfg: &RunConfig, data: &Dataset) -> Result<()> {
    if data.num_classes() >= 2 {
        return Ok(());
    }
    Err(crate::Error::data(
        &cfg.data.dir,
        format!(
            "{} class ({}) found; a classifier needs at least 2 (an image folder needs one \
             sub-folder per class)",
            data.num_classes(),
            data.classes.join(", ")
        ),
    ))
}

/// Fewer than 10 validation or test images per class make accuracy a coin toss: said
/// before training, not discovered in the report.
fn warn_if_tiny(loaders: &DataLoaders, classes: usize, progress: &mut dyn Progress) {
    let (train, val, test) = (loaders.train.len(), loaders.val.len(), loaders.test.len());
    if val.min(test) >= 10 * classes {
        return;
    }
    progress.on_message(&format!(
        "warning: {train} training, {val} validation and {test} test images for {classes} \
         classes — with fewer than 10 per class, accuracies move by whole points from one \
         image to the next; treat them as a smoke test, not a result"
    ));
}

/// The run's device (libtorch's threads set first).
fn run_device(cfg: &RunConfig) -> Result<tch::Device> {
    if cfg.threads > 0 {
        tch::set_num_threads(cfg.threads as i32);
    }
    cfg.checked_device()
}

/// The probe cache's key: the run's config (its hash) on this CPU, libtorch and thread
/// count, so a rerun of the same config on the same machine reuses the verdict.
fn probe_key(cfg: &RunConfig) -> String {
    let v = versions();
    format!(
        "{} | {} | libtorch {} | {} threads",
        cfg.hash(),
        v.cpu_model,
        v.libtorch,
        v.torch_threads
    )
}

/// The image task of a run: its training batches (pixels, or a linear probe's cached
/// embeddings), validation data, label smoothing and mixing.
fn image_task<'a>(
    cfg: &RunConfig,
    model: &'a Model,
    loaders: &'a DataLoaders,
    cache: Option<&'a EmbeddingCache>,
) -> ImageClassification<'a> {
    let batches = match cache {
        Some(c) => Batches::Embeddings(&loaders.train, c),
        None => Batches::Pixels(&loaders.train),
    };
    let t = &cfg.train;
    ImageClassification::new(model, batches)
        .with_validation(held_data(&loaders.val, cache, |c| &c.val))
        .with_label_smoothing(t.label_smoothing)
        .with_mixing(Mixing {
            mixup_alpha: t.mixup_alpha,
            cutmix_alpha: t.cutmix_alpha,
            seed: cfg.seed,
        })
}

/// Loaders on the run's split: the saved one when resuming, else a new stratified one.
fn loaders_for(
    run: &RunDir,
    start: Start,
    cfg: &RunConfig,
    data: &Dataset,
    device: tch::Device,
) -> Result<DataLoaders> {
    let split = match start {
        Start::Resume => Split::load(&run.file("split.json"))?,
        _ => Split::stratified(
            &data.train.label_vec(),
            cfg.data.val_fraction,
            cfg.data.train_limit,
            cfg.seed,
        ),
    };
    let t = &cfg.train;
    Ok(DataLoaders::with_split(
        data,
        &cfg.data,
        split,
        t.batch_size,
        t.eval_batch_size,
        cfg.seed,
        device,
    ))
}

/// A finished run with the same config, loaded; its saved epoch lines replayed, so a
/// report shows the same lines whether it trained now or not.
fn reuse(
    run: &RunDir,
    cfg: &RunConfig,
    data: &Dataset,
    progress: &mut dyn Progress,
) -> Result<TrainedRun> {
    progress.on_message(&format!(
        "{}: finished run with the same config found; reusing it",
        run.path.display()
    ));
    let reused = TrainedRun::load(&run.path, data)?;
    for record in &reused.history.epochs {
        progress.on_epoch(record, cfg.train.epochs);
    }
    Ok(reused)
}

/// Held-out data of `loader`: its pixels, or a linear probe's cached embeddings of it.
fn held_data<'a>(
    loader: &'a Loader,
    cache: Option<&'a EmbeddingCache>,
    cached: fn(&EmbeddingCache) -> &Tensor,
) -> Held<'a> {
    match cache {
        Some(c) => Held::Embeddings(loader, cached(c)),
        None => Held::Pixels(loader),
    }
}

/// Borrowed pieces of one training session.
struct Training<'a> {
    cfg: &'a RunConfig,
    run: &'a RunDir,
    model: &'a Model,
    loaders: &'a DataLoaders,
    /// Embeddings of a linear probe, when the frozen backbone's outputs are cached.
    cache: Option<&'a EmbeddingCache>,
    /// The arithmetic it trains and evaluates in, and why.
    precision: PrecisionChoice,
    /// What it trains on, for `meta.json`.
    data: DataRecord,
}

impl Training<'_> {
    /// The image task over this session's loaders (or the probe's embeddings).
    fn task(&self) -> ImageClassification<'_> {
        image_task(self.cfg, self.model, self.loaders, self.cache)
    }

    /// Held-out data of `loader`: its pixels, or the probe's cached embeddings of it.
    fn held<'b>(&'b self, loader: &'b Loader, cached: fn(&EmbeddingCache) -> &Tensor) -> Held<'b> {
        held_data(loader, self.cache, cached)
    }

    /// The loop with the run's callbacks: best checkpoint (restored at the end), early
    /// stopping, TensorBoard, last checkpoint, meta/history files, progress.
    fn train(
        &self,
        opts: &FitOptions,
        opt: &mut Optimizer,
        state: &mut LoopState,
        progress: &mut dyn Progress,
    ) -> Result<Outcome> {
        let t = &self.cfg.train;
        let mut trainer = Trainer::new(t.epochs);
        trainer.precision = self.precision.used;
        trainer.grad_clip = t.grad_clip;
        trainer.reseed = Some(self.cfg.seed);
        trainer.stop_after_epochs = opts.stop_after_epochs;
        let mut best = BestCheckpoint {
            path: self.run.best_checkpoint(),
            restore_into: Some(self.model.weights()),
            pytorch_copy: Some(self.run.pytorch_checkpoint()),
        };
        let mut early = EarlyStopping {
            patience: t.early_stopping_patience,
        };
        // What TensorBoard shows before the first step; a resumed run logged it already.
        let start_images = match state.epochs_done {
            0 => self.start_images(),
            _ => Vec::new(),
        };
        let mut tb = TensorBoard::new(self.run.file("logs"), self.hparams(), start_images);
        let mut last = LastCheckpoint {
            path: self.run.last_checkpoint(),
        };
        let mut files = RunFiles {
            run: self.run,
            source: self,
        };
        let mut report = ReportProgress(progress);
        let callbacks: &mut [&mut dyn Callback] = &mut [
            &mut best,
            &mut early,
            &mut tb,
            &mut last,
            &mut files,
            &mut report,
        ];
        trainer.run(&self.task(), opt, state, callbacks)
    }

    /// Every config key, as TensorBoard's hyper-parameters.
    fn hparams(&self) -> Vec<(String, HParam)> {
        let values = self.cfg.flat_values().into_iter();
        values.map(|(k, v)| (k, HParam::from_toml(v))).collect()
    }

    /// One training batch as the model sees it (16 images, tiled), for TensorBoard.
    fn start_images(&self) -> Vec<(String, Tensor)> {
        let Some((x, _)) = self.loaders.train.batches(0).next() else {
            return Vec::new();
        };
        let n = x.size()[0].min(16);
        let cpu = x.narrow(0, 0, n).to_device(tch::Device::Cpu);
        let shown = self.loaders.norm.denormalize(&cpu);
        vec![("train/augmented_batch".into(), crate::plot::tile(&shown, 4))]
    }

    fn meta_of(&self, state: &LoopState, status: Status, message: Option<String>) -> Meta {
        Meta {
            status,
            epochs_done: state.epochs_done,
            best_epoch: state.best_epoch,
            best_val_accuracy: state.best_val_accuracy.max(0.0),
            stopped_early: state.stopped_early,
            seed: self.cfg.seed,
            config_hash: self.cfg.hash(),
            normalization: self.loaders.norm.clone(),
            num_parameters: self.model.num_parameters(),
            trainable_parameters: Some(self.model.num_trainable()),
            embed_seconds: self.cache.map(|c| c.seconds),
            train_seconds: state.train_seconds,
            test_accuracy: None,
            test_macro_f1: None,
            message,
            precision: Some(self.precision.clone()),
            data: Some(self.data.clone()),
            versions: versions(),
        }
    }

    /// Evaluates the restored best weights on the test set, writes the report files.
    fn finish(self, state: &LoopState, data: &Dataset) -> Result<TrainedRun> {
        let test_held = self.held(&self.loaders.test, |c| &c.test);
        let test = self.task().predict_held(&test_held).metrics(&data.classes);
        self.run.write_metrics(&test)?;
        let mut meta = self.meta_of(state, Status::Finished, None);
        meta.test_accuracy = Some(test.accuracy);
        meta.test_macro_f1 = Some(test.macro_avg.f1);
        save_figures(self.run, &state.history, &test)?;
        self.run.write_meta(&meta)?;
        let model = with_fresh_store(self.model, self.cfg, data)?;
        Ok(TrainedRun {
            run: self.run.clone(),
            config: self.cfg.clone(),
            model,
            loaders: self.loaders.clone(),
            history: state.history.clone(),
            test,
            state: RunState::of(&meta),
            notes: Vec::new(),
            meta,
            reused: false,
        })
    }
}

/// A linear probe's cached embeddings, when the whole backbone is frozen and every epoch
/// would feed it the same pixels (no augmentation, no mixing); `None` otherwise.
fn probe_cache(
    cfg: &RunConfig,
    data: &Dataset,
    model: &Model,
    loaders: &DataLoaders,
    root: &Path,
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

/// Applies `scale` to the learning rate of every trainable weight outside the classifier.
fn scale_backbone_lr(opt: &mut Optimizer, model: &Model, scale: f64) {
    if scale == 1.0 {
        return;
    }
    for (name, _) in &model.layers[..=model.features_end] {
        opt.set_lr_scale(&format!("{name}."), scale);
    }
}

/// The trained weights in a model of their own (a new VarStore), so the returned run
/// shares no tensor with the optimiser and loop of this call.
fn with_fresh_store(trained: &Model, cfg: &RunConfig, data: &Dataset) -> Result<Model> {
    let mut model = models::build(
        &cfg.model,
        data.image_shape(),
        data.num_classes() as i64,
        trained.device(),
    )?;
    let named: std::collections::HashMap<String, Tensor> = trained.weights().into_iter().collect();
    model.copy_from(&named, "", Path::new("(memory)"))?;
    model.precision = trained.precision;
    Ok(model)
}

impl RunMeta for Training<'_> {
    type Meta = Meta;
    fn meta(&self, state: &LoopState, status: Status, message: Option<String>) -> Meta {
        self.meta_of(state, status, message)
    }
}
