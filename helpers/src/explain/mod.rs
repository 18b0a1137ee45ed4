//! Explaining predictions and analysing errors: Grad-CAM and Grad-CAM++ maps, overlays,
//! faithfulness against random regions, top losses and calibration.
pub mod calibration;
pub mod error_analysis;
pub mod faithfulness;
pub mod gradcam;
pub mod overlay;

pub use calibration::{reliability, reliability_of, Reliability};
pub use gradcam::{cam, Cam, CamMethod};
