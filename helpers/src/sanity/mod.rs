//! Sanity checks before spending compute (Karpathy, "A recipe for training neural
//! networks", 2019): the initial loss is ln C, every parameter receives a finite
//! non-zero gradient, and the model can drive a tiny subset to ~100 % accuracy. The
//! verdicts and the gradient check are the loop's, for any [`Task`]; building a fresh
//! model and a tiny subset is each track's ([`image`], [`text`]).
pub mod image;
pub mod text;

pub use image::{gradient_flow, initial_loss, overfit_tiny};

use crate::plot::{self, Figure, Series};
use crate::render::{escape, evcxr_emit, Table};
use crate::train::trainer::gradients_of;
use crate::train::{History, Task};
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

    /// The verdict, then the table and figure, as HTML.
    pub fn to_html(&self) -> String {
        let color = if self.passed { "#0a7d32" } else { "#b00020" };
        let mut html = format!(
            "<p style=\"color:{color}\"><b>{}</b></p>",
            escape(&self.verdict())
        );
        if let Some(t) = &self.table {
            html += &t.to_html();
        }
        if let Some(f) = &self.figure {
            html += &f.img_html();
        }
        html
    }

    /// evcxr's hook.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.to_html());
    }
}

/// Several checks rendered one after the other.
#[derive(Debug, Clone)]
pub struct Checks(pub Vec<Check>);

impl Checks {
    pub fn all_passed(&self) -> bool {
        self.0.iter().all(|c| c.passed)
    }

    /// evcxr's hook: one HTML output (evcxr keeps one output per MIME type and cell).
    pub fn evcxr_display(&self) {
        let html: String = self.0.iter().map(Check::to_html).collect();
        evcxr_emit("text/html", &html);
    }
}

/// Batches the initial-loss check averages over.
const INITIAL_LOSS_BATCHES: usize = 4;

/// The initial-loss check of a fresh model: the mean cross-entropy of `logits` (the
/// model in evaluation mode) over the first batches of `batches`, against ln `classes`.
pub fn initial_loss_of(
    batches: impl Iterator<Item = (tch::Tensor, tch::Tensor)>,
    logits: impl Fn(&tch::Tensor) -> tch::Tensor,
    classes: usize,
) -> Result<Check> {
    let losses: Vec<f64> = tch::no_grad(|| {
        batches
            .take(INITIAL_LOSS_BATCHES)
            .map(|(x, y)| logits(&x).cross_entropy_for_logits(&y).double_value(&[]))
            .collect()
    });
    let measured = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    initial_loss_check(measured, classes)
}

/// The initial-loss verdict: a mean cross-entropy `measured` on a fresh model against
/// ln C. Tolerance: 15 % of ln C (a random init gives near-uniform logits; much more
/// means a wrong init scale or label format).
fn initial_loss_check(measured: f64, classes: usize) -> Result<Check> {
    let expected = (classes as f64).ln();
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
            "{measured:.4} vs ln {classes} = {expected:.4} (tolerance ±{tolerance:.3})"
        ),
        figure: Some(figure),
        table: None,
    })
}

/// One forward/backward pass of `task` on its first training batch: the gradient norm
/// of every trainable tensor. Passes when all are finite and non-zero (no dead or
/// detached layer). Leaves the gradients zeroed.
pub fn gradient_flow_of<T: Task>(task: &T) -> Result<Check> {
    let batch = task
        .train_batches(0)
        .next()
        .ok_or_else(|| Error::argument("loader", "empty training split"))?;
    let mut named: Vec<(String, tch::Tensor)> = task
        .weights()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.iter_mut().for_each(|(_, t)| t.zero_grad());
    gradients_of(task, batch)?;
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

/// The overfit verdict from the tiny run's `history`: passes when the last epoch's
/// training accuracy reaches 99 %; `rule` says how it was trained.
pub fn overfit_check(history: &History, n: usize, epochs: usize, rule: &str) -> Result<Check> {
    let per_epoch = |f: fn(&crate::train::EpochRecord) -> f64| -> Vec<(f64, f64)> {
        let epochs = history.epochs.iter();
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
        detail: format!(
            "training accuracy {final_acc:.4} after {epochs} epochs ({rule}; pass ≥ 0.99)"
        ),
        figure: Some(figure),
        table: None,
    })
}
