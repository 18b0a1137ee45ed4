//! The server's counters, rendered in the Prometheus text exposition format (0.0.4) for
//! `GET /metrics`: requests by route and status, a latency histogram, batch sizes,
//! predicted classes, queue depth, model swaps, drift statistics and alerts.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the request-latency histogram, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the batch-size histogram, images.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// The latest drift test of the live window, per method.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftGauge {
    pub method: &'static str,
    pub statistic: f64,
    pub p_value: f64,
    pub drift: bool,
}

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: Histogram,
    batches: Histogram,
    classes: BTreeMap<String, u64>,
    swaps: u64,
    alerts: u64,
    drift_tests: u64,
    drift: Vec<DriftGauge>,
}

/// Every counter of the server, behind one lock (held for microseconds per request).
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                latency: Histogram::new(&LATENCY_BUCKETS),
                batches: Histogram::new(&BATCH_BUCKETS),
                classes: BTreeMap::new(),
                swaps: 0,
                alerts: 0,
                drift_tests: 0,
                drift: Vec::new(),
            }),
        }
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One answered request; `seconds` is observed for prediction routes only.
    pub fn request(&self, route: &'static str, status: u16, seconds: Option<f64>) {
        self.with(|m| {
            *m.requests.entry((route, status)).or_default() += 1;
            if let Some(s) = seconds {
                m.latency.observe(s);
            }
        })
    }

    /// One batch the model ran, with the label of each image's top class.
    pub fn batch<'a>(&self, labels: impl IntoIterator<Item = &'a str>) {
        self.with(|m| {
            let mut n = 0;
            for label in labels {
                *m.classes.entry(label.to_string()).or_default() += 1;
                n += 1;
            }
            m.batches.observe(n as f64);
        })
    }

    pub fn swap(&self) {
        self.with(|m| m.swaps += 1)
    }

    /// A finished drift test and how many alerts it raised.
    pub fn drift(&self, gauges: Vec<DriftGauge>, alerts: u64) {
        self.with(|m| {
            m.drift = gauges;
            m.drift_tests += 1;
            m.alerts += alerts;
        })
    }

    /// Requests answered so far with `status` on `route`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        self.with(|m| {
            m.requests
                .iter()
                .filter(|((r, s), _)| *r == route && *s == status)
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// The text exposition; `version` and `queue_depth` are read by the caller.
    pub fn render(&self, version: &str, engine: &str, queue_depth: usize) -> String {
        let m = self.with(|m| {
            (
                m.requests.clone(),
                m.latency.clone(),
                m.batches.clone(),
                m.classes.clone(),
                (m.swaps, m.alerts, m.drift_tests),
                m.drift.clone(),
            )
        });
        let (requests, latency, batches, classes, (swaps, alerts, tests), drift) = m;
        let mut out = String::new();
        header(
            &mut out,
            "lab_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        );
        for ((route, status), n) in &requests {
            let _ = writeln!(
                out,
                "lab_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        latency.render(
            &mut out,
            "lab_request_duration_seconds",
            "Time from a prediction request's arrival to its answer.",
        );
        batches.render(
            &mut out,
            "lab_batch_images",
            "Images per model run (requests that arrive together share one).",
        );
        header(
            &mut out,
            "lab_predictions_total",
            "counter",
            "Images served, by predicted class.",
        );
        for (label, n) in &classes {
            let _ = writeln!(
                out,
                "lab_predictions_total{{class=\"{}\"}} {n}",
                escape(label)
            );
        }
        header(
            &mut out,
            "lab_queue_images",
            "gauge",
            "Prediction jobs waiting for the model.",
        );
        let _ = writeln!(out, "lab_queue_images {queue_depth}");
        header(
            &mut out,
            "lab_model_info",
            "gauge",
            "The model being served (value 1).",
        );
        let _ = writeln!(
            out,
            "lab_model_info{{version=\"{}\",engine=\"{engine}\"}} 1",
            escape(version)
        );
        header(
            &mut out,
            "lab_model_swaps_total",
            "counter",
            "Models switched in after a promotion.",
        );
        let _ = writeln!(out, "lab_model_swaps_total {swaps}");
        header(
            &mut out,
            "lab_drift_tests_total",
            "counter",
            "Drift tests run on windows of live requests.",
        );
        let _ = writeln!(out, "lab_drift_tests_total {tests}");
        header(
            &mut out,
            "lab_alerts_total",
            "counter",
            "Alerts raised by the drift monitor.",
        );
        let _ = writeln!(out, "lab_alerts_total {alerts}");
        drift_gauges(&mut out, &drift);
        process_memory(&mut out);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Reads one number off a drift gauge.
type GaugeValue = fn(&DriftGauge) -> f64;

fn drift_gauges(out: &mut String, drift: &[DriftGauge]) {
    let series: [(&str, &str, GaugeValue); 3] = [
        (
            "lab_drift_p_value",
            "p-value of the latest drift test of the live window, by method.",
            |g| g.p_value,
        ),
        (
            "lab_drift_statistic",
            "Statistic of the latest drift test (KS: max D; MMD: MMD²; chi-square: X²).",
            |g| g.statistic,
        ),
        (
            "lab_drift_detected",
            "1 when the latest drift test rejected 'no drift', by method.",
            |g| f64::from(u8::from(g.drift)),
        ),
    ];
    for (name, help, value) in series {
        header(out, name, "gauge", help);
        for g in drift {
            let _ = writeln!(out, "{name}{{method=\"{}\"}} {}", g.method, value(g));
        }
    }
}

/// Resident memory from `/proc/self/statm` (Linux; omitted elsewhere).
fn process_memory(out: &mut String) {
    if let Some(bytes) = resident_bytes() {
        header(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
}

/// Resident memory of this process, bytes (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(4096) as u64)
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_are_escaped() {
        let m = Metrics::default();
        m.request("predict", 200, Some(0.003));
        m.request("predict", 200, Some(0.2));
        m.request("predict", 415, None);
        m.batch(["T-shirt/top", "Bag \"b\""]);
        let text = m.render("run@abc", "ort", 0);
        assert!(
            text.contains("lab_requests_total{route=\"predict\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("lab_request_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lab_request_duration_seconds_bucket{le=\"0.25\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("lab_request_duration_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("lab_batch_images_bucket{le=\"2\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lab_predictions_total{class=\"Bag \\\"b\\\"\"} 1"),
            "{text}"
        );
        assert_eq!(m.count("predict", 200), 2);
    }
}
