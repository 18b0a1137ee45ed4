//! The model server end to end on loopback, in process: predictions match the tch model,
//! JSON batches, every bad input refused with its status while the server stays up, the
//! prediction log holds every answered image, the drift monitor alerts on a shifted
//! stream, and a promotion by the retraining gate swaps the model with no request failing.
mod common;

use common::{faint_dataset, faint_run, faint_set, serial, CLASSES};
use helpers::data::{Dataset, ImageSet};
use helpers::monitor::drift::DriftOptions;
use helpers::monitor::prediction_log::{read_jsonl, read_log, Alert, AlertRules};
use helpers::monitor::retrain::{self, retrain, RetrainOptions};
use helpers::monitor::shifts::{self, Shift};
use helpers::serve::{
    self, client, BatchOptions, Engine, MonitorOptions, RunningServer, ServeOptions, ServedModel,
};
use helpers::tasks::image::TrainedRun;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WINDOW: usize = 60;

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let answer = client::request(addr, method, path, content_type, body).unwrap();
    (answer.status, answer.body)
}

fn json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let answer = client::request(addr, method, path, content_type, body).unwrap();
    (answer.status, answer.json())
}

/// The signature and a valid IHDR chunk (grey, 8 bits) of a `w × h` PNG, and no pixels:
/// what a decompression bomb starts with.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(w.to_be_bytes());
    chunk.extend(h.to_be_bytes());
    chunk.extend([8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&chunk);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(chunk);
    png.extend(crc.sum().to_be_bytes());
    png
}

fn png(set: &ImageSet, i: i64) -> Vec<u8> {
    helpers::plot::png_bytes(&set.images.get(i)).unwrap()
}

/// Held-out images of the faint task (never trained on): the drift reference and samples.
fn held_out() -> ImageSet {
    faint_set(400, 5)
}

/// Loads a run of the faint task as `lab serve` loads a run of a configured dataset.
fn loader() -> serve::Loader {
    Arc::new(|run: &Path| {
        let data = faint_dataset();
        let trained = TrainedRun::load(run, &data)?;
        let (reference, pool) = ServedModel::split_held_out(&held_out())?;
        ServedModel::from_trained(
            trained,
            data.classes.clone(),
            &reference,
            &pool,
            Engine::Auto,
            &drift_options(),
        )
    })
}

fn drift_options() -> DriftOptions {
    DriftOptions {
        min_window: 30,
        ..DriftOptions::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    data: Dataset,
    run: TrainedRun,
    server: RunningServer,
}

fn start(max_body: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = faint_dataset();
    let run = faint_run(&root, &data);
    retrain::set_deployed(&root, &run.run.path).unwrap();
    let load = loader();
    let model = load(&run.run.path).unwrap();
    let options = ServeOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        batch: BatchOptions::default(),
        monitor: MonitorOptions {
            log_dir: root.join("serving"),
            window: WINDOW,
            every: WINDOW,
            min_interval: Duration::ZERO,
            rules: AlertRules {
                confidence_window: 0,
                ..AlertRules::default()
            },
        },
        max_body,
        watch: Some(root.join(retrain::POINTER_FILE)),
        stop_on_signals: false,
    };
    let server = serve::start(model, load, options).unwrap();
    Fixture {
        _dir: dir,
        root,
        data,
        run,
        server,
    }
}

