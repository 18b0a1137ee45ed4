//! The arithmetic of the forward pass and how a run chooses it. `auto`, the default,
//! trains in bf16 autocast on a CPU with native bf16 instructions (AMX or AVX-512 BF16)
//! when a short probe of the run's own model on its own batches finds bf16 faster, and
//! in fp32 everywhere else. The choice, with the probe's figures, is recorded in the
//! run's `meta.json` and its last checkpoint, so a resumed run keeps it.
use super::autocast;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use tch::Device;

/// Floating-point precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// bf16 where the CPU has it natively and the probe measures it faster; fp32 else.
    #[default]
    Auto,
    /// Plain 32-bit floats.
    Fp32,
    /// Autocast to bfloat16: fp32's range, no loss scaling needed.
    Bf16,
    /// Autocast to float16 (CUDA), with dynamic loss scaling against gradient underflow.
    Fp16,
}

impl Precision {
    /// The config's spelling: `auto`, `fp32`, `bf16`, `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

/// bf16 must be at least this much faster than fp32 in the probe to be chosen: a margin
/// well above the probe's noise, so reruns on one CPU make the same choice (and so stay
/// bitwise identical).
pub const BF16_MIN_SPEEDUP: f64 = 1.15;

/// Training throughput of a run's model in fp32 and in bf16, timed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionProbe {
    pub fp32_per_sec: f64,
    pub bf16_per_sec: f64,
    /// Read from the probe cache (an earlier run of the same model on this CPU) instead
    /// of measured now.
    #[serde(default)]
    pub reused: bool,
}

impl PrecisionProbe {
    /// bf16's throughput over fp32's.
    pub fn speedup(&self) -> f64 {
        self.bf16_per_sec / self.fp32_per_sec
    }
}

/// The precision a run uses and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionChoice {
    /// The config's `train.precision`.
    pub asked: Precision,
    /// What the run computes in (never `Auto`).
    pub used: Precision,
    /// Whether the CPU has native bf16 instructions (`amx_bf16` or `avx512_bf16`).
    pub cpu_bf16: bool,
    /// The start-up probe's figures, when one ran.
    pub probe: Option<PrecisionProbe>,
    /// One sentence for the run's log.
    pub reason: String,
}

impl PrecisionChoice {
    /// What a run on `device` computes in when `asked` is configured; `probe` is called
    /// only for `auto` on a CPU with native bf16.
    pub fn choose(
        asked: Precision,
        device: Device,
        probe: impl FnOnce() -> Result<PrecisionProbe>,
    ) -> Result<PrecisionChoice> {
        let cpu_bf16 = cpu_has_native_bf16();
        let choice = |used, reason: String| PrecisionChoice {
            asked,
            used,
            cpu_bf16,
            probe: None,
            reason,
        };
        let autocast_missing = !autocast::available();
        match (asked, device.is_cuda()) {
            (Precision::Fp32, _) => Ok(choice(Precision::Fp32, "fp32, as configured".into())),
            (Precision::Bf16 | Precision::Fp16, _) if autocast_missing => Err(Error::config(
                "train.precision",
                "libtorch's autocast functions were not found in this process; use \"fp32\"",
            )),
            (Precision::Bf16 | Precision::Fp16, true) => Ok(choice(
                asked,
                format!("{} autocast on CUDA, as configured", asked.name()),
            )),
            (Precision::Fp16, false) => Ok(choice(
                Precision::Fp32,
                "train.precision = \"fp16\" applies on CUDA only; training in fp32 on the CPU"
                    .into(),
            )),
            (Precision::Bf16, false) if !cpu_bf16 => Ok(choice(
                Precision::Bf16,
                "bf16 autocast, as configured; this CPU has no native bf16 (amx_bf16, \
                 avx512_bf16), so expect it several times slower than fp32"
                    .into(),
            )),
            (Precision::Bf16, false) => Ok(choice(
                Precision::Bf16,
                "bf16 autocast on the CPU, as configured".into(),
            )),
            (Precision::Auto, true) => Ok(choice(
                Precision::Fp32,
                "auto: fp32 on CUDA (set train.precision = \"bf16\" or \"fp16\" for autocast)"
                    .into(),
            )),
            (Precision::Auto, false) if !cpu_bf16 || autocast_missing => Ok(choice(
                Precision::Fp32,
                "auto: fp32, this CPU has no native bf16 (amx_bf16, avx512_bf16)".into(),
            )),
            (Precision::Auto, false) => Ok(from_probe(probe()?)),
        }
    }

    /// The choice a resumed run made before (`used`, its checkpoint's precision) for the
    /// config's `asked`.
    pub fn resumed(asked: Precision, used: Precision) -> PrecisionChoice {
        PrecisionChoice {
            asked,
            used,
            cpu_bf16: cpu_has_native_bf16(),
            probe: None,
            reason: format!("{}, as the run's checkpoint records", used.name()),
        }
    }
}

