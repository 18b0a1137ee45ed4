//! Baselines any model must beat: always predicting the most frequent training class,
//! and predicting a class uniformly at random (seeded).
use crate::data::DataLoaders;
use crate::metrics::Metrics;
use crate::render::Table;
use crate::rng::Rng;
use crate::Result;
use polars::prelude::Column;

/// Accuracy and macro-F1 of the majority and uniform baselines on validation and test.
pub fn baselines(loaders: &DataLoaders, classes: &[String], seed: u64) -> Result<Table> {
    let majority = majority_class(loaders.train.labels(), classes.len());
    let mut rng = Rng::new(seed, 0xBA5E);
    let mut rows: (Vec<String>, Vec<String>, Vec<f64>, Vec<f64>) = (vec![], vec![], vec![], vec![]);
    for (split, labels) in [
        ("val", loaders.val.labels()),
        ("test", loaders.test.labels()),
    ] {
        let always = vec![majority as i64; labels.len()];
        let uniform: Vec<i64> = labels
            .iter()
            .map(|_| rng.below(classes.len()) as i64)
            .collect();
        for (name, preds) in [
            (format!("majority ({})", classes[majority]), always),
            ("uniform random".to_string(), uniform),
        ] {
            let m = Metrics::compute(labels, &preds, classes);
            rows.0.push(name);
            rows.1.push(split.to_string());
            rows.2.push(m.accuracy);
            rows.3.push(m.macro_avg.f1);
        }
    }
    Table::from_columns(
        "Baselines (chance level: accuracy 1/C for balanced classes)",
        vec![
            Column::new("baseline".into(), rows.0),
            Column::new("split".into(), rows.1),
            Column::new("accuracy".into(), rows.2),
            Column::new("macro-F1".into(), rows.3),
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
