//! Sanity checks before spending compute (Karpathy, "A recipe for training neural
//! networks", 2019): the initial loss is ln C, every parameter receives a finite
//! non-zero gradient, and the model can drive a tiny subset to ~100 % accuracy.
use crate::config::RunConfig;
use crate::data::{Dataset, Loader, Normalization};
use crate::models::{self, Model};
use crate::plot::{self, Figure, Series};
use crate::render::{escape, evcxr_emit, Table};
use crate::tasks::image::{Batches, ImageClassification};
use crate::train::trainer::gradients_of;
use crate::train::{LoopState, Optimizer, Precision, Schedule, Task, Trainer};
use crate::{Error, Result};
use polars::prelude::Column;

/// A check's verdict, with the evidence.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// What was measured against what was expected.
    pub detail: String,
    pub figure: Option<Figure>,
    pub table: Option<Table>,
}

impl Check {
    /// The verdict as one line of text.
    pub fn verdict(&self) -> String {
        format!(
            "{} {}: {}",
            if self.passed { "PASS" } else { "FAIL" },
            self.name,
            self.detail
        )
    }

    /// evcxr's hook: verdict, then the table and figure.
    pub fn evcxr_display(&self) {
        let color = if self.passed { "#0a7d32" } else { "#b00020" };
        let mut html = format!(
            "<p style=\"color:{color}\"><b>{}</b></p>",
            escape(&self.verdict())
        );
        if let Some(t) = &self.table {
            html += &t.to_html();
        }
        if let Some(f) = &self.figure {
            html += &f.svg;
        }
        evcxr_emit("text/html", &html);
    }
}

/// Mean cross-entropy of a freshly initialised model over the first batches, against
/// ln C. Tolerance: 15 % of ln C (a random init gives near-uniform logits; much more
/// means a wrong init scale or label format).
pub fn initial_loss(model: &Model, loader: &Loader) -> Result<Check> {
    let expected = (model.num_classes as f64).ln();
    let losses: Vec<f64> = tch::no_grad(|| {
        loader
            .batches(0)
            .take(4)
            .map(|(x, y)| {
                model
                    .forward_t(&x, false)
                    .cross_entropy_for_logits(&y)
                    .double_value(&[])
            })
            .collect()
    });
    let measured = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    let tolerance = 0.15 * expected;
    let figure = plot::bars(
        "Initial loss",
        &["measured".to_string(), "ln C".to_string()],
        &[("cross-entropy", vec![measured, expected])],
        "loss",
    )?;
    Ok(Check {
        name: "initial loss ≈ ln C".into(),
        passed: (measured - expected).abs() <= tolerance,
        detail: format!(
            "{measured:.4} vs ln {} = {expected:.4} (tolerance ±{tolerance:.3})",
            model.num_classes
        ),
        figure: Some(figure),
        table: None,
    })
}

/// One forward/backward pass on a training batch: the gradient norm of every
/// parameter. Passes when all are finite and non-zero (no dead or detached layer).
/// Leaves the gradients zeroed; batch-norm statistics see one batch.
pub fn gradient_flow(model: &Model, loader: &Loader) -> Result<Check> {
    let task = ImageClassification::new(model, Batches::Pixels(loader));
    let batch = task
        .train_batches(0)
        .next()
        .ok_or_else(|| Error::argument("loader", "empty training split"))?;
    let mut named = model.trainable_named();
    named.iter_mut().for_each(|(_, t)| t.zero_grad());
    gradients_of(&task, batch)?;
    let norms: Vec<f64> = named
        .iter()
        .map(|(_, t)| t.grad().norm().double_value(&[]))
        .collect();
    let weights: Vec<f64> = named
        .iter()
        .map(|(_, t)| t.norm().double_value(&[]))
        .collect();
    named.iter_mut().for_each(|(_, t)| t.zero_grad());
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let bad: Vec<&String> = names
        .iter()
        .zip(&norms)
        .filter(|(_, g)| !g.is_finite() || **g == 0.0)
        .map(|(n, _)| n)
        .collect();
    let (table, figure) = gradient_evidence(&names, &norms, &weights)?;
    Ok(Check {
        name: "gradients reach every parameter".into(),
        passed: bad.is_empty(),
        detail: if bad.is_empty() {
            format!("{} tensors, all finite and non-zero", names.len())
        } else {
            format!("zero or non-finite: {bad:?}")
        },
        figure: Some(figure),
        table: Some(table),
    })
}