/// `auto`'s choice on a CPU with native bf16, from the probe's figures.
fn from_probe(probe: PrecisionProbe) -> PrecisionChoice {
    let speedup = probe.speedup();
    let used = if speedup >= BF16_MIN_SPEEDUP {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    PrecisionChoice {
        asked: Precision::Auto,
        used,
        cpu_bf16: true,
        probe: Some(probe),
        reason: format!(
            "auto: {} (native bf16 CPU; probe{} {:.0} examples/s in bf16 against {:.0} \
             in fp32, {speedup:.2}×; bf16 needs ≥ {BF16_MIN_SPEEDUP}×)",
            used.name(),
            if probe.reused {
                " of an earlier run on this CPU,"
            } else {
                ""
            },
            probe.bf16_per_sec,
            probe.fp32_per_sec
        ),
    }
}

/// The probe of `key` (CPU, threads, model and batch: see the caller) from the cache
/// file `$LAB_CACHE/precision_probes.json`, else measured by `probe` and added to it.
/// Timings near the margin could tip either way from one run to the next; reusing the
/// first verdict keeps reruns on one machine bitwise identical. An unreadable cache is
/// measured again and rewritten; one that cannot be written only costs the next run a
/// probe.
pub fn cached_probe(
    key: &str,
    probe: impl FnOnce() -> Result<PrecisionProbe>,
) -> Result<PrecisionProbe> {
    let path = crate::io::venv::cache_dir().join("precision_probes.json");
    let mut cache: BTreeMap<String, PrecisionProbe> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(found) = cache.get(key) {
        return Ok(PrecisionProbe {
            reused: true,
            ..*found
        });
    }
    let measured = probe()?;
    keep_same_libtorch(&mut cache, key);
    cache.insert(key.to_string(), measured);
    if let Ok(json) = serde_json::to_vec_pretty(&cache) {
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
        let _ = crate::io::write_atomic(&path, &json);
    }
    Ok(measured)
}

/// Drops the probes measured with another libtorch than `key`'s (the keys name it): they
/// can never be reused, and without this every upgrade would grow the cache for good.
fn keep_same_libtorch(cache: &mut BTreeMap<String, PrecisionProbe>, key: &str) {
    let libtorch = |k: &str| {
        k.split(" | ")
            .find(|part| part.starts_with("libtorch "))
            .map(str::to_owned)
    };
    let current = libtorch(key);
    cache.retain(|k, _| libtorch(k) == current);
}

/// Whether the CPU has native bf16 arithmetic (Intel AMX or AVX-512 BF16), from the
/// flags in /proc/cpuinfo; false where that file does not exist.
pub fn cpu_has_native_bf16() -> bool {
    static NATIVE: OnceLock<bool> = OnceLock::new();
    *NATIVE.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|text| has_bf16_flag(&text))
    })
}

fn has_bf16_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_whitespace())
        .any(|flag| flag == "amx_bf16" || flag == "avx512_bf16")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_of_another_libtorch_are_dropped() {
        let probe = PrecisionProbe {
            fp32_per_sec: 1.0,
            bf16_per_sec: 2.0,
            reused: false,
        };
        let mut cache: BTreeMap<String, PrecisionProbe> = [
            "a | AMD EPYC | libtorch 2.12.0 | 2 threads",
            "b | AMD EPYC | libtorch 2.13.0 | 2 threads",
            "c | Intel Xeon | libtorch 2.13.0 | 4 threads",
        ]
        .into_iter()
        .map(|k| (k.to_string(), probe))
        .collect();
        keep_same_libtorch(&mut cache, "d | AMD EPYC | libtorch 2.13.0 | 2 threads");
        let kept: Vec<&str> = cache.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "b | AMD EPYC | libtorch 2.13.0 | 2 threads",
                "c | Intel Xeon | libtorch 2.13.0 | 4 threads"
            ]
        );
    }

    #[test]
    fn bf16_flags_are_read_from_the_flags_line() {
        assert!(has_bf16_flag("flags\t\t: fpu avx512f avx512_bf16 sse\n"));
        assert!(has_bf16_flag("flags\t\t: fpu amx_bf16 amx_tile\n"));
        assert!(!has_bf16_flag("flags\t\t: fpu avx2 avx512f\n"));
        assert!(!has_bf16_flag("bugs\t\t: avx512_bf16\n"));
    }

    #[test]
    fn auto_takes_bf16_only_past_the_margin() {
        let fast = from_probe(PrecisionProbe {
            fp32_per_sec: 1000.0,
            bf16_per_sec: 1700.0,
            reused: false,
        });
        assert_eq!(fast.used, Precision::Bf16);
        assert!(fast.reason.contains("1.70×"), "{}", fast.reason);
        let close = from_probe(PrecisionProbe {
            fp32_per_sec: 1000.0,
            bf16_per_sec: 1100.0,
            reused: false,
        });
        assert_eq!(close.used, Precision::Fp32);
    }

    #[test]
    fn explicit_choices_never_probe() -> Result<()> {
        let no_probe = || -> Result<PrecisionProbe> { panic!("probed") };
        for asked in [Precision::Fp32, Precision::Bf16, Precision::Fp16] {
            let c = PrecisionChoice::choose(asked, Device::Cpu, no_probe)?;
            assert_ne!(c.used, Precision::Auto);
        }
        let c = PrecisionChoice::choose(Precision::Fp16, Device::Cpu, no_probe)?;
        assert_eq!(c.used, Precision::Fp32, "fp16 autocast is CUDA's");
        Ok(())
    }

    #[test]
    fn auto_probes_exactly_when_the_cpu_has_bf16() -> Result<()> {
        let mut probed = false;
        let c = PrecisionChoice::choose(Precision::Auto, Device::Cpu, || {
            probed = true;
            Ok(PrecisionProbe {
                fp32_per_sec: 1.0,
                bf16_per_sec: 2.0,
                reused: false,
            })
        })?;
        assert_eq!(probed, cpu_has_native_bf16());
        let expected = match cpu_has_native_bf16() {
            true => Precision::Bf16,
            false => Precision::Fp32,
        };
        assert_eq!(c.used, expected);
        Ok(())
    }
}
