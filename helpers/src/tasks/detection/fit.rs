//! [`fit`]: a detection config trained end to end into its run directory on the one loop
//! ([`crate::tasks::common`]), then the best weights evaluated on the test tiles.
//!
//! ```text
//! detection.toml · classes.json · split.json (regions per split)
//! model_checkpoint.safetensors · last_checkpoint.safetensors · meta.json · history.csv
//! metrics.json (COCO mAP, per class, per size, PR curve) · logs/ (TensorBoard)
//! ```
use super::coco_eval::{self, CocoMetrics};
use super::config::DetectionConfig;
use super::data::DetectionData;
use super::decode::Detection;
use super::model::Detector;
use super::task::{detect_tiles, DetectionTask};
use crate::backend::{versions, Versions};
use crate::data::detection::Annotation;
use crate::io::{read_json, write_json, write_text_atomic};
use crate::run::{FitOptions, RunDir, RunMeta, Start, Status};
use crate::tasks::common::{self, TrackRun};
use crate::train::{History, LoopState, Optimizer, Progress};
use crate::Result;
use serde::{Deserialize, Serialize};

pub const CONFIG_FILE: &str = "detection.toml";

/// `meta.json` of a detection run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectionMeta {
    pub status: Status,
    pub epochs_done: usize,
    pub best_epoch: usize,
    /// mAP@0.5 on the validation tiles at the best epoch.
    pub best_val_map50: f64,
    pub stopped_early: bool,
    pub seed: u64,
    pub data_fingerprint: String,
    pub num_parameters: i64,
    pub train_seconds: f64,
    pub test_map50: Option<f64>,
    pub test_map: Option<f64>,
    /// Test tiles per second through network and decoding (batches of `eval_batch_size`).
    pub test_tiles_per_second: Option<f64>,
    pub message: Option<String>,
    pub versions: Versions,
}

/// A trained (or reused) detection run.
#[derive(Debug)]
pub struct TrainedDetector {
    pub run: RunDir,
    pub config: DetectionConfig,
    pub net: Detector,
    pub history: History,
    pub meta: DetectionMeta,
    pub test: CocoMetrics,
    /// Detections per test tile, in the order of `data.test.tiles`.
    pub test_detections: Vec<Vec<Detection>>,
    pub reused: bool,
}

/// Trains `cfg` on `data` under `opts.root` (reusing a finished run of the same config
/// and data, resuming an unfinished one).
pub fn fit(
    cfg: &DetectionConfig,
    data: &DetectionData,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<TrainedDetector> {
    cfg.validate()?;
    let differing = |path: &std::path::Path| Ok(DetectionConfig::from_toml_file(path)?.diff(cfg));
    let identity = (cfg.name.as_str(), cfg.threads, cfg.seed);
    let (run, start) = common::open_run(identity, CONFIG_FILE, opts, differing, &data.fingerprint)?;
    let classes = data.classes();
    let net = match start {
        Start::Fresh => Detector::new(&cfg.net, classes.len() as i64, tch::Device::Cpu)?,
        _ => Detector::for_checkpoint(&cfg.net, classes.len() as i64, tch::Device::Cpu)?,
    };
    if start == Start::Reuse {
        crate::io::tensors::load_named(&net.weights(), &run.best_checkpoint())?;
        let history = common::replay(&run, cfg.train.epochs, progress)?;
        let meta: DetectionMeta = read_json(&run.file("meta.json"))?;
        return Ok(finish(run, cfg, net, history, meta, data, true));
    }
    let task = DetectionTask::of_config(cfg, &net, &data.train, Some(&data.val), classes);
    if start == Start::Fresh {
        write_run_files(&run, cfg, data)?;
    }
    let mut opt = Optimizer::new(&cfg.train, net.weights());
    use crate::train::Task;
    let steps = task.steps_per_epoch();
    let mut state = common::initial_state(
        &run,
        start,
        &cfg.train,
        steps,
        (&net.weights(), &mut opt),
        progress,
    )?;
    let about = MetaSource {
        cfg,
        data,
        net: &net,
    };
    let track = TrackRun {
        run: &run,
        train: &cfg.train,
        seed: cfg.seed,
        hparams: common::hparams(cfg.flat_values()),
        score_name: "mAP50",
    };
    common::train(
        &track,
        &task,
        &about,
        opts,
        (&mut opt, &mut state),
        progress,
    )?;
    let meta = about.meta(&state, Status::Finished, None);
    let trained = finish(run, cfg, net, state.history, meta, data, false);
    write_json(&trained.run.file("metrics.json"), &trained.test)?;
    write_json(&trained.run.file("meta.json"), &trained.meta)?;
    Ok(trained)
}

fn write_run_files(run: &RunDir, cfg: &DetectionConfig, data: &DetectionData) -> Result<()> {
    std::fs::create_dir_all(&run.path).map_err(|e| crate::Error::io(&run.path, e))?;
    write_text_atomic(&run.file(CONFIG_FILE), &cfg.to_toml())?;
    write_json(&run.file("classes.json"), &data.set.classes)?;
    write_json(&run.file("split.json"), &data.split)
}

/// The best weights on the test tiles: detections, COCO metrics and inference speed.
fn finish(
    run: RunDir,
    cfg: &DetectionConfig,
    net: Detector,
    history: History,
    mut meta: DetectionMeta,
    data: &DetectionData,
    reused: bool,
) -> TrainedDetector {
    let started = std::time::Instant::now();
    let test_detections = detect_tiles(&net, &data.test, &cfg.decode, cfg.train.eval_batch_size);
    let seconds = started.elapsed().as_secs_f64();
    let truth: Vec<Vec<Annotation>> = data.test.tiles.iter().map(|t| t.boxes.clone()).collect();
    let test = coco_eval::evaluate(&truth, &test_detections, data.classes());
    if !reused {
        meta.test_map50 = Some(test.map50);
        meta.test_map = Some(test.map);
        meta.test_tiles_per_second = Some(data.test.len() as f64 / seconds.max(1e-9));
    }
    TrainedDetector {
        run,
        config: cfg.clone(),
        net,
        history,
        meta,
        test,
        test_detections,
        reused,
    }
}

struct MetaSource<'a> {
    cfg: &'a DetectionConfig,
    data: &'a DetectionData,
    net: &'a Detector,
}

impl RunMeta for MetaSource<'_> {
    type Meta = DetectionMeta;
    fn meta(&self, state: &LoopState, status: Status, message: Option<String>) -> DetectionMeta {
        DetectionMeta {
            status,
            epochs_done: state.epochs_done,
            best_epoch: state.best_epoch,
            best_val_map50: state.best_val_accuracy.max(0.0),
            stopped_early: state.stopped_early,
            seed: self.cfg.seed,
            data_fingerprint: self.data.fingerprint.clone(),
            num_parameters: self.net.num_parameters(),
            train_seconds: state.train_seconds,
            test_map50: None,
            test_map: None,
            test_tiles_per_second: None,
            message,
            versions: versions(),
        }
    }
}
