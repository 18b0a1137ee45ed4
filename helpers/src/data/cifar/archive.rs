//! The official `.tar.gz` releases: checked by size and SHA-256, extracted entry by
//! entry into a staging folder (no absolute paths, no `..`, no links), then moved into place.
use super::*;

/// Checks an archive's size (when given) and SHA-256; the error names the file, what
/// was expected and what was found.
pub fn verify_archive(path: &Path, sha256: &str, bytes: Option<u64>) -> Result<()> {
    let len = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if let Some(expected) = bytes.filter(|&b| b != len) {
        let why = if len < expected {
            "truncated: an incomplete download"
        } else {
            "not the official file"
        };
        return Err(
            Error::data(path, format!("{len} bytes, expected {expected} ({why})"))
                .with_hint(format!("delete it and download it again from {HOMEPAGE}")),
        );
    }
    let mut hasher = Sha256::new();
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    let actual = crate::io::hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(Error::data(
            path,
            format!("checksum mismatch: SHA-256 is {actual}, expected {sha256}"),
        )
        .with_hint(format!(
            "the file is corrupt or not the official release; delete it and download it again from {HOMEPAGE}"
        )));
    }
    Ok(())
}

/// Unpacks a `.tar.gz` into `dest` and returns what it created there (the top-level
/// entries). Refuses, before writing outside a staging folder, entries with absolute
/// paths or `..`, links of any kind (the official archives hold none, and a link is how
/// a later entry would be written outside `dest`), and device or pipe entries; stops at
/// 1 GiB. Nothing of a refused or truncated archive is left in `dest`, and existing
/// files there are never replaced.
pub fn extract_archive(archive: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dest.join(format!(".extracting-{name}"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let result = unpack_into(archive, &staging).and_then(|()| move_into_place(&staging, dest));
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Writes every entry of the archive under `staging`, checking each first.
pub(super) fn unpack_into(archive: &Path, staging: &Path) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut tar = tar::Archive::new(gz);
    let corrupt = |e: std::io::Error| {
        Error::data(archive, format!("truncated or corrupt archive: {e}"))
            .with_hint(format!("delete it and download it again from {HOMEPAGE}"))
    };
    let mut total = 0u64;
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let refuse = |why: String| {
            Error::data(
                archive,
                format!("refusing entry `{}`: {why}", raw.display()),
            )
            .with_hint("this is not an official CIFAR archive; nothing was extracted")
        };
        let rel = safe_relative_path(&raw).map_err(|why| refuse(why.into()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            let dir = staging.join(&rel);
            fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        } else if kind.is_file() || kind.is_contiguous() {
            total = total.saturating_add(entry.size());
            if total > MAX_EXTRACTED_BYTES {
                return Err(refuse(format!(
                    "the archive unpacks to more than {MAX_EXTRACTED_BYTES} bytes; the official ones unpack to ~180 MB"
                )));
            }
            write_entry(&mut entry, &staging.join(&rel), archive, &rel)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(refuse(format!(
                "a link to `{target}`; links could write outside the data folder, and the official archives hold none"
            )));
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue; // metadata about other entries, not files
        } else {
            return Err(refuse(format!(
                "an entry of type {kind:?} (device, pipe, …), which the official archives do not hold"
            )));
        }
    }
    Ok(())
}

/// `path` as a relative path without `..`, or why not.
pub(super) fn safe_relative_path(path: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("its path climbs out of the folder with `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("its path is absolute"),
        }
    }
    Ok(out)
}

/// Copies one file entry to `target` (inside the staging folder).
pub(super) fn write_entry(
    entry: &mut impl Read,
    target: &Path,
    archive: &Path,
    rel: &Path,
) -> Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut out = File::create(target).map_err(|e| Error::io(target, e))?;
    std::io::copy(entry, &mut out).map_err(|e| {
        Error::data(
            archive,
            format!(
                "truncated or corrupt archive while extracting `{}`: {e}",
                rel.display()
            ),
        )
        .with_hint(format!("delete it and download it again from {HOMEPAGE}"))
    })?;
    Ok(())
}

/// Moves the staged top-level entries into `dest`, never replacing anything there.
pub(super) fn move_into_place(staging: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(staging).map_err(|e| Error::io(staging, e))?;
    let mut names: Vec<_> = entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(staging, e))?;
    names.sort();
    if let Some(taken) = names.iter().map(|n| dest.join(n)).find(|p| p.exists()) {
        return Err(Error::data(
            &taken,
            "already exists; extracting would replace it — move it away or delete it first",
        ));
    }
    let mut created = Vec::new();
    for name in names {
        let target = dest.join(&name);
        fs::rename(staging.join(&name), &target).map_err(|e| Error::io(&target, e))?;
        created.push(target);
    }
    Ok(created)
}
