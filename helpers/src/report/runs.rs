//! The report's comparison outside Jupyter: every finished run under a folder becomes a
//! row of the comparison table, its curves join the overlaid plots, and everything is
//! written as CSV, SVG and one standalone `index.html` (`lab report --runs saved_models`).
use crate::experiment::{compare_bars, compare_curves, comparison_table, RunSummary};
use crate::render::{escape, Table};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// What [`build`] or [`write`] wrote.
#[derive(Debug)]
pub struct RunsReport {
    pub runs: Vec<RunSummary>,
    pub table: Table,
    pub files: Vec<PathBuf>,
}

/// Finished runs directly under `root`, sorted by name (unfinished ones are skipped).
pub fn finished_runs(root: &Path) -> Result<Vec<RunSummary>> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        Error::io(root, e)
            .with_hint("train a run first, e.g. `lab train --config configs/fashion_mnist.toml`")
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    dirs.sort();
    let mut runs = Vec::new();
    for dir in dirs {
        if crate::run::RunDir::at(&dir).is_finished() && dir.join("metrics.json").is_file() {
            runs.push(RunSummary::load(&dir)?);
        }
    }
    Ok(runs)
}

/// Writes the comparison table (HTML in the page, CSV beside it), overlaid validation
/// curves and test-metric bars of every finished run under `root` into `out`.
pub fn build(root: &Path, out: &Path) -> Result<RunsReport> {
    let runs = finished_runs(root)?;
    if runs.is_empty() {
        return Err(Error::data(
            root,
            "no finished run (a folder with meta.json, status finished, and metrics.json)",
        ));
    }
    let table = comparison_table(&runs)?;
    write(&format!("Runs in {}", root.display()), runs, table, out)
}

/// Writes `table` (a sweep's, or the comparison of [`build`]) as CSV and, with the
/// runs' overlaid curves and metric bars, as one page titled `title` into `out`.
pub fn write(title: &str, runs: Vec<RunSummary>, table: Table, out: &Path) -> Result<RunsReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let figures = [compare_curves(&runs)?, compare_bars(&runs)?];
    let mut files = vec![out.join("comparison.csv")];
    table.save(&files[0])?;
    for f in &figures {
        files.push(f.save_in(out)?);
    }
    let index = out.join("index.html");
    crate::io::write_atomic(&index, page(title, &table, &figures).as_bytes())?;
    files.push(index);
    Ok(RunsReport { runs, table, files })
}

/// A standalone page: the table and the figures inline, no external resource.
fn page(title: &str, table: &Table, figures: &[crate::plot::Figure]) -> String {
    let svgs: String = figures
        .iter()
        .map(|f| format!("<figure>{}</figure>\n", f.svg))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font:14px sans-serif;margin:2rem}} table{{border-collapse:collapse}} td,th{{padding:2px 8px;text-align:right}} th{{border-bottom:1px solid #888}}</style></head>\n<body><h1>{t}</h1>\n{table}\n{svgs}</body></html>\n",
        t = escape(title),
        table = table.to_html(),
    )
}
