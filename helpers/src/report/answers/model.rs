//! M0–M9: the model questions, from the run, checks rerun with its seed, and its sweeps.
use super::sweeps::{comparisons, grid_best, grid_effect, iteration};
use super::{answer, Answer, Evidence, OVERFIT_SUBSET};
use crate::baselines::{baseline_scores, BaselineScore};
use crate::config::RunConfig;
use crate::experiment::RunSummary;
use crate::models;
use crate::sanity;
use crate::tasks::image::{lr_find, TrainedRun};
use crate::train::History;
use crate::Result;

/// M0–M9: baselines, architecture, the sanity checks, the LR choice, the sweeps, the
/// curves and the test score.
pub(super) fn answers(e: &Evidence) -> Result<Vec<Answer>> {
    let run = e.run;
    let cfg = &run.config;
    tch::manual_seed(cfg.seed as i64);
    let fresh = models::build(
        &cfg.model,
        e.data.image_shape(),
        e.data.num_classes() as i64,
        cfg.device(),
    )?;
    fresh.set_input_stats(&run.loaders.norm);
    let initial = sanity::image::initial_loss(&fresh, &run.loaders.train)?;
    let overfit = sanity::image::overfit_tiny(cfg, e.data, OVERFIT_SUBSET, e.overfit_epochs)?;
    let finder = lr_find(
        &fresh,
        &run.loaders.train,
        &cfg.train,
        1e-5,
        1.0,
        e.lr_find_steps,
    )?;
    let baselines = baseline_scores(&run.loaders, &e.data.classes, cfg.seed);
    Ok(vec![
        answer(
            "M0",
            "Majority-class and uniform-random baselines",
            baseline_answer(&baselines, run),
            "baselines on the run's split, seeded",
        ),
        answer(
            "M1",
            "Architecture and parameter count",
            architecture(run, e.ablations),
            "config.toml [model], meta.json",
        ),
        answer(
            "M2",
            "Initial loss, batch and output shapes",
            format!(
                "{} (fresh model, seed {}): {}. Batch [{}, {}], output [{}, {}] logits.",
                initial.detail,
                cfg.seed,
                if initial.passed {
                    "consistent with near-uniform initial predictions"
                } else {
                    "NOT consistent: check the initialisation scale and the labels"
                },
                cfg.train.batch_size,
                e.data.image_shape().map(|d| d.to_string()).join(", "),
                cfg.train.batch_size,
                e.data.num_classes()
            ),
            "a fresh model on the first training batches",
        ),
        answer(
            "M3",
            "Overfitting a small subset",
            format!(
                "N = {OVERFIT_SUBSET} training images, {} epochs, the run's model with dropout 0 \
                 and weight decay 0, no augmentation: {} {}",
                e.overfit_epochs,
                overfit.detail,
                if overfit.passed {
                    "— the model can fit what it sees, so the pipeline and the loss are wired right."
                } else {
                    "— it did NOT reach 99 %: look for a bug before tuning."
                }
            ),
            "the overfit check, rerun with the run's seed",
        ),
        answer(
            "M4",
            "Choice of LR and weight decay",
            lr_choice(cfg, &finder, e.grid, e.lr_find_steps),
            "LR range test (rerun), the grid",
        ),
        answer(
            "M5",
            "Best grid point, effect of the swept keys",
            grid_best(e.grid),
            "the grid's run directories",
        ),
        answer(
            "M6",
            "Train/val curves: under-, over-fitting, stability",
            curves_reading(&run.history),
            "history.csv",
        ),
        answer(
            "M7",
            "Three comparisons",
            comparisons(e.grid, e.ablations),
            "the grid and ablation runs",
        ),
        answer(
            "M8",
            "An extra iteration",
            iteration(e.ablations),
            "the ablation runs",
        ),
        answer(
            "M9",
            "Test results against validation",
            test_vs_val(run),
            "metrics.json, meta.json",
        ),
    ])
}

fn baseline_answer(scores: &[BaselineScore], run: &TrainedRun) -> String {
    let test: Vec<&BaselineScore> = scores.iter().filter(|s| s.split == "test").collect();
    let lines: Vec<String> = test
        .iter()
        .map(|s| {
            format!(
                "{}: test accuracy {:.4}, macro-F1 {:.4}",
                s.baseline, s.accuracy, s.macro_f1
            )
        })
        .collect();
    let best = test.iter().map(|s| s.accuracy).fold(0.0, f64::max);
    format!(
        "{}. The trained model's test accuracy {:.4} is {:.1}× the best baseline: it learnt \
         far more than the label frequencies.",
        lines.join("; "),
        run.test.accuracy,
        run.test.accuracy / best.max(1e-9)
    )
}

/// A config enum as the config file spells it (`one_cycle`, not `OneCycle`).
fn spelled<T: serde::Serialize + std::fmt::Debug>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        _ => format!("{value:?}"),
    }
}

