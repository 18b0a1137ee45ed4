//! [`Table`]: a polars DataFrame that renders as an HTML table in the notebook (evcxr's
//! display protocol), survives `nbconvert --to html`, and saves itself as CSV or HTML.
use super::{escape, evcxr_emit};
use crate::{Error, Result};
use polars::prelude::*;
use std::fmt;
use std::path::Path;

/// A titled DataFrame that displays itself as HTML.
#[derive(Debug, Clone)]
pub struct Table {
    /// Caption shown above the table.
    pub title: String,
    /// The data.
    pub df: DataFrame,
}

impl Table {
    /// Wraps a DataFrame.
    pub fn new(title: impl Into<String>, df: DataFrame) -> Self {
        Table {
            title: title.into(),
            df,
        }
    }

    /// Builds a table from named columns (all the same length).
    pub fn from_columns(title: impl Into<String>, columns: Vec<Column>) -> Result<Self> {
        Ok(Table::new(title, DataFrame::new_infer_height(columns)?))
    }

    /// Builds a table of text cells from rows under `headers` (a short row is padded
    /// with empty cells, a long one cut).
    pub fn from_rows(
        title: impl Into<String>,
        headers: &[&str],
        rows: Vec<Vec<String>>,
    ) -> Result<Self> {
        let columns = headers
            .iter()
            .enumerate()
            .map(|(j, h)| {
                let cells: Vec<String> = rows
                    .iter()
                    .map(|r| r.get(j).cloned().unwrap_or_default())
                    .collect();
                Column::new((*h).into(), cells)
            })
            .collect();
        Table::from_columns(title, columns)
    }

    /// A two-column table of named values.
    pub fn from_pairs(title: impl Into<String>, pairs: &[(&str, String)]) -> Result<Self> {
        let rows = pairs
            .iter()
            .map(|(k, v)| vec![k.to_string(), v.clone()])
            .collect();
        Table::from_rows(title, &["", "value"], rows)
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.df.height()
    }

    /// The cell at (`row`, `column name`) as display text.
    pub fn cell(&self, row: usize, column: &str) -> Result<String> {
        let col = self.df.column(column)?;
        Ok(format_value(&col.get(row)?))
    }

    /// A copy sorted by `column`, largest first when `descending`.
    pub fn sorted_by(&self, column: &str, descending: bool) -> Result<Table> {
        let opts = SortMultipleOptions::default().with_order_descending(descending);
        Ok(Table::new(
            self.title.clone(),
            self.df.sort([column], opts)?,
        ))
    }

    /// The table as an HTML fragment (`<table>` with a caption).
    pub fn to_html(&self) -> String {
        let mut html = String::from(
            "<table class=\"lab-table\" style=\"border-collapse:collapse;font-size:0.9em\">\n",
        );
        if !self.title.is_empty() {
            html += &format!(
                "<caption style=\"font-weight:bold;text-align:left\">{}</caption>\n",
                escape(&self.title)
            );
        }
        html += "<thead><tr>";
        for c in self.df.columns() {
            html += &format!("<th style=\"text-align:right;padding:2px 8px;border-bottom:1px solid #888\">{}</th>", escape(c.name()));
        }
        html += "</tr></thead>\n<tbody>\n";
        for row in 0..self.df.height() {
            html += "<tr>";
            for c in self.df.columns() {
                let text = c.get(row).map(|v| format_value(&v)).unwrap_or_default();
                html += &format!(
                    "<td style=\"text-align:right;padding:2px 8px\">{}</td>",
                    escape(&text)
                );
            }
            html += "</tr>\n";
        }
        html + "</tbody></table>"
    }

    /// The table as CSV (RFC 4180 quoting), with full-precision numbers.
    pub fn to_csv(&self) -> String {
        let cols = self.df.columns();
        let mut out = cols
            .iter()
            .map(|c| csv_field(c.name()))
            .collect::<Vec<_>>()
            .join(",")
            + "\n";
        for row in 0..self.df.height() {
            let fields: Vec<String> = cols
                .iter()
                .map(|c| {
                    c.get(row)
                        .map(|v| csv_field(&raw_value(&v)))
                        .unwrap_or_default()
                })
                .collect();
            out += &(fields.join(",") + "\n");
        }
        out
    }

    /// Saves as `.csv` or `.html` (chosen by the extension), atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => crate::io::write_text_atomic(path, &self.to_csv()),
            Some("html") => crate::io::write_text_atomic(path, &self.to_html()),
            other => Err(Error::data(
                path,
                format!("cannot save a table as {other:?}: use .csv or .html"),
            )),
        }
    }

    /// evcxr's hook: renders the table as HTML in the notebook.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.to_html());
    }
}

/// Plain-text rendering for terminals (`lab`): every row, columns right-aligned.
impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.df.columns();
        let cells: Vec<Vec<String>> = cols
            .iter()
            .map(|c| {
                let mut v = vec![c.name().to_string()];
                v.extend(
                    (0..self.df.height())
                        .map(|r| c.get(r).map(|x| format_value(&x)).unwrap_or_default()),
                );
                v
            })
            .collect();
        let widths: Vec<usize> = cells
            .iter()
            .map(|c| c.iter().map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        writeln!(f, "{}", self.title)?;
        for row in 0..=self.df.height() {
            let line: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, &w)| format!("{:>w$}", c[row]))
                .collect();
            writeln!(f, "{}", line.join("  "))?;
        }
        Ok(())
    }
}

/// Human-facing text of a value: floats with 4 decimals, strings unquoted.
fn format_value(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::Float64(x) => format_float(*x),
        AnyValue::Float32(x) => format_float(*x as f64),
        _ => raw_value(v),
    }
}

fn format_float(x: f64) -> String {
    if x.is_finite() && x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// Exact text of a value (strings unquoted).
fn raw_value(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        // Shortest text that parses back to the same number (polars' Display rounds).
        AnyValue::Float64(x) => x.to_string(),
        AnyValue::Float32(x) => x.to_string(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table::from_columns(
            "Scores <test>",
            vec![
                Column::new("model".into(), ["cnn, small", "resnet"]),
                Column::new("accuracy".into(), [0.91234567f64, 0.5]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn html_escapes_and_formats() {
        let html = sample().to_html();
        assert!(html.contains(
            "<caption style=\"font-weight:bold;text-align:left\">Scores &lt;test&gt;</caption>"
        ));
        assert!(
            html.contains("<td style=\"text-align:right;padding:2px 8px\">0.9123</td>"),
            "{html}"
        );
        assert!(
            html.contains(">cnn, small<"),
            "strings are not quoted: {html}"
        );
    }

    #[test]
    fn csv_quotes_and_keeps_precision() {
        let csv = sample().to_csv();
        assert_eq!(
            csv,
            "model,accuracy\n\"cnn, small\",0.91234567\nresnet,0.5\n"
        );
    }

    #[test]
    fn text_shows_every_row_aligned() {
        let text = sample().to_string();
        assert_eq!(
            text,
            "Scores <test>\n     model  accuracy\ncnn, small    0.9123\n    resnet    0.5000\n"
        );
    }

    #[test]
    fn sorts_descending() -> Result<()> {
        let t = sample().sorted_by("accuracy", false)?;
        assert_eq!(t.cell(0, "model")?, "resnet");
        Ok(())
    }
}
