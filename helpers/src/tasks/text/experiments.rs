//! The text track's experiments, one call each from a notebook cell: the LR range test
//! on a fresh network, and a comparison of config variants (a sweep, ablations) — each
//! variant a run of its own, its texts re-encoded when its tokenisation differs.
use super::config::TextConfig;
use super::data::TextData;
use super::fit::{fit, TrainedText};
use super::model::TextNet;
use super::task::TextClassification;
use crate::data::tabular::RowSplit;
use crate::data::text::TextSet;
use crate::render::Table;
use crate::run::FitOptions;
use crate::train::{lr_find, LrFinder, Optimizer, Progress};
use crate::Result;
use polars::prelude::Column;

/// The LR range test (1e-5 → 1) over `steps` steps of a fresh network of `cfg`.
pub fn lr_range(cfg: &TextConfig, data: &TextData, steps: usize) -> Result<LrFinder> {
    tch::manual_seed(cfg.seed as i64);
    let net = TextNet::new(
        &cfg.net,
        data.vocab.len() as i64,
        data.classes.len() as i64,
        tch::Device::Cpu,
    )?;
    let task = TextClassification::of_config(cfg, &net, &data.train, None);
    let mut opt = Optimizer::new(&cfg.train, net.weights());
    lr_find(&task, &mut opt, cfg.train.grad_clip, (1e-5, 1.0, steps))
}

/// A named change of a config.
pub type Variant = (String, Box<dyn Fn(&mut TextConfig)>);

/// Trains each variant of `base` (run `<base.name>_<variant>`) on `set` split by `split`
/// and tabulates them with `base` (already trained on `data`) first.
pub fn compare(
    title: &str,
    base: (&TrainedText, &TextData),
    variants: Vec<Variant>,
    (set, split): (&TextSet, &RowSplit),
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<Table> {
    let (base_run, base_data) = base;
    let mut rows = vec![row("baseline", base_run)];
    for (name, edit) in variants {
        let cfg = base_run
            .config
            .variant(&format!("{}_{name}", base_run.config.name), |c| edit(c));
        let run = if cfg.tokens == base_data.tokens {
            fit(&cfg, base_data, opts, progress)?
        } else {
            fit(
                &cfg,
                &TextData::prepare(set, split, &cfg.tokens)?,
                opts,
                progress,
            )?
        };
        rows.push(row(&name, &run));
    }
    Table::from_columns(
        title,
        vec![
            Column::new(
                "variant".into(),
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "best epoch".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ),
            Column::new(
                "val accuracy".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "test accuracy".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new(
                "macro-F1".into(),
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new(
                "train s".into(),
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            ),
        ],
    )
}

fn row(name: &str, r: &TrainedText) -> (String, u64, f64, f64, f64, f64) {
    (
        name.to_string(),
        r.meta.best_epoch as u64,
        r.meta.best_val_accuracy,
        r.test.accuracy,
        r.test.macro_avg.f1,
        r.meta.train_seconds,
    )
}

/// The embedding size at three values around the base (÷2, ×1, ×2).
pub fn embedding_sweep(base: &TextConfig) -> Vec<Variant> {
    let d = base.net.embedding_dim;
    [(d / 2, "dim_half"), (d * 2, "dim_double")]
        .into_iter()
        .map(|(v, n)| {
            (
                n.to_string(),
                Box::new(move |c: &mut TextConfig| c.net.embedding_dim = v)
                    as Box<dyn Fn(&mut TextConfig)>,
            )
        })
        .collect()
}

/// One change at a time: shorter texts, no dropout, hashed bigrams, every training word,
/// words kept in their case.
pub fn ablations() -> Vec<Variant> {
    let v = |n: &str, f: fn(&mut TextConfig)| {
        (n.to_string(), Box::new(f) as Box<dyn Fn(&mut TextConfig)>)
    };
    vec![
        v("max_length_16", |c| c.tokens.max_length = 16),
        v("no_dropout", |c| c.net.dropout = 0.0),
        v("bigrams_20k", |c| c.net.bigram_buckets = 20_000),
        v("min_freq_1", |c| c.tokens.min_freq = 1),
        v("cased", |c| c.tokens.lowercase = false),
    ]
}
