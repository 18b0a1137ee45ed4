//! Running a model over a loader: predictions, probabilities and per-example losses,
//! from which [`Metrics`] and error analyses are computed.
use crate::data::Loader;
use crate::metrics::Metrics;
use crate::models::Model;
use tch::{Kind, Tensor};

/// A model's outputs on a set of examples, in loader order.
#[derive(Debug)]
pub struct Predictions {
    pub labels: Vec<i64>,
    pub preds: Vec<i64>,
    /// Softmax probabilities `[N, num_classes]`, on the CPU.
    pub probs: Tensor,
    /// Cross-entropy of each example.
    pub losses: Vec<f32>,
}

impl Predictions {
    /// Mean cross-entropy.
    pub fn mean_loss(&self) -> f64 {
        self.losses.iter().map(|&l| l as f64).sum::<f64>() / self.losses.len().max(1) as f64
    }

    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        let correct = self
            .labels
            .iter()
            .zip(&self.preds)
            .filter(|(a, b)| a == b)
            .count();
        correct as f64 / self.labels.len().max(1) as f64
    }

    /// Full metrics, with the mean loss.
    pub fn metrics(&self, class_names: &[String]) -> Metrics {
        let mut m = Metrics::compute(&self.labels, &self.preds, class_names);
        m.loss = Some(self.mean_loss());
        m
    }
}

/// Runs `model` in evaluation mode over every batch of `loader`.
pub fn predict(model: &Model, loader: &Loader) -> Predictions {
    let batches = loader
        .batches(0)
        .map(|(x, y)| (model.forward_t(&x, false), y));
    collect(batches)
}

/// Predictions of a linear probe from cached embeddings `[N, D]` with their labels.
pub fn predict_embeddings(model: &Model, embeddings: &Tensor, labels: &[i64]) -> Predictions {
    let n = labels.len() as i64;
    let step = 4096;
    let batches = (0..n).step_by(step as usize).map(|start| {
        let len = step.min(n - start);
        let x = embeddings.narrow(0, start, len);
        let y = Tensor::from_slice(&labels[start as usize..(start + len) as usize])
            .to_device(x.device());
        (model.head_from_embedding(&x, false), y)
    });
    collect(batches)
}

/// Softmax, per-example loss and argmax of `(logits, labels)` batches, without gradients.
fn collect(batches: impl Iterator<Item = (Tensor, Tensor)>) -> Predictions {
    let (mut probs, mut losses, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    tch::no_grad(|| {
        for (logits, y) in batches {
            let logp = logits.log_softmax(-1, Kind::Float);
            let loss = -logp.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
            losses.push(loss.to_device(tch::Device::Cpu));
            probs.push(logp.exp().to_device(tch::Device::Cpu));
            labels.push(y.to_device(tch::Device::Cpu));
        }
    });
    let probs = Tensor::cat(&probs, 0);
    let preds = Vec::<i64>::try_from(probs.argmax(-1, false)).unwrap_or_default();
    Predictions {
        labels: Vec::<i64>::try_from(Tensor::cat(&labels, 0)).unwrap_or_default(),
        preds,
        probs,
        losses: Vec::<f32>::try_from(Tensor::cat(&losses, 0)).unwrap_or_default(),
    }
}
