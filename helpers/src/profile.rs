//! Budget profiles: the same notebook and configs at three scales. `LAB_PROFILE=smoke`
//! (CI: minutes), `default` (the report on a 2-core CPU), `full` (as configured, longer).
use crate::config::RunConfig;
use crate::monitor::drift::ExperimentOptions;
use crate::monitor::retrain::RetrainOptions;
use crate::monitor::shifts::Shift;
use crate::{Error, Result};

/// How much compute a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Tiny subsets and one epoch: checks that everything runs.
    Smoke,
    /// The configs as written.
    Default,
    /// Longer training (double the epochs) for final numbers.
    Full,
}

impl Profile {
    /// The profile called `name` (`None` or empty = default); `LAB_PROFILE` holds it,
    /// read by [`crate::session::Session::from_env`].
    pub fn parse(name: Option<&str>) -> Result<Profile> {
        match name {
            None | Some("") | Some("default") => Ok(Profile::Default),
            Some("smoke") => Ok(Profile::Smoke),
            Some("full") => Ok(Profile::Full),
            Some(other) => Err(Error::config(
                "LAB_PROFILE",
                format!("unknown profile `{other}`; allowed: smoke, default, full"),
            )),
        }
    }

    /// Name as in `LAB_PROFILE`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Default => "default",
            Profile::Full => "full",
        }
    }

    /// A regression config at this profile's scale (see [`Profile::scale_run`]).
    pub fn apply_regression(
        self,
        mut cfg: crate::tasks::regression::RegressionConfig,
    ) -> crate::tasks::regression::RegressionConfig {
        self.scale_run(&mut cfg.name, &mut cfg.train.epochs);
        cfg
    }

    /// A text config at this profile's scale (see [`Profile::scale_run`]).
    pub fn apply_text(
        self,
        mut cfg: crate::tasks::text::TextConfig,
    ) -> crate::tasks::text::TextConfig {
        self.scale_run(&mut cfg.name, &mut cfg.train.epochs);
        cfg
    }

    /// A detection config at this profile's scale (see [`Profile::scale_run`]).
    pub fn apply_detection(
        self,
        mut cfg: crate::tasks::detection::DetectionConfig,
    ) -> crate::tasks::detection::DetectionConfig {
        self.scale_run(&mut cfg.name, &mut cfg.train.epochs);
        cfg
    }

    /// A track run at this profile's scale: smoke at most 2 epochs, full double; named
    /// with the profile's suffix like [`Profile::apply`], so scaled runs never collide
    /// with the default ones.
    pub fn scale_run(self, name: &mut String, epochs: &mut usize) {
        match self {
            Profile::Smoke => *epochs = (*epochs).min(2),
            Profile::Default => return,
            Profile::Full => *epochs *= 2,
        }
        *name = format!("{name}-{}", self.name());
    }

    /// Epochs of the overfit-a-tiny-subset sanity check.
    pub fn overfit_epochs(self) -> usize {
        if self == Profile::Smoke {
            10
        } else {
            40
        }
    }

    /// Steps of the LR range test.
    pub fn lr_find_steps(self) -> usize {
        if self == Profile::Smoke {
            30
        } else {
            100
        }
    }

    /// Timed calls per engine and batch size of the latency benchmark.
    pub fn latency_iterations(self) -> usize {
        if self == Profile::Smoke {
            20
        } else {
            100
        }
    }

    /// Timed calls of the one-image latency in the conclusion's trade-off table.
    pub fn tradeoff_latency_iterations(self) -> usize {
        if self == Profile::Smoke {
            10
        } else {
            50
        }
    }

    /// The drift-detection experiment's settings: repeats per shift and severity, and
    /// clean windows for the false-alarm rate.
    pub fn drift_experiment(self, seed: u64) -> ExperimentOptions {
        let (repeats, clean_windows) = if self == Profile::Smoke {
            (2, 20)
        } else {
            (10, 200)
        };
        ExperimentOptions {
            repeats,
            clean_windows,
            seed,
            ..ExperimentOptions::default()
        }
    }

    /// Retraining after `shift` at `severity`: a small mix and one epoch at smoke.
    pub fn retrain_options(self, shift: Shift, severity: u8, seed: u64) -> RetrainOptions {
        let mut options = RetrainOptions::new(shift, severity);
        options.seed = seed;
        if self == Profile::Smoke {
            options.epochs = 1;
            options.reference_examples = 1000;
            options.new_examples = 500;
            options.holdout_examples = 500;
        }
        options
    }

    /// Seeds per ablation variant: one at smoke and default budgets, three at full.
    pub fn seeds(self) -> usize {
        if self == Profile::Full {
            3
        } else {
            1
        }
    }

    /// Sweep points scaled to this profile (names get the profile's suffix, as
    /// `lab train --name <point>` under the same profile would give them).
    pub fn apply_points(self, points: Vec<crate::sweep::Point>) -> Vec<crate::sweep::Point> {
        points
            .into_iter()
            .map(|mut p| {
                p.config = self.apply(p.config);
                p.name = p.config.name.clone();
                p
            })
            .collect()
    }

    /// What this profile appends to run names: "", `-smoke` or `-full`.
    pub fn suffix(self) -> &'static str {
        match self {
            Profile::Default => "",
            Profile::Smoke => "-smoke",
            Profile::Full => "-full",
        }
    }

    /// `cfg` scaled to this profile. Scaled runs get a name suffix so they never collide
    /// with full-size runs in `saved_models/`.
    pub fn apply(self, mut cfg: RunConfig) -> RunConfig {
        cfg.name = format!("{}{}", cfg.name, self.suffix());
        match self {
            Profile::Default => {}
            Profile::Smoke => {
                cfg.train.epochs = cfg.train.epochs.min(2);
                cfg.data.train_limit = 3000;
                cfg.data.test_limit = 1000;
                // Pretrained backbones cost most at large inputs; 32 px keeps CI short.
                if cfg.model.input_size > 32 {
                    cfg.model.input_size = 32;
                }
            }
            Profile::Full => {
                cfg.train.epochs *= 2;
            }
        }
        cfg
    }
}
