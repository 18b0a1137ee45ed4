//! The regression track (tabular rows and hourly series) on the one training loop:
//! [`Prepared`] data in model units, [`Net`] (MLP or 1-D CNN), the [`Regression`] task,
//! [`fit`] into a run directory, baselines, [`Evaluation`] and its figures and tables,
//! and the scikit-learn reference on the identical split ([`reference`]).
pub mod baselines;
pub mod config;
pub mod data;
pub mod deploy;
pub mod evaluate;
pub mod experiments;
pub mod fit;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod reference;
pub mod task;

pub use config::RegressionConfig;
pub use data::{Arrays, Prepared, SeriesSpec};
pub use evaluate::{comparison_table, Evaluation};
pub use fit::{fit, RegressionMeta, TrainedRegression, CONFIG_FILE};
pub use metrics::RegressionMetrics;
pub use model::{InputShape, Net, NetConfig, NetKind};
pub use task::{Loss, Regression};
