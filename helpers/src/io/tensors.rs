//! Named tensors as safetensors files (checkpoints, cached embeddings), written
//! atomically. Loading into existing tensors checks names and shapes and reports every
//! missing key, unexpected key and shape difference at once.
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::Tensor;

/// Writes named tensors to `path` (safetensors), atomically ([`super::replace_with`]).
pub fn write_tensors(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    // safetensors needs contiguous data; channels-last weights are not.
    let contiguous: Vec<(String, Tensor)> = named
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(tch::Device::Cpu).contiguous()))
        .collect();
    super::replace_with(path, |tmp| {
        Tensor::write_safetensors(&contiguous, tmp).map_err(|e| write_error(path, e))
    })
}

/// A failed checkpoint write as the OS error it is (a full disk, a read-only folder), with
/// its hint; libtorch's other errors as they come.
fn write_error(path: &Path, e: tch::TchError) -> Error {
    match e {
        tch::TchError::Io(io) => Error::io(path, io),
        tch::TchError::SafeTensorError {
            err: safetensors::SafeTensorError::IoError(io),
            ..
        } => Error::io(path, io),
        other => Error::data(path, format!("cannot write the checkpoint: {other}")),
    }
}

/// Reads every tensor of a safetensors file.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::data(path, "checkpoint not found")
            .with_hint("train the run first (`lab train`), or check the run directory"));
    }
    let named = Tensor::read_safetensors(path)
        .map_err(|e| Error::data(path, format!("not a readable safetensors file: {e}")))?;
    Ok(named.into_iter().collect())
}

/// Loads a file written by [`write_tensors`] into `vars` (same names and shapes),
/// keeping each variable's device, dtype and memory layout.
pub fn load_named(vars: &[(String, Tensor)], path: &Path) -> Result<()> {
    let named = read_tensors(path)?;
    copy_named(vars, &named, "", path)
}

/// Copies `named[prefix + name]` into each of `vars`, after checking all of them.
pub fn copy_named(
    vars: &[(String, Tensor)],
    named: &HashMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    let vars: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    check_compatible(&vars, named, prefix, path)?;
    tch::no_grad(|| {
        for (name, var) in &vars {
            let src = &named[&format!("{prefix}{name}")];
            let mut dst = var.shallow_clone();
            dst.copy_(&src.to_device(dst.device()).to_kind(dst.kind()));
        }
    });
    Ok(())
}

/// Lists missing keys, unexpected keys and shape differences in one error.
fn check_compatible(
    vars: &HashMap<String, Tensor>,
    named: &HashMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<()> {
    let mut missing: Vec<&String> = vars
        .keys()
        .filter(|n| !named.contains_key(&format!("{prefix}{n}")))
        .collect();
    let mut unexpected: Vec<&String> = named
        .keys()
        .filter(|k| k.starts_with(prefix) && !vars.contains_key(&k[prefix.len()..]))
        .collect();
    let mut shapes: Vec<String> = vars
        .iter()
        .filter_map(|(n, v)| {
            let t = named.get(&format!("{prefix}{n}"))?;
            (t.size() != v.size())
                .then(|| format!("{n}: file {:?}, model {:?}", t.size(), v.size()))
        })
        .collect();
    if missing.is_empty() && unexpected.is_empty() && shapes.is_empty() {
        return Ok(());
    }
    missing.sort();
    unexpected.sort();
    shapes.sort();
    Err(Error::data(
        path,
        format!(
            "weights do not fit the model — missing keys {missing:?}; unexpected keys {unexpected:?}; shape differences {shapes:?}"
        ),
    )
    .with_hint("the file was saved for another architecture or class count; build the model from the run's config.toml"))
}
