//! [`TextClassification`]: the text track as a [`Task`] of the training loop — shuffled
//! batches of padded ids, cross-entropy (with optional label smoothing), the number of
//! correct predictions as the training score, validation accuracy as the one that picks
//! the best epoch.
use super::data::TextArrays;
use super::model::TextNet;
use crate::tasks::common::epoch_batches;
use crate::train::{StepOutput, Task, Validation};
use crate::Result;
use tch::{Device, Kind, Reduction, Tensor};

pub struct TextClassification<'a> {
    pub net: &'a TextNet,
    pub train: &'a TextArrays,
    pub val: Option<&'a TextArrays>,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub label_smoothing: f64,
    pub seed: u64,
}

impl<'a> TextClassification<'a> {
    /// The task `cfg` describes (batch sizes, label smoothing, seed) over `train` and `val`.
    pub fn of_config(
        cfg: &super::config::TextConfig,
        net: &'a TextNet,
        train: &'a TextArrays,
        val: Option<&'a TextArrays>,
    ) -> TextClassification<'a> {
        TextClassification {
            net,
            train,
            val,
            batch_size: cfg.train.batch_size,
            eval_batch_size: cfg.train.eval_batch_size,
            label_smoothing: cfg.train.label_smoothing,
            seed: cfg.seed,
        }
    }

    fn loss(&self, logits: &Tensor, y: &Tensor) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, self.label_smoothing)
    }
}

impl Task for TextClassification<'_> {
    type Batch = (Tensor, Tensor);

    fn train_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = (Tensor, Tensor)> + '_> {
        let seeds = (self.seed, 0x7E47);
        let chunks = epoch_batches(self.train.len(), self.batch_size, seeds, epoch, 1);
        let device = self.net.device();
        Box::new(chunks.into_iter().map(move |idx| {
            let idx = Tensor::from_slice(&idx).to_device(device);
            (
                self.train.ids.index_select(0, &idx),
                self.train.labels.index_select(0, &idx),
            )
        }))
    }

    fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }

    fn training_step(&self, (x, y): (Tensor, Tensor)) -> Result<StepOutput> {
        let logits = self.net.forward_t(&x, true);
        let correct = logits
            .argmax(-1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        Ok(StepOutput {
            loss: self.loss(&logits, &y),
            examples: y.size()[0] as usize,
            score: correct as f64,
        })
    }

    fn validate(&self) -> Option<Validation> {
        let val = self.val?;
        let logits = self.net.predict(&val.ids, self.eval_batch_size);
        let accuracy = logits
            .argmax(-1, false)
            .eq_tensor(&val.labels)
            .to_kind(Kind::Double)
            .mean(Kind::Double);
        Some(Validation {
            loss: self.loss(&logits, &val.labels).double_value(&[]),
            score: accuracy.double_value(&[]),
        })
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.weights()
    }

    fn device(&self) -> Device {
        self.net.device()
    }
}
