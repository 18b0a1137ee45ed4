//! CIFAR-10 and CIFAR-100 (Krizhevsky 2009, "Learning Multiple Layers of Features from
//! Tiny Images", <https://www.cs.toronto.edu/~kriz/cifar.html>): 60 000 RGB 32×32 images,
//! 50 000 for training and 10 000 for testing, in 10 classes, or in 100 classes grouped
//! into 20 superclasses.
//!
//! Both official releases are read:
//! - binary (`cifar-10-batches-bin`, `cifar-100-binary`): per image one label byte (two
//!   for CIFAR-100: coarse, then fine) and 3 072 pixel bytes, the red plane, then green,
//!   then blue, each row by row; class names in text files, one per line;
//! - Python (`cifar-10-batches-py`, `cifar-100-python`): pickled dicts holding a numpy
//!   `uint8` array `data` `[N, 3072]` of the same layout and lists of labels, keys as
//!   bytes (`b'data'`, the Python 2 originals) or text. They are decoded as data by
//!   [`crate::weights::pickle`] with an allow-list of numpy's array globals: nothing in
//!   the file is run.
//!
//! [`load`] looks in the data folder for an extracted release, else for an official
//! archive, which it checks against the published size and SHA-256 ([`verify_archive`])
//! and unpacks safely ([`extract_archive`]). Nothing is downloaded unless `LAB_DOWNLOAD=1`
//! and a `curl` binary exist.
use super::config::Cifar100Labels;
use super::{Dataset, ImageSet, SourceFile};
use crate::weights::pickle::{self, PickleError, Value};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use tch::{Kind, Tensor};

/// The dataset's home page, which links the archives and describes the formats.
pub const HOMEPAGE: &str = "https://www.cs.toronto.edu/~kriz/cifar.html";
/// Where the archives are downloaded from (the home page's links).
const DOWNLOAD_BASE: &str = "https://www.cs.toronto.edu/~kriz/";
/// Bytes of one image: 3 channels × 32 × 32.
const IMAGE_BYTES: usize = 3 * 32 * 32;
/// More than any official archive unpacks to (~180 MB): a bound against gzip bombs.
const MAX_EXTRACTED_BYTES: u64 = 1 << 30;

/// Globals a CIFAR python batch may name: numpy's array reconstruction (numpy 1 and 2
/// module names), in-band buffers of pickle protocol 5, and `_codecs.encode`, which
/// Python 3 writes for every `bytes` object at protocol 2.
const ALLOWED_GLOBALS: &[&str] = &[
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "_codecs.encode",
];

/// Which of the two datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes, 6 000 images each.
    Cifar10,
    /// 100 classes of 600 images, in 20 superclasses.
    Cifar100,
}

impl Cifar {
    /// The name in `data.dataset`.
    pub fn name(self) -> &'static str {
        match self {
            Cifar::Cifar10 => "cifar10",
            Cifar::Cifar100 => "cifar100",
        }
    }

    /// The folder `data.dir` defaults to, relative to the repository root.
    pub fn default_dir(self) -> &'static str {
        match self {
            Cifar::Cifar10 => "data/cifar10",
            Cifar::Cifar100 => "data/cifar100",
        }
    }

    /// Number of classes for the chosen labels (CIFAR-100: 100 fine or 20 coarse).
    pub fn num_classes(self, labels: Cifar100Labels) -> usize {
        match (self, labels) {
            (Cifar::Cifar10, _) => 10,
            (Cifar::Cifar100, Cifar100Labels::Fine) => 100,
            (Cifar::Cifar100, Cifar100Labels::Coarse) => 20,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Cifar::Cifar10 => "CIFAR-10",
            Cifar::Cifar100 => "CIFAR-100",
        }
    }
}

/// The two official releases of each dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Fixed-size binary records (`*.bin`).
    Binary,
    /// Pickled numpy arrays (`cifar-10-python.tar.gz`).
    Python,
}

