//! Running sweeps and comparing runs: grid and ablation tables (sortable polars
//! tables), overlaid curves and metric bars across run directories.
use crate::config::{ModelConfig, RunConfig};
use crate::data::Dataset;
use crate::metrics::Metrics;
use crate::plot::{self, Figure, Series};
use crate::render::Table;
use crate::run::Meta;
use crate::sweep::{value_label, Point};
use crate::tasks::image::{fit_with, FitOptions, TrainedRun};
use crate::train::{History, Progress};
use crate::Result;
use polars::prelude::Column;
use std::path::Path;

/// What a comparison needs from a finished run (no weights, no data).
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub name: String,
    /// The sweep point's label (ablation variant or grid values); the name otherwise.
    pub label: String,
    pub overrides: Vec<(String, toml::Value)>,
    pub history: History,
    pub test: Metrics,
    pub meta: Meta,
}

impl RunSummary {
    /// The summary of a trained run.
    pub fn of(
        run: &TrainedRun,
        label: String,
        overrides: Vec<(String, toml::Value)>,
    ) -> RunSummary {
        RunSummary {
            name: run.config.name.clone(),
            label,
            overrides,
            history: run.history.clone(),
            test: run.test.clone(),
            meta: run.meta.clone(),
        }
    }

    /// Reads a finished run directory.
    pub fn load(path: &Path) -> Result<RunSummary> {
        let run = crate::run::RunDir::at(path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(RunSummary {
            label: name.clone(),
            name,
            overrides: vec![],
            history: run.history()?,
            test: run.metrics()?,
            meta: run.meta()?,
        })
    }
}

/// The finished runs of a sweep's points under `root`, in the points' order and with
/// their labels — the summaries [`run_points`] returns for the same runs, so the tables
/// of a sweep run elsewhere (a Slurm array job) are those of the same sweep run here.
/// Errs naming every point that is not finished (nothing is trained).
pub fn collect_points(root: &Path, points: &[Point]) -> Result<Vec<RunSummary>> {
    let unfinished: Vec<&str> = points
        .iter()
        .filter(|p| !crate::run::RunDir::at(root.join(&p.name)).is_finished())
        .map(|p| p.name.as_str())
        .collect();
    if !unfinished.is_empty() {
        return Err(crate::Error::data(
            root,
            format!(
                "{} of {} sweep points are not finished: {} (`lab sweep-status` says where they stand; `lab grid` trains them here)",
                unfinished.len(),
                points.len(),
                unfinished.join(", ")
            ),
        ));
    }
    points
        .iter()
        .map(|p| {
            let mut run = RunSummary::load(&root.join(&p.name))?;
            run.label = p.label.clone();
            run.overrides = p.overrides.clone();
            Ok(run)
        })
        .collect()
}

/// The finished points of a sweep under `root` (the others left out), as
/// [`collect_points`] reads them.
pub fn collect_finished(root: &Path, points: &[Point]) -> Result<Vec<RunSummary>> {
    let finished: Vec<Point> = points
        .iter()
        .filter(|p| crate::run::RunDir::at(root.join(&p.name)).is_finished())
        .cloned()
        .collect();
    collect_points(root, &finished)
}

/// Trains every point under `opts.root`, in order (finished points with the same
/// config reused, unfinished ones resumed, unless `opts.existing` says otherwise).
pub fn run_points(
    points: &[Point],
    data: &Dataset,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<Vec<RunSummary>> {
    points
        .iter()
        .map(|p| {
            progress.on_message(&format!("── {} ──", p.name));
            let run = fit_with(&p.config, data, opts, progress)?;
            Ok(RunSummary::of(&run, p.label.clone(), p.overrides.clone()))
        })
        .collect()
}

/// The CNN-from-scratch twin of a transfer-learning config: the same data, split,
/// optimiser and epochs, `model` instead of the pretrained network, and the run name's
/// `baseline_pretrained` replaced by `cnn_scratch` (the course layout's names).
pub fn scratch_twin(transfer: &RunConfig, model: &ModelConfig) -> RunConfig {
    let mut cfg = transfer.run_only();
    cfg.name = transfer.name.replace("baseline_pretrained", "cnn_scratch");
    cfg.model = model.clone();
    cfg
}

/// The transfer comparison in report order: the pretrained baseline, its tuned
/// variants, the CNN from scratch last.
pub fn transfer_comparison(
    baseline: &TrainedRun,
    tuned: &[RunSummary],
    scratch: &TrainedRun,
) -> Vec<RunSummary> {
    let mut compared = vec![RunSummary::of(
        baseline,
        "baseline_pretrained".into(),
        vec![],
    )];
    compared.extend(tuned.iter().cloned());
    compared.push(RunSummary::of(scratch, "cnn_scratch".into(), vec![]));
    compared
}

/// One row per grid point: its values, best validation accuracy, test accuracy and
/// macro-F1, training time. Sorted by validation accuracy (model selection never looks
/// at the test set).
pub fn grid_table(runs: &[RunSummary]) -> Result<Table> {
    let keys: Vec<String> = runs
        .first()
        .map(|r| r.overrides.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut cols: Vec<Column> = keys
        .iter()
        .map(|k| {
            let values: Vec<String> = runs
                .iter()
                .map(|r| {
                    r.overrides
                        .iter()
                        .find(|(rk, _)| rk == k)
                        .map(|(_, v)| value_label(v))
                        .unwrap_or_default()
                })
                .collect();
            Column::new(k.as_str().into(), values)
        })
        .collect();
    cols.extend(metric_columns(runs));
    Table::from_columns("Grid search (sorted by validation accuracy)", cols)?
        .sorted_by("best val acc", true)
}

fn metric_columns(runs: &[RunSummary]) -> Vec<Column> {
    vec![
        Column::new(
            "run".into(),
            runs.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "best val acc".into(),
            runs.iter()
                .map(|r| r.meta.best_val_accuracy)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "test acc".into(),
            runs.iter().map(|r| r.test.accuracy).collect::<Vec<_>>(),
        ),
        Column::new(
            "test macro-F1".into(),
            runs.iter().map(|r| r.test.macro_avg.f1).collect::<Vec<_>>(),
        ),
        Column::new(
            "train s".into(),
            runs.iter()
                .map(|r| r.meta.train_seconds)
                .collect::<Vec<_>>(),
        ),
    ]
}

/// The final comparison of different models on the same split and epochs: test
/// accuracy and macro-F1, best validation accuracy, wall time (a linear probe's
/// embedding time shown apart and included in the total), parameters in all and trained.
pub fn comparison_table(runs: &[RunSummary]) -> Result<Table> {
    let embed = |r: &RunSummary| r.meta.embed_seconds.unwrap_or(0.0);
    let col = |name: &str, f: &dyn Fn(&RunSummary) -> f64| {
        Column::new(name.into(), runs.iter().map(f).collect::<Vec<_>>())
    };
    let count = |name: &str, f: &dyn Fn(&RunSummary) -> i64| {
        Column::new(name.into(), runs.iter().map(f).collect::<Vec<_>>())
    };
    Table::from_columns(
        "Model comparison (same split, same epochs; sorted by validation accuracy)",
        vec![
            Column::new(
                "run".into(),
                runs.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            ),
            col("best val acc", &|r| r.meta.best_val_accuracy),
            col("test acc", &|r| r.test.accuracy),
            col("test macro-F1", &|r| r.test.macro_avg.f1),
            col("embed s", &embed),
            col("total s", &|r| r.meta.train_seconds + embed(r)),
            count("params", &|r| r.meta.num_parameters),
            count("trained params", &|r| {
                r.meta.trainable_parameters.unwrap_or(r.meta.num_parameters)
            }),
        ],
    )?
    .sorted_by("best val acc", true)
}

/// One row per ablation variant (runs grouped by label): mean ± std of test accuracy
/// over seeds, and the change against the `base` variant.
pub fn ablation_table(runs: &[RunSummary]) -> Result<Table> {
    let mut variants: Vec<(String, Vec<&RunSummary>)> = Vec::new();
    for r in runs {
        let variant = r.label.clone();
        match variants.iter_mut().find(|(v, _)| *v == variant) {
            Some((_, list)) => list.push(r),
            None => variants.push((variant, vec![r])),
        }
    }
    let stats = |list: &[&RunSummary], f: fn(&RunSummary) -> f64| {
        mean_std(&list.iter().map(|r| f(r)).collect::<Vec<_>>())
    };
    let base_test = variants
        .iter()
        .find(|(v, _)| v == "base")
        .map(|(_, l)| stats(l, |r| r.test.accuracy).0);
    let mut rows = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (variant, list) in &variants {
        let (test_mean, test_std) = stats(list, |r| r.test.accuracy);
        rows.0.push(variant.clone());
        rows.1.push(list.len() as u64);
        rows.2.push(stats(list, |r| r.meta.best_val_accuracy).0);
        rows.3.push(test_mean);
        rows.4.push(test_std);
        rows.5.push(base_test.map_or(f64::NAN, |b| test_mean - b));
        rows.6.push(stats(list, |r| r.test.macro_avg.f1).0);
    }
    Table::from_columns(
        "Ablations: one change at a time (mean over seeds; Δ = test accuracy minus the base's)",
        vec![
            Column::new("variant".into(), rows.0),
            Column::new("seeds".into(), rows.1),
            Column::new("val acc".into(), rows.2),
            Column::new("test acc".into(), rows.3),
            Column::new("± std".into(), rows.4),
            Column::new("Δ test acc".into(), rows.5),
            Column::new("test macro-F1".into(), rows.6),
        ],
    )
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Validation accuracy (left) and loss (right) of several runs, overlaid.
pub fn compare_curves(runs: &[RunSummary]) -> Result<Figure> {
    let series = |f: fn(&crate::train::EpochRecord) -> f64| {
        runs.iter()
            .map(|r| {
                Series::new(
                    r.name.clone(),
                    r.history
                        .epochs
                        .iter()
                        .map(|e| (e.epoch as f64, f(e)))
                        .collect(),
                )
            })
            .collect::<Vec<_>>()
    };
    plot::lines(
        "compare_curves",
        &[
            ("validation accuracy", "epoch", series(|e| e.val_accuracy)),
            ("validation loss", "epoch", series(|e| e.val_loss)),
        ],
    )
}

/// Test accuracy and macro-F1 of several runs, side by side.
pub fn compare_bars(runs: &[RunSummary]) -> Result<Figure> {
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    plot::bars(
        "Test metrics by run",
        &names,
        &[
            ("accuracy", runs.iter().map(|r| r.test.accuracy).collect()),
            (
                "macro-F1",
                runs.iter().map(|r| r.test.macro_avg.f1).collect(),
            ),
        ],
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[0.9, 0.92]);
        assert!((m - 0.91).abs() < 1e-12 && (s - 0.0141421356).abs() < 1e-9);
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
    }
}
