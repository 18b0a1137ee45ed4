//! Deployment: exporting trained models to ONNX ([`onnx`]) or as a PyTorch definition
//! ([`pytorch`]), running them with ONNX Runtime from Rust ([`ort_runtime`]), and
//! measuring inference latency per engine ([`latency`]).
pub mod check;
pub mod latency;
pub mod onnx;
pub mod ort_runtime;
pub mod pytorch;

pub use onnx::{export, to_onnx_bytes};
pub use ort_runtime::{Optimization, OrtModel, OrtOptions};
