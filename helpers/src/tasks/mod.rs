//! The project tracks as tasks of the one training loop ([`crate::train::Trainer`]).
//!
//! A task implements [`crate::train::Task`]: its batches, its loss and per-batch score,
//! its validation and its weights. The loop, optimisers, schedules, checkpoints and
//! resume, TensorBoard, early stopping, run directories, sweeps and reports are shared
//! and know no task. Today: [`image`] (Fashion-MNIST, CIFAR, ImageFolder, transfer
//! learning), [`regression`] (tables and hourly series), [`text`] and [`detection`]
//! (boxes on aerial tiles), each with the same three pieces: the `Task` implementation,
//! a `fit` that builds it from a config, and the run it returns.
pub mod common;
pub mod detection;
pub mod image;
pub mod regression;
pub mod text;
