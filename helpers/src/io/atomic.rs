//! Writing files so that a crash never leaves a half-written one behind: the one
//! place that does the temp-file, fsync, rename dance ([`replace_with`]).
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Replaces `path` atomically with the file `write` produces at the temp path it is
/// given (in the same folder, so the rename stays on one file system): the temp file
/// is fsynced, then renamed over `path`, then the folder is fsynced so the rename itself
/// survives a power cut (a kill needs only the rename); on any failure the temp file is
/// removed. A crash leaves either the old file or the new one, never a torn one.
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
        synced
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        // Best effort: some file systems refuse fsync on a folder; the new file is in
        // place either way, only its durability across a power cut is at stake.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    result
}

/// Writes `bytes` to `path` atomically ([`replace_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |tmp| {
        // Errors name the file being replaced, not its hidden temp file.
        let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(path, e))?;
        f.write_all(bytes).map_err(|e| Error::io(path, e))
    })
}

/// Like [`write_atomic`] for text.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())
}
