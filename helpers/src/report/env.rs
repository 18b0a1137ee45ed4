//! The environment a result was produced in: toolchain, libraries, hardware, seed and
//! data checksums. Shown in the notebook's versions cell and saved into every run.
//!
//! Also where libtorch's CUDA library gets into the process ([`load_cuda`]): tch links
//! `libtorch_cuda.so` only by name, and the linker's `--as-needed` drops it because no
//! symbol of it is used, after which `tch::Cuda::is_available()` says false on a GPU
//! machine (tch-rs issue #980). `build.rs` links it with `--no-as-needed` for this crate's
//! binaries and tests; [`load_cuda`] opens it with `dlopen(RTLD_GLOBAL)` for everything
//! else (an evcxr notebook, a downstream binary), before anything asks libtorch about CUDA.
use super::evcxr_emit;
use super::Table;
use crate::data::Dataset;
use crate::Result;
use polars::prelude::Column;
use serde::{Deserialize, Serialize};
use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

    /// Adds the dataset's name and the SHA-256 of each of its files.
    pub fn with_dataset(mut self, data: &Dataset) -> Self {
        self.extra.push(("dataset".into(), data.name.clone()));
        for f in &data.files {
            self.extra
                .push((format!("sha256 {}", f.name), f.sha256.clone()));
        }
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

/// How libtorch's CUDA library got into this process, or why it did not; decided once.
#[derive(Debug, Clone)]
enum CudaLibrary {
    /// In the process: linked at start-up, or opened now from the path given.
    Loaded(String),
    /// No NVIDIA driver library (`libcuda.so.1`): CUDA cannot work, so the ~0.3 s of
    /// loading libtorch's CUDA libraries is skipped.
    NoDriver,
    /// A driver, but no `libtorch_cuda.so` in these folders (a CPU-only libtorch).
    NotFound(Vec<PathBuf>),
    /// `dlopen` failed, with its messages.
    Failed(String),
}

static CUDA_LIBRARY: OnceLock<CudaLibrary> = OnceLock::new();

/// An exported function of libtorch_cpu: its folder is where libtorch_cuda.so lives, and
/// bf16 autocast needs it anyway.
const LIBTORCH_CPU_SYMBOL: &CStr = c"_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE";

/// Makes sure libtorch's CUDA library is loaded (see the module notes); true when it is.
/// Call it before the first CUDA query of the process (libtorch decides once whether
/// CUDA exists); [`crate::config::RunConfig::device`] and [`versions`] do.
pub fn load_cuda() -> bool {
    matches!(cuda_library(), CudaLibrary::Loaded(_))
}

/// True when training can run on CUDA: the library is loaded and libtorch sees a GPU.
pub fn cuda_available() -> bool {
    load_cuda() && tch::Cuda::is_available()
}

/// Why CUDA is or is not usable, in words (for error messages and reports).
pub fn cuda_status() -> String {
    match cuda_library() {
        CudaLibrary::Loaded(from) if tch::Cuda::is_available() => format!(
            "{} CUDA device(s); libtorch_cuda.so {from}",
            tch::Cuda::device_count()
        ),
        CudaLibrary::Loaded(from) if !is_loadable(c"libcuda.so.1") => format!(
            "libtorch_cuda.so is loaded ({from}), but there is no NVIDIA driver (libcuda.so.1 cannot be loaded)"
        ),
        CudaLibrary::Loaded(from) => {
            format!("libtorch_cuda.so is loaded ({from}) but libtorch sees no GPU")
        }
        CudaLibrary::NoDriver => {
            "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)".into()
        }
        CudaLibrary::NotFound(dirs) => format!(
            "no libtorch_cuda.so in {} (a CPU-only libtorch?)",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CudaLibrary::Failed(why) => format!("libtorch_cuda.so failed to load: {why}"),
    }
}

fn cuda_library() -> &'static CudaLibrary {
    CUDA_LIBRARY.get_or_init(open_cuda_library)
}

fn open_cuda_library() -> CudaLibrary {
    if is_loaded(c"libtorch_cuda.so") {
        return CudaLibrary::Loaded("linked at start-up".into());
    }
    if !is_loadable(c"libcuda.so.1") {
        return CudaLibrary::NoDriver;
    }
    let dirs = libtorch_lib_dirs();
    let mut errors = Vec::new();
    for dir in &dirs {
        let path = dir.join("libtorch_cuda.so");
        if !path.is_file() {
            continue;
        }
        match dlopen_global(&path) {
            Ok(()) => return CudaLibrary::Loaded(format!("opened from {}", path.display())),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        CudaLibrary::NotFound(dirs)
    } else {
        CudaLibrary::Failed(errors.join("; "))
    }
}

/// Folders that may hold libtorch_cuda.so, most trustworthy first: the one of the
/// libtorch_cpu.so this process runs, the build's `LIBTORCH`, the run-time `LIBTORCH`.
fn libtorch_lib_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = torch_symbol(LIBTORCH_CPU_SYMBOL).and_then(library_dir_of) {
        dirs.push(dir);
    }
    if let Some(dir) = option_env!("HELPERS_LIBTORCH_LIB") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(root) = std::env::var_os("LIBTORCH") {
        dirs.push(Path::new(&root).join("lib"));
    }
    let mut unique = Vec::new();
    for d in dirs {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// An exported symbol of the libraries already in the process (libtorch's C++ API).
pub(crate) fn torch_symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only looks the name up; a null result is handled.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!f.is_null()).then_some(f)
}

/// Folder of the shared library that holds `addr`.
fn library_dir_of(addr: *mut c_void) -> Option<PathBuf> {
    // SAFETY: dladdr fills `info` for an address inside a loaded object; the file name
    // it points at lives as long as that object (which is never unloaded).
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    let file = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(file.to_string_lossy().into_owned());
    path.parent().map(Path::to_path_buf)
}

/// True when a library of this name is already in the process.
fn is_loaded(name: &CStr) -> bool {
    // SAFETY: RTLD_NOLOAD never loads anything; the extra reference is released.
    unsafe {
        let h = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if !h.is_null() {
            libc::dlclose(h);
        }
        !h.is_null()
    }
}

/// True when the loader can find and load this library (kept loaded: the CUDA runtime
/// opens the driver library anyway).
fn is_loadable(name: &CStr) -> bool {
    // SAFETY: loading the NVIDIA driver library runs its initialisers only.
    !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) }.is_null()
}