/// One official archive: its name, the folder it unpacks to, and its checksums.
///
/// The CIFAR page publishes MD5 sums only. The SHA-256 values here are those pinned by
/// Keras (`keras.datasets.cifar10`/`cifar100`, the Python releases) and by TensorFlow
/// Datasets (`url_checksums/cifar10.txt`, `cifar100.txt`, the binary releases) for the
/// files of these exact sizes, which match the page's MD5s. Only SHA-256 is checked (no
/// MD5 code is built); `md5` is kept to compare with the page by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialArchive {
    /// Dataset.
    pub cifar: Cifar,
    /// Release.
    pub release: Release,
    /// Archive file name, as on the home page.
    pub file_name: &'static str,
    /// Folder the archive unpacks to.
    pub folder: &'static str,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: &'static str,
    /// MD5 as published on the home page, hex.
    pub md5: &'static str,
}

impl OfficialArchive {
    /// The download address.
    pub fn url(&self) -> String {
        format!("{DOWNLOAD_BASE}{}", self.file_name)
    }
}

/// The four official archives.
pub const OFFICIAL_ARCHIVES: [OfficialArchive; 4] = [
    OfficialArchive {
        cifar: Cifar::Cifar10,
        release: Release::Binary,
        file_name: "cifar-10-binary.tar.gz",
        folder: "cifar-10-batches-bin",
        bytes: 170_052_171,
        sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
    },
    OfficialArchive {
        cifar: Cifar::Cifar10,
        release: Release::Python,
        file_name: "cifar-10-python.tar.gz",
        folder: "cifar-10-batches-py",
        bytes: 170_498_071,
        sha256: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        md5: "c58f30108f718f92721af3b95e74349a",
    },
    OfficialArchive {
        cifar: Cifar::Cifar100,
        release: Release::Binary,
        file_name: "cifar-100-binary.tar.gz",
        folder: "cifar-100-binary",
        bytes: 168_513_733,
        sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
        md5: "03b5dce01913d631647c71ecec9e9cb8",
    },
    OfficialArchive {
        cifar: Cifar::Cifar100,
        release: Release::Python,
        file_name: "cifar-100-python.tar.gz",
        folder: "cifar-100-python",
        bytes: 169_001_437,
        sha256: "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        md5: "eb9058c3a382ffc7106e4002c42a8d85",
    },
];

/// The official archive of one dataset and release.
pub fn official_archive(cifar: Cifar, release: Release) -> &'static OfficialArchive {
    OFFICIAL_ARCHIVES
        .iter()
        .find(|a| a.cifar == cifar && a.release == release)
        .expect("every dataset has both releases")
}

/// File names inside an extracted release.
struct Layout {
    train: &'static [&'static str],
    test: &'static str,
    /// Official number of images per training file and in the test file.
    train_images: usize,
    test_images: usize,
}

fn layout(cifar: Cifar, release: Release) -> Layout {
    match (cifar, release) {
        (Cifar::Cifar10, Release::Binary) => Layout {
            train: &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            test: "test_batch.bin",
            train_images: 10_000,
            test_images: 10_000,
        },
        (Cifar::Cifar10, Release::Python) => Layout {
            train: &[
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
            ],
            test: "test_batch",
            train_images: 10_000,
            test_images: 10_000,
        },
        (Cifar::Cifar100, Release::Binary) => Layout {
            train: &["train.bin"],
            test: "test.bin",
            train_images: 50_000,
            test_images: 10_000,
        },
        (Cifar::Cifar100, Release::Python) => Layout {
            train: &["train"],
            test: "test",
            train_images: 50_000,
            test_images: 10_000,
        },
    }
}

/// Loads CIFAR-10 or CIFAR-100 from `dir`, which may hold an extracted release (the
/// official folder, or its files directly), else an official archive (checked, then
/// extracted into `dir`). The binary release is preferred when both are there.
/// `labels` chooses CIFAR-100's fine or coarse labels (ignored for CIFAR-10).
pub fn load(dir: impl AsRef<Path>, cifar: Cifar, labels: Cifar100Labels) -> Result<Dataset> {
    let dir = dir.as_ref();
    let (folder, release) = match find_extracted(dir, cifar) {
        Some(found) => found,
        None => prepare_from_archive(dir, cifar)?,
    };
    read_release(&folder, cifar, release, labels)
}

