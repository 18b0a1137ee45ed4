//! File plumbing every other module shares: atomic writes ([`write_atomic`]), JSON
//! files, checksums, the Python environment `scripts/setup` installs, and two binary
//! formats written by hand (`.npy`, the protobuf wire format).
mod atomic;
pub mod checksum;
pub mod csv;
pub mod jsonl;
pub mod npy;
pub(crate) mod protobuf;
pub mod tensors;
pub mod venv;

pub use atomic::{replace_with, write_atomic, write_text_atomic};
pub use checksum::{hex, sha256_file};

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Reads a JSON file into `T`; the error names the file and what did not fit.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, format!("unexpected content: {e}")))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_text_atomic(
        path,
        &serde_json::to_string_pretty(value).expect("serialisable"),
    )
}
