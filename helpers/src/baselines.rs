//! Baselines any model must beat: always predicting the most frequent training class,
//! and predicting a class uniformly at random (seeded).
use crate::data::DataLoaders;
use crate::metrics::Metrics;
use crate::render::Table;
use crate::rng::Rng;
use crate::Result;
use polars::prelude::Column;

/// One baseline's scores on one split.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineScore {
    /// `majority (<class>)` or `uniform random`.
    pub baseline: String,
    pub split: &'static str,
    pub accuracy: f64,
    pub macro_f1: f64,
}

/// The majority and uniform baselines on validation and test (seeded).
pub fn baseline_scores(loaders: &DataLoaders, classes: &[String], seed: u64) -> Vec<BaselineScore> {
    let majority = majority_class(loaders.train.labels(), classes.len());
    let mut rng = Rng::new(seed, 0xBA5E);
    let mut scores = Vec::new();
    for (split, labels) in [
        ("val", loaders.val.labels()),
        ("test", loaders.test.labels()),
    ] {
        let always = vec![majority as i64; labels.len()];
        let uniform: Vec<i64> = labels
            .iter()
            .map(|_| rng.below(classes.len()) as i64)
            .collect();
        for (baseline, preds) in [
            (format!("majority ({})", classes[majority]), always),
            ("uniform random".to_string(), uniform),
        ] {
            let m = Metrics::compute(labels, &preds, classes);
            scores.push(BaselineScore {
                baseline,
                split,
                accuracy: m.accuracy,
                macro_f1: m.macro_avg.f1,
            });
        }
    }
    scores
}

/// Accuracy and macro-F1 of the majority and uniform baselines on validation and test.
pub fn baselines(loaders: &DataLoaders, classes: &[String], seed: u64) -> Result<Table> {
    let scores = baseline_scores(loaders, classes, seed);
    let column = |name: &str, f: &dyn Fn(&BaselineScore) -> String| {
        Column::new(name.into(), scores.iter().map(f).collect::<Vec<_>>())
    };
    let number = |name: &str, f: fn(&BaselineScore) -> f64| {
        Column::new(name.into(), scores.iter().map(f).collect::<Vec<_>>())
    };
    Table::from_columns(
        "Baselines (chance level: accuracy 1/C for balanced classes)",
        vec![
            column("baseline", &|s| s.baseline.clone()),
            column("split", &|s| s.split.to_string()),
            number("accuracy", |s| s.accuracy),
            number("macro-F1", |s| s.macro_f1),
        ],
    )
}

/// The most frequent label (the smallest one on ties).
pub fn majority_class(labels: &[i64], num_classes: usize) -> usize {
    let mut counts = vec![0usize; num_classes];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    (0..num_classes)
        .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_prefers_the_smallest_label_on_ties() {
        assert_eq!(majority_class(&[2, 2, 1, 1, 0], 3), 1);
        assert_eq!(majority_class(&[2, 2, 2, 1], 3), 2);
    }
}
