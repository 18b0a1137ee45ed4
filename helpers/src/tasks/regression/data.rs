//! [`Prepared`]: a regression problem as tensors — train/val/test features and targets
//! in model units, what each input and output is called, and how to turn predictions
//! back into the target's units. Built from a table ([`Prepared::tabular`]) or an hourly
//! series cut into windows ([`Prepared::series`]); everything fitted on training rows only.
use super::model::InputShape;
use crate::data::tabular::preprocess::{mean_std, TargetTransform};
use crate::data::tabular::weather::{day_of_year, WeatherYear, TARGET as WEATHER_TARGET};
use crate::data::tabular::{Frame, PreprocessOptions, Preprocessor, RowSplit, TabularSet};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

/// Features `[n, width]` and targets `[n, outputs]`, f32, in model units.
#[derive(Debug)]
pub struct Arrays {
    pub x: Tensor,
    pub y: Tensor,
    /// Added to every output after inverting the target transform (`[n]`, target units):
    /// a series' value now, when the model forecasts the change from it.
    pub base: Option<Vec<f64>>,
}

impl Arrays {
    fn new(x: &[f32], width: usize, y: &[f32], outputs: usize) -> Arrays {
        let rows = (x.len() / width.max(1)) as i64;
        Arrays {
            x: Tensor::from_slice(x).view([rows, width as i64]),
            y: Tensor::from_slice(y).view([rows, outputs as i64]),
            base: None,
        }
    }

    pub fn len(&self) -> usize {
        self.x.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_device(&self, device: Device) -> Arrays {
        Arrays {
            x: self.x.to_device(device),
            y: self.y.to_device(device),
            base: self.base.clone(),
        }
    }

    /// Column `j` of the targets, in model units.
    pub fn targets(&self, j: usize) -> Vec<f64> {
        let col = self.y.select(1, j as i64).to_kind(Kind::Double);
        Vec::<f64>::try_from(&col).expect("a 1-D tensor")
    }
}

/// How a series becomes supervised examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSpec {
    /// Past hours the model sees (the current one included).
    pub lookback: usize,
    /// Hours ahead to forecast, one output each.
    pub horizons: Vec<usize>,
    /// Learn the change from the value now instead of the value itself: what persistence
    /// misses, which is comparable across seasons (a level learnt in summer does not
    /// transfer to a winter test period; a daily rhythm of changes does).
    pub predict_change: bool,
    pub val_fraction: f64,
    pub test_fraction: f64,
}

impl Default for SeriesSpec {
    fn default() -> Self {
        SeriesSpec {
            lookback: 24,
            horizons: vec![1, 24],
            predict_change: true,
            val_fraction: 0.15,
            test_fraction: 0.15,
        }
    }
}

/// A regression problem ready for the loop.
#[derive(Debug)]
pub struct Prepared {
    pub name: String,
    pub train: Arrays,
    pub val: Arrays,
    pub test: Arrays,
    pub input: InputShape,
    /// Names of the model's inputs (rows) or of each hour's variables (windows).
    pub feature_names: Vec<String>,
    /// One name per output ("median_house_value", "temperature +24 h").
    pub outputs: Vec<String>,
    /// Each output's transform (model units ↔ target units).
    pub targets: Vec<TargetTransform>,
    pub split: RowSplit,
    /// The table's transforms and its test rows (for permutation importance).
    pub tabular: Option<(Preprocessor, Frame)>,
    /// The persistence forecast of each test example (the value now, for every
    /// horizon), in model units; series only.
    pub persistence: Option<Tensor>,
    /// Identifies the data and its preparation (a run trained on other data is not reused).
    pub fingerprint: String,
}

impl Prepared {
    /// A table split at random (seeded) into `val` and `test` fractions and the rest,
    /// its transforms fitted on the training rows.
    pub fn tabular_shuffled(
        set: &TabularSet,
        (val, test): (f64, f64),
        seed: u64,
        options: PreprocessOptions,
    ) -> Result<Prepared> {
        let rows: Vec<usize> = (0..set.frame.height()).collect();
        Prepared::tabular(set, RowSplit::shuffled(&rows, val, test, seed)?, options)
    }

