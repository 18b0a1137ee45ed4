//! ONNX Runtime from Rust: [`OrtModel`] loads an exported `.onnx` file and runs
//! `[N, C, H, W]` f32 batches to logits, with tch tensors in and out.
//!
//! The `ort` crate loads the ONNX Runtime shared library at run time (`load-dynamic`),
//! so nothing is downloaded at build time: the library is the one in the PyPI wheel
//! `onnxruntime==1.32.0` that `scripts/setup` (step `venv`) installs, or any file named
//! by `ORT_DYLIB_PATH`. It is loaded once per process, on first use.
use crate::io::venv::{site_packages, venv_dir};
use crate::{Error, Result};
use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// The library inside the onnxruntime wheel, relative to `site-packages` (the wheel has
/// no unversioned `libonnxruntime.so`).
const WHEEL_LIBRARY: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";

const SETUP_HINT: &str = "`scripts/setup` (step `venv`) installs it with `pip install onnxruntime==1.32.0`; or point ORT_DYLIB_PATH at a libonnxruntime.so of version 1.31 or newer";

/// How much ONNX Runtime rewrites the graph when it loads a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimization {
    /// No rewriting: runs the graph as exported.
    Disabled,
    /// Constant folding, redundant-node removal, fusions such as Conv+Add.
    Basic,
    /// Basic plus complex fusions (Conv+activation, Gemm+activation).
    Extended,
    /// Everything, including the NCHWc memory-layout rewrite on CPU.
    All,
}

impl Optimization {
    fn level(self) -> GraphOptimizationLevel {
        match self {
            Optimization::Disabled => GraphOptimizationLevel::Disable,
            Optimization::Basic => GraphOptimizationLevel::Level1,
            Optimization::Extended => GraphOptimizationLevel::Level2,
            Optimization::All => GraphOptimizationLevel::All,
        }
    }
}

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrtOptions {
    pub optimization: Optimization,
    /// Threads that split the work inside one operator (e.g. a convolution).
    pub intra_threads: usize,
    /// Threads that run independent operators in parallel; above 1 it switches the
    /// session to parallel execution (worth it only for branchy graphs).
    pub inter_threads: usize,
    /// Whether idle intra-op threads spin waiting for work (faster back-to-back runs; but
    /// a spinning thread takes its core from other work of the process, e.g. a server's
    /// HTTP threads).
    pub spinning: bool,
}

impl Default for OrtOptions {
    /// All optimisations, 2 intra-op threads (this project's machines have 2 cores),
    /// sequential execution.
    fn default() -> Self {
        OrtOptions {
            optimization: Optimization::All,
            intra_threads: 2,
            inter_threads: 1,
            spinning: true,
        }
    }
}

/// The ONNX Runtime library to load: `$ORT_DYLIB_PATH` when set, else the wheel's file
/// in the setup venv. Errs, naming the path it looked at, when that file is missing.
pub fn library_path() -> Result<PathBuf> {
    let path = library_candidate();
    check_library_file(&path).map(|()| path)
}

/// `$ORT_DYLIB_PATH`, else the wheel's library in the first `site-packages` that has
/// it, else the path where setup would put it (what an error then names).
fn library_candidate() -> PathBuf {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(path);
    }
    let candidates: Vec<PathBuf> = site_packages()
        .iter()
        .map(|sp| sp.join(WHEEL_LIBRARY))
        .collect();
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    found
        .or_else(|| candidates.into_iter().next())
        .unwrap_or_else(|| {
            venv_dir()
                .join("lib/python3.*/site-packages")
                .join(WHEEL_LIBRARY)
        })
}

/// An error naming `path` unless it is a file.
fn check_library_file(path: &Path) -> Result<()> {
    match path.is_file() {
        true => Ok(()),
        false => Err(missing_library(path)),
    }
}

fn missing_library(path: &Path) -> Error {
    Error::data(path, "ONNX Runtime shared library not found").with_hint(SETUP_HINT)
}

/// Why the library did not load: kept (errors are not `Clone`) so every later call
/// reports the same.
#[derive(Debug)]
enum LoadFailure {
    Missing(PathBuf),
    Load(PathBuf, String),
}

/// The loaded library's path and the process's ONNX Runtime environment (sessions
/// need one; ort allows a single environment per process).
fn loaded() -> Result<&'static (PathBuf, Environment)> {
    static LOADED: OnceLock<std::result::Result<(PathBuf, Environment), LoadFailure>> =
        OnceLock::new();
    let outcome = LOADED.get_or_init(|| {
        let path = library_candidate();
        if !path.is_file() {
            return Err(LoadFailure::Missing(path));
        }
        let failed = |e: &dyn std::fmt::Display| LoadFailure::Load(path.clone(), e.to_string());
        let builder = ort::init_from(&path).map_err(|e| failed(&e))?;
        let env = builder
            .with_name("helpers")
            .build()
            .map_err(|e| failed(&e))?;
        Ok((path, env))
    });
    outcome.as_ref().map_err(|failure| match failure {
        LoadFailure::Missing(path) => missing_library(path),
        LoadFailure::Load(path, reason) => {
            Error::data(path, format!("cannot load ONNX Runtime: {reason}")).with_hint(SETUP_HINT)
        }
    })
}

/// Loads the ONNX Runtime library once per process (later calls return the first
/// outcome); returns its path. [`OrtModel::load`] calls it.
pub fn init() -> Result<&'static Path> {
    loaded().map(|(path, _)| path.as_path())
}