/// The gradient-flow check's table (norms per parameter) and its log10 bar chart.
fn gradient_evidence(names: &[String], norms: &[f64], weights: &[f64]) -> Result<(Table, Figure)> {
    let table = Table::from_columns(
        "Gradient norms after one batch",
        vec![
            Column::new("parameter".into(), names.to_vec()),
            Column::new("grad norm".into(), norms.to_vec()),
            Column::new("weight norm".into(), weights.to_vec()),
            Column::new(
                "grad/weight".into(),
                norms
                    .iter()
                    .zip(weights)
                    // Undefined for weights still at zero (batch-norm shifts at init).
                    .map(|(g, w)| (*w > 1e-12).then(|| g / w))
                    .collect::<Vec<_>>(),
            ),
        ],
    )?;
    // log10, so that norms spanning orders of magnitude read side by side.
    let short: Vec<String> = names
        .iter()
        .map(|n| {
            n.replace("stages.", "s")
                .replace(".weight", ".w")
                .replace(".bias", ".b")
        })
        .collect();
    let log_norms: Vec<f64> = norms.iter().map(|g| g.max(1e-12).log10()).collect();
    let figure = plot::bars(
        "Gradient norm per parameter (log10)",
        &short,
        &[("log10 grad norm", log_norms)],
        "log10",
    )?;
    Ok((table, figure))
}

/// Trains a fresh model of `cfg` on the first `n` training examples (no augmentation,
/// no dropout) for `epochs`; passes when training accuracy reaches 99 %.
pub fn overfit_tiny(cfg: &RunConfig, data: &Dataset, n: usize, epochs: usize) -> Result<Check> {
    let subset = data.train.head(n);
    let norm = Normalization::of(&subset.images);
    let loader = Loader::new(
        &subset,
        32,
        true,
        None,
        norm.clone(),
        cfg.seed,
        cfg.device(),
    );
    let mut model_cfg = cfg.model.clone();
    model_cfg.dropout = 0.0;
    tch::manual_seed(cfg.seed as i64);
    let model = models::build(
        &model_cfg,
        data.image_shape(),
        data.num_classes() as i64,
        cfg.device(),
    )?;
    model.set_input_stats(&norm);
    let mut train_cfg = cfg.train.clone();
    train_cfg.weight_decay = 0.0;
    let mut opt = Optimizer::new(&train_cfg, model.trainable_named());
    let mut state = LoopState::new(Schedule::constant(1e-3), Precision::Fp32);
    let mut trainer = Trainer::new(epochs);
    trainer.validate_every = 0;
    let task = ImageClassification::new(&model, Batches::Pixels(&loader));
    trainer.run(&task, &mut opt, &mut state, &mut [])?;
    let per_epoch = |f: fn(&crate::train::EpochRecord) -> f64| -> Vec<(f64, f64)> {
        let epochs = state.history.epochs.iter();
        epochs.map(|r| (r.epoch as f64, f(r))).collect()
    };
    let (losses, accs) = (per_epoch(|r| r.train_loss), per_epoch(|r| r.train_accuracy));
    let final_acc = accs.last().map_or(0.0, |a| a.1);
    let figure = plot::lines(
        "overfit_tiny",
        &[
            ("training loss", "epoch", vec![Series::new("loss", losses)]),
            (
                "training accuracy",
                "epoch",
                vec![Series::new("accuracy", accs)],
            ),
        ],
    )?;
    Ok(Check {
        name: format!("overfits {n} examples"),
        passed: final_acc >= 0.99,
        detail: format!("training accuracy {final_acc:.4} after {epochs} epochs (AdamW, lr 1e-3, no regularisation; pass ≥ 0.99)"),
        figure: Some(figure),
        table: None,
    })
}
