//! [`ImageClassification`]: the image track as a [`Task`] of the training loop — batches
//! of pixels (or a linear probe's cached embeddings), cross-entropy with label smoothing,
//! mixup/CutMix as a per-batch strategy, accuracy as the score.
use super::probe::EmbeddingCache;
use crate::data::mixing::BatchMixer;
use crate::data::Loader;
use crate::evaluate::{predict, predict_embeddings, Predictions};
use crate::models::Model;
use crate::train::{StepOutput, Task, Validation};
use crate::Result;
use std::cell::RefCell;
use tch::{Device, Kind, Reduction, Tensor};

/// Where training batches come from.
pub enum Batches<'a> {
    /// Normalised (and augmented) images from a loader.
    Pixels(&'a Loader),
    /// A frozen backbone's embeddings, in the loader's batch order (a linear probe).
    Embeddings(&'a Loader, &'a EmbeddingCache),
    /// The same batches every epoch (a benchmark's pre-built batches).
    Fixed(Vec<(Tensor, Tensor)>),
}

/// What validation runs on.
pub enum Held<'a> {
    Pixels(&'a Loader),
    Embeddings(&'a Loader, &'a Tensor),
}

/// Mixup / CutMix strengths (0 = off) and the seed their per-epoch draws come from.
#[derive(Debug, Clone, Copy)]
pub struct Mixing {
    pub mixup_alpha: f64,
    pub cutmix_alpha: f64,
    pub seed: u64,
}

/// Image classification on one model.
pub struct ImageClassification<'a> {
    pub model: &'a Model,
    pub batches: Batches<'a>,
    pub validation: Option<Held<'a>>,
    pub label_smoothing: f64,
    pub mixing: Option<Mixing>,
    /// This epoch's mixer: the loop calls [`Task::training_step`] through `&self` while
    /// it iterates the batches, so the mixer's random state lives in a cell.
    mixer: RefCell<Option<BatchMixer>>,
}

impl<'a> ImageClassification<'a> {
    /// Training on `batches` of `model`, no validation, no smoothing, no mixing.
    pub fn new(model: &'a Model, batches: Batches<'a>) -> Self {
        ImageClassification {
            model,
            batches,
            validation: None,
            label_smoothing: 0.0,
            mixing: None,
            mixer: RefCell::new(None),
        }
    }

    pub fn with_validation(mut self, held: Held<'a>) -> Self {
        self.validation = Some(held);
        self
    }

    pub fn with_label_smoothing(mut self, smoothing: f64) -> Self {
        self.label_smoothing = smoothing;
        self
    }

    pub fn with_mixing(mut self, mixing: Mixing) -> Self {
        self.mixing = Some(mixing);
        self
    }

    /// Predictions on the held-out data.
    pub fn predict_held(&self, held: &Held) -> Predictions {
        match held {
            Held::Pixels(loader) => predict(self.model, loader),
            Held::Embeddings(loader, emb) => predict_embeddings(self.model, emb, loader.labels()),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self.batches {
            Batches::Embeddings(..) => self.model.head_from_embedding(x, true),
            _ => self.model.forward_t(x, true),
        }
    }
}

/// Gathers a probe's cached embeddings and labels at a batch's loader positions.
fn embedding_batch(loader: &Loader, cache: &EmbeddingCache, idx: &[usize]) -> (Tensor, Tensor) {
    let pos: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let pos = Tensor::from_slice(&pos).to_device(cache.train.device());
    let labels: Vec<i64> = idx.iter().map(|&i| loader.labels()[i]).collect();
    let y = Tensor::from_slice(&labels).to_device(cache.train.device());
    (cache.train.index_select(0, &pos), y)
}

impl Task for ImageClassification<'_> {
    type Batch = (Tensor, Tensor);

    fn train_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = (Tensor, Tensor)> + '_> {
        match &self.batches {
            Batches::Pixels(loader) => Box::new(loader.batches(epoch)),
            Batches::Embeddings(loader, cache) => Box::new(
                loader
                    .batch_indices(epoch)
                    .into_iter()
                    .map(move |idx| embedding_batch(loader, cache, &idx)),
            ),
            Batches::Fixed(batches) => Box::new(
                batches
                    .iter()
                    .map(|(x, y)| (x.shallow_clone(), y.shallow_clone())),
            ),
        }
    }

    fn steps_per_epoch(&self) -> usize {
        match &self.batches {
            Batches::Pixels(loader) | Batches::Embeddings(loader, _) => loader.num_batches(),
            Batches::Fixed(batches) => batches.len(),
        }
    }

    fn begin_epoch(&self, epoch: usize) {
        *self.mixer.borrow_mut() = self
            .mixing
            .and_then(|m| BatchMixer::new(m.mixup_alpha, m.cutmix_alpha, m.seed, epoch));
    }

    /// Cross-entropy (mixed when a mixer is on); the score counts correct predictions,
    /// of each example's dominant label under mixing.
    fn training_step(&self, (x, y): (Tensor, Tensor)) -> Result<StepOutput> {
        let s = x.size();
        let plan = self
            .mixer
            .borrow_mut()
            .as_mut()
            .map(|m| m.plan(s[0] as usize, s[2] as usize, s[3] as usize));
        let x = match &plan {
            Some(p) => p.apply(&x),
            None => x,
        };
        let logits = self.forward(&x);
        let loss = match &plan {
            Some(p) => p.loss(&logits, &y, self.label_smoothing),
            None => logits.cross_entropy_loss::<Tensor>(
                &y,
                None,
                Reduction::Mean,
                -100,
                self.label_smoothing,
            ),
        };
        let target = plan
            .as_ref()
            .map_or_else(|| y.shallow_clone(), |p| p.dominant_labels(&y));
        let correct = logits
            .argmax(-1, false)
            .eq_tensor(&target)
            .sum(Kind::Int64)
            .int64_value(&[]);
        Ok(StepOutput {
            loss,
            examples: y.size()[0] as usize,
            score: correct as f64,
        })
    }

    fn validate(&self) -> Option<Validation> {
        let preds = self.predict_held(self.validation.as_ref()?);
        Some(Validation {
            loss: preds.mean_loss(),
            score: preds.accuracy(),
        })
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.model.weights()
    }

    fn device(&self) -> Device {
        self.model.device()
    }
}
