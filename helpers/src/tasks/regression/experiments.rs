//! The regression track's experiments, each one call from a notebook cell: the LR range
//! test on a fresh network, a one-key sweep and one-at-a-time ablations — every variant a
//! run of its own under the runs folder (reused when finished), reported as one table.
use super::config::RegressionConfig;
use super::data::Prepared;
use super::fit::{fit, TrainedRegression};
use super::model::Net;
use super::task::Regression;
use crate::render::Table;
use crate::run::FitOptions;
use crate::train::{lr_find, LrFinder, Optimizer, Progress};
use crate::Result;
use polars::prelude::Column;

/// The LR range test (1e-5 → 1) over `steps` steps of a fresh network of `cfg`.
pub fn lr_range(cfg: &RegressionConfig, data: &Prepared, steps: usize) -> Result<LrFinder> {
    tch::manual_seed(cfg.seed as i64);
    let net = Net::new(
        &cfg.net,
        data.input,
        data.num_outputs() as i64,
        tch::Device::Cpu,
    )?;
    let task = Regression::of_config(cfg, &net, &data.train, None);
    let mut opt = Optimizer::new(&cfg.train, net.trainable());
    lr_find(&task, &mut opt, cfg.train.grad_clip, (1e-5, 1.0, steps))
}

/// A named change of a config.
pub type Variant = (String, Box<dyn Fn(&mut RegressionConfig)>);

/// Trains `base` and each variant (run `<base.name>_<variant>`) and tabulates their
/// validation and test scores; the first row is `base` itself.
pub fn compare(
    title: &str,
    base: &RegressionConfig,
    variants: Vec<Variant>,
    data: &Prepared,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<(Table, Vec<TrainedRegression>)> {
    let mut runs = vec![("baseline".to_string(), fit(base, data, opts, progress)?)];
    for (name, edit) in variants {
        let cfg = base.variant(&format!("{}_{name}", base.name), |c| edit(c));
        runs.push((name, fit(&cfg, data, opts, progress)?));
    }
    let table = runs_table(title, &runs)?;
    Ok((table, runs.into_iter().map(|(_, r)| r).collect()))
}

/// One row per run: name, best epoch, validation RMSE (standardised), test RMSE and R²
/// of the first output, training seconds.
pub fn runs_table(title: &str, runs: &[(String, TrainedRegression)]) -> Result<Table> {
    let col = |f: &dyn Fn(&TrainedRegression) -> f64| {
        runs.iter().map(|(_, r)| f(r)).collect::<Vec<f64>>()
    };
    Table::from_columns(
        title,
        vec![
            Column::new(
                "variant".into(),
                runs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "best epoch".into(),
                runs.iter()
                    .map(|(_, r)| r.meta.best_epoch as u64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "val RMSE (std.)".into(),
                col(&|r| r.meta.best_val_rmse.unwrap_or(f64::NAN)),
            ),
            Column::new("test RMSE".into(), col(&|r| r.test.metrics[0].rmse)),
            Column::new("test MAE".into(), col(&|r| r.test.metrics[0].mae)),
            Column::new("test R²".into(), col(&|r| r.test.metrics[0].r2)),
            Column::new("train s".into(), col(&|r| r.meta.train_seconds)),
        ],
    )
}

/// The peak learning rate at three values around `base`'s (÷3, ×1, ×3).
pub fn lr_sweep(base: &RegressionConfig) -> Vec<Variant> {
    let lr = base.train.lr;
    [(lr / 3.0, "lr_div3"), (lr * 3.0, "lr_x3")]
        .into_iter()
        .map(|(v, name)| {
            (
                name.to_string(),
                Box::new(move |c: &mut RegressionConfig| c.train.lr = v)
                    as Box<dyn Fn(&mut RegressionConfig)>,
            )
        })
        .collect()
}

/// One change at a time: no batch norm, no dropout, MSE ↔ Huber, no weight decay.
pub fn ablations() -> Vec<Variant> {
    let v = |name: &str, f: fn(&mut RegressionConfig)| {
        (
            name.to_string(),
            Box::new(f) as Box<dyn Fn(&mut RegressionConfig)>,
        )
    };
    vec![
        v("no_batch_norm", |c| c.net.batch_norm = false),
        v("no_dropout", |c| c.net.dropout = 0.0),
        v("huber_loss", |c| c.loss = super::task::Loss::Huber),
        v("no_weight_decay", |c| c.train.weight_decay = 0.0),
    ]
}
