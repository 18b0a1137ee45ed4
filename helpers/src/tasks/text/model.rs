//! The text track's networks, trained from scratch on token ids: a bag of word and
//! hashed-bigram embeddings averaged (fastText, Joulin et al. 2017), a 1-D CNN over
//! word embeddings with widths 3/4/5 and max-over-time pooling (Kim 2014), and a small
//! Transformer encoder with learned positions ([`super::encoder`]).
use super::encoder::{Encoder, EncoderShape, EMBEDDING_STD};
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
    /// Pre-norm Transformer encoder blocks, mean over tokens, dropout, linear.
    Transformer,
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
    /// `transformer`: blocks, attention heads (dividing `embedding_dim`), feed-forward
    /// width, and the longest text the learned positions cover (≥ `tokens.max_length`).
    pub layers: i64,
    pub heads: i64,
    pub ff_dim: i64,
    pub max_positions: i64,
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
            layers: 2,
            heads: 4,
            ff_dim: 256,
            max_positions: 256,
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
        if self.kind == TextNetKind::Transformer {
            self.validate_encoder()?;
        }
        in_range("net.dropout", self.dropout, 0.0, 1.0, false)
    }

    fn validate_encoder(&self) -> Result<()> {
        if self.layers <= 0 || self.ff_dim <= 0 || self.max_positions <= 0 {
            return Err(Error::config(
                "net.layers",
                "layers, ff_dim and max_positions must be > 0",
            ));
        }
        if self.heads <= 0 || self.embedding_dim % self.heads != 0 {
            return Err(Error::config(
                "net.heads",
                format!(
                    "is {}; it must divide embedding_dim ({}) into equal heads",
                    self.heads, self.embedding_dim
                ),
            ));
        }
        Ok(())
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
    encoder: Option<Encoder>,
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

/// tch's default (unit normal) for the bag and the CNN; small for the Transformer, whose
/// positions are added to the token embeddings.
fn embedding_init(kind: TextNetKind) -> nn::EmbeddingConfig {
    match kind {
        TextNetKind::Transformer => nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: EMBEDDING_STD,
            },
            ..Default::default()
        },
        _ => Default::default(),
    }
}

/// A large prime for hashing id pairs into buckets.
pub(crate) const BIGRAM_PRIME: i64 = 1_000_003;

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
            TextNetKind::Cnn | TextNetKind::Transformer => vocab_size,
        };
        let embedding = nn::embedding(&root / "embedding", rows, d, embedding_init(config.kind));
        let convs: Vec<nn::Conv1D> = match config.kind {
            TextNetKind::Bag | TextNetKind::Transformer => Vec::new(),
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
            TextNetKind::Bag | TextNetKind::Transformer => d,
            TextNetKind::Cnn => config.filters * config.widths.len() as i64,
        };
        let encoder = (config.kind == TextNetKind::Transformer).then(|| {
            let shape = EncoderShape {
                dim: d,
                layers: config.layers,
                heads: config.heads,
                ff_dim: config.ff_dim,
                max_positions: config.max_positions,
                dropout: config.dropout,
            };
            Encoder::new(&(&root / "encoder"), &shape)
        });
        let fc = nn::linear(&root / "fc", features, classes, Default::default());
        Ok(TextNet {
            vs,
            config: config.clone(),
            vocab_size,
            classes,
            embedding,
            convs,
            encoder,
            fc,
        })
    }

    /// Logits `[batch, classes]` of padded ids `[batch, length]`.
    pub fn forward_t(&self, ids: &Tensor, train: bool) -> Tensor {
        self.forward_embedded(&self.embedding.forward(ids), ids, train)
    }

    /// Logits from the embeddings `x` of `ids` (attributions differentiate through `x`).
    /// The bag's hashed bigrams are not part of `x`: they are looked up here.
    pub fn forward_embedded(&self, x: &Tensor, ids: &Tensor, train: bool) -> Tensor {
        let features = match (&self.encoder, self.config.kind) {
            (Some(encoder), _) => encoder.forward_t(x, ids, train),
            (None, TextNetKind::Cnn) => self.cnn(x),
            (None, _) => self.bag(x, ids),
        };
        self.fc
            .forward(&features.dropout(self.config.dropout, train))
    }

    /// Mean of the embeddings of every word (`x`) and (hashed) bigram, padding excluded.
    fn bag(&self, x: &Tensor, ids: &Tensor) -> Tensor {
        let word_mask = ids.ne(PAD).to_kind(Kind::Float).unsqueeze(-1);
        let mut summed = (x * &word_mask).sum_dim_intlist(1, false, Kind::Float);
        let mut count = word_mask.sum_dim_intlist(1, false, Kind::Float);
        if self.config.bigram_buckets > 0 && ids.size()[1] > 1 {
            let (a, b) = (
                ids.narrow(1, 0, ids.size()[1] - 1),
                ids.narrow(1, 1, ids.size()[1] - 1),
            );
            let hashed =
                (&a * BIGRAM_PRIME + &b).remainder(self.config.bigram_buckets) + self.vocab_size;
            let real = a.ne(PAD).logical_and(&b.ne(PAD));
            let bigrams = hashed.where_self(&real, &a.zeros_like());
            let mask = real.to_kind(Kind::Float).unsqueeze(-1);
            summed +=
                (self.embedding.forward(&bigrams) * &mask).sum_dim_intlist(1, false, Kind::Float);
            count += mask.sum_dim_intlist(1, false, Kind::Float);
        }
        summed / count.clamp_min(1.0)
    }

    /// Kim's CNN over embeddings `x`: each width's ReLU feature maps max-pooled over
    /// time, concatenated. A text shorter than the widest filter gets the padding id's
    /// embedding appended, as a padded id row would.
    fn cnn(&self, x: &Tensor) -> Tensor {
        let widest = self.config.widths.iter().copied().max().unwrap_or(1);
        let length = x.size()[1];
        let x = if length < widest {
            let pad = self.embedding.ws.get(PAD).view([1, 1, -1]);
            let pad = pad.expand([x.size()[0], widest - length, x.size()[2]], false);
            Tensor::cat(&[x.shallow_clone(), pad], 1)
        } else {
            x.shallow_clone()
        };
        let x = x.transpose(1, 2);
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
        for kind in [TextNetKind::Bag, TextNetKind::Cnn, TextNetKind::Transformer] {
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
