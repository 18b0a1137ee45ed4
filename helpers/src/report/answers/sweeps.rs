//! What the grid and the ablations say: mean scores per swept value, the best point,
//! expected-vs-observed comparisons, each ablation's change from the base.
use crate::experiment::RunSummary;
use crate::sweep::value_label;

/// Mean best validation accuracy per value of `key` across the grid's points, in the
/// grid's order; `None` when fewer than two values were run.
fn grid_means(grid: &[RunSummary], key: &str) -> Option<Vec<(String, f64)>> {
    let labelled = grid.iter().filter_map(|r| {
        let (_, v) = r.overrides.iter().find(|(k, _)| k == key)?;
        Some((value_label(v), r.meta.best_val_accuracy))
    });
    let means = group_means(labelled);
    (means.len() >= 2).then_some(means)
}

/// The mean of each label's values, labels in order of first appearance.
fn group_means(items: impl Iterator<Item = (String, f64)>) -> Vec<(String, f64)> {
    let mut groups: Vec<(String, Vec<f64>)> = Vec::new();
    for (label, x) in items {
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, xs)) => xs.push(x),
            None => groups.push((label, vec![x])),
        }
    }
    groups
        .into_iter()
        .map(|(l, xs)| (l, xs.iter().sum::<f64>() / xs.len() as f64))
        .collect()
}

fn best_of(means: &[(String, f64)]) -> usize {
    (0..means.len())
        .max_by(|&a, &b| means[a].1.total_cmp(&means[b].1))
        .unwrap_or(0)
}

/// "mean best val accuracy v1 → a, v2 → b (best key = v)".
pub(super) fn grid_effect(grid: &[RunSummary], key: &str) -> Option<String> {
    let means = grid_means(grid, key)?;
    let listed: Vec<String> = means.iter().map(|(l, a)| format!("{l} → {a:.4}")).collect();
    Some(format!(
        "mean best val accuracy {} (best {key} = {})",
        listed.join(", "),
        means[best_of(&means)].0
    ))
}

/// What one expects of `key` against what the grid shows: where the best value sits
/// (inside the grid or at its edge) and how far apart the values' scores are.
fn expected_vs_observed(grid: &[RunSummary], key: &str, expected: &str) -> Option<String> {
    let means = grid_means(grid, key)?;
    let best = best_of(&means);
    let scores = || means.iter().map(|m| m.1);
    let spread = scores().fold(f64::MIN, f64::max) - scores().fold(f64::MAX, f64::min);
    let place = if means.len() == 2 {
        format!("the better of the two values is {}", means[best].0)
    } else if best == 0 || best == means.len() - 1 {
        format!(
            "the best, {}, is at the grid's edge (extend the grid past it)",
            means[best].0
        )
    } else {
        format!("the best, {}, is inside the grid", means[best].0)
    };
    Some(format!(
        "expected {expected}; observed: {place}, and the values' mean scores span {:.1} \
         points ({}).",
        spread * 100.0,
        grid_effect(grid, key)?
    ))
}

/// M5: the grid's best point by validation accuracy and each swept key's mean scores.
pub(super) fn grid_best(grid: &[RunSummary]) -> String {
    let Some(best) = grid.iter().max_by(|a, b| {
        a.meta
            .best_val_accuracy
            .total_cmp(&b.meta.best_val_accuracy)
    }) else {
        return "No grid run found: `lab grid --config configs/sweep.toml` makes it.".into();
    };
    let values: Vec<String> = best
        .overrides
        .iter()
        .map(|(k, v)| format!("{k} = {}", value_label(v)))
        .collect();
    let keys: Vec<String> = best.overrides.iter().map(|(k, _)| k.clone()).collect();
    let effects: Vec<String> = keys
        .iter()
        .filter_map(|k| grid_effect(grid, k).map(|e| format!("{k}: {e}")))
        .collect();
    format!(
        "Best of {} points by validation accuracy: {} (best val accuracy {:.4} at epoch {}, \
         test {:.4}). {}.",
        grid.len(),
        values.join(", "),
        best.meta.best_val_accuracy,
        best.meta.best_epoch,
        best.test.accuracy,
        effects.join("; ")
    )
}

/// M7: learning rate and weight decay as expected against observed in the grid, and the
/// model keys' ablation changes.
pub(super) fn comparisons(grid: &[RunSummary], ablations: &[RunSummary]) -> String {
    let mut parts = Vec::new();
    let expectations = [
        (
            "train.lr",
            "Learning rate",
            "an optimum inside the grid (too low learns slowly, too high is unstable early on)",
        ),
        (
            "train.weight_decay",
            "Weight decay",
            "a small effect in a few epochs (it regularises slowly, narrowing the train–val gap)",
        ),
    ];
    for (key, name, expected) in expectations {
        match expected_vs_observed(grid, key, expected) {
            Some(e) => parts.push(format!("{name}: {e}")),
            None => parts.push(format!("{name}: not varied by a finished grid.")),
        }
    }
    let model: Vec<String> = ablation_deltas(ablations)
        .into_iter()
        .filter(|(label, _)| label.contains("model."))
        .map(|(label, d)| format!("{label}: {d:+.4}"))
        .collect();
    parts.push(match model.is_empty() {
        true => "Model hyper-parameters: no finished ablation varies a model.* key.".into(),
        false => format!(
            "Model hyper-parameters (ablations, change in best val accuracy against the base): {}.",
            model.join(", ")
        ),
    });
    parts.join(" ")
}

/// Each ablation variant's change in mean best validation accuracy (over its seeds)
/// from the base's (the first run's variant).
fn ablation_deltas(ablations: &[RunSummary]) -> Vec<(String, f64)> {
    // The seed is how a variant is repeated, not what it changes.
    let variant = |r: &RunSummary| {
        let changed = r.overrides.iter().filter(|(k, _)| k != "seed");
        let parts: Vec<String> = changed
            .map(|(k, v)| format!("{k} = {}", value_label(v)))
            .collect();
        parts.join(", ")
    };
    let means = group_means(
        ablations
            .iter()
            .map(|r| (variant(r), r.meta.best_val_accuracy)),
    );
    let Some((base_label, base)) = means.first().cloned() else {
        return Vec::new();
    };
    means
        .into_iter()
        .filter(|(label, _)| *label != base_label && !label.is_empty())
        .map(|(label, acc)| (label, acc - base))
        .collect()
}

/// M8: the ablations as the iteration after the grid, with its largest gain and loss.
pub(super) fn iteration(ablations: &[RunSummary]) -> String {
    let deltas = ablation_deltas(ablations);
    let Some(best) = deltas.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return "No ablation run found: `lab ablate --config configs/sweep.toml` makes it.".into();
    };
    let worst = deltas
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(best);
    format!(
        "After the grid, one change at a time from the base config ({} variants), to see \
         which ingredient the score rests on. Largest gain: {} ({:+.4} best val accuracy); \
         largest loss: {} ({:+.4}).",
        deltas.len(),
        best.0,
        best.1,
        worst.0,
        worst.1
    )
}
