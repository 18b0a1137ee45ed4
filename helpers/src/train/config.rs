//! [`TrainConfig`]: optimiser, regularisation, schedule and stopping — the `[train]`
//! table of a run config.
pub use crate::backend::Precision;
use crate::error::{in_range, positive};
use crate::Result;
use serde::{Deserialize, Serialize};

/// Optimisation, regularisation, schedule and stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Batch size for evaluation (no gradients, so larger is faster).
    pub eval_batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum (also Adam's beta1 is fixed at 0.9, beta2 at 0.999).
    pub momentum: f64,
    pub nesterov: bool,
    /// Weight decay: decoupled (AdamW, and SGD as in PyTorch's coupled L2 for sgd/adam).
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy targets, in [0, 1).
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this value; 0 = off.
    pub grad_clip: f64,
    pub schedule: ScheduleKind,
    /// Linear warm-up from 0 over this many epochs (fractions allowed); 0 = off.
    pub warmup_epochs: f64,
    /// `step`: multiply the LR by `gamma` every `step_epochs` epochs.
    pub step_epochs: usize,
    pub gamma: f64,
    /// `one_cycle`: fraction of steps spent rising to the peak LR.
    pub pct_start: f64,
    /// `plateau`: epochs without val-loss improvement before multiplying the LR by `gamma`.
    pub plateau_patience: usize,
    /// Stop after this many epochs without val-accuracy improvement and restore the best weights; 0 = off.
    pub early_stopping_patience: usize,
    /// Mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of itself,
    /// λ ~ Beta(α, α), and the loss is λ·CE(y) + (1 − λ)·CE(y_shuffled); 0 = off.
    pub mixup_alpha: f64,
    /// CutMix (Yun et al. 2019): a box of the shuffled copy is pasted in, λ = the kept
    /// area; 0 = off. With both alphas set, each batch uses one of the two at random.
    pub cutmix_alpha: f64,
    /// Arithmetic of the forward pass: `auto` (bf16 autocast on a CPU with native bf16
    /// when a start-up probe finds it faster, else fp32), `fp32`, or autocast to `bf16`
    /// / `fp16` (fp16 with dynamic loss scaling, CUDA only); see
    /// [`crate::backend::PrecisionChoice::choose`]. The image track uses it; the text,
    /// regression and detection tracks compute in fp32.
    pub precision: Precision,
}

/// Optimisers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

impl OptimizerKind {
    /// The optimiser's usual spelling, for messages and reports.
    pub fn label(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::Adamw => "AdamW",
        }
    }
}

/// Learning-rate schedules (after the optional warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Step,
    Cosine,
    OneCycle,
    Plateau,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            eval_batch_size: 512,
            optimizer: OptimizerKind::Adamw,
            lr: 3e-3,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            label_smoothing: 0.0,
            grad_clip: 0.0,
            schedule: ScheduleKind::OneCycle,
            warmup_epochs: 0.0,
            step_epochs: 5,
            gamma: 0.1,
            pct_start: 0.25,
            plateau_patience: 2,
            early_stopping_patience: 0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            precision: Precision::Auto,
        }
    }
}

impl TrainConfig {
    /// Checks each value's range; errors name the `train.*` key.
    pub fn validate(&self) -> Result<()> {
        let t = self;
        positive("train.epochs", t.epochs as f64)?;
        positive("train.batch_size", t.batch_size as f64)?;
        positive("train.eval_batch_size", t.eval_batch_size as f64)?;
        positive("train.lr", t.lr)?;
        in_range("train.momentum", t.momentum, 0.0, 1.0, false)?;
        in_range("train.weight_decay", t.weight_decay, 0.0, 1.0, false)?;
        in_range("train.label_smoothing", t.label_smoothing, 0.0, 1.0, false)?;
        in_range("train.grad_clip", t.grad_clip, 0.0, f64::MAX, false)?;
        in_range(
            "train.warmup_epochs",
            t.warmup_epochs,
            0.0,
            t.epochs as f64,
            true,
        )?;
        in_range("train.gamma", t.gamma, 0.0, 1.0, true)?;
        in_range("train.pct_start", t.pct_start, 0.0, 1.0, false)?;
        if t.schedule == ScheduleKind::Step {
            positive("train.step_epochs", t.step_epochs as f64)?;
        }
        in_range("train.mixup_alpha", t.mixup_alpha, 0.0, 100.0, true)?;
        in_range("train.cutmix_alpha", t.cutmix_alpha, 0.0, 100.0, true)
    }
}
