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
//! and unpacks safely ([`extract_archive`]). Nothing is downloaded unless the caller
//! allows it ([`load_with`]; `lab` does with `LAB_DOWNLOAD=1`) and a `curl` binary exists.
mod archive;
mod python;
mod reading;

pub use archive::{extract_archive, verify_archive};
use python::*;
use reading::*;

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
    load_with(dir, cifar, labels, false)
}

/// [`load`], fetching the official binary archive with `curl` when `dir` holds neither
/// a release nor an archive and `download` is true.
pub fn load_with(
    dir: impl AsRef<Path>,
    cifar: Cifar,
    labels: Cifar100Labels,
    download: bool,
) -> Result<Dataset> {
    let dir = dir.as_ref();
    let (folder, release) = match find_extracted(dir, cifar) {
        Some(found) => found,
        None => prepare_from_archive(dir, cifar, download)?,
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
fn prepare_from_archive(dir: &Path, cifar: Cifar, download: bool) -> Result<(PathBuf, Release)> {
    let found = [Release::Binary, Release::Python]
        .into_iter()
        .map(|r| official_archive(cifar, r))
        .find(|a| dir.join(a.file_name).is_file());
    let archive = match found {
        Some(a) => a,
        None => {
            download_if_allowed(dir, cifar, download)?.ok_or_else(|| missing_files(dir, cifar))?
        }
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

/// Downloads the binary archive with `curl` into `dir` when `allowed`; `None` when
/// downloading is not allowed or no `curl` exists.
fn download_if_allowed(
    dir: &Path,
    cifar: Cifar,
    allowed: bool,
) -> Result<Option<&'static OfficialArchive>> {
    if !allowed {
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

#[cfg(test)]
mod tests {
    use super::archive::safe_relative_path;
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
    fn every_archive_has_a_64_digit_sha256_and_its_folder() {
        for a in OFFICIAL_ARCHIVES {
            assert_eq!(a.sha256.len(), 64, "{}", a.file_name);
            assert_eq!(a.md5.len(), 32, "{}", a.file_name);
            assert!(a.url().ends_with(a.file_name));
            assert_eq!(official_archive(a.cifar, a.release), &a);
        }
    }
}
