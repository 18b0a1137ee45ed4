//! libtorch as this crate uses it, decided in one place: which device a run gets
//! ([`DeviceChoice`], CUDA loaded first), the arithmetic of the forward pass
//! ([`Precision`], [`autocast`]), the memory layout ([`memory_format`]), libtorch's C++
//! functions ([`libtorch`]) and the environment a result was produced in ([`versions`]).
pub mod autocast;
pub mod environment;
pub mod libtorch;
pub mod memory_format;

pub use environment::{versions, Versions, TCH_VERSION};
pub use libtorch::{cuda_available, cuda_status, gpu_names, load_cuda};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

/// The device a config asks for: `cpu`, `cuda` or `auto` (CUDA when available).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda,
    Auto,
}

impl DeviceChoice {
    /// The choice called `name` (`cpu`, `cuda`, `auto`); the error lists them.
    pub fn parse(name: &str) -> Result<DeviceChoice> {
        match name {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            "auto" => Ok(DeviceChoice::Auto),
            other => Err(Error::argument(
                "device",
                format!("unknown device `{other}`; allowed: cpu, cuda, auto"),
            )),
        }
    }

    /// The libtorch device. For `cuda` and `auto`, libtorch's CUDA library is loaded
    /// first ([`load_cuda`]), so CUDA is seen even when the linker left it out.
    pub fn resolve(self) -> Device {
        match self {
            DeviceChoice::Cuda => {
                load_cuda();
                Device::Cuda(0)
            }
            DeviceChoice::Auto if cuda_available() => Device::Cuda(0),
            _ => Device::Cpu,
        }
    }

    /// [`DeviceChoice::resolve`], but `cuda` without a usable GPU is an error that says
    /// why, instead of a libtorch failure at the first tensor.
    pub fn checked(self) -> Result<Device> {
        let device = self.resolve();
        if device.is_cuda() && !cuda_available() {
            return Err(Error::config(
                "device",
                format!(
                    "`cuda` asked for, but CUDA is not available: {}; use device = \"auto\" to fall back to the CPU",
                    cuda_status()
                ),
            ));
        }
        Ok(device)
    }
}

/// Floating-point precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Plain 32-bit floats.
    #[default]
    Fp32,
    /// Autocast to bfloat16 (Ampere and newer): fp32's range, no loss scaling needed.
    Bf16,
    /// Autocast to float16, with dynamic loss scaling against gradient underflow.
    Fp16,
}

impl Precision {
    /// The precision a run on `device` trains in when `asked` is configured: as asked on
    /// CUDA, fp32 on the CPU (bf16 there is many times slower without native support, and
    /// fp16 autocast is CUDA's). The note says why, when the request was overridden.
    pub fn effective(asked: Precision, device: Device) -> Result<(Precision, Option<String>)> {
        if asked == Precision::Fp32 {
            return Ok((asked, None));
        }
        if !device.is_cuda() {
            let note = format!(
                "train.precision = {asked:?} applies on CUDA only; training in fp32 on the CPU"
            );
            return Ok((Precision::Fp32, Some(note)));
        }
        if !autocast::available() {
            return Err(Error::config(
                "train.precision",
                "libtorch's autocast functions were not found in this process; use \"fp32\"",
            ));
        }
        Ok((asked, None))
    }
}
