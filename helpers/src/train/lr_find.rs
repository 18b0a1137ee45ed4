//! Learning-rate range test (Smith, "Cyclical Learning Rates", 2017; fastai's
//! `lr_find`): train with an exponentially growing LR, smooth the loss, stop when it
//! diverges, and suggest LRs at the steepest descent and in the loss valley. The model's
//! weights are restored afterwards, and the optimiser is a throwaway one.
use super::trainer::{Callback, LoopState, OnNonFinite, Signal, StepInfo, Task, Trainer};
use super::{Optimizer, Schedule};
use crate::backend::Precision;
use crate::plot::{self, Figure, Series};
use crate::render::evcxr_emit;
use crate::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// The sweep and its suggestions.
#[derive(Debug, Clone)]
pub struct LrFinder {
    /// LR of each step.
    pub lrs: Vec<f64>,
    /// Training loss of each step, and its debiased exponential moving average (β 0.98).
    pub losses: Vec<f64>,
    pub smoothed: Vec<f64>,
    /// LR where the smoothed loss falls fastest (per unit of log LR).
    pub steepest: f64,
    /// LR two thirds of the way down the longest descending stretch (fastai's `valley`).
    pub valley: f64,
}

/// Runs the range test on `task` from `start` to `end` over at most `steps` steps of
/// `opt` (a throwaway optimiser), through the training loop; the task's weights are
/// restored afterwards.
pub fn lr_find<T: Task>(
    task: &T,
    opt: &mut Optimizer,
    grad_clip: f64,
    (start, end, steps): (f64, f64, usize),
) -> Result<LrFinder> {
    let saved: HashMap<String, Tensor> = task
        .weights()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let mut trainer = Trainer::new(usize::MAX);
    trainer.grad_clip = grad_clip;
    trainer.validate_every = 0;
    trainer.max_steps = Some(steps);
    trainer.on_non_finite = OnNonFinite::Stop;
    let mut state = LoopState::new(Schedule::range_test(start, end, steps), Precision::Fp32);
    let mut test = RangeTest::default();
    trainer.run(task, opt, &mut state, &mut [&mut test])?;
    crate::io::tensors::copy_named(
        &task.weights(),
        &saved,
        "",
        &PathBuf::from("(weights before the LR finder)"),
    )?;
    Ok(test.into_finder(start))
}

/// Records each step's LR and loss with its debiased moving average (β 0.98) and stops
/// once the average exceeds four times its minimum (the loss diverged).
#[derive(Debug, Default)]
struct RangeTest {
    lrs: Vec<f64>,
    losses: Vec<f64>,
    smoothed: Vec<f64>,
    avg: f64,
    best: Option<f64>,
}

impl Callback for RangeTest {
    fn on_step(&mut self, info: &StepInfo) -> Signal {
        self.avg = 0.98 * self.avg + 0.02 * info.batch_loss;
        let debiased = self.avg / (1.0 - 0.98f64.powi(self.lrs.len() as i32 + 1));
        self.lrs.push(info.lr);
        self.losses.push(info.batch_loss);
        self.smoothed.push(debiased);
        let best = self.best.map_or(debiased, |b| b.min(debiased));
        self.best = Some(best);
        if debiased > 4.0 * best {
            Signal::Stop
        } else {
            Signal::Continue
        }
    }
}

impl RangeTest {
    fn into_finder(self, start: f64) -> LrFinder {
        let steepest = self
            .lrs
            .get(steepest_index(&self.lrs, &self.smoothed))
            .copied()
            .unwrap_or(start);
        let valley = self
            .lrs
            .get(valley_index(&self.smoothed))
            .copied()
            .unwrap_or(start);
        LrFinder {
            lrs: self.lrs,
            losses: self.losses,
            smoothed: self.smoothed,
            steepest,
            valley,
        }
    }
}

