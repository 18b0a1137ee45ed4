//! Prediction monitoring: a [`Predictor`] that serves a model and, with a log attached,
//! appends one JSON line per prediction to a JSONL file; reading the log back into a
//! [`LogSummary`] and dashboard figures; alert rules that append to `alerts.jsonl`.
//! The log is JSON Lines ([`crate::io::jsonl`]).
use super::drift::{model_outputs, DriftReport};
use crate::data::Normalization;
pub use crate::io::jsonl::{append_jsonl, iso_utc, now, read_jsonl, JsonlRead};
use crate::models::Model;
use crate::plot::{self, Figure, Series};
use crate::render::Table;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Kind, Tensor};

// ─────────────────────────────── the predictor ───────────────────────────────

/// One line of the prediction log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// Unix time of the prediction, seconds.
    pub ts: f64,
    /// The same instant, ISO 8601 UTC (for people and pandas).
    pub time: String,
    pub model_version: String,
    /// Predicted class index.
    pub class: i64,
    /// Softmax probability of the predicted class.
    pub confidence: f64,
    /// Wall time of the `predict` call that served this image (the whole batch), ms.
    pub latency_ms: f64,
    /// Images served by that call.
    pub batch: usize,
    /// Mean and standard deviation of the image's pixels scaled to [0, 1]: cheap input
    /// statistics that move under brightness and contrast drift.
    pub input_mean: f64,
    pub input_std: f64,
}

/// One prediction returned to the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub class: i64,
    pub confidence: f64,
}

/// A model served with its normalisation and version, optionally logging every prediction.
#[derive(Debug)]
pub struct Predictor {
    model: Model,
    norm: Normalization,
    version: String,
    log: Option<PathBuf>,
}

impl Predictor {
    /// Serves `model`, normalising inputs with `norm`; `version` goes into every log line.
    pub fn new(model: Model, norm: Normalization, version: impl Into<String>) -> Predictor {
        Predictor {
            model,
            norm,
            version: version.into(),
            log: None,
        }
    }

    /// Serves a trained run's best weights with its normalisation; the version is
    /// [`super::retrain::model_version`] of its directory (name and weights hash).
    pub fn from_run(run: crate::tasks::image::TrainedRun) -> Result<Predictor> {
        let version = super::retrain::model_version(&run.run.path)?;
        Ok(Predictor::new(run.model, run.loaders.norm, version))
    }

    /// Appends one line per prediction to `path` from now on.
    pub fn with_log(mut self, path: impl Into<PathBuf>) -> Predictor {
        self.log = Some(path.into());
        self
    }

    /// The model version written to the log.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The served model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The input normalisation.
    pub fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// The log file, if one is attached.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Classes and confidences for raw images `[N, C, H, W]` (0..=255); with a log
    /// attached, appends the batch's records before returning.
    pub fn predict(&self, images: &Tensor) -> Result<Vec<Prediction>> {
        let started = Instant::now();
        let outputs = model_outputs(&self.model, &self.norm, images)?;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let predictions: Vec<Prediction> = outputs
            .predictions
            .iter()
            .zip(&outputs.confidences)
            .map(|(&class, &confidence)| Prediction { class, confidence })
            .collect();
        if let Some(path) = &self.log {
            let (mean, std) = input_stats(images)?;
            let (ts, time) = now();
            let records: Vec<PredictionRecord> = predictions
                .iter()
                .enumerate()
                .map(|(i, p)| PredictionRecord {
                    ts,
                    time: time.clone(),
                    model_version: self.version.clone(),
                    class: p.class,
                    confidence: p.confidence,
                    latency_ms,
                    batch: predictions.len(),
                    input_mean: mean[i],
                    input_std: std[i],
                })
                .collect();
            append_jsonl(path, &records)?;
        }
        Ok(predictions)
    }
}

/// Per-image mean and standard deviation of pixels scaled to [0, 1].
fn input_stats(images: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let x = images.to_kind(Kind::Double).flatten(1, -1) / 255.0;
    let mean = Vec::<f64>::try_from(x.mean_dim(1i64, false, Kind::Double))?;
    let std = Vec::<f64>::try_from(x.std_dim(1i64, false, false))?;
    Ok((mean, std))
}

/// Reads a prediction log.
pub fn read_log(path: &Path) -> Result<JsonlRead<PredictionRecord>> {
    read_jsonl(path)
}

// ─────────────────────────────── summary and dashboard ───────────────────────────────