    /// A table split by `split`, its transforms fitted on the training rows.
    pub fn tabular(
        set: &TabularSet,
        split: RowSplit,
        options: PreprocessOptions,
    ) -> Result<Prepared> {
        let frames = [&split.train, &split.val, &split.test].map(|rows| set.frame.take(rows));
        let pre = Preprocessor::fit(&frames[0], &set.target, options)?;
        let [train, val, test] = [0, 1, 2].map(|i| pre.transform(&frames[i]));
        let arrays = |t: Result<crate::data::tabular::Transformed>| -> Result<Arrays> {
            let t = t?;
            let y =
                t.y.ok_or_else(|| Error::data(&set.frame.source, "no target column"))?;
            Ok(Arrays::new(&t.x, t.width, &y, 1))
        };
        let fingerprint = format!(
            "{}:{}",
            set.sha256,
            crate::io::hex(&Sha256::digest(
                serde_json::to_vec(&(&pre, &split)).expect("serialises")
            ))
        );
        let [_, _, test_frame] = frames;
        Ok(Prepared {
            name: set.name.clone(),
            train: arrays(train)?,
            val: arrays(val)?,
            test: arrays(test)?,
            input: InputShape::Row {
                features: pre.width() as i64,
            },
            feature_names: pre.feature_names(),
            outputs: vec![set.target.clone()],
            targets: vec![pre.target.clone()],
            split,
            tabular: Some((pre, test_frame)),
            persistence: None,
            fingerprint,
        })
    }

    /// Windows of `spec.lookback` hours of `year` → the target `spec.horizons` hours
    /// later, split in time order (see [`RowSplit::chronological`] for the gaps).
    pub fn series(year: &WeatherYear, spec: &SeriesSpec) -> Result<Prepared> {
        let (names, columns) = hourly_features(year)?;
        let target_raw = year.values(WEATHER_TARGET)?;
        let max_h = *spec
            .horizons
            .iter()
            .max()
            .ok_or_else(|| Error::argument("horizons", "at least one horizon"))?;
        let hours = target_raw.len();
        if spec.lookback == 0 || hours < spec.lookback + max_h + 1 {
            return Err(Error::argument(
                "lookback",
                format!(
                    "{hours} hours cannot hold windows of {} + {max_h}",
                    spec.lookback
                ),
            ));
        }
        // Window k ends at hour t = k + lookback − 1.
        let windows = hours - spec.lookback + 1 - max_h;
        let gap = spec.lookback - 1 + max_h;
        let split = RowSplit::chronological(windows, spec.val_fraction, spec.test_fraction, gap)?;
        // Statistics of the hours the training windows see (inputs and targets).
        let train_end = split.train.last().map_or(0, |k| k + spec.lookback + max_h);
        let stats: Vec<(f64, f64)> = columns.iter().map(|c| mean_std(&c[..train_end])).collect();
        let standardized: Vec<Vec<f64>> = columns
            .iter()
            .zip(&stats)
            .map(|(c, &(m, s))| c.iter().map(|v| (v - m) / s.max(1e-12)).collect())
            .collect();
        let targets = target_transforms(spec, &target_raw, &split.train);
        let cut = Cutter {
            spec,
            columns: &standardized,
            targets: &targets,
            raw: &target_raw,
        };
        let [train, val, test] =
            [&split.train, &split.val, &split.test].map(|rows| cut.arrays(rows));
        let persistence = cut.persistence(&split.test);
        Ok(Prepared {
            name: format!("{} hourly weather", year.station),
            train,
            val,
            test,
            input: InputShape::Window {
                steps: spec.lookback as i64,
                features: names.len() as i64,
            },
            feature_names: names,
            outputs: spec
                .horizons
                .iter()
                .map(|h| format!("{WEATHER_TARGET} +{h} h"))
                .collect(),
            targets,
            fingerprint: format!(
                "{}:{}",
                year.sha256,
                serde_json::to_string(spec).expect("serialises")
            ),
            split,
            tabular: None,
            persistence: Some(persistence),
        })
    }

    /// What was fitted on the training rows and how often each rule fired (tables).
    pub fn preprocessing_table(&self) -> Result<crate::render::Table> {
        let (pre, _) = self
            .tabular
            .as_ref()
            .ok_or_else(|| Error::argument("data", "a series has no table preprocessing"))?;
        pre.table(&format!(
            "Preprocessing fitted on the {} training rows ({} val, {} test): {} model inputs",
            self.train.len(),
            self.val.len(),
            self.test.len(),
            pre.width()
        ))
    }