/// Index of the most negative slope of loss against log LR (central differences),
/// ignoring the first and last tenth where the average is still settling or exploding.
fn steepest_index(lrs: &[f64], loss: &[f64]) -> usize {
    let n = loss.len();
    if n < 3 {
        return 0;
    }
    let (lo, hi) = ((n / 10).max(1), (n - n / 10).min(n - 1));
    (lo..hi)
        .min_by(|&a, &b| slope(lrs, loss, a).total_cmp(&slope(lrs, loss, b)))
        .unwrap_or(0)
}

fn slope(lrs: &[f64], loss: &[f64], i: usize) -> f64 {
    (loss[i + 1] - loss[i - 1]) / (lrs[i + 1].ln() - lrs[i - 1].ln())
}

/// fastai's valley: the longest strictly descending subsequence of the loss, and the
/// point two thirds along it.
fn valley_index(loss: &[f64]) -> usize {
    let n = loss.len();
    let mut lds = vec![1usize; n];
    let (mut max_start, mut max_end) = (0, 0);
    for i in 1..n {
        for j in 0..i {
            if loss[i] < loss[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end.saturating_sub(lds[max_end]);
            }
        }
    }
    let sections = (max_end - max_start) as f64 / 3.0;
    (max_start + sections as usize + (sections / 2.0) as usize).min(n.saturating_sub(1))
}

impl LrFinder {
    /// Smoothed loss against log10(LR), with the two suggestions marked.
    pub fn figure(&self) -> Result<Figure> {
        let at = |lr: f64| {
            let i = self.lrs.iter().position(|&l| l >= lr).unwrap_or(0);
            vec![(
                lr.log10(),
                self.smoothed.get(i).copied().unwrap_or(f64::NAN),
            )]
        };
        let curve = self
            .lrs
            .iter()
            .zip(&self.smoothed)
            .map(|(l, s)| (l.log10(), *s))
            .collect();
        plot::lines(
            "lr_finder",
            &[(
                "LR range test (smoothed training loss)",
                "log10(learning rate)",
                vec![
                    Series::new("loss", curve),
                    Series::new(format!("steepest {:.1e}", self.steepest), at(self.steepest)),
                    Series::new(format!("valley {:.1e}", self.valley), at(self.valley)),
                ],
            )],
        )
    }

    /// Writes the range test to a TensorBoard event file in `dir` (a fresh one each
    /// call): per step, `lr_find/loss` (raw), `lr_find/smoothed_loss` and `lr_find/lr`,
    /// the LR growing exponentially with the step, so the loss curve reads against
    /// log(LR). Returns `self` for a notebook cell's display.
    pub fn log_tensorboard(self, dir: &Path) -> Result<LrFinder> {
        let mut w = super::tensorboard::EventWriter::create(dir)?;
        for (step, ((lr, loss), smoothed)) in self
            .lrs
            .iter()
            .zip(&self.losses)
            .zip(&self.smoothed)
            .enumerate()
        {
            w.scalar("lr_find/loss", step as i64, *loss)?;
            w.scalar("lr_find/smoothed_loss", step as i64, *smoothed)?;
            w.scalar("lr_find/lr", step as i64, *lr)?;
        }
        w.flush()?;
        Ok(self)
    }

    /// evcxr's hook: the suggestions and the curve.
    pub fn evcxr_display(&self) {
        let svg = self.figure().map(|f| f.img_html()).unwrap_or_default();
        evcxr_emit(
            "text/html",
            &format!("<p>{} steps; suggestions: steepest descent <b>{:.2e}</b>, valley <b>{:.2e}</b></p>{svg}", self.lrs.len(), self.steepest, self.valley),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valley_and_steepest_on_a_known_curve() {
        // Flat, then falling fastest between indices 4 and 6, then rising.
        let loss = [2.0, 2.0, 1.99, 1.95, 1.8, 1.2, 0.9, 0.85, 0.84, 1.5, 3.0];
        let lrs: Vec<f64> = (0..loss.len()).map(|i| 10f64.powi(i as i32 - 6)).collect();
        assert_eq!(steepest_index(&lrs, &loss), 5);
        // Longest descent ends at index 8 with length 8; fastai takes start = 8 − 8 = 0,
        // sections = 8/3, index = 0 + 2 + 1.
        assert_eq!(valley_index(&loss), 3);
    }
}
