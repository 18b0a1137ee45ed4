//! Hand-in folders: the files an assignment collects, laid out as its text names them,
//! from existing runs — copied (or, for a run from before `best.pt` existed, converted
//! from its safetensors checkpoint), never retrained. `MANIFEST.json` says where each
//! file came from: the run, its config hash and the file's SHA-256.
//!
//! Layouts:
//! - [`Layout::Project`] (the project tracks): `best.pt`, `config.toml`, the notebook;
//! - [`Layout::Transfer`] (transfer learning + Grad-CAM): `saved_models/<run>/model_checkpoint.pt`
//!   and `saved_models/<run>/logs/` for `cnn_scratch`, `baseline_pretrained` and every
//!   `tuned_variant_*` run, and the notebook;
//! - [`Layout::Mlops`] (deployment and monitoring): `checkpoints/best_model.pth`,
//!   `checkpoints/model_retrained.pth` (the run the deployment pointer names, when a
//!   retrained candidate was promoted), `exports/model.onnx`, the server's
//!   `logs/predictions.csv` when given, and the notebook;
//! - [`Layout::Report`] (the report template with numbered questions): `runs/<run>/`
//!   with every finished run's TensorBoard events, `artifacts/best.ckpt` (the main run's
//!   best weights, a `torch.save` file) and `configs/config.yaml` (its config as YAML,
//!   which `lab train --config` reads back), and the notebook.
//!
//! Nothing in an existing folder is overwritten: a destination file that already exists
//! with other content is an error naming it, before anything is written.
use crate::run::RunDir;
use crate::{Error, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Which assignment's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Project,
    Transfer,
    Mlops,
    Report,
}

impl Layout {
    pub const NAMES: [&'static str; 4] = ["project", "transfer", "mlops", "report"];

    pub fn parse(name: &str) -> Result<Layout> {
        match name {
            "project" => Ok(Layout::Project),
            "transfer" => Ok(Layout::Transfer),
            "mlops" => Ok(Layout::Mlops),
            "report" => Ok(Layout::Report),
            other => Err(Error::Argument {
                name: "layout".into(),
                reason: format!(
                    "`{other}` is not a hand-in layout; one of: {}",
                    Layout::NAMES.join(", ")
                ),
            }),
        }
    }
}

/// Where the hand-in's files come from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Folder of run directories.
    pub runs: PathBuf,
    /// The main run's name (the project's and the MLOps layout's model).
    pub run: String,
    /// The profile's run-name suffix (`Profile::suffix`): the transfer layout's runs are
    /// `cnn_scratch<suffix>` …, handed in under the names the assignment gives.
    pub suffix: String,
    /// The notebook handed in with the files.
    pub notebook: Option<PathBuf>,
    /// The server's prediction log (`lab serve --log-dir`), for the MLOps layout.
    pub prediction_log: Option<PathBuf>,
}

/// One file of a hand-in and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Path inside the hand-in folder.
    pub file: PathBuf,
    pub source: PathBuf,
    /// The run it belongs to, with its config hash.
    pub run: Option<String>,
    pub config_hash: Option<String>,
    pub sha256: String,
}

/// What [`build`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub layout: &'static str,
    pub files: Vec<Entry>,
}

/// A planned file: destination, source, its bytes (read once, so the overwrite check,
/// the write and the checksum see the same content) and its run's name and config hash.
struct Planned {
    file: PathBuf,
    source: PathBuf,
    bytes: Vec<u8>,
    run: Option<Provenance>,
}

/// A run's name and config hash, as the manifest records them.
#[derive(Clone)]
struct Provenance {
    name: String,
    config_hash: String,
}

