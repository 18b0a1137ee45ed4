//! Deployment: exporting trained models to ONNX.
pub mod onnx;

pub use onnx::{export, to_onnx_bytes};
