//! Checking an ONNX export with the real tools: the ONNX checker and ONNX Runtime on
//! named inputs, against what tch computed (`scripts/check_onnx_named.py`, run by the
//! setup venv's Python).
use crate::io::venv::run_python;
use crate::io::write_json;
use crate::render::Markdown;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What ONNX Runtime said of the export.
#[derive(Debug, Clone, Deserialize)]
pub struct OnnxCheck {
    pub rows: usize,
    pub max_abs_diff: f64,
    pub max_rel_diff: f64,
    pub ops: Vec<String>,
    pub onnxruntime: String,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub bytes: u64,
    /// What goes in and comes out, in words.
    #[serde(skip)]
    pub what: String,
}

impl OnnxCheck {
    pub fn summary(&self) -> Markdown {
        Markdown(format!(
            "`{}` ({:.1} KB, {}): ONNX checker passed; ONNX Runtime {} on the {} test rows agrees with tch to a largest relative difference of {:.1e} (absolute {:.3}). Operators: {}.",
            self.path.display(),
            self.bytes as f64 / 1024.0,
            self.what,
            self.onnxruntime,
            self.rows,
            self.max_rel_diff,
            self.max_abs_diff,
            self.ops.join(", ")
        ))
    }

    pub fn evcxr_display(&self) {
        self.summary().evcxr_display()
    }
}

/// Checks the model at `path` on `inputs` (a JSON object of named inputs, see the
/// script) against `expected` (one row of outputs per example); `scripts` is the
/// repository's `scripts/` folder, `what` says in words what the model maps.
pub fn check_named(
    path: &Path,
    inputs: &serde_json::Value,
    expected: &[Vec<f64>],
    scripts: &Path,
    what: &str,
) -> Result<OnnxCheck> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (inputs_path, expected_path) = (
        dir.join("onnx_check_inputs.json"),
        dir.join("onnx_check_expected.json"),
    );
    write_json(&inputs_path, inputs)?;
    write_json(&expected_path, &expected)?;
    let script = scripts.join("check_onnx_named.py");
    let out = run_python(&script, [path, &inputs_path, &expected_path])?;
    for p in [&inputs_path, &expected_path] {
        let _ = std::fs::remove_file(p);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut check: OnnxCheck = serde_json::from_str(stdout.trim()).map_err(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Error::data(
            &script,
            format!("unexpected output ({e}): {stdout} {}", stderr.trim()),
        )
    })?;
    if !out.status.success() {
        let reason = format!(
            "ONNX Runtime disagrees with tch: largest relative difference {:.2e} > 1e-4",
            check.max_rel_diff
        );
        return Err(Error::data(path, reason));
    }
    check.bytes = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    check.path = path.to_path_buf();
    check.what = what.to_string();
    Ok(check)
}