/// Lays out the `layout` hand-in of `sources` in `out` and writes `MANIFEST.json`.
pub fn build(layout: Layout, sources: &Sources, out: &Path) -> Result<Manifest> {
    let planned = plan(layout, sources)?;
    for p in &planned {
        refuse_overwrite(&p.bytes, &out.join(&p.file))?;
    }
    let mut files = Vec::with_capacity(planned.len());
    for p in planned {
        let dest = out.join(&p.file);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        crate::io::write_atomic(&dest, &p.bytes)?;
        let (run, config_hash) = match p.run {
            Some(r) => (Some(r.name), Some(r.config_hash)),
            None => (None, None),
        };
        files.push(Entry {
            file: p.file,
            source: p.source,
            run,
            config_hash,
            sha256: crate::io::hex(&Sha256::digest(&p.bytes)),
        });
    }
    let manifest = Manifest {
        layout: Layout::NAMES[layout as usize],
        files,
    };
    crate::io::write_json(&out.join("MANIFEST.json"), &manifest)?;
    Ok(manifest)
}

fn plan(layout: Layout, sources: &Sources) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    match layout {
        Layout::Project => {
            let run = finished_run(&sources.runs, &sources.run)?;
            planned.push(weights(&run, "best.pt")?);
            planned.push(run_file(&run, "config.toml", "config.toml")?);
        }
        Layout::Transfer => {
            for run in transfer_runs(&sources.runs, &sources.suffix)? {
                let name = dir_name(&run.path);
                let handed_in = name.strip_suffix(sources.suffix.as_str()).unwrap_or(&name);
                let dir = PathBuf::from("saved_models").join(handed_in);
                planned.push(weights(&run, dir.join("model_checkpoint.pt"))?);
                planned.extend(logs(&run, &dir.join("logs"))?);
            }
        }
        Layout::Mlops => {
            let run = finished_run(&sources.runs, &sources.run)?;
            planned.push(weights(&run, "checkpoints/best_model.pth")?);
            planned.push(run_file(&run, "model.onnx", "exports/model.onnx")?);
            let pointer = crate::monitor::retrain::deployed_pointer(&sources.runs)?;
            // A promoted candidate is the retrained model; the parent itself is not.
            if let Some(p) = pointer.filter(|p| dir_name(&p.run) != sources.run) {
                let retrained = finished_run(&sources.runs, &dir_name(&p.run))?;
                planned.push(weights(&retrained, "checkpoints/model_retrained.pth")?);
            }
            if let Some(log) = &sources.prediction_log {
                planned.push(plain(log, "logs/predictions.csv")?);
            }
        }
        Layout::Report => {
            let run = finished_run(&sources.runs, &sources.run)?;
            planned.push(weights(&run, "artifacts/best.ckpt")?);
            let config = run.config()?;
            planned.push(Planned {
                file: "configs/config.yaml".into(),
                source: run.file("config.toml"),
                bytes: config.to_yaml().into_bytes(),
                run: Some(Provenance {
                    name: dir_name(&run.path),
                    config_hash: config.hash(),
                }),
            });
            for other in finished_runs_with_events(&sources.runs)? {
                let dir = PathBuf::from("runs").join(dir_name(&other.path));
                planned.extend(logs(&other, &dir)?);
            }
        }
    }
    if let Some(notebook) = &sources.notebook {
        let name = notebook.file_name().unwrap_or_default();
        planned.push(plain(notebook, name)?);
    }
    Ok(planned)
}

/// A finished run of `root`, or an error saying what to run.
fn finished_run(root: &Path, name: &str) -> Result<RunDir> {
    let run = RunDir::at(root.join(name));
    if !run.is_finished() {
        return Err(Error::data(&run.path, "not a finished run (meta.json must say status finished)")
            .with_hint(format!("train it first (`lab train … --name {name}`, or `--resume` an unfinished one), or name another with --run")));
    }
    Ok(run)
}

fn provenance(run: &RunDir) -> Result<Provenance> {
    Ok(Provenance {
        name: dir_name(&run.path),
        config_hash: run.config()?.hash(),
    })
}

