//! What the server remembers of its traffic: every prediction appended to the prediction
//! log (`predictions.jsonl`, which [`crate::monitor::prediction_log::read_log`] and the
//! dashboard read, and the same rows in `predictions.csv`), and a sliding window of the
//! last live inputs that a background thread tests for drift against the served model's
//! reference, raising alerts (`alerts.jsonl`, `/alerts`, `/metrics`).
use super::metrics::DriftGauge;
use super::model::Ranked;
use super::Shared;
use crate::monitor::prediction_log::{check_alerts, now, Alert, AlertRules, PredictionRecord};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, Weak};
use tch::Tensor;

/// Alerts kept in memory for `GET /alerts` (all of them stay in `alerts.jsonl`).
const ALERTS_KEPT: usize = 200;
const JSONL_FILE: &str = "predictions.jsonl";
const CSV_FILE: &str = "predictions.csv";
const CSV_HEADER: &str =
    "ts,time,model_version,class,confidence,latency_ms,batch,input_mean,input_std\n";

/// Where the logs go and how the live window is tested.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorOptions {
    /// Folder of `predictions.jsonl`, `predictions.csv` and `alerts.jsonl`.
    pub log_dir: PathBuf,
    /// Live inputs in the drift window.
    pub window: usize,
    /// A drift test runs each time this many new inputs have arrived (once the window is
    /// full) …
    pub every: usize,
    /// … and at least this long after the previous one (a test costs tens of ms of CPU:
    /// under heavy traffic this keeps monitoring to a small share of the machine).
    pub min_interval: std::time::Duration,
    pub rules: AlertRules,
}

/// The latest drift test, as `/alerts` and `/health` show it.
#[derive(Debug, Clone, Serialize)]
pub struct DriftStatus {
    /// Sequence number of the test (0, 1, …; also its permutation seed).
    pub test: u64,
    pub time: String,
    pub model_version: String,
    pub window: usize,
    pub reference: usize,
    pub drift: bool,
    pub methods: Vec<MethodStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodStatus {
    pub method: &'static str,
    pub drift: bool,
    pub p_value: f64,
    pub statistic: f64,
    pub detail: String,
}

/// One window handed to the drift thread.
pub(super) struct WindowJob {
    images: Vec<Vec<u8>>,
    records: Vec<PredictionRecord>,
    seed: u64,
}

struct Ring {
    images: VecDeque<Vec<u8>>,
    records: VecDeque<PredictionRecord>,
    since_test: usize,
    tests: u64,
    last_test: Option<std::time::Instant>,
}

/// The logs and the live drift window.
pub struct Monitor {
    options: MonitorOptions,
    ring: Mutex<Ring>,
    to_tester: SyncSender<WindowJob>,
    alerts: Mutex<VecDeque<Alert>>,
    latest: Mutex<Option<DriftStatus>>,
    /// The two logs, open for appending; one batch's rows are one write to each.
    logs: Mutex<Logs>,
}

/// `predictions.jsonl` and `predictions.csv`, kept open (opening them per batch cost
/// more than writing).
struct Logs {
    jsonl: std::fs::File,
    csv: std::fs::File,
}

impl Logs {
    fn open(dir: &Path) -> Result<Logs> {
        Ok(Logs {
            jsonl: open_append(&dir.join(JSONL_FILE), "")?,
            csv: open_append(&dir.join(CSV_FILE), CSV_HEADER)?,
        })
    }

