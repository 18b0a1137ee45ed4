//! Classification metrics with scikit-learn's definitions: accuracy, per-class
//! precision/recall/F1 and support, macro and weighted averages, confusion matrix.
//!
//! Zero-division rule: a precision (recall) whose denominator is zero — a class never
//! predicted (never present) — counts as 0, as scikit-learn's default
//! `zero_division="warn"` does. Averages run over the classes present in the labels or
//! the predictions (scikit-learn's `labels=None`), so a class absent from both does not
//! drag the macro average down.
use crate::plot::{self, Figure};
use crate::render::Table;
use crate::Result;
use polars::prelude::Column;
use serde::{Deserialize, Serialize};

/// Counts `[true class][predicted class]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Tallies predictions against labels for `num_classes` classes.
    pub fn new(labels: &[i64], preds: &[i64], num_classes: usize) -> Confusion {
        let mut counts = vec![vec![0u64; num_classes]; num_classes];
        for (&t, &p) in labels.iter().zip(preds) {
            counts[t as usize][p as usize] += 1;
        }
        Confusion { counts }
    }

    /// Rows divided by their sums (recall on the diagonal); empty rows stay 0.
    pub fn row_normalized(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let n: u64 = row.iter().sum();
                row.iter()
                    .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
                    .collect()
            })
            .collect()
    }
}

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Averages over classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    /// Mean cross-entropy, when known.
    pub loss: Option<f64>,
    pub macro_avg: Averages,
    pub weighted_avg: Averages,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
    pub class_names: Vec<String>,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl Metrics {
    /// Metrics of `preds` against `labels`.
    pub fn compute(labels: &[i64], preds: &[i64], class_names: &[String]) -> Metrics {
        let k = class_names.len();
        let confusion = Confusion::new(labels, preds, k);
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion.counts[c][c];
                let support: u64 = confusion.counts[c].iter().sum();
                let predicted: u64 = confusion.counts.iter().map(|r| r[c]).sum();
                let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let present: Vec<usize> = (0..k)
            .filter(|&c| per_class[c].support > 0 || confusion.counts.iter().any(|r| r[c] > 0))
            .collect();
        let total: u64 = per_class.iter().map(|m| m.support).sum();
        let avg = |weight: &dyn Fn(&ClassMetrics) -> f64| {
            let w: f64 = present.iter().map(|&c| weight(&per_class[c])).sum();
            let mean = |f: fn(&ClassMetrics) -> f64| {
                if w == 0.0 {
                    0.0
                } else {
                    present
                        .iter()
                        .map(|&c| weight(&per_class[c]) * f(&per_class[c]))
                        .sum::<f64>()
                        / w
                }
            };
            Averages {
                precision: mean(|m| m.precision),
                recall: mean(|m| m.recall),
                f1: mean(|m| m.f1),
            }
        };
        let correct: u64 = (0..k).map(|c| confusion.counts[c][c]).sum();
        Metrics {
            accuracy: ratio(correct, total),
            loss: None,
            macro_avg: avg(&|_| 1.0),
            weighted_avg: avg(&|m| m.support as f64),
            per_class,
            confusion,
            class_names: class_names.to_vec(),
        }
    }

    /// scikit-learn's `classification_report` as a table.
    pub fn report_table(&self, title: &str) -> Result<Table> {
        let mut names = self.class_names.clone();
        let mut p: Vec<f64> = self.per_class.iter().map(|m| m.precision).collect();
        let mut r: Vec<f64> = self.per_class.iter().map(|m| m.recall).collect();
        let mut f: Vec<f64> = self.per_class.iter().map(|m| m.f1).collect();
        let mut s: Vec<u64> = self.per_class.iter().map(|m| m.support).collect();
        let total: u64 = s.iter().sum();
        for (name, a) in [
            ("macro avg", &self.macro_avg),
            ("weighted avg", &self.weighted_avg),
        ] {
            names.push(name.into());
            p.push(a.precision);
            r.push(a.recall);
            f.push(a.f1);
            s.push(total);
        }
        Table::from_columns(
            format!("{title} (accuracy {:.4})", self.accuracy),
            vec![
                Column::new("class".into(), names),
                Column::new("precision".into(), p),
                Column::new("recall".into(), r),
                Column::new("f1".into(), f),
                Column::new("support".into(), s),
            ],
        )
    }

    /// The `k` most frequent (true → predicted) confusions, with their share of the
    /// true class.
    pub fn most_confused(&self, k: usize) -> Result<Table> {
        let counts = &self.confusion.counts;
        let mut pairs: Vec<(u64, usize, usize)> = (0..counts.len())
            .flat_map(|t| {
                (0..counts.len())
                    .filter(move |&p| p != t)
                    .map(move |p| (t, p))
            })
            .map(|(t, p)| (counts[t][p], t, p))
            .filter(|&(n, _, _)| n > 0)
            .collect();
        pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        pairs.truncate(k);
        let norm = self.confusion.row_normalized();
        Table::from_columns(
            "Most confused pairs (test set)",
            vec![
                Column::new(
                    "true".into(),
                    pairs
                        .iter()
                        .map(|&(_, t, _)| self.class_names[t].clone())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "predicted".into(),
                    pairs
                        .iter()
                        .map(|&(_, _, p)| self.class_names[p].clone())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "count".into(),
                    pairs.iter().map(|&(n, _, _)| n).collect::<Vec<_>>(),
                ),
                Column::new(
                    "share of true class".into(),
                    pairs
                        .iter()
                        .map(|&(_, t, p)| norm[t][p])
                        .collect::<Vec<_>>(),
                ),
            ],
        )
    }

    /// Confusion matrix heatmap (row-normalised colours, counts printed).
    pub fn confusion_figure(&self) -> Result<Figure> {
        plot::confusion_heatmap(
            &self.confusion.counts,
            &self.confusion.row_normalized(),
            &self.class_names,
        )
    }

    /// Per-class F1 bars.
    pub fn f1_figure(&self) -> Result<Figure> {
        let f1 = self.per_class.iter().map(|m| m.f1).collect();
        plot::bars("F1 per class", &self.class_names, &[("F1", f1)], "F1")
    }
}

