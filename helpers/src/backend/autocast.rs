//! Mixed precision through libtorch's own autocast: tch 0.26 only switches CUDA autocast
//! on with its default dtype (fp16), so the C++ functions that choose the device and the
//! dtype are looked up by their exported (mangled) names in libtorch_cpu, which every
//! libtorch build has; `DeviceType` and `ScalarType` are `int8_t` enums in C++.
use super::libtorch::torch_symbol;
use super::Precision;
use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// libtorch's autocast functions.
struct Api {
    set_enabled: extern "C" fn(i8, bool),
    is_enabled: extern "C" fn(i8) -> bool,
    set_dtype: extern "C" fn(i8, i8),
    get_dtype: extern "C" fn(i8) -> i8,
    increment_nesting: extern "C" fn() -> i32,
    decrement_nesting: extern "C" fn() -> i32,
    clear_cache: extern "C" fn(),
}

const SET_ENABLED: &CStr = c"_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb";
const IS_ENABLED: &CStr = c"_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE";
const SET_DTYPE: &CStr = c"_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE";
const GET_DTYPE: &CStr = c"_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE";
const INCREMENT: &CStr = c"_ZN2at8autocast17increment_nestingEv";
const DECREMENT: &CStr = c"_ZN2at8autocast17decrement_nestingEv";
const CLEAR_CACHE: &CStr = c"_ZN2at8autocast11clear_cacheEv";

/// c10's `ScalarType` codes.
const HALF: i8 = 5;
const BFLOAT16: i8 = 15;

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: each symbol is the C++ function of the stated signature (checked by
        // the tests against libtorch's behaviour); a missing one disables autocast.
        unsafe {
            Some(Api {
                set_enabled: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8, bool)>(
                    torch_symbol(SET_ENABLED)?,
                ),
                is_enabled: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8) -> bool>(
                    torch_symbol(IS_ENABLED)?,
                ),
                set_dtype: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8, i8)>(
                    torch_symbol(SET_DTYPE)?,
                ),
                get_dtype: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(i8) -> i8>(
                    torch_symbol(GET_DTYPE)?,
                ),
                increment_nesting: std::mem::transmute::<
                    *mut std::ffi::c_void,
                    extern "C" fn() -> i32,
                >(torch_symbol(INCREMENT)?),
                decrement_nesting: std::mem::transmute::<
                    *mut std::ffi::c_void,
                    extern "C" fn() -> i32,
                >(torch_symbol(DECREMENT)?),
                clear_cache: std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn()>(
                    torch_symbol(CLEAR_CACHE)?,
                ),
            })
        }
    })
    .as_ref()
}

/// True when libtorch's autocast functions were found.
pub fn available() -> bool {
    api().is_some()
}

fn device_type(device: Device) -> i8 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// Restores autocast's previous state when the region ends (even by a panic).
struct Region {
    api: &'static Api,
    device: i8,
    was_enabled: bool,
    was_dtype: i8,
}

impl Drop for Region {
    fn drop(&mut self) {
        let a = self.api;
        // Cached low-precision copies of the weights are stale after the next
        // optimiser step: drop them when the outermost region ends.
        if (a.decrement_nesting)() == 0 {
            (a.clear_cache)();
        }
        (a.set_enabled)(self.device, self.was_enabled);
        (a.set_dtype)(self.device, self.was_dtype);
    }
}

/// Runs `f` with autocast to `precision` on `device`'s type; fp32 (or no autocast
/// functions) runs it as it is, and so does `auto`, which a run resolves before
/// computing ([`super::PrecisionChoice`]). Differentiable ops inside record their casts, so
/// `backward` is called after the region, as in PyTorch.
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
    let dtype = match precision {
        Precision::Fp32 | Precision::Auto => return f(),
        Precision::Bf16 => BFLOAT16,
        Precision::Fp16 => HALF,
    };
    let Some(a) = api() else { return f() };
    let dev = device_type(device);
    let _region = Region {
        api: a,
        device: dev,
        was_enabled: (a.is_enabled)(dev),
        was_dtype: (a.get_dtype)(dev),
    };
    (a.set_dtype)(dev, dtype);
    (a.set_enabled)(dev, true);
    (a.increment_nesting)();
    f()
}