/// An extracted release in `dir`: the official folder, or `dir` itself.
fn find_extracted(dir: &Path, cifar: Cifar) -> Option<(PathBuf, Release)> {
    let releases = [Release::Binary, Release::Python];
    for release in releases {
        let folder = dir.join(official_archive(cifar, release).folder);
        if folder.is_dir() {
            return Some((folder, release));
        }
    }
    releases
        .into_iter()
        .find(|&r| dir.join(layout(cifar, r).test).is_file())
        .map(|r| (dir.to_path_buf(), r))
}

/// Checks and extracts an official archive found in `dir` (or downloaded into it).
fn prepare_from_archive(dir: &Path, cifar: Cifar) -> Result<(PathBuf, Release)> {
    let found = [Release::Binary, Release::Python]
        .into_iter()
        .map(|r| official_archive(cifar, r))
        .find(|a| dir.join(a.file_name).is_file());
    let archive = match found {
        Some(a) => a,
        None => download_if_allowed(dir, cifar)?.ok_or_else(|| missing_files(dir, cifar))?,
    };
    let path = dir.join(archive.file_name);
    verify_archive(&path, archive.sha256, Some(archive.bytes))?;
    extract_archive(&path, dir)?;
    let folder = dir.join(archive.folder);
    if !folder.is_dir() {
        return Err(Error::data(
            &path,
            format!("unpacked, but it holds no folder `{}`", archive.folder),
        ));
    }
    Ok((folder, archive.release))
}

/// The error for a folder without CIFAR files: which archive to put where.
fn missing_files(dir: &Path, cifar: Cifar) -> Error {
    let bin = official_archive(cifar, Release::Binary);
    let py = official_archive(cifar, Release::Python);
    Error::data(
        dir,
        format!(
            "no {} files: expected the folder `{}` or `{}`, or the archive `{}` or `{}`",
            cifar.title(),
            bin.folder,
            py.folder,
            bin.file_name,
            py.file_name
        ),
    )
    .with_hint(format!(
        "download {} ({} MB, linked from {HOMEPAGE}: {}) into {}; the next run checks its SHA-256 and extracts it (or set LAB_DOWNLOAD=1 to let lab fetch it with curl)",
        bin.file_name,
        bin.bytes / 1_000_000,
        bin.url(),
        dir.display()
    ))
}

