//! [`TrainedRun`]: a finished (or reloaded) run with its best weights, data loaders,
//! history and test metrics — what the report and the analyses read.
use crate::backend::Precision;
use crate::config::RunConfig;
use crate::data::{DataLoaders, DataRecord, Dataset, Split};
use crate::evaluate::{predict, Predictions};
use crate::metrics::Metrics;
use crate::models::{self, Model};
use crate::run::{Meta, Retrain, RunDir, RunState};
use crate::train::callbacks::read_loop_state;
use crate::train::History;
use crate::{Error, Result};
use std::path::PathBuf;

/// A trained (or reloaded) run with everything the report needs.
#[derive(Debug)]
pub struct TrainedRun {
    pub run: RunDir,
    pub config: RunConfig,
    /// The best weights.
    pub model: Model,
    pub loaders: DataLoaders,
    pub history: History,
    /// Test metrics of the best weights.
    pub test: Metrics,
    pub meta: Meta,
    /// True when the run was loaded from disk instead of trained now.
    pub reused: bool,
    /// Where the run stood when it was loaded (or finished now).
    pub state: RunState,
    /// What loading rebuilt or could not check, one sentence each.
    pub notes: Vec<String>,
}

impl TrainedRun {
    /// Where the run stood when loaded, in words (`finished (10 epochs); best checkpoint
    /// from epoch 10`), for a tool to say before its results.
    pub fn state_line(&self) -> String {
        self.state.with_best_epoch()
    }

    /// Loads a run in any state that has a best checkpoint: config, best weights, split,
    /// history and test metrics. `data` is checked against the run's data record first;
    /// a missing `metrics.json`, `history.csv` or figure is rebuilt (and written), and
    /// said in [`TrainedRun::notes`].
    pub fn load(path: impl Into<PathBuf>, data: &Dataset) -> Result<TrainedRun> {
        let run = RunDir::at(path.into());
        let config = run.config()?;
        let meta = scorable_meta(&run)?;
        let mut notes = Vec::new();
        if !meta.check_data(&DataRecord::of(data), &run.path, &config.data.dir)? {
            notes.push(
                "meta.json has no data record (a run from before they were kept): the data was not checked".into(),
            );
        }
        let device = config.device();
        let split = Split::load(&run.file("split.json"))?;
        let t = &config.train;
        let loaders = DataLoaders::with_split(
            data,
            &config.data,
            split,
            t.batch_size,
            t.eval_batch_size,
            config.seed,
            device,
        );
        let mut model = models::build(
            &config.model,
            data.image_shape(),
            data.num_classes() as i64,
            device,
        )?;
        model.load(&run.best_checkpoint())?;
        // Evaluated as it trained: the scores reproduce `metrics.json` exactly.
        model.precision = meta.precision.as_ref().map_or(Precision::Fp32, |p| p.used);
        let history = history_or_rebuilt(&run, &mut notes);
        let test = match run.metrics() {
            Ok(test) => test,
            Err(_) => {
                let test = predict(&model, &loaders.test).metrics(&data.classes);
                let written = run.write_metrics(&test);
                notes.push(rebuilt(
                    "metrics.json rebuilt from the best checkpoint",
                    written,
                ));
                test
            }
        };
        rebuild_missing_figures(&run, &history, &test, &mut notes);
        Ok(TrainedRun {
            state: RunState::of(&meta),
            notes,
            run,
            config,
            model,
            loaders,
            history,
            test,
            meta,
            reused: true,
        })
    }

    /// A run stopped before its last epoch: current weights, no test metrics yet.
    pub(crate) fn partial(
        run: RunDir,
        cfg: &RunConfig,
        model: Model,
        loaders: DataLoaders,
        history: History,
    ) -> Result<TrainedRun> {
        let meta = run.meta()?;
        let test = Metrics::compute(&[], &[], &[]);
        Ok(TrainedRun {
            state: RunState::of(&meta),
            notes: Vec::new(),
            run,
            config: cfg.clone(),
            model,
            loaders,
            history,
            test,
            meta,
            reused: false,
        })
    }

    /// Predictions of the best weights on the test set.
    pub fn test_predictions(&self) -> Predictions {
        predict(&self.model, &self.loaders.test)
    }
}

/// The run's `meta.json` when its best checkpoint exists; otherwise an error that says
/// where the run stands and what to do.
fn scorable_meta(run: &RunDir) -> Result<Meta> {
    let state = run.scorable("config.toml", &Retrain::LAB_TRAIN)?;
    run.meta().map_err(|e| Error::Run {
        path: run.path.clone(),
        reason: format!("{state}; meta.json is missing or unreadable ({e}) — nothing to score: train it again with --force"),
    })
}

/// `history.csv`, or the history in the last checkpoint (written back) when the file is
/// missing or unreadable; empty when neither exists.
fn history_or_rebuilt(run: &RunDir, notes: &mut Vec<String>) -> History {
    if let Ok(history) = run.history() {
        return history;
    }
    let Ok(state) = read_loop_state(&run.last_checkpoint()) else {
        notes.push("no history: history.csv and the last checkpoint are both missing".into());
        return History::default();
    };
    let written = state.history.save_csv(&run.file("history.csv"));
    notes.push(rebuilt(
        "history.csv rebuilt from the last checkpoint",
        written,
    ));
    state.history
}

/// The run's figures (curves, confusion matrix, per-class F1), drawn again when one is
/// missing.
fn rebuild_missing_figures(
    run: &RunDir,
    history: &History,
    test: &Metrics,
    notes: &mut Vec<String>,
) {
    let figures = [
        "training_curves.svg",
        "confusion_matrix.svg",
        "f1_per_class.svg",
    ];
    if figures.iter().all(|f| run.file(f).is_file()) || history.epochs.is_empty() {
        return;
    }
    let written = save_figures(run, history, test);
    notes.push(rebuilt(
        "figures drawn again from the history and the test metrics",
        written,
    ));
}

/// The note for a rebuilt file: a run folder that cannot be written (a read-only hand-in)
/// still loads, with the rebuilt values in memory only.
fn rebuilt(what: &str, written: Result<()>) -> String {
    match written {
        Ok(()) => what.to_string(),
        Err(e) => format!("{what} in memory; not saved: {e}"),
    }
}

/// Curves, confusion matrix and per-class F1 into the run directory.
pub(super) fn save_figures(run: &RunDir, history: &History, test: &Metrics) -> Result<()> {
    history.curves()?.save_in(&run.path)?;
    test.confusion_figure()?.save_in(&run.path)?;
    test.f1_figure()?.save_in(&run.path)?;
    Ok(())
}