#[test]
fn predictions_match_the_model_and_bad_input_is_refused_while_the_server_stays_up() {
    let _guard = serial();
    let f = start(64 << 10);
    let addr = f.server.addr;
    let test = &f.run.loaders.test;
    let expected = f.run.test_predictions();
    let raw = ImageSet {
        images: test.images(&[0, 1, 2, 3]),
        labels: tch::Tensor::from_slice(&[0i64; 4]),
    };
    for i in 0..4 {
        let (status, answer) = json(addr, "POST", "/predict", "image/png", &png(&raw, i));
        assert_eq!(status, 200, "{answer}");
        let top = &answer["predictions"][0];
        assert_eq!(top.as_array().unwrap().len(), 3);
        assert_eq!(
            top[0]["class"], expected.preds[i as usize],
            "image {i}: {answer}"
        );
        assert!(
            answer["engine"].as_str().unwrap().starts_with("ort"),
            "{answer}"
        );
    }
    // A JSON batch: nested [C][H][W] arrays, top_k from the query string.
    let pixels: Vec<Vec<Vec<Vec<u8>>>> = (0..3)
        .map(|i| {
            let v = Vec::<u8>::try_from(raw.images.get(i).contiguous().view([-1])).unwrap();
            vec![v.chunks(8).map(<[u8]>::to_vec).collect()]
        })
        .collect();
    let body = serde_json::json!({ "pixels": pixels }).to_string();
    let (status, answer) = json(
        addr,
        "POST",
        "/predict?top_k=4",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    let preds = answer["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    for (i, p) in preds.iter().enumerate() {
        let probs: f64 = p
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["probability"].as_f64().unwrap())
            .sum();
        assert!(
            (probs - 1.0).abs() < 1e-4,
            "{CLASSES} classes sum to 1: {probs}"
        );
        assert_eq!(p[0]["class"], expected.preds[i]);
    }
    // Bad input, each with its status and a message.
    let image = png(&raw, 0);
    let bomb = png_header(20_000, 20_000);
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "not an image",
            "image/png",
            b"GIF? no, plain text".to_vec(),
            415,
        ),
        (
            "truncated PNG",
            "image/png",
            image[..image.len() - 20].to_vec(),
            400,
        ),
        ("decompression bomb header", "image/png", bomb, 413),
        (
            "body over the limit",
            "image/png",
            vec![0u8; 100 << 10],
            413,
        ),
        (
            "malformed JSON",
            "application/json",
            b"{\"pixels\": [[1, 2".to_vec(),
            400,
        ),
        (
            "wrong shape",
            "application/json",
            b"{\"pixels\": [[1, 2, 3]]}".to_vec(),
            422,
        ),
        (
            "unknown field",
            "application/json",
            b"{\"pixel\": [[1]]}".to_vec(),
            400,
        ),
    ];
    for (what, kind, body, want) in cases {
        let (status, answer) = json(addr, "POST", "/predict", kind, &body);
        assert_eq!(status, want, "{what}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|m| m.len() > 20),
            "{what}: {answer}"
        );
    }
    let (status, answer) = json(addr, "GET", "/nowhere", "text/plain", b"");
    assert!(status == 404 && answer["error"].as_str().unwrap().contains("/predict"));
    let (status, health) = json(addr, "GET", "/health", "text/plain", b"");
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let state = health["run_state"].as_str().unwrap_or_default();
    assert!(
        state.starts_with("finished (") && state.contains("best checkpoint from epoch"),
        "{health}"
    );
    // Every answered image is in both logs, once.
    let log = read_log(&f.root.join("serving/predictions.jsonl")).unwrap();
    assert_eq!((log.records.len(), log.skipped), (7, 0));
    let csv = std::fs::read_to_string(f.root.join("serving/predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 7);
    assert!(log
        .records
        .iter()
        .all(|r| r.model_version == health["model_version"]));
    // The metrics count what happened.
    let (status, text) = http(addr, "GET", "/metrics", "text/plain", b"");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("lab_requests_total{route=\"predict\",status=\"200\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("lab_requests_total{route=\"predict\",status=\"413\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("lab_request_duration_seconds_count 5"),
        "{text}"
    );
    f.server.stop();
}

#[test]
fn a_shifted_stream_raises_drift_alerts_and_a_promotion_swaps_the_model_without_failures() {
    let _guard = serial();
    let f = start(serve::MAX_BODY);
    let addr = f.server.addr;
    let before = f.server.shared().model().version.clone();
    // A clean window of held-out images, then a window shifted to severity 5 noise.
    let clean = faint_set(WINDOW, 11);
    let shifted = shifts::apply(&clean, &Shift::GaussianNoise, 5, 3).unwrap();
    let send = |set: &ImageSet| {
        for i in 0..set.len() as i64 {
            let (status, answer) = json(addr, "POST", "/predict", "image/png", &png(set, i));
            assert_eq!(status, 200, "{answer}");
        }
    };
    send(&clean);
    let after_clean = wait_for(|| {
        f.server
            .shared()
            .monitor
            .latest()
            .filter(|s| s.window == WINDOW)
    });
    assert!(!after_clean.drift, "a clean window drifts: {after_clean:?}");
    send(&shifted);
    let alerts = wait_for(|| Some(f.server.shared().monitor.alerts()).filter(|a| !a.is_empty()));
    assert!(
        alerts.iter().any(|a| a.rule.starts_with("drift_")),
        "{alerts:?}"
    );
    let logged = read_jsonl::<Alert>(&f.root.join("serving/alerts.jsonl")).unwrap();
    assert_eq!(logged.records.len(), alerts.len());
    let (_, text) = http(addr, "GET", "/metrics", "text/plain", b"");
    assert!(String::from_utf8(text)
        .unwrap()
        .contains("lab_drift_detected{method="));
    let (_, listed) = json(addr, "GET", "/alerts", "text/plain", b"");
    assert_eq!(listed["alerts"].as_array().unwrap().len(), alerts.len());

    // Requests keep flowing while the gate promotes a candidate trained on shifted data.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let image = png(&clean, 0);
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, answer) = json(addr, "POST", "/predict", "image/png", &image);
                seen.push((
                    status,
                    answer["model_version"].as_str().unwrap_or("").to_string(),
                ));
            }
            seen
        })
    };
    let mut options = RetrainOptions::new(Shift::Brightness, 5);
    options.epochs = 5;
    let decision = retrain(&f.run.run.path, &f.data, &options).unwrap();
    assert!(decision.promoted, "{}", decision.reason);
    let swapped =
        wait_for(|| Some(f.server.shared().model().version.clone()).filter(|v| *v != before));
    assert_eq!(swapped, decision.candidate.version);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = client.join().unwrap();
    assert!(
        seen.iter().all(|(status, _)| *status == 200),
        "every request answered: {:?}",
        seen.iter().filter(|s| s.0 != 200).collect::<Vec<_>>()
    );
    let first_new = seen
        .iter()
        .position(|(_, v)| *v == swapped)
        .expect("requests after the swap");
    assert!(
        seen[..first_new].iter().all(|(_, v)| *v == before),
        "versions change once"
    );
    assert!(
        seen[first_new..].iter().all(|(_, v)| *v == swapped),
        "no request goes back to the old model"
    );
    f.server.stop();
}

/// Polls `probe` for up to 20 s.
fn wait_for<T>(probe: impl Fn() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}