/// Downloads the binary archive with `curl` into `dir` when `LAB_DOWNLOAD=1`; `None`
/// when downloading is not asked for or no `curl` exists.
fn download_if_allowed(dir: &Path, cifar: Cifar) -> Result<Option<&'static OfficialArchive>> {
    if !std::env::var("LAB_DOWNLOAD").is_ok_and(|v| v == "1") {
        return Ok(None);
    }
    let curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !curl {
        return Ok(None);
    }
    let archive = official_archive(cifar, Release::Binary);
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let part = dir.join(format!("{}.part", archive.file_name));
    eprintln!("downloading {} to {}", archive.url(), dir.display());
    let status = std::process::Command::new("curl")
        .args(["-fL", "--retry", "3", "-o"])
        .arg(&part)
        .arg(archive.url())
        .status()
        .map_err(|e| Error::io(&part, e))?;
    if !status.success() {
        let _ = fs::remove_file(&part);
        return Err(
            Error::data(&part, format!("curl failed ({status})")).with_hint(format!(
                "download {} by hand from {HOMEPAGE}",
                archive.file_name
            )),
        );
    }
    let path = dir.join(archive.file_name);
    fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
    Ok(Some(archive))
}

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
fn unpack_into(archive: &Path, staging: &Path) -> Result<()> {
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
fn safe_relative_path(path: &Path) -> std::result::Result<PathBuf, &'static str> {
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
fn write_entry(entry: &mut impl Read, target: &Path, archive: &Path, rel: &Path) -> Result<()> {
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
fn move_into_place(staging: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
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

/// Images and labels of one split, before they become tensors.
#[derive(Default)]
struct Part {
    pixels: Vec<u8>,
    labels: Vec<i64>,
}

impl Part {
    fn into_set(self) -> ImageSet {
        let n = self.labels.len() as i64;
        ImageSet {
            images: Tensor::from_slice(&self.pixels).view([n, 3, 32, 32]),
            labels: Tensor::from_slice(&self.labels).to_kind(Kind::Int64),
        }
    }
}

/// What one read needs to know.
#[derive(Clone, Copy)]
struct Reading {
    cifar: Cifar,
    release: Release,
    labels: Cifar100Labels,
}

/// Reads an extracted release: class names, the training files, the test file.
fn read_release(
    folder: &Path,
    cifar: Cifar,
    release: Release,
    labels: Cifar100Labels,
) -> Result<Dataset> {
    let r = Reading {
        cifar,
        release,
        labels,
    };
    let l = layout(cifar, release);
    let mut files = Vec::new();
    let classes = read_class_names(folder, r, &mut files)?;
    let mut train = Part::default();
    for name in l.train {
        let part = read_batch(folder, name, l.train_images, r, classes.len(), &mut files)?;
        train.pixels.extend_from_slice(&part.pixels);
        train.labels.extend_from_slice(&part.labels);
    }
    let test = read_batch(folder, l.test, l.test_images, r, classes.len(), &mut files)?;
    let name = match (cifar, labels) {
        (Cifar::Cifar100, Cifar100Labels::Coarse) => "cifar100_coarse",
        _ => cifar.name(),
    };
    Ok(Dataset {
        name: name.into(),
        classes,
        train: train.into_set(),
        test: test.into_set(),
        files,
    })
}

/// Reads a file whole, recording its SHA-256 under `<folder name>/<file>`.
fn read_recorded(folder: &Path, name: &str, files: &mut Vec<SourceFile>) -> Result<Vec<u8>> {
    let path = folder.join(name);
    let bytes = fs::read(&path).map_err(|e| {
        Error::io(&path, e).with_hint(format!(
            "the release is incomplete; delete {} and extract the official archive from {HOMEPAGE} again",
            folder.display()
        ))
    })?;
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    files.push(SourceFile {
        name: format!("{folder_name}/{name}"),
        sha256: crate::io::hex(&Sha256::digest(&bytes)),
    });
    Ok(bytes)
}

/// One batch file: records checked, labels in range.
fn read_batch(
    folder: &Path,
    name: &str,
    official_images: usize,
    r: Reading,
    num_classes: usize,
    files: &mut Vec<SourceFile>,
) -> Result<Part> {
    let path = folder.join(name);
    let bytes = read_recorded(folder, name, files)?;
    let part = match r.release {
        Release::Binary => decode_binary(&path, &bytes, r, official_images)?,
        Release::Python => decode_python(&path, &bytes, r)?,
    };
    if let Some((i, &l)) = part
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l < 0 || l as usize >= num_classes)
    {
        return Err(Error::data(
            &path,
            format!("label {l} of image {i} is outside 0..{num_classes}"),
        ));
    }
    Ok(part)
}

/// Binary records: label byte(s), then 3 072 pixel bytes.
fn decode_binary(path: &Path, bytes: &[u8], r: Reading, official_images: usize) -> Result<Part> {
    let label_bytes = match r.cifar {
        Cifar::Cifar10 => 1,
        Cifar::Cifar100 => 2,
    };
    let record = label_bytes + IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::data(
            path,
            format!(
                "truncated: {} bytes is not a whole number of {record}-byte records ({label_bytes} label byte(s) + {IMAGE_BYTES} pixel bytes); the official file holds {official_images} records = {} bytes",
                bytes.len(),
                official_images * record
            ),
        )
        .with_hint(format!("extract the official archive from {HOMEPAGE} again")));
    }
    // CIFAR-100 records start with the coarse label, then the fine one.
    let label_at = match (r.cifar, r.labels) {
        (Cifar::Cifar100, Cifar100Labels::Fine) => 1,
        _ => 0,
    };
    let n = bytes.len() / record;
    let mut part = Part {
        pixels: Vec::with_capacity(n * IMAGE_BYTES),
        labels: Vec::with_capacity(n),
    };
    for rec in bytes.chunks_exact(record) {
        part.labels.push(rec[label_at] as i64);
        part.pixels.extend_from_slice(&rec[label_bytes..]);
    }
    Ok(part)
}

