//! The regression notebook's conclusions, computed from its runs so the prose cannot
//! drift from the numbers: the tabular model against least squares and gradient
//! boosting, and the forecast against persistence.
use crate::render::Markdown;
use crate::tasks::regression::reference::Reference;
use crate::tasks::regression::{Evaluation, TrainedRegression};

/// How the MLP compares with least squares and scikit-learn's boosting (goal: within
/// 0.02 R² of it).
pub fn tabular_verdict(
    model: &TrainedRegression,
    ols: &Evaluation,
    reference: &Reference,
) -> Markdown {
    let m = model.test.metrics[0];
    let ols_r2 = ols.metrics[0].r2;
    let mut text = format!(
        "The MLP reaches test R² **{:.3}** (RMSE {:.0}) in {:.1} s of training, against {:.3} for least squares on the same inputs and log target",
        m.r2, m.rmse, model.meta.train_seconds, ols_r2
    );
    match reference.model("HistGradientBoosting") {
        Some(hgb) => {
            let gap = hgb.r2 - m.r2;
            let verdict = if gap <= 0.02 {
                "within the 0.02 goal".to_string()
            } else {
                format!("{gap:.3} behind it: the goal of 0.02 is not met on this budget")
            };
            text += &format!(
                " and {:.3} for scikit-learn's gradient boosting ({:.1} s to fit) — {verdict}.",
                hgb.r2, hgb.fit_seconds
            );
        }
        None => text += ".",
    }
    Markdown(text)
}

/// The forecast against persistence (the bar) and least squares, per horizon, in MAE.
pub fn forecast_verdict(
    model: &Evaluation,
    persistence: &Evaluation,
    ols: &Evaluation,
) -> Markdown {
    let lines: Vec<String> = model
        .outputs
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let (m, p, o) = (model.metrics[j].mae, persistence.metrics[j].mae, ols.metrics[j].mae);
            let gain = 100.0 * (p - m) / p;
            let beats = if m < p { "beats" } else { "does **not** beat" };
            format!("- **{name}**: MAE {m:.2} °C; it {beats} persistence ({p:.2} °C, {gain:+.0} %); least squares {o:.2} °C.")
        })
        .collect();
    Markdown(lines.join("\n"))
}
