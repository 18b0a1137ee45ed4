//! The user's own labelled texts: a CSV/TSV or JSON-lines file with named text and label
//! columns (and optionally a group column), or one folder per class of `.txt` files — the
//! text twin of an ImageFolder. Every error names the file, and the line or key to fix.
use super::{Origin, TextSet};
use crate::data::tabular::Provenance;
use crate::io::csv;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The columns (CSV/TSV) or keys (JSON lines) to read.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub text: &'a str,
    pub label: &'a str,
    /// Values that must stay within one split (an author, a product, a thread).
    pub group: Option<&'a str>,
}

impl TextSet {
    /// The user's CSV or TSV (`.tsv`/`.tab`): see [`TextSet::from_file`].
    pub fn from_csv(
        path: impl AsRef<Path>,
        text: &str,
        label: &str,
        group: Option<&str>,
    ) -> Result<TextSet> {
        TextSet::from_file(path, Columns { text, label, group })
    }

    /// A CSV, TSV or JSON-lines (`.jsonl`/`.ndjson`) file of labelled texts. Empty texts
    /// are skipped and counted; a missing column, a line that is not JSON, a label that is
    /// neither text nor a number stop with the file and line named.
    pub fn from_file(path: impl AsRef<Path>, columns: Columns) -> Result<TextSet> {
        let path = path.as_ref();
        let rows = match extension(path).as_deref() {
            Some("jsonl" | "ndjson") => json_lines(path, columns)?,
            _ => delimited(path, columns)?,
        };
        let rows = rows
            .iter()
            .map(|(t, l, g)| (t.as_str(), l.as_str(), g.as_deref()));
        let name = path.to_string_lossy().into_owned();
        TextSet::from_rows(
            name,
            rows,
            None,
            user_provenance(path),
            Origin::file(path, None)?,
        )
    }

    /// One sub-folder per class under `root`, each holding `.txt` files (UTF-8), one text
    /// per file — classes sorted by folder name, each file its own group. Files of other
    /// extensions are ignored; a non-UTF-8 file stops with its path named.
    pub fn from_folders(root: impl AsRef<Path>) -> Result<TextSet> {
        let root = root.as_ref();
        let mut rows = Vec::new();
        for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
            let class = class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| extension(p).as_deref() == Some("txt"))
            {
                let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    Error::data(
                        &file,
                        format!(
                            "not UTF-8 text (first bad byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                    .with_hint("save the file as UTF-8")
                })?;
                rows.push((text, class.clone(), file.to_string_lossy().into_owned()));
            }
        }
        if rows.is_empty() {
            return Err(Error::data(root, "no `.txt` files in class sub-folders")
                .with_hint("put each class's texts into `<root>/<class>/<name>.txt`"));
        }
        let origin = Origin {
            path: root,
            sha256: folder_digest(&rows),
            official_sha256: None,
        };
        let it = rows
            .iter()
            .map(|(t, l, g)| (t.as_str(), l.as_str(), Some(g.as_str())));
        let name = root.to_string_lossy().into_owned();
        TextSet::from_rows(name, it, None, user_provenance(root), origin)
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

type Row = (String, String, Option<String>);

fn delimited(path: &Path, c: Columns) -> Result<Vec<Row>> {
    let records = csv::read(path, 0)?;
    let column = |name: &str| {
        records
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "no column `{name}`; the columns are: {}",
                        records.header.join(", ")
                    ),
                )
            })
    };
    let (t, l) = (column(c.text)?, column(c.label)?);
    let g = c.group.map(column).transpose()?;
    Ok(records
        .rows
        .iter()
        .map(|r| (r[t].clone(), r[l].clone(), g.map(|g| r[g].clone())))
        .collect())
}

fn json_lines(path: &Path, c: Columns) -> Result<Vec<Row>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!(
                "not UTF-8 text (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |why: String| Error::data(path, format!("line {}: {why}", i + 1));
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON ({e})")))?;
        let field = |key: &str| -> Result<String> {
            match value.get(key) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Ok(v.to_string())
                }
                Some(v) => Err(at(format!("`{key}` is {v}, expected text or a number"))),
                None => Err(at(format!("no key `{key}`"))),
            }
        };
        let group = c.group.map(field).transpose()?;
        rows.push((field(c.text)?, field(c.label)?, group));
    }
    Ok(rows)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

/// A folder has no single file to checksum: the digest covers every (class, text).
fn folder_digest(rows: &[(String, String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (text, class, _) in rows {
        h.update(class.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    crate::io::hex(&h.finalize())
}

fn user_provenance(path: &Path) -> Provenance {
    Provenance {
        source: format!("user data {}", path.display()),
        licence: "see the data's own terms".into(),
        known_biases: vec!["unknown: document who wrote the texts and who labelled them".into()],
    }
}
