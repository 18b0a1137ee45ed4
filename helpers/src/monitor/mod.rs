//! Monitoring a deployed model: prediction logs, drift tests, retraining behind a gate.
pub mod stats;