/// Opens `path` with its symbols global, as if it had been linked; the error is dlerror's.
fn dlopen_global(path: &Path) -> std::result::Result<(), String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: path holds a NUL byte", path.display()))?;
    // SAFETY: loading libtorch_cuda.so runs its static initialisers, which register
    // libtorch's CUDA hooks: what linking it would have done at start-up.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local message or null.
        let msg = unsafe { libc::dlerror() };
        let text = if msg.is_null() {
            "unknown error".into()
        } else {
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(format!("{}: {text}", path.display()));
    }
    Ok(())
}

/// The GPUs' model names as the NVIDIA driver lists them (`/proc/driver/nvidia`), else
/// as `nvidia-smi` prints them; empty when neither answers. Read once per process
/// ([`versions`] runs at every epoch).
pub fn gpu_names() -> Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(read_gpu_names).clone()
}

fn read_gpu_names() -> Vec<String> {
    let mut names: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path().join("information")).unwrap_or_default();
            if let Some(model) = text
                .lines()
                .find_map(|l| l.strip_prefix("Model:"))
                .map(|m| m.trim().to_string())
            {
                names.push((e.file_name().to_string_lossy().into_owned(), model));
            }
        }
    }
    if !names.is_empty() {
        names.sort(); // by PCI bus id, the order CUDA numbers devices in by default
        return names.into_iter().map(|(_, m)| m).collect();
    }
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_status_says_why_and_libtorch_cpu_is_found_by_symbol() {
        let status = cuda_status();
        assert!(!status.is_empty());
        if !cuda_available() {
            assert!(
                status.contains("driver") || status.contains("libtorch"),
                "{status}"
            );
        }
        let dirs = libtorch_lib_dirs();
        assert!(
            dirs.first()
                .is_some_and(|d| d.join("libtorch_cpu.so").is_file()),
            "the folder of the running libtorch_cpu.so comes first: {dirs:?}"
        );
    }

    #[test]
    fn dlopen_errors_name_the_file() {
        let e = dlopen_global(Path::new("/nonexistent/libtorch_cuda.so")).unwrap_err();
        assert!(e.contains("/nonexistent/libtorch_cuda.so"), "{e}");
    }

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
