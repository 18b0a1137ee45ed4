//! [`Evaluation`]: a network's predictions on held-out rows in the target's units, their
//! metrics per output, and what reads them — predicted against true, residuals, error
//! by target decile, a forecast against the truth, and permutation importance.
use super::data::{Arrays, Prepared};
use super::metrics::RegressionMetrics;
use super::model::Net;
use crate::data::tabular::frame::Column;
use crate::plot::{self, Figure, Reference, Series};
use crate::render::Table;
use crate::rng::Rng;
use crate::Result;
use polars::prelude::Column as PlColumn;
use tch::{Kind, Tensor};

/// Predictions against the truth, per output, in the target's units.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub outputs: Vec<String>,
    /// `truth[j][i]`: output j of example i.
    pub truth: Vec<Vec<f64>>,
    pub predicted: Vec<Vec<f64>>,
    pub metrics: Vec<RegressionMetrics>,
}

impl Evaluation {
    /// `net` on `held`.
    pub fn of(net: &Net, held: &Arrays, data: &Prepared, batch: usize) -> Evaluation {
        Evaluation::from_model_units(&net.predict(&held.x, batch), held, data)
    }

    /// Predictions given in model units (a baseline's, the network's).
    pub fn from_model_units(predicted: &Tensor, held: &Arrays, data: &Prepared) -> Evaluation {
        let column = |t: &Tensor, j: usize| {
            let c = t
                .select(1, j as i64)
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu);
            let z = Vec::<f64>::try_from(&c).expect("1-D");
            let base = |i: usize| held.base.as_ref().map_or(0.0, |b| b[i]);
            z.iter()
                .enumerate()
                .map(|(i, &z)| data.targets[j].invert(z) + base(i))
                .collect::<Vec<f64>>()
        };
        let outputs = data.outputs.clone();
        let truth: Vec<Vec<f64>> = (0..outputs.len()).map(|j| column(&held.y, j)).collect();
        let predicted: Vec<Vec<f64>> = (0..outputs.len()).map(|j| column(predicted, j)).collect();
        let metrics = truth
            .iter()
            .zip(&predicted)
            .map(|(t, p)| RegressionMetrics::compute(t, p))
            .collect();
        Evaluation {
            outputs,
            truth,
            predicted,
            metrics,
        }
    }

    /// Predicted (y) against true (x) for output `j`, with the line of perfect predictions.
    pub fn scatter_figure(&self, j: usize) -> Result<Figure> {
        let points: Vec<(f64, f64)> = self.truth[j]
            .iter()
            .copied()
            .zip(self.predicted[j].iter().copied())
            .collect();
        let title = format!(
            "Predicted vs true: {} (R² {:.3})",
            self.outputs[j], self.metrics[j].r2
        );
        plot::scatter(&title, ("true", "predicted"), &points, Reference::Identity)
    }

    /// Residual (true − predicted) against the prediction, for output `j`.
    pub fn residual_figure(&self, j: usize) -> Result<Figure> {
        let points: Vec<(f64, f64)> = self.predicted[j]
            .iter()
            .zip(&self.truth[j])
            .map(|(&p, &t)| (p, t - p))
            .collect();
        plot::scatter(
            &format!("Residuals: {}", self.outputs[j]),
            ("predicted", "true − predicted"),
            &points,
            Reference::Zero,
        )
    }

    /// MAE, mean error (bias) and count per decile of the true target, for output `j`:
    /// where in the range the model is worst, and which way it leans.
    pub fn error_by_decile(&self, j: usize) -> Result<Table> {
        let (t, p) = (&self.truth[j], &self.predicted[j]);
        let mut order: Vec<usize> = (0..t.len()).collect();
        order.sort_by(|&a, &b| t[a].total_cmp(&t[b]));
        let (mut label, mut range, mut mae, mut bias, mut n) =
            (vec![], vec![], vec![], vec![], vec![]);
        for d in 0..10 {
            let part = &order[d * order.len() / 10..(d + 1) * order.len() / 10];
            if part.is_empty() {
                continue;
            }
            let k = part.len() as f64;
            label.push(format!("D{}", d + 1));
            range.push(format!(
                "{:.4} – {:.4}",
                t[part[0]],
                t[part[part.len() - 1]]
            ));
            mae.push(part.iter().map(|&i| (t[i] - p[i]).abs()).sum::<f64>() / k);
            bias.push(part.iter().map(|&i| p[i] - t[i]).sum::<f64>() / k);
            n.push(part.len() as u64);
        }
        Table::from_columns(
            format!(
                "Error by decile of the true {} (bias = mean of predicted − true)",
                self.outputs[j]
            ),
            vec![
                PlColumn::new("decile".into(), label),
                PlColumn::new("true range".into(), range),
                PlColumn::new("MAE".into(), mae),
                PlColumn::new("bias".into(), bias),
                PlColumn::new("rows".into(), n),
            ],
        )
    }

    /// Output `j` over `hours` consecutive test examples from `start` (a series' test rows
    /// are consecutive hours), truth against forecast, with a baseline's forecast.
    pub fn forecast_figure(
        &self,
        j: usize,
        start: usize,
        hours: usize,
        baseline: Option<(&str, &Evaluation)>,
    ) -> Result<Figure> {
        let end = (start + hours).min(self.truth[j].len());
        let line = |v: &[f64]| {
            (start..end)
                .map(|i| ((i - start) as f64, v[i]))
                .collect::<Vec<_>>()
        };
        let mut series = vec![
            Series::new("truth", line(&self.truth[j])),
            Series::new("model", line(&self.predicted[j])),
        ];
        if let Some((name, b)) = baseline {
            series.push(Series::new(name, line(&b.predicted[j])));
        }
        plot::lines(
            &format!("{} over {} test hours", self.outputs[j], end - start),
            &[(&self.outputs[j], "hour", series)],
        )
    }
}

