//! `helpers`: every step of an applied deep-learning project on libtorch (through
//! [`tch`]), as one-line calls for a notebook cell and subcommands of the `lab` CLI.
//!
//! Data path: [`config::RunConfig`] → [`data::Dataset`] (+ [`data::DataCard`], stratified
//! [`data::Split`]) → [`models::Model`] → a task's `fit` ([`tasks::image::fit`], on the one
//! training loop [`train::Trainer`]) → [`run::RunDir`] in `saved_models/` →
//! [`metrics::Metrics`] → [`render::Table`] and [`plot::Figure`], which render inline in an
//! evcxr Jupyter kernel and save themselves to disk.
//!
//! Layers, bottom up (a module imports only from its own layer or below):
//! `error`, `rng`, `io`, `backend`, `render`, `plot` · `data`, `weights`, `models`,
//! `metrics`, `train` · `config`, `run`, `evaluate`, `tasks` · `sanity`, `baselines`,
//! `sweep`, `slurm`, `profile`, `experiment`, `explain`, `deploy`, `monitor`, `report`, `session` ·
//! `serve` (feature `serve`: the HTTP model server).

pub mod backend;
pub mod baselines;
pub mod config;
pub mod data;
pub mod deploy;
pub mod error;
pub mod evaluate;
pub mod experiment;
pub mod explain;
pub mod io;
pub mod metrics;
pub mod models;
pub mod monitor;
pub mod plot;
pub mod profile;
pub mod render;
pub mod report;
pub mod rng;
pub mod run;
pub mod sanity;
#[cfg(feature = "serve")]
pub mod serve;
pub mod session;
pub mod slurm;
pub mod sweep;
pub mod tasks;
pub mod train;
pub mod weights;

pub use error::{Error, Result};
/// Re-exported so notebook cells need a single `:dep`.
pub use polars;
pub use tch;

/// What a notebook cell usually needs: `use helpers::prelude::*;`.
pub mod prelude {
    pub use crate::backend::versions;
    pub use crate::config::{Arch, Head, OptimizerKind, RunConfig, ScheduleKind};
    pub use crate::data::{self, fashion_mnist, DataCard, DataLoaders, Dataset, ImageSet, Split};
    pub use crate::evaluate::{predict, Predictions};
    pub use crate::metrics::Metrics;
    pub use crate::models::{self, summary::summary, Model};
    pub use crate::plot::{self, Figure};
    pub use crate::profile::Profile;
    pub use crate::render::{Markdown, Table};
    pub use crate::report;
    pub use crate::run::RunDir;
    pub use crate::session::Session;
    pub use crate::tasks::image::{fit, TrainedRun};
    // The regression track (notebooks/regression.ipynb).
    pub use crate::data::tabular::{california, weather, PreprocessOptions};
    pub use crate::tasks::regression::{
        self, baselines, experiments, reference, Prepared, RegressionConfig, SeriesSpec,
    };
    // The text track (notebooks/text.ipynb).
    pub use crate::data::text::{grouped_split, rotten_tomatoes, tweets, TextSet};
    pub use crate::tasks::text::{self, TextConfig, TextData, TextNetKind};
    // The detection track (notebooks/detection.ipynb).
    pub use crate::tasks::detection::{self, BackboneKind, DetectionConfig, DetectionData};
    pub use crate::train::{self, History};
    pub use crate::{Error, Result};
    pub use tch::{self, Device, Kind, Tensor};
}