/// What a prediction log says in aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSummary {
    pub predictions: usize,
    /// Unparseable lines skipped when reading.
    pub skipped: usize,
    /// First and last timestamps (ISO), if any prediction.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Predictions per model version, in order of first appearance.
    pub versions: Vec<(String, usize)>,
    pub mean_confidence: f64,
    /// Predictions per class, index = class (as long as the largest class seen + 1, or
    /// `num_classes` if larger).
    pub class_counts: Vec<u64>,
    /// Per-call latency (each call counted once): median, 95th percentile, mean, ms.
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_mean_ms: f64,
}

impl LogSummary {
    /// Summarises the records of a log read.
    pub fn of(read: &JsonlRead<PredictionRecord>, num_classes: usize) -> LogSummary {
        let records = &read.records;
        let mut versions: Vec<(String, usize)> = Vec::new();
        let mut class_counts = vec![0u64; num_classes];
        for r in records {
            match versions.iter_mut().find(|(v, _)| *v == r.model_version) {
                Some((_, n)) => *n += 1,
                None => versions.push((r.model_version.clone(), 1)),
            }
            if let Ok(c) = usize::try_from(r.class) {
                if c >= class_counts.len() {
                    class_counts.resize(c + 1, 0);
                }
                class_counts[c] += 1;
            }
        }
        let mut latencies = call_latencies(records);
        latencies.sort_by(f64::total_cmp);
        let n = records.len().max(1) as f64;
        LogSummary {
            predictions: records.len(),
            skipped: read.skipped,
            first: records.first().map(|r| r.time.clone()),
            last: records.last().map(|r| r.time.clone()),
            versions,
            mean_confidence: records.iter().map(|r| r.confidence).sum::<f64>() / n,
            class_counts,
            latency_p50_ms: crate::metrics::quantile(&latencies, 0.5),
            latency_p95_ms: crate::metrics::quantile(&latencies, 0.95),
            latency_mean_ms: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
        }
    }

    /// The summary as a two-column table.
    pub fn table(&self) -> Result<Table> {
        use polars::prelude::Column;
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(v, n)| format!("{v} ({n})"))
            .collect();
        let rows: Vec<(&str, String)> = vec![
            ("predictions", self.predictions.to_string()),
            ("skipped lines", self.skipped.to_string()),
            ("first", self.first.clone().unwrap_or_default()),
            ("last", self.last.clone().unwrap_or_default()),
            ("model versions", versions.join(", ")),
            ("mean confidence", format!("{:.4}", self.mean_confidence)),
            ("class counts", format!("{:?}", self.class_counts)),
            ("latency p50 (ms)", format!("{:.2}", self.latency_p50_ms)),
            ("latency p95 (ms)", format!("{:.2}", self.latency_p95_ms)),
            ("latency mean (ms)", format!("{:.2}", self.latency_mean_ms)),
        ];
        Table::from_columns(
            "Prediction log",
            vec![
                Column::new("".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new(
                    "value".into(),
                    rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                ),
            ],
        )
    }
}

/// Positions where each `predict` call's lines start: a call logs `batch` consecutive
/// lines with the same timestamp and latency, and counting each line would weigh large
/// batches more. Grouping by those fields (not by skipping `batch` lines) stays aligned
/// when a torn line was dropped.
fn call_starts(records: &[PredictionRecord]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut run = 0;
    for (i, r) in records.iter().enumerate() {
        let same_call = i > 0 && {
            let p = &records[i - 1];
            p.ts == r.ts && p.latency_ms == r.latency_ms && run < p.batch
        };
        if same_call {
            run += 1;
        } else {
            starts.push(i);
            run = 1;
        }
    }
    starts
}

/// One latency per `predict` call (see [`call_starts`]).
fn call_latencies(records: &[PredictionRecord]) -> Vec<f64> {
    call_starts(records)
        .into_iter()
        .map(|i| records[i].latency_ms)
        .collect()
}

/// Mean of each trailing window of `k` values (shorter at the start).
fn rolling_mean(values: &[f64], k: usize) -> Vec<f64> {
    let k = k.max(1);
    let mut sum = 0.0;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            sum += v;
            if i >= k {
                sum -= values[i - k];
            }
            sum / (i + 1).min(k) as f64
        })
        .collect()
}

