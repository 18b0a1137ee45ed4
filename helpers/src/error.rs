//! The library's error type: every variant says what was expected, what was found,
//! where (file, key, step), and, where it helps, what to do about it.
use std::path::{Path, PathBuf};

/// Errors raised by `helpers`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    /// (`error` is not the `source` of the chain: its text is already in the message,
    /// and a chain would print it again with the OS's error number.)
    #[error("{path}: {what}{hint}", path = path.display(), what = io_text(error), hint = hint_suffix(hint))]
    Io {
        path: PathBuf,
        error: std::io::Error,
        hint: Option<String>,
    },
    /// A data file exists but its content is not what its format promises.
    #[error("{path}: {reason}{hint}", path = path.display(), hint = hint_suffix(hint))]
    Data {
        path: PathBuf,
        reason: String,
        hint: Option<String>,
    },
    /// A configuration value is missing, unknown or out of range.
    #[error("config key `{key}`: {reason}")]
    Config { key: String, reason: String },

    /// A file that does not parse, at 1-based line and column.
    #[error("{source_name}: line {line}, column {column}: {reason}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A function was called with an argument it cannot work with (a layer the ONNX
    /// exporter does not know, an unknown name, an empty input).
    #[error("argument `{name}`: {reason}")]
    Argument { name: String, reason: String },
    /// A tensor had another shape than the operation needs.
    #[error("{op}: expected shape {expected}, got {got:?}")]
    Shape {
        op: &'static str,
        expected: String,
        got: Vec<i64>,
    },
    /// Training produced a NaN or infinite loss; the best checkpoint, if one was
    /// written (`best_epoch` > 0), is kept.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step} (lr {lr:.3e}); {kept} — lower the learning rate (train.lr) or clip gradients (train.grad_clip)", kept = kept_checkpoint(*best_epoch))]
    NonFinite {
        epoch: usize,
        step: usize,
        loss: f64,
        lr: f64,
        /// Epoch of the best checkpoint so far (0: none).
        best_epoch: usize,
    },
    /// A run directory does not match what the caller asked for.
    #[error("run {path}: {reason}", path = path.display())]
    Run { path: PathBuf, reason: String },
    /// A figure could not be drawn.
    #[error("plot `{what}`: {reason}")]
    Plot { what: String, reason: String },
    /// A statistical test got fewer observations than it needs to say anything
    /// (`got` is the smaller sample's size, or its total count for count data).
    #[error("{test}: needs at least {needed} observations in each sample, got {got} — wait for more data before testing")]
    TooFewSamples {
        test: &'static str,
        needed: usize,
        got: usize,
    },
    /// An error from libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    /// An error from polars while building a table.
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The OS's sentence for an I/O error, without its "(os error N)" suffix.
fn io_text(source: &std::io::Error) -> String {
    let text = source.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// What to do about the I/O errors a user can fix; every write is atomic, so what was
/// written before is intact.
fn io_hint(source: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind::*;
    let fix = match source.kind() {
        StorageFull | FileTooLarge | QuotaExceeded => "free disk space (or raise the file-size limit)",
        ReadOnlyFilesystem | PermissionDenied => "give this user access to it (a runs folder must be writable; --root or LAB_RUNS names another)",
        _ => return None,
    };
    Some(format!(
        "{fix}, then run the command again (`lab train --resume` continues a run); files written before are intact"
    ))
}

/// What a non-finite loss leaves to score.
fn kept_checkpoint(best_epoch: usize) -> String {
    match best_epoch {
        0 => "no checkpoint was written before it, so there is nothing to score; train again with --force".into(),
        e => format!("the best checkpoint (epoch {e}) is kept and can be scored (`lab evaluate` for an image run)"),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default()
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            hint: io_hint(&source),
            error: source,
        }
    }

    /// A content error in the data file `path`.
    pub fn data(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
            hint: None,
        }
    }

    /// A configuration error on `key`.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// An unusable argument `name` of a library call.
    pub fn argument(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Argument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Adds what to do about it (for example, which setup step to rerun).
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Io { hint, .. } | Error::Data { hint, .. } => *hint = Some(text.into()),
            _ => {}
        }
        self
    }
}

/// Checks that config value `key` is finite and > 0.
pub(crate) fn positive(key: &str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be > 0, found {v}")))
    }
}

/// Checks that config value `key` lies in [lo, hi) (or [lo, hi] when `hi_inclusive`).
pub(crate) fn in_range(key: &str, v: f64, lo: f64, hi: f64, hi_inclusive: bool) -> Result<()> {
    let ok = v >= lo && (v < hi || (hi_inclusive && v <= hi)) && v.is_finite();
    if ok {
        return Ok(());
    }
    let close = if hi_inclusive { ']' } else { ')' };
    Err(Error::config(
        key,
        format!("must be in [{lo}, {hi}{close}, found {v}"),
    ))
}
