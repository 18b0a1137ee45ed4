//! libtorch inside this process: its exported C++ functions ([`torch_symbol`]), and
//! where libtorch's CUDA library gets into the process ([`load_cuda`]): tch links
//! `libtorch_cuda.so` only by name, and the linker's `--as-needed` drops it because no
//! symbol of it is used, after which `tch::Cuda::is_available()` says false on a GPU
//! machine (tch-rs issue #980). [`load_cuda`] opens it with `dlopen(RTLD_GLOBAL)` (the
//! `lab` binary, the tests, an evcxr notebook) before anything asks libtorch about CUDA,
//! and only where an NVIDIA driver exists, so a CPU machine never loads it.
use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
/// CUDA exists); [`super::DeviceChoice::resolve`] and [`super::versions`] do.
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
pub fn torch_symbol(name: &CStr) -> Option<*mut c_void> {
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
/// ([`super::versions`] runs at every epoch).
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
    fn without_a_driver_libtorch_cuda_is_never_in_the_process() {
        if is_loadable(c"libcuda.so.1") {
            return; // a GPU machine: loading it is the point
        }
        assert!(!load_cuda());
        let _ = super::super::DeviceChoice::Auto.resolve();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            !maps.contains("libtorch_cuda.so"),
            "libtorch_cuda.so is mapped although no NVIDIA driver exists (~400 MB and ~0.3 s per start)"
        );
    }

    #[test]
    fn dlopen_errors_name_the_file() {
        let e = dlopen_global(Path::new("/nonexistent/libtorch_cuda.so")).unwrap_err();
        assert!(e.contains("/nonexistent/libtorch_cuda.so"), "{e}");
    }
}