/// A python batch: `data` (uint8 `[N, 3072]`) and the label list of the chosen kind.
fn decode_python(path: &Path, bytes: &[u8], r: Reading) -> Result<Part> {
    let root = unpickle(path, bytes)?;
    let dict = as_dict(path, &root)?;
    let data = dict_get(path, dict, "data")?;
    let array = decode_ndarray(data).map_err(|why| Error::data(path, format!("`data`: {why}")))?;
    let n = array.shape.first().copied().unwrap_or(0);
    let per_image: usize = array.shape.iter().skip(1).product();
    if array.dtype.kind != 'u' || array.dtype.size != 1 || per_image != IMAGE_BYTES {
        return Err(Error::data(
            path,
            format!(
                "`data` is a {} array of shape {:?}; CIFAR images are uint8 of shape [N, 3072]",
                array.dtype.name(),
                array.shape
            ),
        ));
    }
    let key = match (r.cifar, r.labels) {
        (Cifar::Cifar10, _) => "labels",
        (Cifar::Cifar100, Cifar100Labels::Fine) => "fine_labels",
        (Cifar::Cifar100, Cifar100Labels::Coarse) => "coarse_labels",
    };
    let labels = decode_labels(dict_get(path, dict, key)?)
        .map_err(|why| Error::data(path, format!("`{key}`: {why}")))?;
    if labels.len() != n {
        return Err(Error::data(
            path,
            format!("{n} images but {} `{key}`", labels.len()),
        ));
    }
    Ok(Part {
        pixels: array.data,
        labels,
    })
}

/// Runs the data-only pickle machine; errors name the file and, for a short file, its size.
fn unpickle(path: &Path, bytes: &[u8]) -> Result<Value> {
    pickle::load(bytes, ALLOWED_GLOBALS)
        .map(|(v, _)| v)
        .map_err(|e| match e {
            PickleError::Truncated { .. } => Error::data(
                path,
                format!(
                    "truncated: {e}, but the file ends after {} bytes",
                    bytes.len()
                ),
            )
            .with_hint(format!(
                "the file is incomplete; extract the official archive from {HOMEPAGE} again"
            )),
            other => Error::data(path, format!("not a CIFAR python batch: {other}")),
        })
}

fn as_dict<'a>(path: &Path, v: &'a Value) -> Result<&'a [(Value, Value)]> {
    match v {
        Value::Dict(items) => Ok(items),
        other => Err(Error::data(
            path,
            format!("expected a pickled dict, found {}", other.describe()),
        )),
    }
}

/// The value of `key`, whether the pickle stored keys as bytes or as text.
fn dict_get<'a>(path: &Path, dict: &'a [(Value, Value)], key: &str) -> Result<&'a Value> {
    dict.iter()
        .find(|(k, _)| text_of(k).as_deref() == Some(key))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            let keys: Vec<String> = dict
                .iter()
                .map(|(k, _)| {
                    text_of(k)
                        .map(|t| t.into_owned())
                        .unwrap_or_else(|| k.describe())
                })
                .collect();
            Error::data(
                path,
                format!("no key `{key}`; the dict holds {}", keys.join(", ")),
            )
        })
}

