//! The text-classification track on the one training loop: [`TextData`] (ids per split,
//! the vocabulary fitted on the training texts), [`TextNet`] (fastText-style bag, Kim's
//! CNN, Transformer), the [`TextClassification`] task, [`fit`] into a run directory, error
//! analysis with per-token attributions, and the scikit-learn TF-IDF reference on the
//! identical split.
pub mod analysis;
pub mod attribution;
pub mod config;
pub mod data;
pub mod encoder;
pub mod experiments;
pub mod fit;
pub mod model;
pub mod onnx;
pub mod reference;
pub mod task;

pub use config::{TextConfig, TokenConfig};
pub use data::{TextArrays, TextData};
pub use fit::{fit, predict_texts, TextMeta, TrainedText, CONFIG_FILE};
pub use model::{TextNet, TextNetConfig, TextNetKind};
pub use task::TextClassification;
