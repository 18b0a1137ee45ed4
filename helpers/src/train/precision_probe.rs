//! The start-up probe behind `train.precision = "auto"`: a few training steps' forward
//! and backward passes of the run's own model on its first batches, timed in fp32 and in
//! bf16. Weights and buffers (batch-norm statistics) are put back afterwards and no
//! optimiser step is taken, so a probed run trains bit for bit as one configured with
//! the precision the probe chose.
use super::trainer::Task;
use crate::backend::autocast::autocast;
use crate::backend::{Precision, PrecisionProbe};
use crate::{Error, Result};
use std::time::{Duration, Instant};
use tch::Tensor;

/// Untimed steps per precision (allocations, oneDNN's kernel selection).
const WARMUP_STEPS: usize = 2;
/// Timed steps per precision: at least `MIN_TIMED_STEPS` and `MIN_TIMED` of work (small
/// models take milliseconds a step, which a busy neighbour would swamp), at most
/// `MAX_TIMED_STEPS`.
const MIN_TIMED_STEPS: usize = 4;
const MAX_TIMED_STEPS: usize = 50;
const MIN_TIMED: Duration = Duration::from_millis(250);

/// Examples per second of `task`'s training step (forward and backward) in fp32 and bf16.
pub fn measure<T: Task>(task: &T) -> Result<PrecisionProbe> {
    let saved: Vec<Tensor> = task.weights().iter().map(|(_, t)| t.copy()).collect();
    let fp32 = throughput(task, Precision::Fp32);
    let bf16 = throughput(task, Precision::Bf16);
    tch::no_grad(|| {
        for ((_, t), kept) in task.weights().iter().zip(&saved) {
            t.shallow_clone().copy_(kept);
        }
    });
    Ok(PrecisionProbe {
        fp32_per_sec: fp32?,
        bf16_per_sec: bf16?,
        reused: false,
    })
}

/// Examples per second over the timed steps (the epoch's first batches, over again when
/// it has fewer); gradients accumulate (the loop zeroes them before its first step).
fn throughput<T: Task>(task: &T, precision: Precision) -> Result<f64> {
    if task.steps_per_epoch() == 0 {
        return Err(Error::config(
            "train.precision",
            "`auto` probes on training batches and the training split has none; add training \
             data or set \"fp32\"",
        ));
    }
    task.begin_epoch(0);
    let (mut busy, mut examples, mut timed) = (Duration::ZERO, 0, 0);
    let batches = std::iter::repeat_with(|| task.train_batches(0)).flatten();
    for (step, batch) in batches.enumerate() {
        let started = Instant::now();
        let out = autocast(task.device(), precision, || task.training_step(batch))?;
        out.loss.backward();
        if step >= WARMUP_STEPS {
            busy += started.elapsed();
            examples += out.examples;
            timed += 1;
        }
        let enough = timed >= MIN_TIMED_STEPS && busy >= MIN_TIMED;
        if enough || timed >= MAX_TIMED_STEPS {
            break;
        }
    }
    Ok(examples as f64 / busy.as_secs_f64().max(1e-9))
}
