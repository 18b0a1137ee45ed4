//! A small Transformer encoder over token embeddings (Vaswani et al. 2017), pre-norm as
//! in GPT-2 / ViT so that it trains from scratch without a warm-up trick: learned
//! positions, `layers` blocks of multi-head self-attention and a GELU feed-forward, each
//! around a residual; padding is masked out of attention and of the final mean.
use crate::data::text::vocab::PAD;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Standard deviation of the position (and, for this network, token) embeddings at
/// initialisation: small, as in BERT and GPT-2, so no input dominates the first steps.
pub const EMBEDDING_STD: f64 = 0.02;

struct Block {
    norm_attention: nn::LayerNorm,
    qkv: nn::Linear,
    out: nn::Linear,
    norm_ff: nn::LayerNorm,
    ff_in: nn::Linear,
    ff_out: nn::Linear,
}

pub struct Encoder {
    positions: nn::Embedding,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
    heads: i64,
    dropout: f64,
}

/// The encoder's shape.
pub struct EncoderShape {
    pub dim: i64,
    pub layers: i64,
    pub heads: i64,
    pub ff_dim: i64,
    pub max_positions: i64,
    pub dropout: f64,
}

impl Encoder {
    pub fn new(root: &nn::Path, shape: &EncoderShape) -> Encoder {
        let d = shape.dim;
        let small = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: EMBEDDING_STD,
            },
            ..Default::default()
        };
        let blocks = (0..shape.layers)
            .map(|i| {
                let p = root / format!("block{i}");
                Block {
                    norm_attention: nn::layer_norm(
                        &p / "norm_attention",
                        vec![d],
                        Default::default(),
                    ),
                    qkv: nn::linear(&p / "qkv", d, 3 * d, Default::default()),
                    out: nn::linear(&p / "out", d, d, Default::default()),
                    norm_ff: nn::layer_norm(&p / "norm_ff", vec![d], Default::default()),
                    ff_in: nn::linear(&p / "ff_in", d, shape.ff_dim, Default::default()),
                    ff_out: nn::linear(&p / "ff_out", shape.ff_dim, d, Default::default()),
                }
            })
            .collect();
        Encoder {
            positions: nn::embedding(root / "positions", shape.max_positions, d, small),
            blocks,
            norm: nn::layer_norm(root / "norm", vec![d], Default::default()),
            heads: shape.heads,
            dropout: shape.dropout,
        }
    }

    /// Features `[batch, dim]` of token embeddings `x` `[batch, length, dim]` whose ids are
    /// `ids` (padding masked).
    // `h += …` would add in place into a tensor autograd saved for the layer norms.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward_t(&self, x: &Tensor, ids: &Tensor, train: bool) -> Tensor {
        let length = ids.size()[1];
        let positions = Tensor::arange(length, (Kind::Int64, ids.device()));
        let mut h = x + self.positions.forward(&positions).unsqueeze(0);
        let real = ids.ne(PAD);
        // A text of padding only would attend to nothing (NaN): its first slot stays open.
        let attend = real.logical_or(&positions.eq(0).unsqueeze(0));
        let mask = attend.unsqueeze(1).unsqueeze(1);
        for b in &self.blocks {
            let a = self.attention(b, &b.norm_attention.forward(&h), &mask);
            h = h + a.dropout(self.dropout, train);
            let f = b
                .ff_out
                .forward(&b.ff_in.forward(&b.norm_ff.forward(&h)).gelu("none"));
            h = h + f.dropout(self.dropout, train);
        }
        let h = self.norm.forward(&h);
        let weight = real.to_kind(Kind::Float).unsqueeze(-1);
        (h * &weight).sum_dim_intlist(1, false, Kind::Float)
            / weight.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0)
    }

    fn attention(&self, b: &Block, x: &Tensor, mask: &Tensor) -> Tensor {
        let (n, l, d) = x.size3().expect("[batch, length, dim]");
        let split = |t: &Tensor| t.view([n, l, self.heads, d / self.heads]).transpose(1, 2);
        let qkv = b.qkv.forward(x).chunk(3, -1);
        let out = Tensor::scaled_dot_product_attention(
            &split(&qkv[0]),
            &split(&qkv[1]),
            &split(&qkv[2]),
            Some(mask),
            0.0,
            false,
            None,
            false,
        );
        b.out
            .forward(&out.transpose(1, 2).contiguous().view([n, l, d]))
    }
}
