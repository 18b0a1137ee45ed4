//! [`TabularCard`]: what a reader must know about a table before trusting a model on it —
//! source, licence, size, each column's type, missing cells and range, the target's
//! distribution, each feature's correlation with the target, and known biases.
use super::frame::Column;
use super::preprocess::median;
use super::TabularSet;
use crate::plot::{self, Figure};
use crate::render::{evcxr_emit, Table};
use crate::Result;
use polars::prelude::Column as PlColumn;

/// One column's summary.
#[derive(Debug, Clone)]
pub struct ColumnSummary {
    pub name: String,
    /// `numeric` or `categorical (k levels)`.
    pub kind: String,
    pub missing: usize,
    /// min / median / max for numbers; the most frequent levels for categories.
    pub range: String,
    /// Pearson correlation with the target (numeric columns with no missing cell dropped pairwise).
    pub correlation: Option<f64>,
}

/// The card of a [`TabularSet`].
#[derive(Debug, Clone)]
pub struct TabularCard {
    pub name: String,
    pub facts: Vec<(String, String)>,
    pub columns: Vec<ColumnSummary>,
    target: Vec<f64>,
    target_name: String,
}

impl TabularCard {
    pub fn of(set: &TabularSet) -> Result<TabularCard> {
        let target = set.target_values();
        let mut facts = vec![
            ("name".to_string(), set.name.clone()),
            ("source".into(), set.provenance.source.clone()),
            ("licence".into(), set.provenance.licence.clone()),
            (
                "size".into(),
                format!(
                    "{} rows × {} feature columns; {} rows without a target dropped",
                    set.frame.height(),
                    set.feature_names().len(),
                    set.rows_without_target
                ),
            ),
            (
                "target".into(),
                format!("`{}`: {}", set.target, five_numbers(&target)),
            ),
            ("SHA-256".into(), official_text(&set.sha256, set.official)),
        ];
        for b in &set.provenance.known_biases {
            facts.push(("known bias".into(), b.clone()));
        }
        let columns = set
            .feature_names()
            .into_iter()
            .map(|name| summarize(set, name, &target))
            .collect::<Result<Vec<_>>>()?;
        Ok(TabularCard {
            name: set.name.clone(),
            facts,
            columns,
            target,
            target_name: set.target.clone(),
        })
    }

    /// Source, licence, size, target, checksum and biases as a (field, value) table.
    pub fn facts_table(&self) -> Result<Table> {
        let (f, v): (Vec<String>, Vec<String>) = self.facts.iter().cloned().unzip();
        Table::from_columns(
            format!("Data card: {}", self.name),
            vec![
                PlColumn::new("field".into(), f),
                PlColumn::new("value".into(), v),
            ],
        )
    }

    /// One row per feature column: type, missing cells, range, correlation with the target.
    pub fn columns_table(&self) -> Result<Table> {
        let c = &self.columns;
        let text = |f: fn(&ColumnSummary) -> String| c.iter().map(f).collect::<Vec<_>>();
        Table::from_columns(
            format!(
                "Columns of {} (correlation: Pearson r with `{}`)",
                self.name, self.target_name
            ),
            vec![
                PlColumn::new("column".into(), text(|s| s.name.clone())),
                PlColumn::new("type".into(), text(|s| s.kind.clone())),
                PlColumn::new(
                    "missing".into(),
                    c.iter().map(|s| s.missing as u64).collect::<Vec<_>>(),
                ),
                PlColumn::new(
                    "min / median / max (or top levels)".into(),
                    text(|s| s.range.clone()),
                ),
                PlColumn::new(
                    "r with target".into(),
                    text(|s| s.correlation.map_or("—".into(), |r| format!("{r:+.3}"))),
                ),
            ],
        )
    }

    /// Histogram of the target (20 bins).
    pub fn target_figure(&self) -> Result<Figure> {
        let (labels, counts) = histogram(&self.target, 20);
        plot::bars(
            &format!("Distribution of {}", self.target_name),
            &labels,
            &[("rows", counts)],
            "rows",
        )
    }

    /// evcxr's hook: both tables in one HTML output (a cell keeps one output per type).
    pub fn evcxr_display(&self) {
        match (self.facts_table(), self.columns_table()) {
            (Ok(a), Ok(b)) => evcxr_emit("text/html", &format!("{}\n{}", a.to_html(), b.to_html())),
            (Err(e), _) | (_, Err(e)) => evcxr_emit("text/plain", &e.to_string()),
        }
    }
}

fn official_text(sha: &str, official: Option<bool>) -> String {
    match official {
        Some(true) => format!("{sha} (the official file)"),
        Some(false) => {
            format!("{sha} — differs from the official file: results are not comparable")
        }
        None => sha.to_string(),
    }
}

/// "min … / median … / max … (mean …)".
fn five_numbers(v: &[f64]) -> String {
    let (min, max) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    format!(
        "min {} / median {} / max {} (mean {})",
        num(min),
        num(median(v)),
        num(max),
        num(mean)
    )
}

fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn summarize(set: &TabularSet, name: &str, target: &[f64]) -> Result<ColumnSummary> {
    let column = set.frame.column(name)?;
    let missing = column.missing();
    Ok(match column {
        Column::Numeric(values) => {
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let pairs: Vec<(f64, f64)> = values
                .iter()
                .zip(target)
                .filter_map(|(x, &y)| x.map(|x| (x, y)))
                .collect();
            ColumnSummary {
                name: name.into(),
                kind: "numeric".into(),
                missing,
                range: if present.is_empty() {
                    "—".into()
                } else {
                    five_numbers(&present)
                },
                correlation: pearson(&pairs),
            }
        }
        Column::Categorical(values) => {
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for v in values.iter().flatten() {
                *counts.entry(v).or_default() += 1;
            }
            let mut top: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (*k, *v)).collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.1));
            let shown: Vec<String> = top
                .iter()
                .take(5)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            ColumnSummary {
                name: name.into(),
                kind: format!("categorical ({} levels)", counts.len()),
                missing,
                range: shown.join(", "),
                correlation: None,
            }
        }
    })
}

/// Pearson's r of (x, y) pairs; `None` when either side is constant.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Equal-width bins: (label of each bin's lower edge, count).
fn histogram(v: &[f64], bins: usize) -> (Vec<String>, Vec<f64>) {
    let (min, max) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let width = ((max - min) / bins as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0.0; bins];
    for &x in v {
        counts[(((x - min) / width) as usize).min(bins - 1)] += 1.0;
    }
    let labels = (0..bins).map(|b| num(min + b as f64 * width)).collect();
    (labels, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_matches_known_values() {
        let perfect: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
        assert!((pearson(&perfect).unwrap() - 1.0).abs() < 1e-12);
        // scipy.stats.pearsonr([1,2,3,4,5],[2,1,4,3,5]) = 0.8
        let p = [(1., 2.), (2., 1.), (3., 4.), (4., 3.), (5., 5.)];
        assert!((pearson(&p).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(pearson(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn histogram_counts_every_value() {
        let (labels, counts) = histogram(&[0.0, 0.5, 1.0, 1.0], 2);
        assert_eq!(labels.len(), 2);
        assert_eq!(counts, [1.0, 3.0]);
    }
}