/// The file at `source`, handed in as `file`.
fn read(source: PathBuf, file: impl Into<PathBuf>, run: Option<Provenance>) -> Result<Planned> {
    let bytes = std::fs::read(&source).map_err(|e| Error::io(&source, e))?;
    Ok(Planned {
        file: file.into(),
        source,
        bytes,
        run,
    })
}

/// The run's best weights as a PyTorch file at `file`.
fn weights(run: &RunDir, file: impl Into<PathBuf>) -> Result<Planned> {
    read(
        run.pytorch_checkpoint_or_convert()?,
        file,
        Some(provenance(run)?),
    )
}

/// The run's TensorBoard event files, handed in under `dir`.
fn logs(run: &RunDir, dir: &Path) -> Result<Vec<Planned>> {
    let about = provenance(run)?;
    files_in(&run.file("logs"))?
        .into_iter()
        .map(|log| {
            let file = dir.join(log.file_name().unwrap_or_default());
            read(log, file, Some(about.clone()))
        })
        .collect()
}

fn run_file(run: &RunDir, name: &str, file: &str) -> Result<Planned> {
    let source = run.file(name);
    if !source.is_file() {
        return Err(
            Error::data(&source, "missing from the run").with_hint(match name {
                "model.onnx" => "export it: `lab export --run <run> --out <run>/model.onnx`",
                _ => "the run directory is incomplete: retrain it with --force",
            }),
        );
    }
    read(source, file, Some(provenance(run)?))
}

fn plain(source: &Path, file: impl Into<PathBuf>) -> Result<Planned> {
    if !source.is_file() {
        return Err(Error::data(source, "file not found"));
    }
    read(source.to_path_buf(), file, None)
}

/// The transfer-learning assignment's runs under `root` (names ending in `suffix`),
/// each finished.
fn transfer_runs(root: &Path, suffix: &str) -> Result<Vec<RunDir>> {
    let mut runs = vec![
        finished_run(root, &format!("cnn_scratch{suffix}"))?,
        finished_run(root, &format!("baseline_pretrained{suffix}"))?,
    ];
    let tuned = tuned_variant_dirs(root, suffix);
    if tuned.is_empty() {
        return Err(Error::data(root, "no tuned_variant_* run")
            .with_hint("train the tuned variants: `lab grid --config configs/transfer.toml`"));
    }
    for path in tuned {
        runs.push(finished_run(root, &dir_name(&path))?);
    }
    Ok(runs)
}

/// `tuned_variant_*` folders of `root` under the profile with run-name `suffix`, sorted
/// (a plain name never ends in another profile's suffix).
pub(super) fn tuned_variant_dirs(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let profiled = |name: &str| match suffix {
        "" => !name.ends_with("-smoke") && !name.ends_with("-full"),
        s => name.ends_with(s),
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = dir_name(p);
            name.starts_with("tuned_variant_") && profiled(&name)
        })
        .collect();
    dirs.sort();
    dirs
}

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e).with_hint("the run has no TensorBoard logs: retrain it"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !dir_name(p).starts_with('.'))
        .collect();
    files.sort();
    Ok(files)
}

/// Finished runs directly under `root` that logged TensorBoard events, by name.
fn finished_runs_with_events(root: &Path) -> Result<Vec<RunDir>> {
    let mut runs: Vec<RunDir> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok().map(|e| RunDir::at(e.path())))
        .filter(|r| r.is_finished() && r.file("logs").is_dir())
        .collect();
    runs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(runs)
}

/// An existing destination is fine only when it already holds these bytes.
fn refuse_overwrite(bytes: &[u8], dest: &Path) -> Result<()> {
    if !dest.exists() {
        return Ok(());
    }
    let same = dest.is_file() && std::fs::read(dest).map_err(|e| Error::io(dest, e))? == bytes;
    if same {
        return Ok(());
    }
    Err(Error::data(
        dest,
        "already exists with other content; nothing was written",
    )
    .with_hint("give an empty --out folder, or remove that file"))
}

pub(super) fn dir_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
