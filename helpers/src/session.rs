//! What a notebook or the `lab` CLI takes from its environment, read once at the edge
//! (the notebook's setup cell, `lab`'s `main`) into explicit options; the rest of the
//! library reads no environment variable of this project behind a caller's back.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LAB_PROFILE` | budget profile: `smoke`, `default`, `full` | `default` |
//! | `LAB_RUNS` | folder of run directories (`make test` points it at a temp folder) | `saved_models` |
//! | `LAB_FRESH` | `1`: retrain every run from scratch (`make check-repro`) | reuse finished runs |
//! | `LAB_DOWNLOAD` | `1`: fetch a missing official CIFAR archive with curl | never download |
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::profile::Profile;
use crate::run::{Existing, DEFAULT_RUNS_ROOT};
use crate::tasks::image::{fit_with, FitOptions, TrainedRun};
use crate::train::PrintEpochs;
use crate::Result;
use std::path::PathBuf;

/// The session's profile, runs folder and what to do with existing runs.
#[derive(Debug, Clone)]
pub struct Session {
    pub profile: Profile,
    pub runs_root: PathBuf,
    pub existing: Existing,
    /// Whether a missing official dataset archive may be downloaded.
    pub download: bool,
}

impl Session {
    /// Reads `LAB_PROFILE`, `LAB_RUNS`, `LAB_FRESH` and `LAB_DOWNLOAD`.
    pub fn from_env() -> Result<Session> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let fresh = var("LAB_FRESH").is_some_and(|v| v == "1");
        Ok(Session {
            profile: Profile::parse(var("LAB_PROFILE").as_deref())?,
            runs_root: PathBuf::from(var("LAB_RUNS").unwrap_or(DEFAULT_RUNS_ROOT.into())),
            existing: if fresh {
                Existing::Force
            } else {
                Existing::Auto
            },
            download: var("LAB_DOWNLOAD").is_some_and(|v| v == "1"),
        })
    }

    /// The session of a notebook that lives in a subfolder: a relative runs folder is
    /// taken from `repo_root` (`".."` for `notebooks/*.ipynb`), so every notebook's runs
    /// land in the same `saved_models/`.
    pub fn relative_to(mut self, repo_root: impl AsRef<std::path::Path>) -> Session {
        if self.runs_root.is_relative() {
            self.runs_root = repo_root.as_ref().join(&self.runs_root);
        }
        self
    }

    /// Training options for runs of this session.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            root: self.runs_root.clone(),
            existing: self.existing,
            stop_after_epochs: None,
        }
    }

    /// Trains (or reuses) `cfg` under this session's runs folder, a line per epoch.
    pub fn fit(&self, cfg: &RunConfig, data: &Dataset) -> Result<TrainedRun> {
        fit_with(cfg, data, &self.fit_options(), &mut PrintEpochs)
    }
}
