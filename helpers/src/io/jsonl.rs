//! JSON Lines files: append-only logs (predictions, alerts, deployment decisions).
//!
//! JSON Lines because appending one line is the only write a server needs (no file to
//! rewrite, no header), every line is readable on its own, and pandas reads it with
//! `pd.read_json(path, lines=True)`. A process killed mid-write leaves a torn last line:
//! readers skip unparseable lines and count them ([`JsonlRead::skipped`]), and writers
//! start on a fresh line when the file does not end with one, so a torn line never
//! swallows the next record.
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Records read back from a JSONL file.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonlRead<T> {
    /// The records that parsed, in file order.
    pub records: Vec<T>,
    /// Lines that did not parse (a torn last line after a crash, or damage), skipped.
    pub skipped: usize,
}

/// Appends `records` to `path` (created with its folder if missing), one JSON object per
/// line, in a single write, then flushes. If the file does not end with a newline (a torn
/// last line), a newline is written first.
pub fn append_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::data(path, format!("record not serialisable: {e}")))?;
        text += &line;
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut file = open_append(path)?;
    let io = |e| Error::io(path, e);
    file.write_all(text.as_bytes()).map_err(io)?;
    file.flush().map_err(io)
}

/// Opens `path` (created if missing) for appending lines: after a torn last line (a
/// writer killed mid-line) it first writes a newline, so that what is appended next
/// starts a whole line.
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    let io = |e| Error::io(path, e);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io)?;
    if !ends_with_newline(&mut file).map_err(io)? {
        file.write_all(b"\n").map_err(io)?;
    }
    Ok(file)
}

/// True for an empty file or one whose last byte is `\n`.
fn ends_with_newline(file: &mut std::fs::File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Reads every record of a JSONL file; blank lines are ignored, unparseable ones skipped
/// and counted. A missing file reads as empty (nothing logged yet).
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<JsonlRead<T>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let (mut records, mut skipped) = (Vec::new(), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(_) => skipped += 1,
        }
    }
    Ok(JsonlRead { records, skipped })
}

/// Seconds since the Unix epoch, and the same instant as ISO 8601 UTC text.
pub fn now() -> (f64, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (secs, iso_utc(secs))
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for Unix seconds (proleptic Gregorian calendar).
pub fn iso_utc(unix_seconds: f64) -> String {
    let millis = (unix_seconds * 1000.0).round() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}
