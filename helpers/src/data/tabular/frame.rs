//! [`Frame`]: a table of named, typed columns read from delimited text — numbers (with
//! missing cells) or categories. Types are inferred; a column that is mostly numbers
//! with a few cells that are not is an error naming the cell, not a silent category.
use crate::io::csv::{self, Records};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Cells read as missing.
const MISSING: [&str; 6] = ["", "NA", "N/A", "NaN", "nan", "null"];

/// Share of parseable cells above which a column is taken as numeric with typos.
const NUMERIC_MAJORITY: f64 = 0.9;

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Missing cells.
    pub fn missing(&self) -> usize {
        match self {
            Column::Numeric(v) => v.iter().filter(|x| x.is_none()).count(),
            Column::Categorical(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }

    fn take(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Column::Categorical(v) => {
                Column::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        }
    }
}

/// Named columns of equal length, with the file and line each row came from.
#[derive(Debug, Clone)]
pub struct Frame {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub source: PathBuf,
    /// 1-based source line of each row.
    pub lines: Vec<usize>,
}

impl Frame {
    /// Reads a CSV (or `.tsv`) file; columns in `categorical` are categories whatever
    /// their cells look like.
    pub fn read(path: impl AsRef<Path>, categorical: &[&str]) -> Result<Frame> {
        let path = path.as_ref();
        Frame::from_records(csv::read(path, 0)?, path, categorical)
    }

    /// Typed columns from raw records (see the module notes for the inference rule).
    pub fn from_records(records: Records, path: &Path, categorical: &[&str]) -> Result<Frame> {
        for name in categorical {
            if !records.header.iter().any(|h| h == name) {
                return Err(unknown_column(path, name, &records.header));
            }
        }
        let columns = (0..records.header.len())
            .map(|c| {
                let forced = categorical.contains(&records.header[c].as_str());
                infer(&records, c, forced, path)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Frame {
            names: records.header,
            columns,
            source: path.to_path_buf(),
            lines: records.lines,
        })
    }

    pub fn height(&self) -> usize {
        self.lines.len()
    }

    /// Position of column `name`; the error lists the columns there are.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| unknown_column(&self.source, name, &self.names))
    }

    pub fn column(&self, name: &str) -> Result<&Column> {
        Ok(&self.columns[self.index(name)?])
    }

    /// Column `name`, which must be numeric.
    pub fn numeric(&self, name: &str) -> Result<&[Option<f64>]> {
        match self.column(name)? {
            Column::Numeric(v) => Ok(v),
            Column::Categorical(_) => Err(Error::data(
                &self.source,
                format!("column `{name}` holds text, a number was expected"),
            )),
        }
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Frame {
        Frame {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            source: self.source.clone(),
            lines: rows.iter().map(|&r| self.lines[r]).collect(),
        }
    }

    /// Only the columns named, in that order.
    pub fn select(&self, names: &[&str]) -> Result<Frame> {
        let idx = names
            .iter()
            .map(|n| self.index(n))
            .collect::<Result<Vec<_>>>()?;
        Ok(Frame {
            names: idx.iter().map(|&i| self.names[i].clone()).collect(),
            columns: idx.iter().map(|&i| self.columns[i].clone()).collect(),
            source: self.source.clone(),
            lines: self.lines.clone(),
        })
    }
}

fn unknown_column(path: &Path, name: &str, names: &[String]) -> Error {
    Error::data(
        path,
        format!("no column `{name}`; the columns are: {}", names.join(", ")),
    )
}

fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

/// Column `c` typed: numeric when every present cell parses, categorical when few do
/// (or when `forced`), an error naming the first bad cell when nearly all do.
fn infer(records: &Records, c: usize, forced: bool, path: &Path) -> Result<Column> {
    let cells = records.rows.iter().map(|r| r[c].trim());
    if forced {
        let values = cells
            .map(|s| (!is_missing(s)).then(|| s.to_string()))
            .collect();
        return Ok(Column::Categorical(values));
    }
    let parsed: Vec<Option<std::result::Result<f64, ()>>> = cells
        .map(|s| (!is_missing(s)).then(|| s.parse::<f64>().map_err(|_| ())))
        .collect();
    let present = parsed.iter().flatten().count();
    let numbers = parsed.iter().flatten().filter(|p| p.is_ok()).count();
    if numbers == present {
        return Ok(Column::Numeric(
            parsed.into_iter().map(|p| p.and_then(|v| v.ok())).collect(),
        ));
    }
    if numbers as f64 > NUMERIC_MAJORITY * present as f64 {
        let row = parsed
            .iter()
            .position(|p| matches!(p, Some(Err(()))))
            .expect("a cell failed to parse");
        let name = &records.header[c];
        return Err(Error::data(
            path,
            format!(
                "line {}, column `{name}`: `{}` is not a number ({numbers} of {present} cells of this column are)",
                records.lines[row], records.rows[row][c].trim()
            ),
        )
        .with_hint(format!(
            "fix the cell (or leave it empty for missing), or declare `{name}` categorical"
        )));
    }
    Ok(Column::Categorical(
        records
            .rows
            .iter()
            .map(|r| (!is_missing(&r[c])).then(|| r[c].trim().to_string()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str, categorical: &[&str]) -> Result<Frame> {
        let path = Path::new("rows.csv");
        Frame::from_records(csv::parse(text, ',', 0, path)?, path, categorical)
    }

    #[test]
    fn infers_numbers_categories_and_missing_cells() {
        let f = frame("x,kind,zip\n1.5,a,01\n,b,02\nNA,a,03\n", &["zip"]).unwrap();
        assert_eq!(f.columns[0], Column::Numeric(vec![Some(1.5), None, None]));
        assert_eq!(f.column("kind").unwrap().missing(), 0);
        assert!(
            matches!(f.column("zip").unwrap(), Column::Categorical(v) if v[0].as_deref() == Some("01"))
        );
    }

    #[test]
    fn a_typo_in_a_numeric_column_names_line_and_column() {
        let mut text = String::from("x\n");
        for i in 0..20 {
            text.push_str(&format!("{i}\n"));
        }
        text.push_str("1O\n");
        let e = frame(&text, &[]).unwrap_err().to_string();
        assert!(
            e.contains("line 22, column `x`: `1O` is not a number"),
            "{e}"
        );
    }

    #[test]
    fn unknown_columns_list_the_real_ones() {
        let e = frame("a,b\n1,2\n", &["c"]).unwrap_err().to_string();
        assert!(e.contains("no column `c`; the columns are: a, b"), "{e}");
    }
}
