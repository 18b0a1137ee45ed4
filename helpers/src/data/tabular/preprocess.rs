//! [`Preprocessor`]: the feature and target transforms of a tabular run, fitted on the
//! training rows only (so validation and test statistics never leak into training),
//! saved with the run as JSON and applied unchanged at prediction time.
//!
//! Rules, each counted in [`Transformed`] so a report can say how often it fired:
//! - a numeric cell that is missing takes the training median;
//! - a category unseen in training (or missing) becomes an all-zero one-hot row;
//! - a column that is constant or entirely missing in the training rows is dropped, with
//!   the reason kept in [`Preprocessor::dropped`].
use super::frame::{Column, Frame};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Options of [`Preprocessor::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PreprocessOptions {
    /// Standardise numeric features to zero mean and unit variance (train statistics).
    pub standardize: bool,
    /// Model `ln(1 + y)` instead of `y` (skewed, positive targets such as prices).
    pub log_target: bool,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        PreprocessOptions {
            standardize: true,
            log_target: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericFeature {
    pub name: String,
    pub median: f64,
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalFeature {
    pub name: String,
    /// One-hot columns, in this (sorted) order.
    pub categories: Vec<String>,
}

/// The target's transform: optional `ln(1 + y)`, then standardisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetTransform {
    pub name: String,
    pub log: bool,
    pub mean: f64,
    pub std: f64,
}

impl TargetTransform {
    /// Model units → the target's units.
    pub fn invert(&self, z: f64) -> f64 {
        let v = z * self.std + self.mean;
        if self.log {
            v.exp_m1()
        } else {
            v
        }
    }

    /// The target's units → model units.
    pub fn apply(&self, y: f64) -> f64 {
        let v = if self.log { y.ln_1p() } else { y };
        (v - self.mean) / self.std
    }
}

/// Fitted transforms of a table's features and target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub options: PreprocessOptions,
    pub numeric: Vec<NumericFeature>,
    pub categorical: Vec<CategoricalFeature>,
    /// Columns left out, with why.
    pub dropped: Vec<(String, String)>,
    pub target: TargetTransform,
}

/// A frame's rows as the model sees them.
#[derive(Debug, Clone)]
pub struct Transformed {
    /// Row-major `rows × width` features.
    pub x: Vec<f32>,
    pub rows: usize,
    pub width: usize,
    /// Targets in model units (`None` when the frame has no target column).
    pub y: Option<Vec<f32>>,
    /// Missing numeric cells imputed, per column (columns with none are left out).
    pub imputed: Vec<(String, usize)>,
    /// Unseen or missing categories encoded as all zeros, per column.
    pub unknown_categories: Vec<(String, usize)>,
}

impl Preprocessor {
    /// Fits on `train` (the training rows only); `target` names the target column.
    pub fn fit(train: &Frame, target: &str, options: PreprocessOptions) -> Result<Preprocessor> {
        let mut p = Preprocessor {
            options,
            numeric: Vec::new(),
            categorical: Vec::new(),
            dropped: Vec::new(),
            target: fit_target(train, target, options.log_target)?,
        };
        for (name, column) in train.names.iter().zip(&train.columns) {
            if name == target {
                continue;
            }
            if let Err(why) = p.fit_column(name, column) {
                p.dropped.push((name.clone(), why));
            }
        }
        if p.width() == 0 {
            return Err(Error::data(
                &train.source,
                "no usable feature column (all dropped or only the target)",
            ));
        }
        Ok(p)
    }

    /// Adds `column`'s transform, or says why it cannot be used.
    fn fit_column(&mut self, name: &str, column: &Column) -> std::result::Result<(), String> {
        match column {
            Column::Numeric(values) => {
                let present: Vec<f64> = values.iter().flatten().copied().collect();
                if present.is_empty() {
                    return Err("entirely missing in the training rows".into());
                }
                let median = median(&present);
                let filled: Vec<f64> = values.iter().map(|v| v.unwrap_or(median)).collect();
                let (mean, std) = mean_std(&filled);
                if std == 0.0 {
                    return Err(format!("constant ({median}) in the training rows"));
                }
                self.numeric.push(NumericFeature {
                    name: name.into(),
                    median,
                    mean,
                    std,
                });
            }
            Column::Categorical(values) => {
                let mut categories: Vec<String> = values.iter().flatten().cloned().collect();
                categories.sort_unstable();
                categories.dedup();
                if categories.len() < 2 {
                    return Err("fewer than two categories in the training rows".into());
                }
                self.categorical.push(CategoricalFeature {
                    name: name.into(),
                    categories,
                });
            }
        }
        Ok(())
    }

    /// Model inputs per row.
    pub fn width(&self) -> usize {
        self.numeric.len()
            + self
                .categorical
                .iter()
                .map(|c| c.categories.len())
                .sum::<usize>()
    }

    /// The model's input names: numeric columns, then `column=category` one-hots.
    pub fn feature_names(&self) -> Vec<String> {
        let numeric = self.numeric.iter().map(|f| f.name.clone());
        let onehot = self
            .categorical
            .iter()
            .flat_map(|c| c.categories.iter().map(move |k| format!("{}={k}", c.name)));
        numeric.chain(onehot).collect()
    }

    /// The original columns a model input comes from (for permutation importance).
    pub fn source_columns(&self) -> Vec<String> {
        let numeric = self.numeric.iter().map(|f| f.name.clone());
        let cats = self.categorical.iter().map(|c| c.name.clone());
        numeric.chain(cats).collect()
    }

    /// Applies the fitted transforms to every row of `frame` (the target too, when the
    /// frame has it; its rows must all have a target).
    pub fn transform(&self, frame: &Frame) -> Result<Transformed> {
        let rows = frame.height();
        let width = self.width();
        let mut x = vec![0f32; rows * width];
        let mut imputed = Vec::new();
        for (j, f) in self.numeric.iter().enumerate() {
            let values = frame.numeric(&f.name)?;
            let mut missing = 0;
            for (r, v) in values.iter().enumerate() {
                missing += usize::from(v.is_none());
                let v = v.unwrap_or(f.median);
                x[r * width + j] = self.scale(v, f) as f32;
            }
            if missing > 0 {
                imputed.push((f.name.clone(), missing));
            }
        }
        let unknown_categories = self.one_hot(frame, &mut x)?;
        let y = match frame.index(&self.target.name) {
            Ok(_) => Some(self.targets(frame)?),
            Err(_) => None,
        };
        Ok(Transformed {
            x,
            rows,
            width,
            y,
            imputed,
            unknown_categories,
        })
    }

    fn scale(&self, v: f64, f: &NumericFeature) -> f64 {
        if self.options.standardize {
            (v - f.mean) / f.std
        } else {
            v
        }
    }

    /// Writes the one-hot columns into `x`; returns the unknown counts per column.
    fn one_hot(&self, frame: &Frame, x: &mut [f32]) -> Result<Vec<(String, usize)>> {
        let width = self.width();
        let mut offset = self.numeric.len();
        let mut unknown = Vec::new();
        for c in &self.categorical {
            let Column::Categorical(values) = frame.column(&c.name)? else {
                return Err(Error::data(
                    &frame.source,
                    format!(
                        "column `{}` holds numbers, categories were expected",
                        c.name
                    ),
                ));
            };
            let mut unseen = 0;
            for (r, v) in values.iter().enumerate() {
                match v.as_ref().and_then(|v| c.categories.binary_search(v).ok()) {
                    Some(k) => x[r * width + offset + k] = 1.0,
                    None => unseen += 1,
                }
            }
            if unseen > 0 {
                unknown.push((c.name.clone(), unseen));
            }
            offset += c.categories.len();
        }
        Ok(unknown)
    }

    /// The frame's targets in model units; a missing one is an error naming its line.
    pub fn targets(&self, frame: &Frame) -> Result<Vec<f32>> {
        let values = frame.numeric(&self.target.name)?;
        values
            .iter()
            .enumerate()
            .map(|(r, v)| match v {
                Some(v) => Ok(self.target.apply(*v) as f32),
                None => Err(Error::data(
                    &frame.source,
                    format!(
                        "line {}: target `{}` is missing",
                        frame.lines[r], self.target.name
                    ),
                )
                .with_hint("drop rows without a target before training (TabularSet does)")),
            })
            .collect()
    }
}

impl Preprocessor {
    /// One row per column: what was fitted (median, mean, std; categories) or why it was dropped.
    pub fn table(&self, title: &str) -> Result<crate::render::Table> {
        use polars::prelude::Column as Pl;
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for f in &self.numeric {
            let scaled = if self.options.standardize {
                format!(", standardised (mean {:.4}, std {:.4})", f.mean, f.std)
            } else {
                String::new()
            };
            rows.push((
                f.name.clone(),
                "numeric".into(),
                format!("missing → median {:.4}{scaled}", f.median),
            ));
        }
        for c in &self.categorical {
            rows.push((
                c.name.clone(),
                "one-hot".into(),
                format!(
                    "{} categories: {}; unseen → all zeros",
                    c.categories.len(),
                    c.categories.join(", ")
                ),
            ));
        }
        for (name, why) in &self.dropped {
            rows.push((name.clone(), "dropped".into(), why.clone()));
        }
        let t = &self.target;
        let log = if t.log { "ln(1 + y), then " } else { "" };
        rows.push((
            t.name.clone(),
            "target".into(),
            format!("{log}standardised (mean {:.4}, std {:.4})", t.mean, t.std),
        ));
        let (a, b, c) = rows.into_iter().fold(
            (vec![], vec![], vec![]),
            |(mut a, mut b, mut c), (x, y, z)| {
                a.push(x);
                b.push(y);
                c.push(z);
                (a, b, c)
            },
        );
        crate::render::Table::from_columns(
            title,
            vec![
                Pl::new("column".into(), a),
                Pl::new("role".into(), b),
                Pl::new("fitted on the training rows".into(), c),
            ],
        )
    }
}

fn fit_target(train: &Frame, target: &str, log: bool) -> Result<TargetTransform> {
    let values = train.numeric(target)?;
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.len() < values.len() {
        return Err(Error::data(
            &train.source,
            format!(
                "target `{target}` is missing in {} training rows",
                values.len() - present.len()
            ),
        ));
    }
    if log {
        if let Some(bad) = present.iter().find(|&&v| v <= -1.0) {
            return Err(Error::data(
                &train.source,
                format!("log target: `{target}` has the value {bad}, ln(1 + y) needs y > -1"),
            ));
        }
    }
    let modelled: Vec<f64> = present
        .iter()
        .map(|&v| if log { v.ln_1p() } else { v })
        .collect();
    let (mean, std) = mean_std(&modelled);
    if std == 0.0 {
        return Err(Error::data(
            &train.source,
            format!("target `{target}` is constant in the training rows: nothing to learn"),
        ));
    }
    Ok(TargetTransform {
        name: target.into(),
        log,
        mean,
        std,
    })
}

/// Median of unsorted values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Mean and population standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::csv;
    use std::path::Path;

    fn frame(text: &str) -> Frame {
        let path = Path::new("t.csv");
        Frame::from_records(csv::parse(text, ',', 0, path).unwrap(), path, &[]).unwrap()
    }

    #[test]
    fn fitted_on_train_applied_with_counted_rules() {
        let train = frame("a,k,c,y\n1,x,5,10\n3,y,5,20\n,x,5,30\n");
        let p = Preprocessor::fit(&train, "y", PreprocessOptions::default()).unwrap();
        assert_eq!(p.numeric[0].median, 2.0);
        assert_eq!(
            p.dropped,
            [(
                "c".to_string(),
                "constant (5) in the training rows".to_string()
            )]
        );
        assert_eq!(p.feature_names(), ["a", "k=x", "k=y"]);
        let test = frame("a,k,c,y\n,z,1,40\n");
        let t = p.transform(&test).unwrap();
        assert_eq!(t.imputed, [("a".to_string(), 1)]);
        assert_eq!(t.unknown_categories, [("k".to_string(), 1)]);
        // The imputed median standardised with the train mean (2) → 0; no one-hot set.
        assert_eq!(t.x, [0.0, 0.0, 0.0]);
        let y = t.y.unwrap()[0] as f64;
        assert!((p.target.invert(y) - 40.0).abs() < 1e-4);
    }

    #[test]
    fn log_target_round_trips_and_refuses_impossible_values() {
        let train = frame("a,y\n1,100\n2,1000\n3,10\n");
        let opts = PreprocessOptions {
            log_target: true,
            ..Default::default()
        };
        let p = Preprocessor::fit(&train, "y", opts).unwrap();
        assert!((p.target.invert(p.target.apply(1000.0)) - 1000.0).abs() < 1e-6);
        let bad = frame("a,y\n1,-2\n2,3\n");
        let e = Preprocessor::fit(&bad, "y", opts).unwrap_err().to_string();
        assert!(e.contains("needs y > -1"), "{e}");
        let missing = frame("a,y\n1,\n2,3\n");
        let e = Preprocessor::fit(&missing, "y", opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing in 1 training rows"), "{e}");
    }
}