/// Dynamic loss scaling for fp16 (PyTorch's `GradScaler` defaults): the loss is
/// multiplied by `scale` so small gradients survive fp16; a step with an inf/NaN
/// gradient is skipped and the scale halved; after 2 000 clean steps it doubles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    pub clean_steps: usize,
}

const GROWTH_INTERVAL: usize = 2000;

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: 65536.0,
            clean_steps: 0,
        }
    }
}

impl LossScaler {
    /// The loss to call `backward` on.
    pub fn scale(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides the gradients of `params` by the scale and updates it; false when a
    /// gradient is not finite (skip this step).
    pub fn unscale_and_update(&mut self, params: &[Tensor]) -> bool {
        let finite = tch::no_grad(|| {
            let mut bad: Option<Tensor> = None;
            for p in params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = g.g_mul_scalar_(1.0 / self.scale);
                let b = g.isfinite().logical_not().any();
                bad = Some(match bad {
                    Some(acc) => acc.logical_or(&b),
                    None => b,
                });
            }
            bad.is_none_or(|b| b.to_kind(Kind::Int64).int64_value(&[]) == 0)
        });
        if finite {
            self.clean_steps += 1;
            if self.clean_steps >= GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.clean_steps = 0;
            }
        } else {
            self.scale = (self.scale * 0.5).max(1.0);
            self.clean_steps = 0;
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_autocast_runs_matmul_in_bf16_and_restores_state() {
        let a = api().expect("libtorch's autocast symbols are exported");
        let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([3, 4], (Kind::Float, Device::Cpu));
        let before = ((a.is_enabled)(0), (a.get_dtype)(0));
        let y = autocast(Device::Cpu, Precision::Bf16, || x.matmul(&w));
        assert_eq!(y.kind(), Kind::BFloat16);
        assert_eq!(
            ((a.is_enabled)(0), (a.get_dtype)(0)),
            before,
            "state restored"
        );
        assert_eq!(
            x.matmul(&w).kind(),
            Kind::Float,
            "off again after the region"
        );
        let z = autocast(Device::Cpu, Precision::Fp32, || x.matmul(&w));
        assert_eq!(z.kind(), Kind::Float);
    }

    #[test]
    fn cuda_dtype_is_set_and_read_back_without_a_gpu() {
        // The dtype is per device type and thread; setting CUDA's needs no GPU.
        let a = api().unwrap();
        let was = (a.get_dtype)(1);
        (a.set_dtype)(1, BFLOAT16);
        assert_eq!((a.get_dtype)(1), BFLOAT16);
        (a.set_dtype)(1, was);
        assert_eq!(was, HALF, "CUDA autocast defaults to fp16");
    }

    #[test]
    fn loss_scaler_skips_overflow_and_grows_after_clean_steps() {
        let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let mut s = LossScaler::default();
        let loss = (&w * &w).sum(Kind::Float);
        s.scale(&loss).backward();
        assert!(s.unscale_and_update(&[w.shallow_clone()]));
        let g = Vec::<f32>::try_from(w.grad()).unwrap();
        assert!(
            (g[0] - 2.0).abs() < 1e-6 && (g[1] - 4.0).abs() < 1e-6,
            "{g:?}"
        );
        let mut grad = w.grad();
        let _ = grad.fill_(f64::INFINITY);
        assert!(!s.unscale_and_update(&[w.shallow_clone()]));
        assert_eq!(s.scale, 32768.0);
        s.clean_steps = GROWTH_INTERVAL - 1;
        let _ = w.grad().zero_();
        assert!(s.unscale_and_update(&[w.shallow_clone()]));
        assert_eq!((s.scale, s.clean_steps), (65536.0, 0));
    }
}