/// The monitoring dashboard of a log: confidence over time (rolling mean over the last `k`
/// predictions) and latency per call, side by side; and the class mix of the first `k`
/// against the last `k` predictions, named by `classes`.
pub fn dashboard(
    records: &[PredictionRecord],
    classes: &[String],
    k: usize,
) -> Result<Vec<Figure>> {
    if records.is_empty() {
        return Err(Error::config(
            "dashboard.records",
            "the log holds no prediction yet",
        ));
    }
    let confidence: Vec<f64> = records.iter().map(|r| r.confidence).collect();
    let conf_points = rolling_mean(&confidence, k)
        .into_iter()
        .enumerate()
        .map(|(i, v)| ((i + 1) as f64, v))
        .collect();
    let latency_points = call_starts(records)
        .into_iter()
        .map(|i| ((i + 1) as f64, records[i].latency_ms))
        .collect();
    let over_time = plot::lines(
        "monitoring_over_time",
        &[
            (
                "confidence (rolling mean)",
                "prediction #",
                vec![Series::new(format!("mean of last {k}"), conf_points)],
            ),
            (
                "latency per call (ms)",
                "prediction #",
                vec![Series::new("latency", latency_points)],
            ),
        ],
    )?;
    let mix = |part: &[PredictionRecord]| -> Vec<f64> {
        let mut share = vec![0.0; classes.len()];
        for r in part {
            if let Some(s) = usize::try_from(r.class).ok().and_then(|c| share.get_mut(c)) {
                *s += 1.0 / part.len() as f64;
            }
        }
        share
    };
    let k = k.clamp(1, records.len());
    let first = format!("first {k}");
    let last = format!("last {k}");
    let class_mix = plot::bars(
        "Predicted class mix",
        classes,
        &[
            (first.as_str(), mix(&records[..k])),
            (last.as_str(), mix(&records[records.len() - k..])),
        ],
        "share of predictions",
    )?;
    Ok(vec![over_time, class_mix])
}

// ─────────────────────────────── alerts ───────────────────────────────

/// Thresholds of the alert rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Mean confidence over the last `confidence_window` predictions below this fires.
    pub min_mean_confidence: f64,
    pub confidence_window: usize,
    /// A drift test with a p-value below this fires.
    pub drift_alpha: f64,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            min_mean_confidence: 0.8,
            confidence_window: 200,
            drift_alpha: 0.05,
        }
    }
}

/// One fired alert, as appended to `alerts.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub ts: f64,
    pub time: String,
    /// `low_confidence` or `drift_<method>`.
    pub rule: String,
    /// The measured value and the threshold it crossed.
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    /// Model version of the last prediction considered, if any.
    pub model_version: Option<String>,
}

/// Evaluates `rules` on the log's `records` (the last `confidence_window` of them; fewer
/// records never fire, there is not enough evidence) and on an optional drift report;
/// appends the alerts that fire to `alerts_path` (if given) and returns them.
pub fn check_alerts(
    rules: &AlertRules,
    records: &[PredictionRecord],
    drift: Option<&DriftReport>,
    alerts_path: Option<&Path>,
) -> Result<Vec<Alert>> {
    let (ts, time) = now();
    let version = records.last().map(|r| r.model_version.clone());
    let alert = |rule: String, value: f64, threshold: f64, message: String| Alert {
        ts,
        time: time.clone(),
        rule,
        value,
        threshold,
        message,
        model_version: version.clone(),
    };
    let mut alerts = Vec::new();
    let k = rules.confidence_window;
    if k > 0 && records.len() >= k {
        let last = &records[records.len() - k..];
        let mean = last.iter().map(|r| r.confidence).sum::<f64>() / k as f64;
        if mean < rules.min_mean_confidence {
            alerts.push(alert(
                "low_confidence".into(),
                mean,
                rules.min_mean_confidence,
                format!(
                    "mean confidence of the last {k} predictions is {mean:.3} < {}",
                    rules.min_mean_confidence
                ),
            ));
        }
    }
    for v in drift.map(|d| d.verdicts().to_vec()).unwrap_or_default() {
        if v.p_value < rules.drift_alpha {
            alerts.push(alert(
                format!("drift_{}", v.method.name()),
                v.p_value,
                rules.drift_alpha,
                format!(
                    "{} drift test: p = {:.3e} < {} ({})",
                    v.method.name(),
                    v.p_value,
                    rules.drift_alpha,
                    v.detail
                ),
            ));
        }
    }
    if let Some(path) = alerts_path {
        append_jsonl(path, &alerts)?;
    }
    Ok(alerts)
}
