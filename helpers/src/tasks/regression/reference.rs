//! The scikit-learn reference on a tabular run's identical split: RidgeCV and
//! HistGradientBoostingRegressor (`scripts/sklearn_reference.py`, run by the setup venv's
//! Python), so a notebook puts the neural model beside the tool a user would pick instead.
use super::fit::TrainedRegression;
use super::metrics::RegressionMetrics;
use crate::data::tabular::TabularSet;
use crate::io::venv::run_python_json;
use crate::Result;
use serde::Deserialize;
use std::path::Path;

/// One reference model's test result and fit time.
#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceResult {
    pub name: String,
    pub fit_seconds: f64,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    pub n: usize,
}

impl ReferenceResult {
    pub fn metrics(&self) -> RegressionMetrics {
        RegressionMetrics {
            mse: self.rmse * self.rmse,
            rmse: self.rmse,
            mae: self.mae,
            r2: self.r2,
            n: self.n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// scikit-learn's version.
    pub sklearn: String,
    pub models: Vec<ReferenceResult>,
}

/// Fits the references on `run`'s training rows of `set` and scores its test rows;
/// `quick` caps boosting at 50 iterations (smoke runs). `scripts` is the repository's
/// `scripts/` folder.
pub fn scikit_learn(
    run: &TrainedRegression,
    set: &TabularSet,
    scripts: &Path,
    quick: bool,
) -> Result<Reference> {
    let script = scripts.join("sklearn_reference.py");
    let mut args: Vec<std::ffi::OsString> = vec![
        set.frame.source.clone().into(),
        run.run.file("split.json").into(),
        set.target.clone().into(),
    ];
    let categorical = set.feature_names().into_iter().filter(|n| {
        matches!(
            set.frame.column(n),
            Ok(crate::data::tabular::Column::Categorical(_))
        )
    });
    let categorical: Vec<std::ffi::OsString> = categorical.map(Into::into).collect();
    if !categorical.is_empty() {
        args.push("--categorical".into());
        args.extend(categorical);
    }
    if quick {
        args.push("--quick".into());
    }
    run_python_json(&script, &args)
}

impl Reference {
    /// The network and the references side by side on the same test rows, with fit time.
    pub fn table(
        &self,
        model: &TrainedRegression,
        others: &[(&str, &super::Evaluation)],
    ) -> Result<crate::render::Table> {
        use polars::prelude::Column;
        let m = &model.test.metrics[0];
        let mut rows = vec![(
            format!("helpers MLP ({} epochs)", model.meta.epochs_done),
            *m,
            Some(model.meta.train_seconds),
        )];
        rows.extend(
            others
                .iter()
                .map(|(n, e)| (n.to_string(), e.metrics[0], None)),
        );
        rows.extend(
            self.models
                .iter()
                .map(|r| (r.name.clone(), r.metrics(), Some(r.fit_seconds))),
        );
        let col = |f: &dyn Fn(&RegressionMetrics) -> f64| {
            rows.iter().map(|(_, m, _)| f(m)).collect::<Vec<f64>>()
        };
        crate::render::Table::from_columns(
            format!(
                "Test rows ({}), same split for every predictor (scikit-learn {})",
                m.n, self.sklearn
            ),
            vec![
                Column::new(
                    "predictor".into(),
                    rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                ),
                Column::new("RMSE".into(), col(&|m| m.rmse)),
                Column::new("MAE".into(), col(&|m| m.mae)),
                Column::new("R²".into(), col(&|m| m.r2)),
                Column::new(
                    "fit s".into(),
                    rows.iter()
                        .map(|r| r.2.unwrap_or(f64::NAN))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
    }

    /// The named reference's result.
    pub fn model(&self, name_contains: &str) -> Option<&ReferenceResult> {
        self.models.iter().find(|m| m.name.contains(name_contains))
    }
}