/// Text of a str, of UTF-8 bytes, or of Python 3's protocol-2 spelling of bytes.
fn text_of(v: &Value) -> Option<Cow<'_, str>> {
    if let Some(t) = v.as_text() {
        return Some(Cow::Borrowed(t));
    }
    let bytes = bytes_of(v).ok()?;
    String::from_utf8(bytes.into_owned()).ok().map(Cow::Owned)
}

/// The bytes of a `bytes`/`bytearray` value, or of `_codecs.encode(text, "latin1")`,
/// which is how Python 3 writes `bytes` at pickle protocol 2.
fn bytes_of(v: &Value) -> std::result::Result<Cow<'_, [u8]>, String> {
    match v {
        Value::Bytes(b) => Ok(Cow::Borrowed(b)),
        Value::Call { callee, args, .. } if callee == "_codecs.encode" => {
            let (Some(text), Some(enc)) = (args.first(), args.get(1)) else {
                return Err("`_codecs.encode` without text and encoding".into());
            };
            let (Value::Str(text), Some("latin1" | "latin-1")) = (text, enc.as_text()) else {
                return Err(format!(
                    "`_codecs.encode` of {} as {}, expected text as latin1",
                    text.describe(),
                    enc.describe()
                ));
            };
            text.chars()
                .map(|c| {
                    u8::try_from(u32::from(c)).map_err(|_| "a non-latin1 character".to_string())
                })
                .collect::<std::result::Result<Vec<u8>, String>>()
                .map(Cow::Owned)
        }
        other => Err(format!("expected bytes, found {}", other.describe())),
    }
}

/// A numpy dtype: kind (`u`, `i`, `f`, …), item size and byte order.
#[derive(Debug, Clone, Copy)]
struct Dtype {
    kind: char,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn name(&self) -> String {
        format!(
            "{}{}{}",
            if self.big_endian { ">" } else { "" },
            self.kind,
            self.size
        )
    }
}

/// A decoded numpy array, its data in C (row-major) order.
#[derive(Debug)]
struct NdArray {
    shape: Vec<usize>,
    dtype: Dtype,
    data: Vec<u8>,
}

/// A pickled numpy array, in either of numpy's spellings: `_reconstruct` + state
/// (protocols 2–4) or `_frombuffer(buffer, dtype, shape, order)` (protocol 5).
fn decode_ndarray(v: &Value) -> std::result::Result<NdArray, String> {
    let Value::Call {
        callee,
        args,
        state,
    } = v
    else {
        return Err(format!("expected a numpy array, found {}", v.describe()));
    };
    if callee.ends_with("multiarray._reconstruct") {
        let Some(Value::Tuple(items)) = state.as_deref() else {
            return Err("a numpy array without its state".into());
        };
        // (version, shape, dtype, is_fortran, data); numpy before 1.0 left out version.
        let items = if items.len() == 5 {
            &items[1..]
        } else {
            &items[..]
        };
        let [shape, dtype, fortran, raw] = items else {
            return Err(format!(
                "a numpy array state of {} items, expected 4 or 5",
                items.len()
            ));
        };
        let fortran = matches!(fortran, Value::Bool(true)) || fortran.as_i64() == Some(1);
        build_array(shape_of(shape)?, dtype_of(dtype)?, fortran, &bytes_of(raw)?)
    } else if callee.ends_with("numeric._frombuffer") {
        let [buf, dtype, shape, order] = args.as_slice() else {
            return Err(format!(
                "`_frombuffer` with {} arguments, expected 4",
                args.len()
            ));
        };
        let fortran = order.as_text() == Some("F");
        build_array(shape_of(shape)?, dtype_of(dtype)?, fortran, &bytes_of(buf)?)
    } else {
        Err(format!(
            "expected a numpy array, found a call to `{callee}`"
        ))
    }
}

