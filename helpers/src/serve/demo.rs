//! The server inside a notebook: [`LiveDemo`] starts `lab serve`'s server in process on a
//! free loopback port, streams images to it over HTTP one request at a time (so the
//! order of arrival, and with it every drift test, is the same on every run), reads its
//! alerts and metrics back, and moves the deployment pointer to show the hot swap.
use super::client;
use super::model::{Engine, ServedModel};
use super::monitoring::{DriftStatus, MonitorOptions};
use super::{BatchOptions, RunningServer, ServeOptions, MAX_BODY};
use crate::data::{Dataset, ImageSet};
use crate::monitor::drift::DriftOptions;
use crate::monitor::prediction_log::{AlertRules, PredictionRecord};
use crate::monitor::retrain::{self, GateDecision, POINTER_FILE};
use crate::render::Table;
use crate::tasks::image::TrainedRun;
use crate::{Error, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Live inputs in the drift window, and how often it is tested.
const WINDOW: usize = 200;
const EVERY: usize = 100;

/// A running server and what the notebook needs to talk to it.
pub struct LiveDemo {
    server: RunningServer,
    root: PathBuf,
}

/// What one stream of requests gave.
#[derive(Debug, Clone)]
pub struct StreamReport {
    pub name: String,
    pub requests: usize,
    pub answered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Share of the most predicted class, and its label.
    pub top_class: (String, f64),
    pub mean_confidence: f64,
    /// The drift test of the window that ends with this stream.
    pub drift: Option<DriftStatus>,
    /// Alerts raised while it was served.
    pub alerts: usize,
}

/// What the hot swap looked like from a client that kept sending requests.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// Whether the gate promoted the candidate (else it was rolled out by hand and back).
    pub promoted: bool,
    /// The gate's reason.
    pub reason: String,
    pub before: String,
    pub after: String,
    /// Requests answered during the swap(s), and how many of them failed.
    pub answers: usize,
    pub failed: usize,
    /// Versions in the order the answers carried them, repeats collapsed.
    pub sequence: Vec<String>,
}

