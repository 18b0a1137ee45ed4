//! The environment a result was produced in: toolchain, libraries, hardware, seed and
//! data checksums. Shown in the notebook's versions cell and saved into every run.
use super::libtorch::{cuda_available, gpu_names};
use crate::render::{evcxr_emit, Table};
use crate::Result;
use polars::prelude::Column;
use serde::{Deserialize, Serialize};

/// tch version this crate is built against (pinned with `=` in helpers/Cargo.toml;
/// a unit test checks the two agree).
pub const TCH_VERSION: &str = "0.26.0";

/// Versions and hardware facts, plus any extra facts the caller adds (seed, data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    pub rustc: String,
    pub helpers: String,
    pub tch: String,
    pub libtorch: String,
    pub cpu_model: String,
    /// Whether the CPU has native bf16 instructions (what `train.precision = "auto"`
    /// needs before it probes bf16).
    #[serde(default)]
    pub cpu_bf16: bool,
    pub cpu_cores: usize,
    pub torch_threads: i32,
    pub cuda_available: bool,
    pub device: String,
    /// Number of CUDA devices libtorch sees (0 without CUDA).
    #[serde(default)]
    pub gpu_count: i64,
    /// The GPUs' model names, from the NVIDIA driver.
    #[serde(default)]
    pub gpus: Vec<String>,
    pub os: String,
    /// Extra facts, in insertion order.
    pub extra: Vec<(String, String)>,
}

/// Reads the current environment (loading libtorch's CUDA library first, so that CUDA
/// is reported as it will be used).
pub fn versions() -> Versions {
    let cuda = cuda_available();
    let gpu_count = if cuda { tch::Cuda::device_count() } else { 0 };
    Versions {
        rustc: env!("HELPERS_RUSTC_VERSION").to_string(),
        helpers: env!("CARGO_PKG_VERSION").to_string(),
        tch: TCH_VERSION.to_string(),
        libtorch: env!("HELPERS_LIBTORCH_VERSION").to_string(),
        cpu_model: cpu_model(),
        cpu_bf16: super::precision::cpu_has_native_bf16(),
        cpu_cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        torch_threads: tch::get_num_threads(),
        cuda_available: cuda,
        device: format!(
            "{:?}",
            if cuda {
                tch::Device::Cuda(0)
            } else {
                tch::Device::Cpu
            }
        ),
        gpu_count,
        gpus: if cuda { gpu_names() } else { Vec::new() },
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        extra: Vec::new(),
    }
}

impl Versions {
    /// Adds a fact (e.g. `("seed", "42")`).
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.extra.push((key.into(), value.to_string()));
        self
    }

    /// Adds several facts (e.g. a dataset's [`crate::data::Dataset::facts`]).
    pub fn with_all(mut self, facts: impl IntoIterator<Item = (String, String)>) -> Self {
        self.extra.extend(facts);
        self
    }

    /// All facts as (name, value) rows.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = [
            ("rustc", self.rustc.clone()),
            ("helpers", self.helpers.clone()),
            ("tch", self.tch.clone()),
            ("libtorch", self.libtorch.clone()),
            ("CPU", self.cpu_model.clone()),
            (
                "CPU native bf16",
                match self.cpu_bf16 {
                    true => "yes (amx_bf16 or avx512_bf16)".to_string(),
                    false => "no".to_string(),
                },
            ),
            ("CPU cores", self.cpu_cores.to_string()),
            ("torch threads", self.torch_threads.to_string()),
            ("CUDA available", self.cuda_available.to_string()),
            ("device", self.device.clone()),
            ("OS", self.os.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Only where there are GPUs, so CPU reports keep their rows.
        if self.gpu_count > 0 {
            let names = match self.gpus.as_slice() {
                [] => "unknown model".to_string(),
                names => names.join(", "),
            };
            rows.push(("GPUs".into(), format!("{} × {names}", self.gpu_count)));
        }
        rows.extend(self.extra.iter().cloned());
        rows
    }

    /// The facts as a two-column table.
    pub fn table(&self) -> Result<Table> {
        let (names, values): (Vec<String>, Vec<String>) = self.rows().into_iter().unzip();
        Table::from_columns(
            "Environment",
            vec![
                Column::new("fact".into(), names),
                Column::new("value".into(), values),
            ],
        )
    }

    /// evcxr's hook: shows the table.
    pub fn evcxr_display(&self) {
        match self.table() {
            Ok(t) => t.evcxr_display(),
            Err(e) => evcxr_emit("text/plain", &e.to_string()),
        }
    }
}

/// The CPU's model name from /proc/cpuinfo (Linux), else "unknown".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_row_only_with_gpus() {
        let mut v = versions();
        v.gpu_count = 0;
        assert!(v.rows().iter().all(|(k, _)| k != "GPUs"));
        v.gpu_count = 2;
        v.gpus = vec!["NVIDIA H200".into(), "NVIDIA H200".into()];
        let row = v.rows().into_iter().find(|(k, _)| k == "GPUs").unwrap();
        assert_eq!(row.1, "2 × NVIDIA H200, NVIDIA H200");
    }

    #[test]
    fn tch_version_matches_the_lock_file() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let entry = format!("name = \"tch\"\nversion = \"{TCH_VERSION}\"");
        assert!(
            lock.contains(&entry),
            "Cargo.lock does not pin tch {TCH_VERSION}"
        );
    }

    #[test]
    fn table_lists_extra_facts_last() -> Result<()> {
        let t = versions().with("seed", 42).table()?;
        assert_eq!(t.cell(t.height() - 1, "value")?, "42");
        assert_ne!(
            t.cell(3, "value")?,
            "unknown",
            "libtorch version read at build time"
        );
        Ok(())
    }
}
