//! Training: optimisers, LR schedules, checkpoints, history and the [`fit`] loop.
pub mod checkpoint;
pub mod history;
pub mod lr_find;
pub mod optim;
pub mod probe;
pub mod progress;
pub mod schedule;
pub mod trained_run;
pub mod trainer;

pub use history::{EpochRecord, History};
pub use lr_find::{lr_find, LrFinder};
pub use optim::Optimizer;
pub use progress::{PrintEpochs, Progress, Silent, StepInfo};
pub use schedule::Schedule;
pub use trained_run::TrainedRun;
pub use trainer::{fit, fit_with, Existing, FitOptions};
