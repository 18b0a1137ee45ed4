//! The object-detection track on the one training loop: tiles of annotated images
//! ([`crate::data::detection`]), a CenterNet-style [`Detector`] on EfficientNet-Lite0 or
//! a scratch CNN, box-preserving augmentation, the [`DetectionTask`], decoding with NMS,
//! COCO-style evaluation identical to pycocotools, and [`fit`] into a run directory.
pub mod analysis;
pub mod augment;
pub mod coco_eval;
pub mod config;
pub mod data;
pub mod decode;
pub mod experiments;
pub mod fit;
pub mod model;
pub mod onnx;
pub mod predict;
pub mod targets;
pub mod task;

pub use augment::DetectionAugment;
pub use coco_eval::CocoMetrics;
pub use config::{DetectionConfig, DetectionDataConfig};
pub use data::DetectionData;
pub use decode::{DecodeConfig, Detection};
pub use fit::{fit, DetectionMeta, TrainedDetector, CONFIG_FILE};
pub use model::{BackboneKind, Detector, DetectorConfig};
pub use predict::{predict_file, LoadedDetector};
pub use task::DetectionTask;
