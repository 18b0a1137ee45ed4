//! The text track's sanity checks on a fresh [`TextNet`] of a config: its initial loss,
//! its gradients, and whether it can learn the first training texts by heart.
use super::{gradient_flow_of, initial_loss_of, overfit_check, Check, Checks};
use crate::tasks::text::{TextArrays, TextClassification, TextConfig, TextData, TextNet};
use crate::train::{LoopState, Optimizer, Precision, Schedule, Task, Trainer};
use crate::Result;

/// The three checks for `cfg` on `data`: initial loss and gradient flow on a fresh
/// network, then `n` training texts overfitted in `epochs`.
pub fn checks(cfg: &TextConfig, data: &TextData, n: usize, epochs: usize) -> Result<Checks> {
    let net = fresh(cfg, data)?;
    let task = TextClassification::of_config(cfg, &net, &data.train, None);
    let classes = data.classes.len();
    let initial = initial_loss_of(task.train_batches(0), |x| net.forward_t(x, false), classes)?;
    Ok(Checks(vec![
        initial,
        gradient_flow_of(&task)?,
        overfit_tiny(cfg, data, n, epochs)?,
    ]))
}

fn fresh(cfg: &TextConfig, data: &TextData) -> Result<TextNet> {
    tch::manual_seed(cfg.seed as i64);
    TextNet::new(
        &cfg.net,
        data.vocab.len() as i64,
        data.classes.len() as i64,
        tch::Device::Cpu,
    )
}

/// A fresh network without dropout or weight decay trained on the first `n` training
/// texts at the config's peak LR, held constant; passes at 99 % training accuracy.
pub fn overfit_tiny(cfg: &TextConfig, data: &TextData, n: usize, epochs: usize) -> Result<Check> {
    let n = n.min(data.train.len());
    let tiny = TextArrays {
        ids: data.train.ids.narrow(0, 0, n as i64),
        labels: data.train.labels.narrow(0, 0, n as i64),
        encoded: data.train.encoded.clone(),
    };
    let mut cfg = cfg.clone();
    cfg.net.dropout = 0.0;
    cfg.train.weight_decay = 0.0;
    let net = fresh(&cfg, data)?;
    let task = TextClassification::of_config(&cfg, &net, &tiny, None);
    let mut opt = Optimizer::new(&cfg.train, net.weights());
    let mut state = LoopState::new(Schedule::constant(cfg.train.lr), Precision::Fp32);
    let mut trainer = Trainer::new(epochs);
    trainer.validate_every = 0;
    trainer.run(&task, &mut opt, &mut state, &mut [])?;
    let rule = format!(
        "{}, constant lr {:.0e}, no dropout or weight decay",
        cfg.train.optimizer.label(),
        cfg.train.lr
    );
    overfit_check(&state.history, n, epochs, &rule)
}
