//! Delimited text (RFC 4180 CSV, and TSV): quoted fields, doubled quotes, line breaks
//! inside quotes, CRLF. Our own reader rather than polars' so that every error can name
//! the file, the line and the column a user has to fix.
use crate::{Error, Result};
use std::path::Path;

/// A header and its rows of raw fields, each row with the 1-based line it starts on.
#[derive(Debug, Clone)]
pub struct Records {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub lines: Vec<usize>,
}

/// Reads `path`; `.tsv` and `.tab` files are tab-separated, everything else by commas.
/// `skip_lines` lines before the header are ignored (a TMY3 file's station line).
pub fn read(path: &Path, skip_lines: usize) -> Result<Records> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!(
                "not UTF-8 text (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
        .with_hint("save the file as UTF-8")
    })?;
    let tab = matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("tsv" | "tab")
    );
    parse(&text, if tab { '\t' } else { ',' }, skip_lines, path)
}

/// Parses `text` (see [`read`]); `path` only names the source in errors.
pub fn parse(text: &str, delimiter: char, skip_lines: usize, path: &Path) -> Result<Records> {
    let mut records = split_records(text, delimiter, path)?;
    let lines_skipped = records.iter().take(skip_lines).count();
    records.drain(..lines_skipped);
    let mut rows = records.into_iter();
    let (_, header) = rows
        .next()
        .ok_or_else(|| Error::data(path, "empty file: expected a header line"))?;
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    check_header(&header, path)?;
    let (mut out, mut lines) = (Vec::new(), Vec::new());
    for (line, fields) in rows {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue; // a blank line
        }
        if fields.len() != header.len() {
            return Err(Error::data(
                path,
                format!(
                    "line {line}: {} fields, the header has {}",
                    fields.len(),
                    header.len()
                ),
            )
            .with_hint("check the delimiter and quoting of that line"));
        }
        out.push(fields);
        lines.push(line);
    }
    Ok(Records {
        header,
        rows: out,
        lines,
    })
}

fn check_header(header: &[String], path: &Path) -> Result<()> {
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::data(
                path,
                format!("header column {} has no name", i + 1),
            ));
        }
        if header[..i].contains(name) {
            return Err(Error::data(
                path,
                format!("header names column `{name}` twice"),
            ));
        }
    }
    Ok(())
}

/// The records of `text` as (starting line, fields).
fn split_records(text: &str, delimiter: char, path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start_line) = (1usize, 1usize);
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, c) if c == delimiter => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(Error::data(
            path,
            format!("line {start_line}: a quoted field is never closed"),
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

/// Writes `header` and `rows` as RFC 4180 CSV (fields with a comma, quote or line break
/// quoted), atomically.
pub fn write(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let line = |fields: &[String]| {
        let quoted: Vec<String> = fields.iter().map(|f| quote(f)).collect();
        quoted.join(",") + "\n"
    };
    let mut text = line(header);
    rows.iter().for_each(|r| text += &line(r));
    crate::io::write_text_atomic(path, &text)
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Records> {
        parse(text, ',', 0, Path::new("t.csv"))
    }

    #[test]
    fn quotes_escapes_crlf_and_multiline_fields() {
        let r = p("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\"two\nlines\",3\n").unwrap();
        assert_eq!(r.header, ["a", "b"]);
        assert_eq!(r.rows[0], ["x, y", "say \"hi\""]);
        assert_eq!(r.rows[1], ["two\nlines", "3"]);
        assert_eq!(r.lines, [2, 3]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = p("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("line 3: 1 fields, the header has 2"), "{e}");
        let e = p("a,b\n\"1,2\n").unwrap_err().to_string();
        assert!(e.contains("line 2: a quoted field is never closed"), "{e}");
        let e = p("a,a\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("`a` twice"), "{e}");
    }

    #[test]
    fn written_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let rows = vec![
            vec!["a, b".to_string(), "say \"x\"".to_string()],
            vec!["1".into(), "".into()],
        ];
        write(&path, &["h1".into(), "h2".into()], &rows).unwrap();
        assert_eq!(read(&path, 0).unwrap().rows, rows);
    }

    #[test]
    fn skips_leading_lines_and_blank_lines() {
        let r = parse("station\nx\n1\n\n2", ',', 1, Path::new("t")).unwrap();
        assert_eq!(r.rows, [["1"], ["2"]]);
        assert_eq!(r.lines, [3, 5]);
    }
}