    /// Output count.
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
}

/// Per horizon, the transform of what the model learns (the value, or its change from
/// now) with the statistics of the training windows.
fn target_transforms(spec: &SeriesSpec, raw: &[f64], train: &[usize]) -> Vec<TargetTransform> {
    let now = |k: usize| k + spec.lookback - 1;
    spec.horizons
        .iter()
        .map(|&h| {
            let learnt: Vec<f64> = train
                .iter()
                .map(|&k| {
                    raw[now(k) + h]
                        - if spec.predict_change {
                            raw[now(k)]
                        } else {
                            0.0
                        }
                })
                .collect();
            let (mean, std) = mean_std(&learnt);
            let what = if spec.predict_change {
                "change of "
            } else {
                ""
            };
            TargetTransform {
                name: format!("{what}{WEATHER_TARGET} +{h} h"),
                log: false,
                mean,
                std,
            }
        })
        .collect()
}

/// Cuts standardised hourly columns into windows and targets.
struct Cutter<'a> {
    spec: &'a SeriesSpec,
    columns: &'a [Vec<f64>],
    targets: &'a [TargetTransform],
    raw: &'a [f64],
}

impl Cutter<'_> {
    fn now(&self, k: usize) -> usize {
        k + self.spec.lookback - 1
    }

    /// The part of a target the model does not learn (the value now, or nothing).
    fn base(&self, k: usize) -> f64 {
        if self.spec.predict_change {
            self.raw[self.now(k)]
        } else {
            0.0
        }
    }

    fn arrays(&self, windows: &[usize]) -> Arrays {
        let (l, f) = (self.spec.lookback, self.columns.len());
        let mut x = Vec::with_capacity(windows.len() * l * f);
        let mut y = Vec::with_capacity(windows.len() * self.spec.horizons.len());
        for &k in windows {
            for hour in k..k + l {
                x.extend(self.columns.iter().map(|c| c[hour] as f32));
            }
            let targets = self.spec.horizons.iter().zip(self.targets);
            y.extend(
                targets.map(|(h, t)| t.apply(self.raw[self.now(k) + h] - self.base(k)) as f32),
            );
        }
        let mut arrays = Arrays::new(&x, l * f, &y, self.spec.horizons.len());
        arrays.base = Some(windows.iter().map(|&k| self.base(k)).collect());
        arrays
    }

    /// The value now as the forecast of every horizon, in model units.
    fn persistence(&self, windows: &[usize]) -> Tensor {
        let h = self.spec.horizons.len();
        let values: Vec<f32> = windows
            .iter()
            .flat_map(|&k| {
                self.targets
                    .iter()
                    .map(move |t| t.apply(self.raw[self.now(k)] - self.base(k)) as f32)
            })
            .collect();
        Tensor::from_slice(&values).view([windows.len() as i64, h as i64])
    }
}

/// Each hour's inputs: the measured variables (wind direction as sine and cosine, so 359°
/// is next to 1°) and the calendar (hour of day, day of year, as sine and cosine).
fn hourly_features(year: &WeatherYear) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let mut names = Vec::new();
    let mut columns = Vec::new();
    for name in &year.frame.names {
        let values = year.values(name)?;
        if name == "wind_direction" {
            let rad: Vec<f64> = values.iter().map(|d| d.to_radians()).collect();
            names.extend(["wind_dir_sin".to_string(), "wind_dir_cos".to_string()]);
            columns.push(rad.iter().map(|r| r.sin()).collect());
            columns.push(rad.iter().map(|r| r.cos()).collect());
        } else {
            names.push(name.clone());
            columns.push(values);
        }
    }
    let tau = std::f64::consts::TAU;
    let hour = |(_, _, h): &(u32, u32, u32)| tau * (*h as f64 - 1.0) / 24.0;
    let day = |(m, d, _): &(u32, u32, u32)| tau * (day_of_year(*m, *d) as f64 - 1.0) / 365.0;
    for (label, angle) in [
        ("hour", &hour as &dyn Fn(&(u32, u32, u32)) -> f64),
        ("day", &day),
    ] {
        names.push(format!("{label}_sin"));
        columns.push(year.hours.iter().map(|t| angle(t).sin()).collect());
        names.push(format!("{label}_cos"));
        columns.push(year.hours.iter().map(|t| angle(t).cos()).collect());
    }
    Ok((names, columns))
}
