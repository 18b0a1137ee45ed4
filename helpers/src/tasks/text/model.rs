//! The text track's networks, trained from scratch on token ids: a bag of word and
//! hashed-bigram embeddings averaged (fastText, Joulin et al. 2017), and a 1-D CNN over
//! word embeddings with widths 3/4/5 and max-over-time pooling (Kim 2014).
use crate::data::text::vocab::PAD;
use crate::error::in_range;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextNetKind {
    /// Mean of word and bigram embeddings, then a linear classifier.
    Bag,
    /// Kim's CNN: convolutions of several widths, max over time, dropout, linear.
    Cnn,
}

/// The `[net]` table of a text config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextNetConfig {
    pub kind: TextNetKind,
    pub embedding_dim: i64,
    /// `bag`: hash buckets for word bigrams (0 = words only).
    pub bigram_buckets: i64,
    /// `cnn`: filter widths and filters per width.
    pub widths: Vec<i64>,
    pub filters: i64,
    pub dropout: f64,
}

impl Default for TextNetConfig {
    fn default() -> Self {
        TextNetConfig {
            kind: TextNetKind::Bag,
            embedding_dim: 128,
            bigram_buckets: 0,
            widths: vec![3, 4, 5],
            filters: 100,
            dropout: 0.5,
        }
    }
}

impl TextNetConfig {
    pub fn validate(&self) -> Result<()> {
        if self.embedding_dim <= 0 || self.filters <= 0 || self.bigram_buckets < 0 {
            return Err(Error::config(
                "net.embedding_dim",
                "embedding_dim and filters must be > 0, bigram_buckets ≥ 0",
            ));
        }
        if self.kind == TextNetKind::Cnn
            && (self.widths.is_empty() || self.widths.iter().any(|&w| w <= 0))
        {
            return Err(Error::config(
                "net.widths",
                format!("every width must be > 0, found {:?}", self.widths),
            ));
        }
        in_range("net.dropout", self.dropout, 0.0, 1.0, false)
    }
}

/// A text classifier with its own parameters.
pub struct TextNet {
    pub vs: nn::VarStore,
    pub config: TextNetConfig,
    pub vocab_size: i64,
    pub classes: i64,
    embedding: nn::Embedding,
    convs: Vec<nn::Conv1D>,
    fc: nn::Linear,
}

impl std::fmt::Debug for TextNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TextNet({:?}, vocab {}, {} classes)",
            self.config.kind, self.vocab_size, self.classes
        )
    }
}

/// A large prime for hashing id pairs into buckets.
const BIGRAM_PRIME: i64 = 1_000_003;

impl TextNet {
    pub fn new(
        config: &TextNetConfig,
        vocab_size: i64,
        classes: i64,
        device: Device,
    ) -> Result<TextNet> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let d = config.embedding_dim;
        let rows = match config.kind {
            TextNetKind::Bag => vocab_size + config.bigram_buckets,
            TextNetKind::Cnn => vocab_size,
        };
        let embedding = nn::embedding(&root / "embedding", rows, d, Default::default());
        let convs: Vec<nn::Conv1D> = match config.kind {
            TextNetKind::Bag => Vec::new(),
            TextNetKind::Cnn => config
                .widths
                .iter()
                .map(|&w| {
                    nn::conv1d(
                        &root / format!("conv{w}"),
                        d,
                        config.filters,
                        w,
                        Default::default(),
                    )
                })
                .collect(),
        };
        let features = match config.kind {
            TextNetKind::Bag => d,
            TextNetKind::Cnn => config.filters * config.widths.len() as i64,
        };
        let fc = nn::linear(&root / "fc", features, classes, Default::default());
        Ok(TextNet {
            vs,
            config: config.clone(),
            vocab_size,
            classes,
            embedding,
            convs,
            fc,
        })
    }

    /// Logits `[batch, classes]` of padded ids `[batch, length]`.
    pub fn forward_t(&self, ids: &Tensor, train: bool) -> Tensor {
        let features = match self.config.kind {
            TextNetKind::Bag => self.bag(ids),
            TextNetKind::Cnn => self.cnn(ids),
        };
        self.fc
            .forward(&features.dropout(self.config.dropout, train))
    }

    /// Mean of the embeddings of every word and (hashed) bigram, padding excluded.
    fn bag(&self, ids: &Tensor) -> Tensor {
        let mut all = ids.shallow_clone();
        if self.config.bigram_buckets > 0 && ids.size()[1] > 1 {
            let (a, b) = (
                ids.narrow(1, 0, ids.size()[1] - 1),
                ids.narrow(1, 1, ids.size()[1] - 1),
            );
            let hashed =
                (&a * BIGRAM_PRIME + &b).remainder(self.config.bigram_buckets) + self.vocab_size;
            let real = a.ne(PAD).logical_and(&b.ne(PAD));
            all = Tensor::cat(
                &[
                    ids.shallow_clone(),
                    hashed.where_self(&real, &a.zeros_like()),
                ],
                1,
            );
        }
        let mask = all.ne(PAD).to_kind(Kind::Float).unsqueeze(-1);
        let summed = (self.embedding.forward(&all) * &mask).sum_dim_intlist(1, false, Kind::Float);
        summed / mask.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0)
    }

    /// Kim's CNN: each width's ReLU feature maps max-pooled over time, concatenated.
    fn cnn(&self, ids: &Tensor) -> Tensor {
        let widest = self.config.widths.iter().copied().max().unwrap_or(1);
        let ids = if ids.size()[1] < widest {
            ids.constant_pad_nd([0, widest - ids.size()[1]])
        } else {
            ids.shallow_clone()
        };
        let x = self.embedding.forward(&ids).transpose(1, 2);
        let pooled: Vec<Tensor> = self
            .convs
            .iter()
            .map(|c| c.forward(&x).relu().amax([2], false))
            .collect();
        Tensor::cat(&pooled, 1)
    }

    /// Logits for `ids` in evaluation mode, `batch` texts at a time.
    pub fn predict(&self, ids: &Tensor, batch: usize) -> Tensor {
        let _guard = tch::no_grad_guard();
        let n = ids.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(batch.max(1))
            .map(|s| self.forward_t(&ids.narrow(0, s, (batch as i64).min(n - s)), false))
            .collect();
        Tensor::cat(&parts, 0)
    }

    pub fn weights(&self) -> Vec<(String, Tensor)> {
        crate::models::sorted_variables(&self.vs, false)
    }

    pub fn num_parameters(&self) -> i64 {
        self.weights().iter().map(|(_, t)| t.numel() as i64).sum()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The embedding table (for attributions on the embeddings).
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        self.embedding.forward(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_networks_give_one_logit_row_per_text() {
        let ids = Tensor::from_slice(&[2i64, 3, 4, 0, 5, 6, 0, 0]).view([2, 4]);
        for kind in [TextNetKind::Bag, TextNetKind::Cnn] {
            let cfg = TextNetConfig {
                kind,
                bigram_buckets: 50,
                ..Default::default()
            };
            let net = TextNet::new(&cfg, 10, 3, Device::Cpu).unwrap();
            assert_eq!(net.predict(&ids, 1).size(), [2, 3]);
        }
    }
}