fn architecture(run: &TrainedRun, ablations: &[RunSummary]) -> String {
    let m = &run.config.model;
    let layers: Vec<&str> = run.model.layers.iter().map(|(n, _)| n.as_str()).collect();
    let model_keys: Vec<String> = ablations
        .iter()
        .flat_map(|r| r.overrides.iter().map(|(k, _)| k.clone()))
        .filter(|k| k.starts_with("model."))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let keys = match model_keys.as_slice() {
        [] => "model.widths (channels per stage: capacity) and model.dropout (regularisation of the head)".to_string(),
        keys => format!("{} (varied by the ablations)", keys.join(", ")),
    };
    format!(
        "{}: stages of widths {:?} with {:?} 3×3 conv + {}ReLU blocks, each later stage \
         halving the resolution, then a {} head with dropout {} → {} logits; cross-entropy \
         loss (label smoothing {}). Layers: {}. {} parameters ({} trainable). Model \
         hyper-parameters: {keys}.",
        spelled(&m.arch),
        m.widths,
        m.depths,
        if m.batch_norm { "batch-norm + " } else { "" },
        spelled(&m.head),
        m.dropout,
        run.model.num_classes,
        run.config.train.label_smoothing,
        layers.join(" → "),
        run.meta.num_parameters,
        run.meta
            .trainable_parameters
            .unwrap_or(run.meta.num_parameters),
    )
}

fn lr_choice(
    cfg: &RunConfig,
    f: &crate::train::LrFinder,
    grid: &[RunSummary],
    steps: usize,
) -> String {
    let t = &cfg.train;
    let (lo, hi) = (f.steepest.min(f.valley), f.steepest.max(f.valley));
    let inside = (lo / 3.0..=hi * 3.0).contains(&t.lr);
    let wd = grid_effect(grid, "train.weight_decay")
        .map(|e| format!(" Weight decay {}: in the grid, {e}.", t.weight_decay))
        .unwrap_or_else(|| {
            format!(
                " Weight decay {} (AdamW's decoupled decay, a light regulariser).",
                t.weight_decay
            )
        });
    format!(
        "LR range test from 1e-5 to 1 over {steps} steps: the loss falls fastest at {:.1e} and \
         is lowest around {:.1e}, so the stable window is {lo:.1e} → {hi:.1e}. The run uses \
         peak LR {} with a {} schedule, {} that window.{wd}",
        f.steepest,
        f.valley,
        t.lr,
        spelled(&t.schedule),
        if inside {
            "inside (within a factor 3 of)"
        } else {
            "OUTSIDE"
        },
    )
}

/// Over- or under-fitting read from the curves by fixed rules: validation loss rising
/// above its minimum after the best epoch, train–val accuracy gap, last epochs' spread.
fn curves_reading(history: &History) -> String {
    let h = &history.epochs;
    let (Some(last), Some(best)) = (
        h.last(),
        h.iter()
            .filter(|r| r.val_loss.is_finite())
            .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss)),
    ) else {
        return "No validated epoch in history.csv.".into();
    };
    let gap = last.train_accuracy - last.val_accuracy;
    let rise = last.val_loss - best.val_loss;
    let verdict = if rise > 0.05 * best.val_loss && best.epoch < last.epoch {
        format!(
            "overfitting: validation loss bottomed at epoch {} ({:.4}) and rose by {rise:.4} \
             since",
            best.epoch, best.val_loss
        )
    } else if gap > 0.03 {
        format!(
            "mild overfitting: training accuracy leads validation by {:.1} points",
            gap * 100.0
        )
    } else if gap < -0.03 {
        format!(
            "no overfitting: training accuracy trails validation by {:.1} points, as \
             augmentation, dropout and label smoothing make only the training batches harder",
            -gap * 100.0
        )
    } else {
        "no overfitting: the training and validation accuracies stay within 3 points".to_string()
    };
    let trend = if best.epoch == last.epoch {
        "validation loss is lowest at the last epoch, so more epochs could still help \
         (not converged)"
    } else {
        "validation loss reached its minimum before the end"
    };
    format!(
        "{} epochs; last epoch: train loss {:.4} / accuracy {:.4}, validation loss {:.4} / \
         accuracy {:.4}. Verdict: {verdict}; {trend}. Curves: training_curves.svg in the run, \
         train/loss and val/loss in TensorBoard.",
        last.epoch, last.train_loss, last.train_accuracy, last.val_loss, last.val_accuracy
    )
}

/// Test against validation accuracy, with the binomial standard error of each.
fn test_vs_val(run: &TrainedRun) -> String {
    let (val, test) = (run.meta.best_val_accuracy, run.test.accuracy);
    let (n_val, n_test) = (
        run.loaders.val.len().max(1) as f64,
        run.loaders.test.len().max(1) as f64,
    );
    let se = ((val * (1.0 - val) / n_val) + (test * (1.0 - test) / n_test)).sqrt();
    let gap = test - val;
    let verdict = if gap.abs() <= 2.0 * se {
        "within two standard errors: no sign that model selection overfitted the validation set"
    } else if gap < 0.0 {
        "test is lower by more than two standard errors: some overfitting to the validation set (or a shift between the splits)"
    } else {
        "test is higher by more than two standard errors: the test set is easier than the validation split"
    };
    format!(
        "Best checkpoint (epoch {}): test accuracy {test:.4}, macro-F1 {:.4}; best validation \
         accuracy {val:.4}. Gap {:+.2} points, standard error of the difference {:.2} points: \
         {verdict}.",
        run.meta.best_epoch,
        run.test.macro_avg.f1,
        gap * 100.0,
        se * 100.0
    )
}
