//! Pretrained weights into a [`Model`]: a state_dict is loaded by PyTorch's parameter
//! names ([`load_state_dict`]), with every missing key, unexpected key and shape
//! difference reported at once; the classifier is re-initialised when the class count
//! differs.
use super::Model;
use crate::render::Table;
use crate::weights::{read_file, resolve};
use crate::{Error, Result};
use polars::prelude::Column;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What happened to each tensor when a state_dict was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Copied into the model variable of the same name.
    Loaded,
    /// The classifier, left freshly initialised: the file's has another shape
    /// (another class count).
    NewHead,
    /// In the file but not needed (`num_batches_tracked` counters).
    Ignored,
    /// A variable of the model alone (the input adapter's data statistics).
    ModelOnly,
}

/// The mapping from file keys to model variables after a load.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub file: PathBuf,
    /// (name, shape, fate), sorted by name.
    pub entries: Vec<(String, Vec<i64>, Fate)>,
}

impl LoadReport {
    /// Number of tensors with this fate.
    pub fn count(&self, fate: &Fate) -> usize {
        self.entries.iter().filter(|(_, _, f)| f == fate).count()
    }

    /// One row per layer (the name up to its block index): tensors, values and fate —
    /// the mapping table, short enough to read.
    pub fn table(&self) -> Result<Table> {
        let mut groups: BTreeMap<(usize, String), (usize, i64, String)> = BTreeMap::new();
        for (order, (name, shape, fate)) in self.entries.iter().enumerate() {
            let layer = layer_of(name);
            let first = groups
                .keys()
                .find(|(_, l)| *l == layer)
                .map(|(o, _)| *o)
                .unwrap_or(order);
            let g = groups.entry((first, layer)).or_default();
            g.0 += 1;
            g.1 += shape.iter().product::<i64>();
            let fate = format!("{fate:?}");
            if !g.2.contains(&fate) {
                g.2 = if g.2.is_empty() {
                    fate
                } else {
                    format!("{}, {fate}", g.2)
                };
            }
        }
        let rows: Vec<_> = groups.into_iter().collect();
        Table::from_columns(
            format!(
                "State_dict → model ({}): {} loaded, {} new head, {} ignored, {} model-only",
                self.file.file_name().unwrap_or_default().to_string_lossy(),
                self.count(&Fate::Loaded),
                self.count(&Fate::NewHead),
                self.count(&Fate::Ignored),
                self.count(&Fate::ModelOnly)
            ),
            vec![
                Column::new(
                    "layer".into(),
                    rows.iter().map(|((_, l), _)| l.clone()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "tensors".into(),
                    rows.iter().map(|(_, g)| g.0 as u64).collect::<Vec<_>>(),
                ),
                Column::new(
                    "values".into(),
                    rows.iter().map(|(_, g)| g.1).collect::<Vec<_>>(),
                ),
                Column::new(
                    "fate".into(),
                    rows.iter().map(|(_, g)| g.2.clone()).collect::<Vec<_>>(),
                ),
            ],
        )
    }
}

/// `_blocks.3._bn1.weight` → `_blocks.3`; `layer2.0.conv1.weight` → `layer2.0`;
/// `_conv_stem.weight` → `_conv_stem`.
fn layer_of(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [a, b, _, ..] if b.parse::<usize>().is_ok() => format!("{a}.{b}"),
        [a, ..] => a.to_string(),
        [] => String::new(),
    }
}

/// Resolves `spec`, reads it and loads it into `model` (see [`load_state_dict`]).
pub fn load_pretrained(model: &Model, spec: &str) -> Result<LoadReport> {
    let path = resolve(spec)?;
    let named = read_file(&path)?;
    load_state_dict(model, named, &path)
}

/// Copies a state_dict into `model` by name. Every model variable must be filled except
/// the classifier when the file's has another shape (it stays freshly initialised for
/// this dataset's classes) and the input adapter's statistics; every file tensor must
/// be used except `num_batches_tracked`. Otherwise nothing is copied and the error lists
/// all missing keys, unexpected keys and shape differences.
pub fn load_state_dict(
    model: &Model,
    named: Vec<(String, Tensor)>,
    path: &Path,
) -> Result<LoadReport> {
    let vars = model.vs.variables();
    let file: HashMap<String, Tensor> = named.into_iter().collect();
    let head = model.head_layer_names();
    let is_head = |n: &str| head.iter().any(|h| n.starts_with(&format!("{h}.")));
    let mut entries = Vec::new();
    let (mut missing, mut shapes) = (Vec::new(), Vec::new());
    for (name, var) in &vars {
        let shape = var.size();
        if name.starts_with("adapt.") {
            entries.push((name.clone(), shape, Fate::ModelOnly));
            continue;
        }
        match file.get(name) {
            None if is_head(name) => entries.push((name.clone(), shape, Fate::NewHead)),
            None => missing.push(name.clone()),
            Some(t) if t.size() == shape => entries.push((name.clone(), shape, Fate::Loaded)),
            Some(_) if is_head(name) => entries.push((name.clone(), shape, Fate::NewHead)),
            Some(t) => shapes.push(format!("{name}: file {:?}, model {:?}", t.size(), shape)),
        }
    }
    let mut unexpected = Vec::new();
    for (name, t) in &file {
        if vars.contains_key(name) {
            continue;
        }
        if name.ends_with("num_batches_tracked") {
            entries.push((name.clone(), t.size(), Fate::Ignored));
        } else {
            unexpected.push(name.clone());
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && shapes.is_empty()) {
        return Err(mismatch_error(
            path,
            &mut missing,
            &mut unexpected,
            &mut shapes,
            &vars,
        ));
    }
    tch::no_grad(|| {
        for (name, _, fate) in &entries {
            if *fate == Fate::Loaded {
                let mut dst = vars[name].shallow_clone();
                dst.copy_(&file[name].to_device(dst.device()).to_kind(dst.kind()));
            }
        }
    });
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(LoadReport {
        file: path.to_path_buf(),
        entries,
    })
}

/// The error of a state_dict that does not fit: counts and the first names of each kind.
fn mismatch_error(
    path: &Path,
    missing: &mut [String],
    unexpected: &mut [String],
    shapes: &mut [String],
    vars: &HashMap<String, Tensor>,
) -> Error {
    // Names grouped by layer: a wrong architecture shows as two disjoint layer lists.
    let list = |items: &mut [String]| {
        items.sort();
        let mut layers: Vec<String> = items.iter().map(|n| layer_of(n)).collect();
        layers.dedup();
        let shown = layers.len().min(24);
        let more = if layers.len() > shown { ", …" } else { "" };
        format!(
            "{} in {} layers [{}{more}]",
            items.len(),
            layers.len(),
            layers[..shown].join(", ")
        )
    };
    let mut example: Vec<&String> = vars.keys().filter(|k| !k.starts_with("adapt.")).collect();
    example.sort();
    Error::data(
        path,
        format!(
            "the state_dict does not fit the model — missing keys: {}; unexpected keys: {}; shape differences: {} {:?}",
            list(missing),
            list(unexpected),
            shapes.len(),
            shapes.iter().take(8).collect::<Vec<_>>()
        ),
    )
    .with_hint(format!(
        "the file holds weights of another architecture; model.arch expects names like {:?}",
        example.iter().take(3).collect::<Vec<_>>()
    ))
}
