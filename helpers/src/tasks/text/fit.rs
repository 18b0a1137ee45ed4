//! [`fit`]: a text config trained end to end into its run directory on the one loop
//! ([`crate::tasks::common`]), then the best weights evaluated on the test texts.
//!
//! ```text
//! text.toml · vocab.json (fitted on the training texts) · classes.json · split.json (grouped by movie)
//! model_checkpoint.safetensors · last_checkpoint.safetensors · meta.json · history.csv
//! metrics.json (accuracy, macro-F1, per class, confusion) · logs/ (TensorBoard)
//! ```
use super::config::TextConfig;
use super::data::TextData;
use super::model::TextNet;
use super::task::TextClassification;
use crate::backend::{versions, Versions};
use crate::io::{read_json, write_json, write_text_atomic};
use crate::metrics::Metrics;
use crate::run::{FitOptions, RunDir, RunMeta, Start, Status};
use crate::tasks::common::{self, TrackRun};
use crate::train::{History, LoopState, Optimizer, Progress};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The run's saved config, beside its vocabulary and classes.
pub const CONFIG_FILE: &str = "text.toml";

/// `meta.json` of a text run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextMeta {
    pub status: Status,
    pub epochs_done: usize,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    pub stopped_early: bool,
    pub seed: u64,
    pub data_fingerprint: String,
    pub num_parameters: i64,
    pub train_seconds: f64,
    pub test_accuracy: Option<f64>,
    pub test_macro_f1: Option<f64>,
    pub message: Option<String>,
    pub versions: Versions,
}

/// A trained (or reused) text run.
#[derive(Debug)]
pub struct TrainedText {
    pub run: RunDir,
    pub config: TextConfig,
    pub net: TextNet,
    pub history: History,
    pub meta: TextMeta,
    pub test: Metrics,
    /// Softmax probabilities on the test texts `[n, classes]`.
    pub test_probs: Tensor,
    pub reused: bool,
}

/// Trains `cfg` on `data` under `opts.root` (reusing a finished run of the same config
/// and data, resuming an unfinished one).
pub fn fit(
    cfg: &TextConfig,
    data: &TextData,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<TrainedText> {
    cfg.validate()?;
    if cfg.tokens != data.tokens {
        return Err(Error::argument(
            "data",
            "prepared with other `tokens` settings than the config's; prepare it with cfg.tokens",
        ));
    }
    let differing = |path: &std::path::Path| Ok(TextConfig::from_toml_file(path)?.diff(cfg));
    let identity = (cfg.name.as_str(), cfg.threads, cfg.seed);
    let (run, start) = common::open_run(identity, CONFIG_FILE, opts, differing, &data.fingerprint)?;
    let net = TextNet::new(
        &cfg.net,
        data.vocab.len() as i64,
        data.classes.len() as i64,
        tch::Device::Cpu,
    )?;
    if start == Start::Reuse {
        crate::io::tensors::load_named(&net.weights(), &run.best_checkpoint())?;
        let history = common::replay(&run, cfg.train.epochs, progress)?;
        let meta: TextMeta = read_json(&run.file("meta.json"))?;
        return Ok(finish(run, cfg, net, history, meta, data, true));
    }
    let task = TextClassification::of_config(cfg, &net, &data.train, Some(&data.val));
    if start == Start::Fresh {
        write_run_files(&run, cfg, data)?;
    }
    let mut opt = Optimizer::new(&cfg.train, net.weights());
    let steps = data.train.len().div_ceil(cfg.train.batch_size);
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
        score_name: "accuracy",
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
    let mut meta = trained.meta.clone();
    meta.test_accuracy = Some(trained.test.accuracy);
    meta.test_macro_f1 = Some(trained.test.macro_avg.f1);
    write_json(&trained.run.file("metrics.json"), &trained.test)?;
    write_json(&trained.run.file("meta.json"), &meta)?;
    Ok(TrainedText { meta, ..trained })
}

fn write_run_files(run: &RunDir, cfg: &TextConfig, data: &TextData) -> Result<()> {
    std::fs::create_dir_all(&run.path).map_err(|e| Error::io(&run.path, e))?;
    write_text_atomic(&run.file(CONFIG_FILE), &cfg.to_toml())?;
    write_json(&run.file("vocab.json"), &data.vocab)?;
    write_json(&run.file("classes.json"), &data.classes)?;
    data.split.save(&run.file("split.json"))
}

/// The best weights on the test texts.
fn finish(
    run: RunDir,
    cfg: &TextConfig,
    net: TextNet,
    history: History,
    meta: TextMeta,
    data: &TextData,
    reused: bool,
) -> TrainedText {
    let logits = net.predict(&data.test.ids, cfg.train.eval_batch_size);
    let test_probs = logits.softmax(-1, Kind::Float);
    let preds = Vec::<i64>::try_from(&logits.argmax(-1, false)).expect("1-D predictions");
    let test = Metrics::compute(&data.test.label_vec(), &preds, &data.classes);
    TrainedText {
        run,
        config: cfg.clone(),
        net,
        history,
        meta,
        test,
        test_probs,
        reused,
    }
}

struct MetaSource<'a> {
    cfg: &'a TextConfig,
    data: &'a TextData,
    net: &'a TextNet,
}

impl RunMeta for MetaSource<'_> {
    type Meta = TextMeta;
    fn meta(&self, state: &LoopState, status: Status, message: Option<String>) -> TextMeta {
        TextMeta {
            status,
            epochs_done: state.epochs_done,
            best_epoch: state.best_epoch,
            best_val_accuracy: state.best_val_accuracy.max(0.0),
            stopped_early: state.stopped_early,
            seed: self.cfg.seed,
            data_fingerprint: self.data.fingerprint.clone(),
            num_parameters: self.net.num_parameters(),
            train_seconds: state.train_seconds,
            test_accuracy: None,
            test_macro_f1: None,
            message,
            versions: versions(),
        }
    }
}

/// Classifies `texts` with the run at `run_dir` (its saved vocabulary and best weights):
/// per text, the predicted class and its probability.
pub fn predict_texts(run_dir: &std::path::Path, texts: &[String]) -> Result<Vec<(String, f64)>> {
    let run = RunDir::at(run_dir);
    run.scorable(CONFIG_FILE, &crate::run::Retrain::FIT)?;
    let cfg = TextConfig::from_toml_file(&run.file(CONFIG_FILE))
        .map_err(|e| e.with_hint("not a text run directory (train one first)"))?;
    let vocab: crate::data::text::Vocabulary = read_json(&run.file("vocab.json"))?;
    let vocab = vocab.reindexed();
    let classes: Vec<String> = read_json(&run.file("classes.json"))?;
    let net = TextNet::new(
        &cfg.net,
        vocab.len() as i64,
        classes.len() as i64,
        tch::Device::Cpu,
    )?;
    crate::io::tensors::load_named(&net.weights(), &run.best_checkpoint())?;
    let encoded = vocab.encode(texts.iter().map(String::as_str), cfg.tokens.max_length);
    let ids =
        Tensor::from_slice(&encoded.ids).view([texts.len() as i64, cfg.tokens.max_length as i64]);
    let probs = net.predict(&ids, 1024).softmax(-1, Kind::Double);
    let (p, k) = probs.max_dim(-1, false);
    let p = Vec::<f64>::try_from(&p).expect("1-D");
    let k = Vec::<i64>::try_from(&k).expect("1-D");
    Ok(k.iter()
        .zip(p)
        .map(|(&k, p)| (classes[k as usize].clone(), p))
        .collect())
}