/// The `q` quantile (0..=1) of `sorted` values, by linear interpolation between the
/// closest ranks (NumPy's default); NaN when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn matches_scikit_learn() {
        // from sklearn.metrics import precision_recall_fscore_support as p, accuracy_score
        // y = [0,0,0,1,1,2,2,2,2,3]; q = [0,1,0,1,2,2,2,0,2,1]
        // p(y, q, average=None, zero_division=0):
        //   precision [0.6667, 0.3333, 0.75, 0.0], recall [0.6667, 0.5, 0.75, 0.0],
        //   f1 [0.6667, 0.4, 0.75, 0.0], support [3, 2, 4, 1]
        // macro: (0.4375, 0.4792, 0.4542); weighted: (0.5667, 0.6, 0.58); accuracy 0.6
        let y = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
        let q = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1];
        let m = Metrics::compute(&y, &q, &names(4));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(m.accuracy, 0.6));
        assert!(close(m.per_class[0].precision, 2.0 / 3.0) && close(m.per_class[1].f1, 0.4));
        assert_eq!(
            m.per_class[3],
            ClassMetrics {
                precision: 0.0,
                recall: 0.0,
                f1: 0.0,
                support: 1
            }
        );
        assert!(
            close(m.macro_avg.precision, 0.4375)
                && close(m.macro_avg.recall, 0.479166)
                && close(m.macro_avg.f1, 0.454166)
        );
        assert!(
            close(m.weighted_avg.precision, 0.566666)
                && close(m.weighted_avg.recall, 0.6)
                && close(m.weighted_avg.f1, 0.58)
        );
    }

    #[test]
    fn most_confused_sorts_by_count() -> Result<()> {
        let y = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
        let q = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1];
        let t = Metrics::compute(&y, &q, &names(4)).most_confused(2)?;
        // Four single confusions; ties broken by (true, predicted) order.
        assert_eq!(
            (t.cell(0, "true")?, t.cell(0, "predicted")?),
            ("c0".into(), "c1".into())
        );
        assert_eq!(
            (t.cell(1, "true")?, t.cell(1, "predicted")?),
            ("c1".into(), "c2".into())
        );
        assert_eq!(t.cell(0, "share of true class")?, "0.3333");
        Ok(())
    }

    #[test]
    fn class_absent_from_labels_and_predictions_is_not_averaged() {
        // sklearn with labels=None ignores class 2 entirely: macro f1 = mean(1.0, 1.0).
        let m = Metrics::compute(&[0, 1], &[0, 1], &names(3));
        assert_eq!(m.macro_avg.f1, 1.0);
        assert_eq!(m.confusion.row_normalized()[2], vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn class_only_predicted_counts_with_zero_recall() {
        // y=[0,0], q=[0,1]: class 1 has precision 0/1, recall 0/0 → 0 (zero_division=0).
        // sklearn macro f1 = mean(0.6667, 0.0) = 0.3333
        let m = Metrics::compute(&[0, 0], &[0, 1], &names(2));
        assert!((m.macro_avg.f1 - 1.0 / 3.0).abs() < 1e-9);
    }
}
