//! Learning-rate schedules, as a function of the global step, with an optional linear
//! warm-up. Formulas follow PyTorch's `StepLR`, `CosineAnnealingLR`, `OneCycleLR`
//! (cosine annealing, div_factor 25, final_div_factor 1e4) and `ReduceLROnPlateau`.
use super::config::{ScheduleKind, TrainConfig};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// The LR at each step; `plateau` state changes at epoch ends and is checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    kind: ScheduleKind,
    base_lr: f64,
    steps_per_epoch: usize,
    total_steps: usize,
    warmup_steps: usize,
    step_epochs: usize,
    gamma: f64,
    pct_start: f64,
    plateau_patience: usize,
    /// Reduce-on-plateau: current factor, best val loss, epochs without improvement.
    pub plateau_scale: f64,
    pub plateau_best: f64,
    pub plateau_bad_epochs: usize,
    /// The LR range test's exponential ramp (start, end, steps), replacing `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    range_test: Option<(f64, f64, usize)>,
}

impl Schedule {
    /// The schedule of `cfg` for `steps_per_epoch` optimiser steps per epoch.
    pub fn new(cfg: &TrainConfig, steps_per_epoch: usize) -> Schedule {
        Schedule {
            kind: cfg.schedule,
            base_lr: cfg.lr,
            steps_per_epoch: steps_per_epoch.max(1),
            total_steps: (steps_per_epoch * cfg.epochs).max(1),
            warmup_steps: (cfg.warmup_epochs * steps_per_epoch as f64).round() as usize,
            step_epochs: cfg.step_epochs.max(1),
            gamma: cfg.gamma,
            pct_start: cfg.pct_start,
            plateau_patience: cfg.plateau_patience,
            plateau_scale: 1.0,
            plateau_best: f64::MAX,
            plateau_bad_epochs: 0,
            range_test: None,
        }
    }

    /// `lr` at every step (fine-tuning, sanity checks, benchmarks).
    pub fn constant(lr: f64) -> Schedule {
        let cfg = TrainConfig {
            schedule: ScheduleKind::Constant,
            lr,
            warmup_epochs: 0.0,
            ..TrainConfig::default()
        };
        Schedule::new(&cfg, 1)
    }

    /// The LR range test's ramp: `start · (end / start)^(step / (steps − 1))`.
    pub fn range_test(start: f64, end: f64, steps: usize) -> Schedule {
        Schedule {
            range_test: Some((start, end, steps)),
            ..Schedule::constant(start)
        }
    }

    /// LR for global step `step` (0-based).
    pub fn lr(&self, step: usize) -> f64 {
        if let Some((start, end, steps)) = self.range_test {
            return start * (end / start).powf(step as f64 / (steps - 1).max(1) as f64);
        }
        let warm = if step < self.warmup_steps {
            (step + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        warm * match self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Step => {
                self.base_lr
                    * self
                        .gamma
                        .powi((step / self.steps_per_epoch / self.step_epochs) as i32)
            }
            ScheduleKind::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = step.saturating_sub(self.warmup_steps) as f64 / span;
                self.base_lr * 0.5 * (1.0 + (PI * t.min(1.0)).cos())
            }
            ScheduleKind::OneCycle => self.one_cycle(step),
            ScheduleKind::Plateau => self.base_lr * self.plateau_scale,
        }
    }

    fn one_cycle(&self, step: usize) -> f64 {
        let initial = self.base_lr / 25.0;
        let min = initial / 1e4;
        let peak_step = (self.pct_start * self.total_steps as f64 - 1.0).max(0.0);
        let last = (self.total_steps - 1) as f64;
        let s = step as f64;
        let anneal = |start: f64, end: f64, pct: f64| {
            end + (start - end) / 2.0 * (1.0 + (PI * pct.clamp(0.0, 1.0)).cos())
        };
        if s <= peak_step {
            anneal(
                initial,
                self.base_lr,
                if peak_step > 0.0 { s / peak_step } else { 1.0 },
            )
        } else {
            anneal(
                self.base_lr,
                min,
                (s - peak_step) / (last - peak_step).max(1.0),
            )
        }
    }

    /// Reduce-on-plateau bookkeeping: call once per epoch with the validation loss.
    /// Improvement means lower by more than 1e-4 relative (PyTorch's default threshold).
    pub fn on_epoch_end(&mut self, val_loss: f64) {
        if self.kind != ScheduleKind::Plateau {
            return;
        }
        if val_loss < self.plateau_best * (1.0 - 1e-4) {
            self.plateau_best = val_loss;
            self.plateau_bad_epochs = 0;
        } else {
            self.plateau_bad_epochs += 1;
            if self.plateau_bad_epochs > self.plateau_patience {
                self.plateau_scale *= self.gamma;
                self.plateau_bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: ScheduleKind) -> TrainConfig {
        TrainConfig {
            schedule: kind,
            lr: 1.0,
            epochs: 10,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn one_cycle_matches_pytorch() {
        // torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=100, pct_start=0.25)
        // lrs at steps 0, 24, 50, 99: 0.04, 1.0, 0.73165, 4e-06
        let s = Schedule::new(
            &TrainConfig {
                pct_start: 0.25,
                ..cfg(ScheduleKind::OneCycle)
            },
            10,
        );
        assert!((s.lr(0) - 0.04).abs() < 1e-12);
        assert!((s.lr(24) - 1.0).abs() < 1e-12);
        let expected_50 = 4e-6 + (1.0 - 4e-6) / 2.0 * (1.0 + (PI * 26.0 / 75.0).cos());
        assert!(
            (s.lr(50) - expected_50).abs() < 1e-12 && (s.lr(50) - 0.7316490909678607).abs() < 1e-9
        );
        assert!((s.lr(99) - 4e-6).abs() < 1e-12);
    }

    #[test]
    fn step_cosine_and_warmup() {
        let s = Schedule::new(
            &TrainConfig {
                step_epochs: 3,
                gamma: 0.5,
                ..cfg(ScheduleKind::Step)
            },
            10,
        );
        assert_eq!((s.lr(29), s.lr(30), s.lr(60)), (1.0, 0.5, 0.25));
        let c = Schedule::new(&cfg(ScheduleKind::Cosine), 10);
        assert!(
            (c.lr(0) - 1.0).abs() < 1e-12 && (c.lr(50) - 0.5).abs() < 1e-12 && c.lr(100) < 1e-12
        );
        let w = Schedule::new(
            &TrainConfig {
                warmup_epochs: 1.0,
                ..cfg(ScheduleKind::Constant)
            },
            10,
        );
        assert_eq!((w.lr(0), w.lr(4), w.lr(9), w.lr(10)), (0.1, 0.5, 1.0, 1.0));
    }

    #[test]
    fn plateau_reduces_after_patience() {
        let mut s = Schedule::new(
            &TrainConfig {
                plateau_patience: 1,
                gamma: 0.1,
                ..cfg(ScheduleKind::Plateau)
            },
            10,
        );
        s.on_epoch_end(1.0); // best
        s.on_epoch_end(1.0); // bad 1 (≤ patience)
        assert_eq!(s.lr(0), 1.0);
        s.on_epoch_end(1.0); // bad 2 > patience → reduce
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
    }
}