    fn append(&mut self, dir: &Path, records: &[PredictionRecord]) -> Result<()> {
        let mut jsonl = String::new();
        let mut csv = String::new();
        for r in records {
            let line = serde_json::to_string(r)
                .map_err(|e| Error::data(dir, format!("record not serialisable: {e}")))?;
            jsonl.push_str(&line);
            jsonl.push('\n');
            csv += &csv_row(r);
        }
        self.jsonl
            .write_all(jsonl.as_bytes())
            .map_err(|e| Error::io(dir.join(JSONL_FILE), e))?;
        self.csv
            .write_all(csv.as_bytes())
            .map_err(|e| Error::io(dir.join(CSV_FILE), e))
    }
}

/// Opens a log for appending whole lines ([`crate::io::jsonl::open_append`]), writing
/// `header` first into a new file.
fn open_append(path: &Path, header: &str) -> Result<std::fs::File> {
    let mut file = crate::io::jsonl::open_append(path)?;
    let empty = file.metadata().map_err(|e| Error::io(path, e))?.len() == 0;
    if empty {
        file.write_all(header.as_bytes())
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(file)
}

impl Monitor {
    /// A monitor writing into `options.log_dir` (created); the receiver goes to
    /// [`spawn_tester`].
    pub(super) fn new(options: MonitorOptions) -> Result<(Monitor, Receiver<WindowJob>)> {
        if options.window < 30 || options.every == 0 {
            return Err(Error::Argument {
                name: "drift-window".into(),
                reason: format!(
                    "window {} / every {}: the window needs at least 30 inputs and every ≥ 1",
                    options.window, options.every
                ),
            });
        }
        std::fs::create_dir_all(&options.log_dir).map_err(|e| Error::io(&options.log_dir, e))?;
        let logs = Logs::open(&options.log_dir)?;
        // One window waits while another is tested; more would only test stale windows.
        let (tx, rx) = sync_channel(1);
        let ring = Ring {
            images: VecDeque::with_capacity(options.window),
            records: VecDeque::with_capacity(options.window),
            since_test: 0,
            tests: 0,
            last_test: None,
        };
        Ok((
            Monitor {
                options,
                ring: Mutex::new(ring),
                to_tester: tx,
                alerts: Mutex::new(VecDeque::new()),
                latest: Mutex::new(None),
                logs: Mutex::new(logs),
            },
            rx,
        ))
    }

    pub fn options(&self) -> &MonitorOptions {
        &self.options
    }

    pub fn jsonl_path(&self) -> PathBuf {
        self.options.log_dir.join(JSONL_FILE)
    }

    pub fn csv_path(&self) -> PathBuf {
        self.options.log_dir.join(CSV_FILE)
    }

    pub fn alerts_path(&self) -> PathBuf {
        self.options.log_dir.join("alerts.jsonl")
    }

    /// Logs one batch (before anyone is answered: an answered prediction is a logged
    /// one) and feeds its inputs to the drift window.
    pub fn record(
        &self,
        version: &str,
        images: &[&Vec<u8>],
        top: &[Vec<Ranked>],
        model_ms: f64,
    ) -> Result<()> {
        let (ts, time) = now();
        let records: Vec<PredictionRecord> = images
            .iter()
            .zip(top)
            .map(|(pixels, ranked)| {
                let (input_mean, input_std) = pixel_stats(pixels);
                PredictionRecord {
                    ts,
                    time: time.clone(),
                    model_version: version.to_string(),
                    class: ranked[0].class,
                    confidence: ranked[0].probability,
                    latency_ms: model_ms,
                    batch: images.len(),
                    input_mean,
                    input_std,
                }
            })
            .collect();
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&self.options.log_dir, &records)?;
        self.feed(images, records);
        Ok(())
    }

    /// Adds inputs to the window; hands a full window to the tester every `every` inputs
    /// (skipped, not queued, while the tester is busy).
    fn feed(&self, images: &[&Vec<u8>], records: Vec<PredictionRecord>) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        for (pixels, record) in images.iter().zip(records) {
            if ring.images.len() == self.options.window {
                ring.images.pop_front();
                ring.records.pop_front();
            }
            ring.images.push_back((*pixels).clone());
            ring.records.push_back(record);
            ring.since_test += 1;
        }
        let rested = ring
            .last_test
            .is_none_or(|t| t.elapsed() >= self.options.min_interval);
        if ring.images.len() == self.options.window
            && ring.since_test >= self.options.every
            && rested
        {
            let job = WindowJob {
                images: ring.images.iter().cloned().collect(),
                records: ring.records.iter().cloned().collect(),
                seed: ring.tests,
            };
            match self.to_tester.try_send(job) {
                Ok(()) => {
                    ring.since_test = 0;
                    ring.tests += 1;
                    ring.last_test = Some(std::time::Instant::now());
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Alerts raised so far (the most recent [`ALERTS_KEPT`]), oldest first.
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Windows handed to the drift tester so far.
    pub fn tests_sent(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).tests
    }

    /// The latest drift test, if one ran.
    pub fn latest(&self) -> Option<DriftStatus> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Starts the thread that tests the windows the monitor hands over; it stops when the
/// server state is dropped.
pub(super) fn spawn_tester(
    windows: Receiver<WindowJob>,
    shared: Weak<Shared>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("lab-serve-drift".into())
        .spawn(move || {
            for job in windows {
                let Some(shared) = shared.upgrade() else {
                    break;
                };
                if let Err(e) = test_window(&shared, job) {
                    shared.notice(&format!("drift test failed: {e}"));
                }
            }
        })
        .map(|_| ())
}

/// Runs the three drift tests on one window with the model served now, publishes the
/// result and appends the alerts it raises.
fn test_window(shared: &Shared, job: WindowJob) -> Result<()> {
    let model = shared.model();
    let n = job.images.len() as i64;
    let [c, h, w] = [model.spec.channels, model.spec.height, model.spec.width].map(i64::from);
    if job.images.iter().any(|i| i.len() as i64 != c * h * w) {
        return Ok(()); // the window straddles a swap to a model of another input size
    }
    let flat: Vec<u8> = job.images.concat();
    let window = Tensor::from_slice(&flat).view([n, c, h, w]);
    let report = model.drift(&window, job.seed)?;
    let monitor = &shared.monitor;
    let alerts = check_alerts(
        &monitor.options.rules,
        &job.records,
        Some(&report),
        Some(&monitor.alerts_path()),
    )?;
    let methods: Vec<MethodStatus> = report
        .verdicts()
        .iter()
        .map(|v| MethodStatus {
            method: v.method.name(),
            drift: v.drift,
            p_value: v.p_value,
            statistic: v.statistic,
            detail: v.detail.clone(),
        })
        .collect();
    let gauges = methods
        .iter()
        .map(|m| DriftGauge {
            method: m.method,
            statistic: m.statistic,
            p_value: m.p_value,
            drift: m.drift,
        })
        .collect();
    shared.metrics.drift(gauges, alerts.len() as u64);
    {
        let mut kept = monitor.alerts.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend(alerts);
        while kept.len() > ALERTS_KEPT {
            kept.pop_front();
        }
    }
    *monitor.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(DriftStatus {
        test: job.seed,
        time: now().1,
        model_version: model.version.clone(),
        window: report.window,
        reference: model.reference_len(),
        drift: report.any_drift(),
        methods,
    });
    Ok(())
}

/// Mean and standard deviation of pixels scaled to [0, 1] (as the predictor logs them).
fn pixel_stats(pixels: &[u8]) -> (f64, f64) {
    let n = pixels.len().max(1) as f64;
    let mean = pixels.iter().map(|&p| f64::from(p) / 255.0).sum::<f64>() / n;
    let var = pixels
        .iter()
        .map(|&p| (f64::from(p) / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// One row of the CSV log.
fn csv_row(r: &PredictionRecord) -> String {
    format!(
        "{},{},{},{},{:.6},{:.3},{},{:.6},{:.6}\n",
        r.ts,
        r.time,
        csv_field(&r.model_version),
        r.class,
        r.confidence,
        r.latency_ms,
        r.batch,
        r.input_mean,
        r.input_std
    )
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}
