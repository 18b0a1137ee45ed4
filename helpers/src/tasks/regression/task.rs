//! [`Regression`]: the regression track as a [`Task`] of the training loop — shuffled
//! mini-batches of rows (or windows), MSE or Huber loss in standardised target units,
//! −squared error as the training score and −RMSE on validation as the one that picks
//! the best epoch.
use super::data::Arrays;
use super::model::Net;
use crate::tasks::common::epoch_batches;
use crate::train::{StepOutput, Task, Validation};
use crate::Result;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    Mse,
    /// Huber with δ = 1 (standardised units): squared near 0, linear for outliers.
    Huber,
}

/// Regression of `net` on `train`, validated on `val`.
pub struct Regression<'a> {
    pub net: &'a Net,
    pub train: &'a Arrays,
    pub val: Option<&'a Arrays>,
    pub loss: Loss,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    /// Seeds the per-epoch shuffle.
    pub seed: u64,
}

impl<'a> Regression<'a> {
    /// The task `cfg` describes (loss, batch sizes, seed) over `train` and `val`.
    pub fn of_config(
        cfg: &super::config::RegressionConfig,
        net: &'a Net,
        train: &'a Arrays,
        val: Option<&'a Arrays>,
    ) -> Regression<'a> {
        Regression {
            net,
            train,
            val,
            loss: cfg.loss,
            batch_size: cfg.train.batch_size,
            eval_batch_size: cfg.train.eval_batch_size,
            seed: cfg.seed,
        }
    }

    /// Batches per epoch of `rows` training rows (a last batch of one row is dropped).
    pub fn steps_for(rows: usize, batch_size: usize) -> usize {
        rows / batch_size + usize::from(rows % batch_size > 1)
    }

    fn loss_of(&self, predicted: &Tensor, y: &Tensor) -> Tensor {
        match self.loss {
            Loss::Mse => predicted.mse_loss(y, Reduction::Mean),
            Loss::Huber => predicted.huber_loss(y, Reduction::Mean, 1.0),
        }
    }
}

impl Task for Regression<'_> {
    type Batch = (Tensor, Tensor);

    /// Shuffled batches; a last batch of one row is dropped (batch norm needs two).
    fn train_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = (Tensor, Tensor)> + '_> {
        let seeds = (self.seed, 0x5E55);
        let chunks = epoch_batches(self.train.len(), self.batch_size, seeds, epoch, 2);
        let device = self.net.device();
        Box::new(chunks.into_iter().map(move |idx| {
            let idx = Tensor::from_slice(&idx).to_device(device);
            (
                self.train.x.index_select(0, &idx),
                self.train.y.index_select(0, &idx),
            )
        }))
    }

    fn steps_per_epoch(&self) -> usize {
        Regression::steps_for(self.train.len(), self.batch_size)
    }

    fn training_step(&self, (x, y): (Tensor, Tensor)) -> Result<StepOutput> {
        let predicted = self.net.forward_t(&x, true);
        let loss = self.loss_of(&predicted, &y);
        let squared = (&predicted - &y).square().mean_dim(-1, false, Kind::Float);
        Ok(StepOutput {
            loss,
            examples: y.size()[0] as usize,
            score: -squared.sum(Kind::Double).double_value(&[]),
        })
    }

    fn validate(&self) -> Option<Validation> {
        let val = self.val?;
        let predicted = self.net.predict(&val.x, self.eval_batch_size);
        let mse = (&predicted - &val.y)
            .square()
            .mean(Kind::Double)
            .double_value(&[]);
        Some(Validation {
            loss: self.loss_of(&predicted, &val.y).double_value(&[]),
            score: -mse.sqrt(),
        })
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.weights()
    }

    fn device(&self) -> Device {
        self.net.device()
    }
}
