//! The image track's sanity checks: a fresh [`Model`] on the first batches of a
//! [`Loader`], and a tiny subset of the training images to overfit.
use super::{gradient_flow_of, initial_loss_of, overfit_check, Check};
use crate::config::RunConfig;
use crate::data::{Dataset, Loader, Normalization};
use crate::models::{self, Model};
use crate::tasks::image::{Batches, ImageClassification};
use crate::train::{LoopState, Optimizer, Precision, Schedule, Trainer};
use crate::Result;

/// Mean cross-entropy of a freshly initialised model over the first four batches,
/// against ln C ([`initial_loss_of`]).
pub fn initial_loss(model: &Model, loader: &Loader) -> Result<Check> {
    let classes = model.num_classes as usize;
    initial_loss_of(loader.batches(0), |x| model.forward_t(x, false), classes)
}

/// One forward/backward pass on a training batch: the gradient norm of every
/// parameter ([`gradient_flow_of`]). Batch-norm statistics see one batch.
pub fn gradient_flow(model: &Model, loader: &Loader) -> Result<Check> {
    gradient_flow_of(&ImageClassification::new(model, Batches::Pixels(loader)))
}

/// Trains a fresh model of `cfg` on the first `n` training examples (no augmentation,
/// no dropout) for `epochs`; passes when training accuracy reaches 99 %.
pub fn overfit_tiny(cfg: &RunConfig, data: &Dataset, n: usize, epochs: usize) -> Result<Check> {
    let subset = data.train.head(n);
    let norm = Normalization::of(&subset.images);
    let loader = Loader::new(
        &subset,
        32,
        true,
        None,
        norm.clone(),
        cfg.seed,
        cfg.device(),
    );
    let mut model_cfg = cfg.model.clone();
    model_cfg.dropout = 0.0;
    tch::manual_seed(cfg.seed as i64);
    let model = models::build(
        &model_cfg,
        data.image_shape(),
        data.num_classes() as i64,
        cfg.device(),
    )?;
    model.set_input_stats(&norm);
    let mut train_cfg = cfg.train.clone();
    train_cfg.weight_decay = 0.0;
    let mut opt = Optimizer::new(&train_cfg, model.trainable_named());
    let mut state = LoopState::new(Schedule::constant(1e-3), Precision::Fp32);
    let mut trainer = Trainer::new(epochs);
    trainer.validate_every = 0;
    let task = ImageClassification::new(&model, Batches::Pixels(&loader));
    trainer.run(&task, &mut opt, &mut state, &mut [])?;
    let rule = "AdamW, lr 1e-3, no regularisation";
    overfit_check(&state.history, n, epochs, rule)
}
