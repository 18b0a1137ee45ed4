//! Build-time facts for the library:
//! - embeds libtorch's library folder as an rpath so `lab` and the tests run without
//!   LD_LIBRARY_PATH (torch-sys finds libtorch through `LIBTORCH`, which `scripts/setup`
//!   writes into `.cargo/config.toml` and into the Jupyter kernelspec);
//! - records the libtorch and rustc versions for the notebook's versions cell, since
//!   libtorch exposes no version call through tch;
//! - does not link `libtorch_cuda.so`: tch names it on the link line, the linker's
//!   `--as-needed` drops it (no symbol of it is used), and `backend::load_cuda` opens it
//!   at run time only where an NVIDIA driver exists, so a CPU machine never pays the
//!   ~0.3 s and ~400 MB of loading libtorch's CUDA libraries (`lab --version` included).
use std::{env, fs, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let mut libtorch_version = String::from("unknown");
    if let Ok(libtorch) = env::var("LIBTORCH") {
        let root = Path::new(&libtorch);
        let lib = root.join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        println!("cargo:rustc-env=HELPERS_LIBTORCH_LIB={}", lib.display());
        let version_py = root.join("version.py");
        println!("cargo:rerun-if-changed={}", version_py.display());
        if let Ok(text) = fs::read_to_string(&version_py) {
            if let Some(v) = parse_version_py(&text) {
                libtorch_version = v;
            }
        }
    }
    println!("cargo:rustc-env=HELPERS_LIBTORCH_VERSION={libtorch_version}");
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HELPERS_RUSTC_VERSION={rustc_version}");
}

/// Finds `__version__ = '2.13.0+cu130'` in torch's `version.py`.
fn parse_version_py(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    let value = line.split('=').nth(1)?.trim();
    Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
}
