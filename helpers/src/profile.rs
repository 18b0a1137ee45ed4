//! Budget profiles: the same notebook and configs at three scales. `LAB_PROFILE=smoke`
//! (CI: minutes), `default` (the report on a 2-core CPU), `full` (as configured, longer).
use crate::config::RunConfig;
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

    /// `cfg` scaled to this profile. Scaled runs get a name suffix so they never collide
    /// with full-size runs in `saved_models/`.
    pub fn apply(self, mut cfg: RunConfig) -> RunConfig {
        match self {
            Profile::Default => {}
            Profile::Smoke => {
                cfg.name = format!("{}-smoke", cfg.name);
                cfg.train.epochs = cfg.train.epochs.min(2);
                cfg.data.train_limit = 3000;
                cfg.data.test_limit = 1000;
                // Pretrained backbones cost most at large inputs; 32 px keeps CI short.
                if cfg.model.input_size > 32 {
                    cfg.model.input_size = 32;
                }
            }
            Profile::Full => {
                cfg.name = format!("{}-full", cfg.name);
                cfg.train.epochs *= 2;
            }
        }
        cfg
    }
}