/// Metrics of several predictors side by side: (name, evaluation) → one row each per output.
pub fn comparison_table(title: &str, rows: &[(&str, &Evaluation)]) -> Result<Table> {
    let (mut name, mut output, mut rmse, mut mae, mut r2) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (n, e) in rows {
        for (o, m) in e.outputs.iter().zip(&e.metrics) {
            name.push(n.to_string());
            output.push(o.clone());
            rmse.push(m.rmse);
            mae.push(m.mae);
            r2.push(m.r2);
        }
    }
    Table::from_columns(
        title,
        vec![
            PlColumn::new("predictor".into(), name),
            PlColumn::new("output".into(), output),
            PlColumn::new("RMSE".into(), rmse),
            PlColumn::new("MAE".into(), mae),
            PlColumn::new("R²".into(), r2),
        ],
    )
}

/// Permutation importance on the test rows (Breiman 2001): the rise in RMSE when one
/// original column's values are shuffled across rows (a one-hot group moves together),
/// mean over `repeats` seeded shuffles. Tables only; the series' windows have no columns.
pub fn permutation_importance(
    net: &Net,
    data: &Prepared,
    repeats: usize,
    seed: u64,
) -> Result<Table> {
    let Some((pre, frame)) = &data.tabular else {
        return Err(crate::Error::argument(
            "data",
            "permutation importance needs a table's test rows",
        ));
    };
    let batch = 4096;
    let base = Evaluation::of(net, &data.test, data, batch).metrics[0].rmse;
    let (mut column, mut rise, mut spread) = (vec![], vec![], vec![]);
    for name in pre.source_columns() {
        let idx = frame.index(&name)?;
        let mut rises = Vec::new();
        for r in 0..repeats {
            let mut shuffled = frame.clone();
            let mut order: Vec<usize> = (0..frame.height()).collect();
            Rng::new(seed, 0x1A1 + r as u64).shuffle(&mut order);
            shuffled.columns[idx] = permuted(&frame.columns[idx], &order);
            let t = pre.transform(&shuffled)?;
            let x = Tensor::from_slice(&t.x).view([t.rows as i64, t.width as i64]);
            let held = Arrays {
                x,
                y: data.test.y.shallow_clone(),
                base: None,
            };
            rises.push(Evaluation::of(net, &held, data, batch).metrics[0].rmse - base);
        }
        let (m, s) = crate::data::tabular::preprocess::mean_std(&rises);
        column.push(name);
        rise.push(m);
        spread.push(s);
    }
    let table = Table::from_columns(
        format!("Permutation importance on the test rows: rise in RMSE (base {base:.4}), {repeats} shuffles"),
        vec![
            PlColumn::new("column".into(), column),
            PlColumn::new("RMSE rise".into(), rise),
            PlColumn::new("std over shuffles".into(), spread),
        ],
    )?;
    table.sorted_by("RMSE rise", true)
}

fn permuted(column: &Column, order: &[usize]) -> Column {
    match column {
        Column::Numeric(v) => Column::Numeric(order.iter().map(|&i| v[i]).collect()),
        Column::Categorical(v) => {
            Column::Categorical(order.iter().map(|&i| v[i].clone()).collect())
        }
    }
}

/// Training and validation loss per epoch, and the validation RMSE (standardised units,
/// averaged over outputs) that picks the best epoch.
pub fn curves(history: &crate::train::History) -> Result<Figure> {
    let e = &history.epochs;
    let pts = |f: &dyn Fn(&crate::train::EpochRecord) -> f64| {
        e.iter().map(|r| (r.epoch as f64, f(r))).collect::<Vec<_>>()
    };
    plot::lines(
        "Learning curves",
        &[
            (
                "loss (standardised units)",
                "epoch",
                vec![
                    Series::new("train", pts(&|r| r.train_loss)),
                    Series::new("val", pts(&|r| r.val_loss)),
                ],
            ),
            (
                "validation RMSE (standardised)",
                "epoch",
                vec![Series::new("val RMSE", pts(&|r| -r.val_accuracy))],
            ),
        ],
    )
}
