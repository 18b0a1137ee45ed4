//! [`fit`]: a regression config trained end to end into its run directory, on the one
//! training loop with the shared callbacks (best checkpoint restored at the end, early
//! stopping, TensorBoard, last checkpoint for resuming, run files, progress), then the
//! best weights evaluated on the test rows in the target's units.
//!
//! ```text
//! regression.toml              the config
//! data.json                    data fingerprint, inputs, outputs, target transform
//! split.json                   train/val/test row indices (a reference tool scores the same rows)
//! preprocess.json              the train-fitted feature transforms (tables)
//! model_checkpoint.safetensors best weights (by validation RMSE)
//! last_checkpoint.safetensors  weights + optimiser + loop state, for resuming
//! meta.json · history.csv · metrics.json · logs/ (TensorBoard)
//! ```
use super::config::RegressionConfig;
use super::data::Prepared;
use super::evaluate::Evaluation;
use super::metrics::RegressionMetrics;
use super::model::Net;
use super::task::Regression;
use crate::backend::{versions, Versions};
use crate::io::tensors as checkpoint;
use crate::io::{read_json, write_json, write_text_atomic};
use crate::run::{FitOptions, RunDir, RunMeta, Start, Status};
use crate::tasks::common::{self, TrackRun};
use crate::train::{History, LoopState, Optimizer, Progress};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// `meta.json` of a regression run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressionMeta {
    pub status: Status,
    pub epochs_done: usize,
    pub best_epoch: usize,
    /// Best validation RMSE, in standardised units (averaged over outputs).
    pub best_val_rmse: Option<f64>,
    pub stopped_early: bool,
    pub seed: u64,
    pub data_fingerprint: String,
    pub num_parameters: i64,
    pub train_seconds: f64,
    /// Test metrics per output, in the target's units.
    pub test: Option<Vec<RegressionMetrics>>,
    pub message: Option<String>,
    pub versions: Versions,
}

/// A trained (or reused) regression run.
#[derive(Debug)]
pub struct TrainedRegression {
    pub run: RunDir,
    pub config: RegressionConfig,
    pub net: Net,
    pub history: History,
    pub meta: RegressionMeta,
    /// The best weights on the test rows.
    pub test: Evaluation,
    pub reused: bool,
}

pub const CONFIG_FILE: &str = "regression.toml";
pub(crate) const DATA_FILE: &str = "data.json";

/// `data.json`: what the network reads and predicts, so a run can be used without its data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataAbout {
    pub data: String,
    pub fingerprint: String,
    pub inputs: Vec<String>,
    pub input_shape: super::model::InputShape,
    pub outputs: Vec<String>,
    pub target_transforms: Vec<crate::data::tabular::preprocess::TargetTransform>,
}

/// Trains `cfg` on `data` under `opts.root` (reusing a finished run of the same config
/// and data, resuming an unfinished one).
pub fn fit(
    cfg: &RegressionConfig,
    data: &Prepared,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<TrainedRegression> {
    cfg.validate()?;
    let differing = |path: &std::path::Path| Ok(RegressionConfig::from_toml_file(path)?.diff(cfg));
    let identity = (cfg.name.as_str(), cfg.threads, cfg.seed);
    let (run, start) = common::open_run(identity, CONFIG_FILE, opts, differing, &data.fingerprint)?;
    let net = Net::new(
        &cfg.net,
        data.input,
        data.num_outputs() as i64,
        tch::Device::Cpu,
    )?;
    if start == Start::Reuse {
        return reuse(run, cfg, net, data, progress);
    }
    let mut opt = Optimizer::new(&cfg.train, net.trainable());
    let steps = Regression::steps_for(data.train.len(), cfg.train.batch_size);
    if start == Start::Fresh {
        write_run_files(&run, cfg, data)?;
    }
    let mut state = common::initial_state(
        &run,
        start,
        &cfg.train,
        steps,
        (&net.weights(), &mut opt),
        progress,
    )?;
    let session = Session {
        cfg,
        net: &net,
        data,
    };
    let track = TrackRun {
        run: &run,
        train: &cfg.train,
        seed: cfg.seed,
        hparams: common::hparams(cfg.flat_values()),
        score_name: "neg_rmse",
    };
    let task = Regression::of_config(cfg, &net, &data.train, Some(&data.val));
    common::train(
        &track,
        &task,
        &session,
        opts,
        (&mut opt, &mut state),
        progress,
    )?;
    let test = Evaluation::of(&net, &data.test, data, cfg.train.eval_batch_size);
    let mut meta = session.meta_of(&state, Status::Finished, None);
    meta.test = Some(test.metrics.clone());
    write_json(&run.file("metrics.json"), &test.metrics)?;
    write_json(&run.file("meta.json"), &meta)?;
    Ok(TrainedRegression {
        run,
        config: cfg.clone(),
        net,
        history: state.history,
        meta,
        test,
        reused: false,
    })
}

fn write_run_files(run: &RunDir, cfg: &RegressionConfig, data: &Prepared) -> Result<()> {
    std::fs::create_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
    write_text_atomic(&run.file(CONFIG_FILE), &cfg.to_toml())?;
    let about = DataAbout {
        data: data.name.clone(),
        fingerprint: data.fingerprint.clone(),
        inputs: data.feature_names.clone(),
        input_shape: data.input,
        outputs: data.outputs.clone(),
        target_transforms: data.targets.clone(),
    };
    write_json(&run.file(DATA_FILE), &about)?;
    data.split.save(&run.file("split.json"))?;
    if let Some((pre, _)) = &data.tabular {
        write_json(&run.file("preprocess.json"), pre)?;
    }
    Ok(())
}

/// A finished run's best weights, evaluated again on `data`'s test rows.
fn reuse(
    run: RunDir,
    cfg: &RegressionConfig,
    net: Net,
    data: &Prepared,
    progress: &mut dyn Progress,
) -> Result<TrainedRegression> {
    checkpoint::load_named(&net.weights(), &run.best_checkpoint())?;
    let history = common::replay(&run, cfg.train.epochs, progress)?;
    let meta: RegressionMeta = read_json(&run.file("meta.json"))?;
    let test = Evaluation::of(&net, &data.test, data, cfg.train.eval_batch_size);
    Ok(TrainedRegression {
        run,
        config: cfg.clone(),
        net,
        history,
        meta,
        test,
        reused: true,
    })
}

/// What a regression run's `meta.json` is made of.
struct Session<'a> {
    cfg: &'a RegressionConfig,
    net: &'a Net,
    data: &'a Prepared,
}

impl Session<'_> {
    fn meta_of(
        &self,
        state: &LoopState,
        status: Status,
        message: Option<String>,
    ) -> RegressionMeta {
        RegressionMeta {
            status,
            epochs_done: state.epochs_done,
            best_epoch: state.best_epoch,
            best_val_rmse: (state.best_epoch > 0).then(|| -state.best_val_accuracy),
            stopped_early: state.stopped_early,
            seed: self.cfg.seed,
            data_fingerprint: self.data.fingerprint.clone(),
            num_parameters: self.net.num_parameters(),
            train_seconds: state.train_seconds,
            test: None,
            message,
            versions: versions(),
        }
    }
}

impl RunMeta for Session<'_> {
    type Meta = RegressionMeta;
    fn meta(&self, state: &LoopState, status: Status, message: Option<String>) -> RegressionMeta {
        self.meta_of(state, status, message)
    }
}
