//! libtorch as this crate uses it, decided in one place: which device a run gets
//! ([`DeviceChoice`], CUDA loaded first), the arithmetic of the forward pass
//! ([`Precision`], [`autocast`]), the memory layout ([`memory_format`]), libtorch's C++
//! functions ([`libtorch`]) and the environment a result was produced in ([`versions`]).
pub mod autocast;
pub mod environment;
pub mod libtorch;
pub mod memory_format;
pub mod precision;

pub use environment::{versions, Versions, TCH_VERSION};
pub use libtorch::{cuda_available, cuda_status, gpu_names, load_cuda};
pub use precision::{Precision, PrecisionChoice, PrecisionProbe};

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