impl LiveDemo {
    /// Deploys `trained` (`deployed.json` under `root` points at it), serves it with the
    /// drift detector fitted on `reference`, and watches the pointer; the prediction log
    /// starts empty in `<run>/serving/`.
    pub fn start(
        trained: &TrainedRun,
        data: &Dataset,
        reference: &ImageSet,
        root: &Path,
    ) -> Result<LiveDemo> {
        let log_dir = trained.run.file("serving");
        let _ = std::fs::remove_dir_all(&log_dir);
        retrain::set_deployed(root, &trained.run.path)?;
        let served = TrainedRun::load(&trained.run.path, data)?;
        let (_, pool) = ServedModel::split_held_out(&data.test)?;
        let model = ServedModel::from_trained(
            served,
            data.classes.clone(),
            reference,
            &pool,
            Engine::Auto,
            &DriftOptions::default(),
        )?;
        // A promoted run is loaded as `lab serve` loads one: its config names its data.
        let loader: super::Loader = Arc::new(move |run: &Path| {
            ServedModel::load(run, Engine::Auto, &DriftOptions::default())
        });
        let options = ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            batch: BatchOptions::default(),
            monitor: MonitorOptions {
                log_dir,
                window: WINDOW,
                every: EVERY,
                min_interval: Duration::ZERO,
                rules: AlertRules::default(),
            },
            max_body: MAX_BODY,
            watch: Some(root.join(POINTER_FILE)),
            stop_on_signals: false,
        };
        let server = super::start(model, loader, options)?;
        Ok(LiveDemo {
            server,
            root: root.to_path_buf(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Address, model, engine, drift window and log folder.
    pub fn status(&self) -> Result<Table> {
        let model = self.server.shared().model();
        Table::from_pairs(
            "The server",
            &[
                (
                    "address",
                    "127.0.0.1, a free port (loopback only)".to_string(),
                ),
                ("model version", model.version.clone()),
                ("engine", model.engine.clone()),
                (
                    "drift reference",
                    format!("{} held-out test images", model.reference_len()),
                ),
                (
                    "drift window",
                    format!("last {WINDOW} requests, tested every {EVERY}"),
                ),
                ("prediction log", self.log_path_shown()),
            ],
        )
    }

    /// `<run>/serving/predictions.jsonl`, relative to the runs root.
    fn log_path_shown(&self) -> String {
        let log = self.server.shared().monitor.jsonl_path();
        log.strip_prefix(&self.root)
            .unwrap_or(&log)
            .display()
            .to_string()
    }

    /// Sends each image of `set` as a PNG to `POST /predict`, one at a time, then waits
    /// for the drift test of the window that ends with it.
    pub fn stream(&self, name: &str, set: &ImageSet) -> Result<StreamReport> {
        let shared = self.server.shared().clone();
        let alerts_before = shared.monitor.alerts().len();
        let mut latencies = Vec::with_capacity(set.len());
        let mut answered = 0;
        for i in 0..set.len() as i64 {
            let png = crate::plot::png_bytes(&set.images.get(i))?;
            let started = Instant::now();
            let answer = client::post(self.addr(), "/predict", "image/png", &png)?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            answered += usize::from(answer.status == 200);
        }
        let sent = shared.monitor.tests_sent();
        let drift = match sent {
            0 => None,
            n => Some(wait_for_test(&shared.monitor, n - 1)?),
        };
        let records = self.records()?;
        let served = &records[records.len().saturating_sub(set.len())..];
        Ok(StreamReport {
            name: name.into(),
            requests: set.len(),
            answered,
            p50_ms: percentile(&mut latencies, 0.5),
            p99_ms: percentile(&mut latencies, 0.99),
            top_class: top_class(served, &shared.model().classes),
            mean_confidence: served.iter().map(|r| r.confidence).sum::<f64>()
                / served.len().max(1) as f64,
            drift,
            alerts: shared.monitor.alerts().len() - alerts_before,
        })
    }

    /// The prediction log as the server wrote it.
    pub fn records(&self) -> Result<Vec<PredictionRecord>> {
        Ok(
            crate::monitor::prediction_log::read_log(&self.server.shared().monitor.jsonl_path())?
                .records,
        )
    }

    /// `GET /alerts` as a table.
    pub fn alerts(&self) -> Result<Table> {
        let answer = client::get(self.addr(), "/alerts")?.json();
        let alerts = answer["alerts"].as_array().cloned().unwrap_or_default();
        let rows: Vec<Vec<String>> = alerts
            .iter()
            .map(|a| {
                vec![
                    a["rule"].as_str().unwrap_or("").to_string(),
                    format!("{:.2e}", a["value"].as_f64().unwrap_or(f64::NAN)),
                    a["message"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        Table::from_rows(
            "Alerts raised by the live drift monitor (GET /alerts)",
            &["rule", "p-value", "message"],
            rows,
        )
    }

    /// The lines of `GET /metrics` a dashboard would plot, as a table.
    pub fn metrics(&self) -> Result<Table> {
        let text = client::get(self.addr(), "/metrics")?.text();
        let keep = [
            "lab_requests_total",
            "lab_predictions_total",
            "lab_drift_",
            "lab_alerts_total",
            "lab_model_",
            "lab_batch_images_count",
        ];
        let rows: Vec<Vec<String>> = text
            .lines()
            .filter(|l| !l.starts_with('#') && keep.iter().any(|k| l.starts_with(k)))
            .filter_map(|l| {
                l.rsplit_once(' ')
                    .map(|(k, v)| vec![k.to_string(), v.to_string()])
            })
            .collect();
        Table::from_rows(
            "GET /metrics (Prometheus text format), selected series",
            &["series", "value"],
            rows,
        )
    }

    /// Moves `deployed.json` to the gate's candidate while a client keeps sending
    /// requests, and waits for the server to swap. A candidate the gate rejected is rolled
    /// out by hand (as an operator overriding the gate would), then rolled back, so the
    /// pointer ends where the gate left it; the report says which.
    pub fn promote(&self, decision: &GateDecision, probe: &ImageSet) -> Result<SwapReport> {
        let shared = self.server.shared();
        let (before, original) = (shared.model().version.clone(), shared.model().run.clone());
        let png = crate::plot::png_bytes(&probe.images.get(0))?;
        let (addr, stop) = (self.addr(), Arc::new(AtomicBool::new(false)));
        let client_stop = stop.clone();
        let client = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !client_stop.load(Ordering::Relaxed) {
                let answer = client::post(addr, "/predict", "image/png", &png);
                seen.push(answer.map(|a| {
                    (
                        a.status,
                        a.json()["model_version"].as_str().unwrap_or("").to_string(),
                    )
                }));
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(200));
        self.point_to(&decision.candidate.run, &before)?;
        let after = shared.model().version.clone();
        if !decision.promoted {
            self.point_to(&original, &after)?;
        }
        stop.store(true, Ordering::Relaxed);
        let seen = client
            .join()
            .map_err(|_| Error::data(&self.root, "the swap's client thread panicked"))?;
        let failed = seen.iter().filter(|s| !matches!(s, Ok((200, _)))).count();
        let mut sequence: Vec<String> = Vec::new();
        for (_, v) in seen.iter().flatten() {
            if sequence.last() != Some(v) {
                sequence.push(v.clone());
            }
        }
        Ok(SwapReport {
            promoted: decision.promoted,
            reason: decision.reason.clone(),
            before,
            after,
            answers: seen.len(),
            failed,
            sequence,
        })
    }

    /// Points `deployed.json` at `run` and waits (≤ 120 s) until the server no longer
    /// serves `serving`, then a little longer so that answers of the new model are seen.
    fn point_to(&self, run: &Path, serving: &str) -> Result<()> {
        retrain::set_deployed(&self.root, run)?;
        let shared = self.server.shared();
        let deadline = Instant::now() + Duration::from_secs(120);
        while shared.model().version == serving {
            if Instant::now() > deadline {
                return Err(Error::data(
                    run,
                    "the server did not load this run within 120 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// Stops the server (open requests finish first).
    pub fn stop(self) {
        self.server.stop()
    }
}

impl StreamReport {
    /// One row per stream, side by side.
    pub fn table(reports: &[&StreamReport]) -> Result<Table> {
        let verdict = |r: &StreamReport, method: &str| {
            r.drift
                .as_ref()
                .and_then(|d| d.methods.iter().find(|m| m.method == method))
                .map(|m| {
                    format!(
                        "{} (p {:.2e})",
                        if m.drift { "drift" } else { "no drift" },
                        m.p_value
                    )
                })
                .unwrap_or_else(|| "window not full".into())
        };
        let rows = reports
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    format!("{} / {}", r.answered, r.requests),
                    format!("{:.2}", r.p50_ms),
                    format!("{:.2}", r.p99_ms),
                    format!("{} ({:.1} %)", r.top_class.0, 100.0 * r.top_class.1),
                    format!("{:.3}", r.mean_confidence),
                    verdict(r, "ks"),
                    verdict(r, "mmd"),
                    verdict(r, "chi_square"),
                    r.alerts.to_string(),
                ]
            })
            .collect();
        Table::from_rows(
            "Streams sent to the live server over HTTP, one request per image",
            &[
                "stream",
                "answered",
                "p50 latency (ms)",
                "p99 latency (ms)",
                "most predicted class",
                "mean confidence",
                "KS",
                "MMD",
                "chi-square",
                "alerts",
            ],
            rows,
        )
    }
}

impl SwapReport {
    pub fn table(&self) -> Result<Table> {
        let how = if self.promoted {
            format!("by the gate ({})", self.reason)
        } else {
            format!(
                "by hand, then rolled back: the gate rejected it ({})",
                self.reason
            )
        };
        Table::from_pairs(
            "Hot swap while a client kept sending requests",
            &[
                ("candidate deployed", how),
                ("served before", self.before.clone()),
                ("served after the swap", self.after.clone()),
                (
                    "failed requests",
                    format!("{} (of every answer)", self.failed),
                ),
                (
                    "versions in the answers, in order",
                    self.sequence.join(" → "),
                ),
            ],
        )
    }
}

/// Waits (up to 60 s) for the drift test number `test` and returns it.
fn wait_for_test(monitor: &super::monitoring::Monitor, test: u64) -> Result<DriftStatus> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = monitor.latest().filter(|s| s.test >= test) {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(Error::data(
                monitor.alerts_path(),
                format!("drift test {test} did not finish within 60 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    crate::metrics::quantile(values, q)
}

/// The most predicted class of `records` and its share.
fn top_class(records: &[PredictionRecord], classes: &[String]) -> (String, f64) {
    let mut counts = vec![0usize; classes.len()];
    for r in records {
        if let Some(c) = counts.get_mut(r.class as usize) {
            *c += 1;
        }
    }
    let (best, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .unwrap_or((0, &0));
    (
        classes.get(best).cloned().unwrap_or_default(),
        *n as f64 / records.len().max(1) as f64,
    )
}