/// A model loaded into an ONNX Runtime session (CPU).
pub struct OrtModel {
    session: Session,
    path: PathBuf,
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel")
            .field("path", &self.path)
            .finish()
    }
}

impl OrtModel {
    /// Loads the ONNX file at `path` with `options`. A file that is not a model ONNX
    /// Runtime can load gives an error naming it.
    pub fn load(path: &Path, options: &OrtOptions) -> Result<OrtModel> {
        let (_, env) = loaded()?;
        if !path.is_file() {
            return Err(Error::data(path, "ONNX model file not found"));
        }
        let err = |e: ort::Error| Error::data(path, format!("ONNX Runtime: {e}"));
        let mut builder = configure(Session::builder(env).map_err(err)?, options).map_err(err)?;
        let session = builder.commit_from_file(path).map_err(|e| {
            Error::data(
                path,
                format!("not an ONNX model ONNX Runtime can load: {e}"),
            )
        })?;
        Ok(OrtModel {
            session,
            path: path.to_path_buf(),
        })
    }

    /// Loads a serialised model from memory (e.g. [`crate::deploy::onnx::to_onnx_bytes`]);
    /// [`OrtModel::path`] is then empty.
    pub fn from_bytes(bytes: &[u8], options: &OrtOptions) -> Result<OrtModel> {
        let (_, env) = loaded()?;
        let here = Path::new("<memory>");
        let err = |e: ort::Error| Error::data(here, format!("ONNX Runtime: {e}"));
        let mut builder = configure(Session::builder(env).map_err(err)?, options).map_err(err)?;
        let session = builder.commit_from_memory(bytes).map_err(err)?;
        Ok(OrtModel {
            session,
            path: PathBuf::new(),
        })
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logits `[N, classes]` for a batch `[N, C, H, W]` (any device and float kind; it
    /// is copied to CPU f32). The result is a CPU f32 tensor.
    pub fn run(&mut self, x: &Tensor) -> Result<Tensor> {
        let shape = x.size();
        if shape.len() != 4 {
            return Err(Error::Shape {
                op: "OrtModel::run",
                expected: "[N, C, H, W]".into(),
                got: shape,
            });
        }
        Ok(self.run_all(x)?.swap_remove(0))
    }

    /// Every output of the model for a batch `[N, C, H, W]`, in the graph's order, as CPU
    /// f32 tensors (a detector's heatmap and box maps).
    pub fn run_all(&mut self, x: &Tensor) -> Result<Vec<Tensor>> {
        let shape = x.size();
        let flat = x.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let data = Vec::<f32>::try_from(flat.view([-1]))?;
        let path = &self.path;
        let err = |e: ort::Error| Error::data(path, format!("ONNX Runtime run failed: {e}"));
        let input = TensorRef::from_array_view((shape, &data[..])).map_err(err)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(err)?;
        let mut all = Vec::with_capacity(outputs.len());
        for (_, value) in outputs.iter() {
            let (out_shape, values) = value.try_extract_tensor::<f32>().map_err(err)?;
            all.push(Tensor::from_slice(values).view(&out_shape[..]));
        }
        Ok(all)
    }
}

/// Applies `options` to a session builder.
fn configure(
    builder: SessionBuilder,
    options: &OrtOptions,
) -> std::result::Result<SessionBuilder, ort::Error> {
    let builder = builder
        .with_optimization_level(options.optimization.level())?
        .with_intra_threads(options.intra_threads.max(1))?
        .with_intra_op_spinning(options.spinning)?;
    if options.inter_threads > 1 {
        Ok(builder
            .with_parallel_execution(true)?
            .with_inter_threads(options.inter_threads)?)
    } else {
        Ok(builder.with_parallel_execution(false)?)
    }
}

/// How an exported model agrees with the tch model it came from.
#[derive(Debug, Clone)]
pub struct Agreement {
    /// Size of the ONNX file.
    pub megabytes: f64,
    pub images: usize,
    /// Images both engines put in the same class.
    pub same_class: i64,
    /// Largest absolute difference between their logits.
    pub max_logit_difference: f64,
}

/// Runs `images` through the ONNX file at `onnx_path` in ONNX Runtime and through
/// `model` in tch (in fp32, the export's arithmetic, even for a bf16 run), and compares
/// the two.
pub fn agreement(
    model: &crate::models::Model,
    onnx_path: &Path,
    images: &Tensor,
) -> Result<Agreement> {
    let mut ort_model = OrtModel::load(onnx_path, &Default::default())?;
    let ort_logits = ort_model.run(images)?;
    let tch_logits = tch::no_grad(|| model.forward_fp32(images));
    let same_class = ort_logits
        .argmax(-1, false)
        .eq_tensor(&tch_logits.argmax(-1, false))
        .sum(Kind::Int64)
        .int64_value(&[]);
    let bytes = std::fs::metadata(onnx_path).map(|m| m.len()).unwrap_or(0);
    Ok(Agreement {
        megabytes: bytes as f64 / 1e6,
        images: images.size()[0] as usize,
        same_class,
        max_logit_difference: (&ort_logits - &tch_logits).abs().max().double_value(&[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_the_path_and_the_setup_step() {
        let path = Path::new("/nonexistent/libonnxruntime.so.1.32.0");
        let text = check_library_file(path).unwrap_err().to_string();
        assert!(
            text.contains("/nonexistent/libonnxruntime.so.1.32.0"),
            "{text}"
        );
        assert!(
            text.contains("scripts/setup") && text.contains("venv"),
            "{text}"
        );
        assert!(text.contains("onnxruntime==1.32.0"), "{text}");
    }
}
