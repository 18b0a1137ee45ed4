//! Training, for any task: the one loop ([`Trainer`], driven by a [`Task`] and
//! [`Callback`]s), optimisers, LR schedules, checkpoints, history, TensorBoard logs and
//! the LR range test. What a task is lives in [`crate::tasks`].
pub mod callbacks;
pub mod config;
pub mod history;
pub mod lr_find;
pub mod optim;
pub mod precision_probe;
pub mod progress;
pub mod schedule;
pub mod tensorboard;
pub mod trainer;

pub use config::{OptimizerKind, Precision, ScheduleKind, TrainConfig};
pub use history::{EpochRecord, History};
pub use lr_find::{lr_find, LrFinder};
pub use optim::Optimizer;
pub use progress::{PrintEpochs, PrintScores, Progress, Silent};
pub use schedule::Schedule;
pub use trainer::{
    Callback, EpochEnd, LoopState, OnNonFinite, Outcome, Signal, StepInfo, StepOutput, Task,
    Trainer, Validation,
};