fn shape_of(v: &Value) -> std::result::Result<Vec<usize>, String> {
    let Value::Tuple(dims) = v else {
        return Err(format!("array shape is {}, not a tuple", v.describe()));
    };
    dims.iter()
        .map(|d| {
            d.as_i64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| format!("array dimension {} is not a size", d.describe()))
        })
        .collect()
}

/// `numpy.dtype("u1", False, True)` with state `(3, "|", …)`.
fn dtype_of(v: &Value) -> std::result::Result<Dtype, String> {
    let Value::Call {
        callee,
        args,
        state,
    } = v
    else {
        return Err(format!("array dtype is {}", v.describe()));
    };
    let spec = args.first().and_then(text_of);
    let Some(spec) = spec.filter(|_| callee == "numpy.dtype") else {
        return Err(format!("array dtype is {}", v.describe()));
    };
    let spec = spec.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = spec.chars();
    let kind = chars.next().ok_or("empty dtype")?;
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("dtype `{spec}` is not a kind and a size"))?;
    let order = match state.as_deref() {
        Some(Value::Tuple(items)) => items.get(1).and_then(|o| o.as_text().map(str::to_owned)),
        _ => None,
    };
    Ok(Dtype {
        kind,
        size,
        big_endian: order.as_deref() == Some(">"),
    })
}

/// Checks the data length against shape × item size and reorders Fortran arrays.
fn build_array(
    shape: Vec<usize>,
    dtype: Dtype,
    fortran: bool,
    raw: &[u8],
) -> std::result::Result<NdArray, String> {
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("array shape overflows")?;
    let need = count
        .checked_mul(dtype.size)
        .ok_or("array size overflows")?;
    if raw.len() != need {
        return Err(format!(
            "array data holds {} bytes, but shape {shape:?} of {} needs {need} (truncated?)",
            raw.len(),
            dtype.name()
        ));
    }
    let data = if fortran && shape.len() > 1 {
        fortran_to_c(raw, &shape, dtype.size)
    } else {
        raw.to_vec()
    };
    Ok(NdArray { shape, dtype, data })
}

