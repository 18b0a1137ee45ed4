//! The TF-IDF + logistic regression reference (`scripts/sklearn_text_reference.py`, run
//! by the setup venv's Python) on a text run's identical split.
use super::data::TextData;
use crate::data::text::TextSet;
use crate::io::venv::run_python_json;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct TfidfReference {
    pub name: String,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub fit_seconds: f64,
    pub features: usize,
    pub sklearn: String,
}

/// Fits the reference on `data`'s training texts of `set` and scores its test texts;
/// `scripts` is the repository's `scripts/` folder, `work` a folder for the texts file.
pub fn tfidf_logistic(
    set: &TextSet,
    data: &TextData,
    scripts: &Path,
    work: &Path,
) -> Result<TfidfReference> {
    let part = |rows: &[usize]| {
        serde_json::json!({
            "texts": rows.iter().map(|&r| &set.texts[r]).collect::<Vec<_>>(),
            "labels": rows.iter().map(|&r| set.labels[r]).collect::<Vec<_>>(),
        })
    };
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let texts = work.join("split_texts.json");
    let body =
        serde_json::json!({ "train": part(&data.split.train), "test": part(&data.split.test) });
    crate::io::write_json(&texts, &body)?;
    let script = scripts.join("sklearn_text_reference.py");
    let result = run_python_json(&script, [&texts]);
    let _ = std::fs::remove_file(&texts);
    result
}
