//! Monitoring a deployed model: prediction logs, drift tests, retraining behind a gate.
//!
//! * [`shifts`] — simulated drift (ImageNet-C-style corruptions, class-prior shift).
//! * [`stats`] — the statistical tests (KS, MMD, χ², multiple-testing corrections).
//! * [`drift`] — a [`drift::DriftDetector`] on model embeddings and predictions, and the
//!   detection-rate experiment.
//! * [`prediction_log`] — a [`prediction_log::Predictor`] that logs every prediction as a JSON line, log
//!   summaries, dashboard figures and alert rules.
//! * [`traffic`] — simulated clean and shifted traffic served through a logging predictor.
//! * [`retrain`] — fine-tuning on drifted data behind a validation gate, with a deployment
//!   log and an atomically moved deployed-run pointer.
pub mod drift;
pub mod prediction_log;
pub mod retrain;
pub mod shifts;
pub mod stats;
pub mod traffic;
