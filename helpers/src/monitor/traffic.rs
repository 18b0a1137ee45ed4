//! Simulated production traffic for the report: a held-out reference sample of the test
//! set, then a clean stream and a noise-shifted stream served in calls of 50 images
//! through a logging [`Predictor`], so the dashboard, alerts and drift tests have a
//! real prediction log to read.
use super::prediction_log::{read_log, JsonlRead, PredictionRecord, Predictor};
use super::retrain::model_version;
use super::{drift, shifts};
use crate::data::{Dataset, ImageSet};
use crate::tasks::image::TrainedRun;
use crate::Result;
use std::path::PathBuf;

/// Images per predictor call.
const CALL: i64 = 50;

/// What was served, and where it was logged.
pub struct Traffic {
    /// 2 000 test images kept out of the streams: the drift detector's reference.
    pub reference: ImageSet,
    /// 1 000 unshifted test images, served first.
    pub clean: ImageSet,
    /// The next 1 000, with Gaussian noise at severity 3, served after.
    pub shifted: ImageSet,
    /// `<run>/monitoring/`: `predictions.jsonl` (and `alerts.jsonl` once checked).
    pub dir: PathBuf,
}

impl Traffic {
    /// Serves both streams with the run's best weights (reloaded, as a server would),
    /// into a fresh `<run>/monitoring/predictions.jsonl`.
    pub fn serve(trained: &TrainedRun, data: &Dataset, seed: u64) -> Result<Traffic> {
        let dir = trained.run.file("monitoring");
        let _ = std::fs::remove_dir_all(&dir);
        let (reference, pool) = drift::split_reference(&data.test, 2000, seed)?;
        let clean = pool.head(1000);
        let next: Vec<i64> = (1000..2000).collect();
        let noise = shifts::Shift::parse("noise")?;
        let shifted = shifts::apply(&pool.select(&next), &noise, 3, seed)?;
        let served = TrainedRun::load(&trained.run.path, data)?;
        let version = model_version(&trained.run.path)?;
        let predictor = Predictor::new(served.model, served.loaders.norm.clone(), version)
            .with_log(dir.join("predictions.jsonl"));
        for set in [&clean, &shifted] {
            for start in (0..set.len() as i64).step_by(CALL as usize) {
                predictor.predict(&set.images.narrow(0, start, CALL))?;
            }
        }
        Ok(Traffic {
            reference,
            clean,
            shifted,
            dir,
        })
    }

    /// The prediction log as written.
    pub fn log(&self) -> Result<JsonlRead<PredictionRecord>> {
        read_log(&self.dir.join("predictions.jsonl"))
    }
}
