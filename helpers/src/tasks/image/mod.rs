//! Image classification, the first of the four project tracks, as a task of the
//! training loop: [`ImageClassification`] (what the loop trains), [`fit`] (a run config
//! trained into its run directory), [`TrainedRun`] (a finished run, reloaded), the
//! linear probe's embedding cache ([`probe`]) and the LR range test on a loader.
mod fit;
pub mod probe;
mod task;
mod trained_run;

pub use fit::{fit, fit_with, FitOptions};
pub use task::{Batches, Held, ImageClassification, Mixing};
pub use trained_run::TrainedRun;

use crate::data::Loader;
use crate::models::Model;
use crate::train::{LrFinder, Optimizer, TrainConfig};
use crate::Result;

/// The LR range test ([`crate::train::lr_find()`]) for `model` on `loader`'s training
/// batches with `cfg`'s optimiser, label smoothing and clipping, from `start` to `end`
/// over at most `steps` steps; the model's weights are restored afterwards.
pub fn lr_find(
    model: &Model,
    loader: &Loader,
    cfg: &TrainConfig,
    start: f64,
    end: f64,
    steps: usize,
) -> Result<LrFinder> {
    let task = ImageClassification::new(model, Batches::Pixels(loader))
        .with_label_smoothing(cfg.label_smoothing);
    let mut opt = Optimizer::new(cfg, model.trainable_named());
    crate::train::lr_find(&task, &mut opt, cfg.grad_clip, (start, end, steps))
}
