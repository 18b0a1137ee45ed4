//! Optimisers written on tensors (not tch's `nn::Optimizer`), so that their state —
//! momentum and moment buffers, step count — can be checkpointed and a resumed run
//! continues bit for bit. Update rules follow PyTorch's `SGD`, `Adam` and `AdamW`.
//! Weight decay applies to weights of rank ≥ 2 only (not to biases and batch-norm
//! parameters), the usual choice since decaying those only hurts.
use super::config::{OptimizerKind, TrainConfig};
use crate::Result;
use tch::Tensor;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// One trainable tensor with its state buffers.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    decay: bool,
    /// Multiplies the LR (e.g. a lower LR for a pretrained backbone).
    lr_scale: f64,
    /// SGD: momentum buffer. Adam(W): first and second moments.
    buffers: Vec<Tensor>,
}

/// An optimiser over named parameters.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    params: Vec<Param>,
    /// Steps taken (Adam's bias correction needs it).
    pub steps: i64,
}

impl Optimizer {
    /// An optimiser for `named` trainable tensors, configured by `cfg`.
    pub fn new(cfg: &TrainConfig, named: Vec<(String, Tensor)>) -> Optimizer {
        let params = named
            .into_iter()
            .map(|(name, tensor)| Param {
                decay: tensor.dim() >= 2,
                name,
                tensor,
                lr_scale: 1.0,
                buffers: Vec::new(),
            })
            .collect();
        Optimizer {
            kind: cfg.optimizer,
            momentum: cfg.momentum,
            nesterov: cfg.nesterov,
            weight_decay: cfg.weight_decay,
            params,
            steps: 0,
        }
    }

    /// Sets the LR multiplier of every parameter whose name starts with `prefix`.
    pub fn set_lr_scale(&mut self, prefix: &str, scale: f64) {
        self.params
            .iter_mut()
            .filter(|p| p.name.starts_with(prefix))
            .for_each(|p| p.lr_scale = scale);
    }

    /// The tensors it steps, in order (shallow clones).
    pub fn tensors(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|p| p.tensor.shallow_clone())
            .collect()
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self) -> f64 {
        let sq: f64 = self
            .grads()
            .map(|g| g.square().sum(tch::Kind::Double).double_value(&[]))
            .sum();
        sq.sqrt()
    }

    /// Scales gradients so that their global norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.grad_norm();
        if norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            tch::no_grad(|| self.grads().for_each(|mut g| _ = g.g_mul_scalar_(scale)));
        }
        norm
    }

    fn grads(&self) -> impl Iterator<Item = Tensor> + '_ {
        self.params
            .iter()
            .map(|p| p.tensor.grad())
            .filter(|g| g.defined())
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let t = self.steps as f64;
        let (kind, momentum, nesterov, wd) =
            (self.kind, self.momentum, self.nesterov, self.weight_decay);
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let lr = lr * p.lr_scale;
                let wd = if p.decay { wd } else { 0.0 };
                match kind {
                    OptimizerKind::Sgd => sgd(p, grad, lr, wd, momentum, nesterov),
                    OptimizerKind::Adam => adam(p, grad, lr, wd, t, false),
                    OptimizerKind::Adamw => adam(p, grad, lr, wd, t, true),
                }
            }
        });
    }

    /// State buffers as named tensors (for the resume checkpoint).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("steps".to_string(), Tensor::from(self.steps))];
        for p in &self.params {
            for (i, b) in p.buffers.iter().enumerate() {
                out.push((format!("{}.{i}", p.name), b.contiguous()));
            }
        }
        out
    }

    /// Restores state saved by [`Optimizer::state`].
    pub fn load_state(&mut self, named: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        if let Some(s) = named.get("steps") {
            self.steps = s.int64_value(&[]);
        }
        for p in &mut self.params {
            p.buffers = (0..)
                .map_while(|i| named.get(&format!("{}.{i}", p.name)))
                .map(|t| t.to_device(p.tensor.device()).copy())
                .collect();
        }
        Ok(())
    }
}

fn sgd(p: &mut Param, grad: Tensor, lr: f64, wd: f64, momentum: f64, nesterov: bool) {
    let mut g = if wd > 0.0 {
        &grad + &p.tensor * wd
    } else {
        grad
    };
    if momentum > 0.0 {
        if p.buffers.is_empty() {
            p.buffers.push(g.copy());
        } else {
            let buf = &mut p.buffers[0];
            _ = buf.g_mul_scalar_(momentum);
            _ = buf.g_add_(&g);
        }
        let buf = &p.buffers[0];
        g = if nesterov {
            &g + buf * momentum
        } else {
            buf.shallow_clone()
        };
    }
    _ = p.tensor.g_sub_(&(g * lr));
}

fn adam(p: &mut Param, grad: Tensor, lr: f64, wd: f64, t: f64, decoupled: bool) {
    let g = if wd > 0.0 && !decoupled {
        &grad + &p.tensor * wd
    } else {
        grad
    };
    if decoupled && wd > 0.0 {
        _ = p.tensor.g_mul_scalar_(1.0 - lr * wd);
    }
    if p.buffers.is_empty() {
        p.buffers = vec![g.zeros_like(), g.zeros_like()];
    }
    _ = p.buffers[0].lerp_(&g, 1.0 - BETA1);
    _ = p.buffers[1].g_mul_scalar_(BETA2);
    _ = p.buffers[1].g_add_(&(&g * &g * (1.0 - BETA2)));
    let bias1 = 1.0 - BETA1.powf(t);
    let bias2_sqrt = (1.0 - BETA2.powf(t)).sqrt();
    let denom = p.buffers[1].sqrt() / bias2_sqrt + EPS;
    _ = p.tensor.g_sub_(&(&p.buffers[0] / denom * (lr / bias1)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Minimises (w - 3)² from w = 0; every optimiser must get close.
    fn converges(kind: OptimizerKind, lr: f64) -> f64 {
        let w = Tensor::zeros([1, 1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let cfg = TrainConfig {
            optimizer: kind,
            weight_decay: 0.0,
            ..TrainConfig::default()
        };
        let mut opt = Optimizer::new(&cfg, vec![("w".into(), w.shallow_clone())]);
        for _ in 0..300 {
            opt.zero_grad();
            (&w - 3.0).square().sum(Kind::Float).backward();
            opt.step(lr);
        }
        w.double_value(&[0, 0])
    }

    #[test]
    fn all_optimisers_minimise_a_quadratic() {
        for (kind, lr) in [
            (OptimizerKind::Sgd, 0.05),
            (OptimizerKind::Adam, 0.1),
            (OptimizerKind::Adamw, 0.1),
        ] {
            let w = converges(kind, lr);
            assert!((w - 3.0).abs() < 1e-2, "{kind:?}: {w}");
        }
    }

    #[test]
    fn adam_first_step_is_lr_sized() {
        // torch.optim.Adam: the first step moves each weight by lr·sign(grad) (bias-corrected).
        let w = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let cfg = TrainConfig {
            optimizer: OptimizerKind::Adam,
            weight_decay: 0.0,
            ..TrainConfig::default()
        };
        let mut opt = Optimizer::new(&cfg, vec![("w".into(), w.shallow_clone())]);
        (&w * &w).sum(Kind::Float).backward();
        opt.step(0.01);
        let v = Vec::<f32>::try_from(&w).unwrap();
        assert!(
            (v[0] - 0.99).abs() < 1e-6 && (v[1] + 1.99).abs() < 1e-6,
            "{v:?}"
        );
    }
}