/// Column-major data to row-major, for any number of dimensions.
fn fortran_to_c(raw: &[u8], shape: &[usize], item: usize) -> Vec<u8> {
    let count: usize = shape.iter().product();
    let mut out = vec![0u8; raw.len()];
    let mut index = vec![0usize; shape.len()];
    for c in 0..count {
        // Fortran offset of the current (row-major) multi-index.
        let mut f = 0;
        for d in (0..shape.len()).rev() {
            f = f * shape[d] + index[d];
        }
        out[c * item..(c + 1) * item].copy_from_slice(&raw[f * item..(f + 1) * item]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// Labels as a list of ints (the originals) or as a 1-D integer numpy array.
fn decode_labels(v: &Value) -> std::result::Result<Vec<i64>, String> {
    match v {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .map(|l| {
                l.as_i64()
                    .ok_or_else(|| format!("a label is {}, not an int", l.describe()))
            })
            .collect(),
        Value::Call { .. } => {
            let a = decode_ndarray(v)?;
            if !matches!(a.dtype.kind, 'i' | 'u') || ![1, 2, 4, 8].contains(&a.dtype.size) {
                return Err(format!(
                    "labels of dtype {}, expected integers",
                    a.dtype.name()
                ));
            }
            Ok(a.data
                .chunks_exact(a.dtype.size)
                .map(|b| int_of(b, a.dtype))
                .collect())
        }
        other => Err(format!(
            "expected a list of ints, found {}",
            other.describe()
        )),
    }
}

/// One integer of 1, 2, 4 or 8 bytes in the dtype's byte order and signedness.
fn int_of(b: &[u8], d: Dtype) -> i64 {
    let mut buf = [0u8; 8];
    let n = b.len();
    if d.big_endian {
        buf[8 - n..].copy_from_slice(b);
        buf.reverse();
    } else {
        buf[..n].copy_from_slice(b);
    }
    let unsigned = u64::from_le_bytes(buf);
    if d.kind == 'i' && n < 8 {
        let shift = 64 - 8 * n as u32;
        ((unsigned << shift) as i64) >> shift
    } else {
        unsigned as i64
    }
}

/// Class names from the release's meta file, as many as the chosen labels have classes.
fn read_class_names(folder: &Path, r: Reading, files: &mut Vec<SourceFile>) -> Result<Vec<String>> {
    let (file, key) = match (r.cifar, r.release, r.labels) {
        (Cifar::Cifar10, Release::Binary, _) => ("batches.meta.txt", ""),
        (Cifar::Cifar10, Release::Python, _) => ("batches.meta", "label_names"),
        (Cifar::Cifar100, Release::Binary, Cifar100Labels::Fine) => ("fine_label_names.txt", ""),
        (Cifar::Cifar100, Release::Binary, Cifar100Labels::Coarse) => {
            ("coarse_label_names.txt", "")
        }
        (Cifar::Cifar100, Release::Python, Cifar100Labels::Fine) => ("meta", "fine_label_names"),
        (Cifar::Cifar100, Release::Python, Cifar100Labels::Coarse) => {
            ("meta", "coarse_label_names")
        }
    };
    let path = folder.join(file);
    let bytes = read_recorded(folder, file, files)?;
    let names = match r.release {
        Release::Binary => String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        Release::Python => {
            let root = unpickle(&path, &bytes)?;
            let list = dict_get(&path, as_dict(&path, &root)?, key)?;
            let Value::List(items) = list else {
                return Err(Error::data(
                    &path,
                    format!("`{key}` is {}, not a list", list.describe()),
                ));
            };
            items
                .iter()
                .map(|v| text_of(v).map(|t| t.into_owned()))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| Error::data(&path, format!("`{key}` holds a non-text name")))?
        }
    };
    let expected = r.cifar.num_classes(r.labels);
    if names.len() != expected {
        return Err(Error::data(
            &path,
            format!("{} class names, expected {expected}", names.len()),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_parent_or_root_are_refused() {
        assert_eq!(
            safe_relative_path(Path::new("./a/b.bin")).unwrap(),
            PathBuf::from("a/b.bin")
        );
        assert!(safe_relative_path(Path::new("../evil")).is_err());
        assert!(safe_relative_path(Path::new("a/../../evil")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn fortran_arrays_come_back_row_major() {
        // [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f = [0u8, 3, 1, 4, 2, 5];
        assert_eq!(fortran_to_c(&f, &[2, 3], 1), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn integers_of_every_width_and_order() {
        let le = |kind, size| Dtype {
            kind,
            size,
            big_endian: false,
        };
        assert_eq!(int_of(&[0xff], le('u', 1)), 255);
        assert_eq!(int_of(&[0xff], le('i', 1)), -1);
        assert_eq!(int_of(&[7, 0, 0, 0, 0, 0, 0, 0], le('i', 8)), 7);
        let be = Dtype {
            kind: 'i',
            size: 4,
            big_endian: true,
        };
        assert_eq!(int_of(&[0, 0, 1, 2], be), 258);
    }

    #[test]
    fn latin1_text_is_bytes() {
        let v = Value::Call {
            callee: "_codecs.encode".into(),
            args: vec![
                Value::Str("\u{0}\u{ff}a".into()),
                Value::Str("latin1".into()),
            ],
            state: None,
        };
        assert_eq!(bytes_of(&v).unwrap().as_ref(), &[0u8, 255, b'a']);
        assert_eq!(
            text_of(&Value::Bytes(b"data".to_vec())).as_deref(),
            Some("data")
        );
    }

    #[test]
    fn every_archive_has_a_64_digit_sha256_and_its_folder() {
        for a in OFFICIAL_ARCHIVES {
            assert_eq!(a.sha256.len(), 64, "{}", a.file_name);
            assert_eq!(a.md5.len(), 32, "{}", a.file_name);
            assert!(a.url().ends_with(a.file_name));
            assert_eq!(official_archive(a.cifar, a.release), &a);
        }
    }
}
