//! Training logs that other tools read: TensorBoard event files.
pub mod tensorboard;

pub use tensorboard::{EventWriter, HParam};
