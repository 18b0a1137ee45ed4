//! [`TrainedRun`]: a finished (or reloaded) run with its best weights, data loaders,
//! history and test metrics — what the report and the analyses read.
use crate::backend::Precision;
use crate::config::RunConfig;
use crate::data::{DataLoaders, Dataset, Split};
use crate::evaluate::{predict, Predictions};
use crate::metrics::Metrics;
use crate::models::{self, Model};
use crate::run::{Meta, RunDir};
use crate::train::History;
use crate::Result;
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
}

impl TrainedRun {
    /// Loads a finished run: config, best weights, split, history and test metrics.
    pub fn load(path: impl Into<PathBuf>, data: &Dataset) -> Result<TrainedRun> {
        let run = RunDir::at(path.into());
        let config = run.config()?;
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
        let (history, test, meta) = (run.history()?, run.metrics()?, run.meta()?);
        // Evaluated as it trained: the scores reproduce `metrics.json` exactly.
        model.precision = meta.precision.as_ref().map_or(Precision::Fp32, |p| p.used);
        Ok(TrainedRun {
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
