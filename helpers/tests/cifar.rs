//! CIFAR-10/100 readers on small files written at test time in the exact official
//! formats: binary records written here, Python batches pickled by the venv's Python
//! (protocol 2 as the originals, and 4 and 5), packed as the official `.tar.gz` folders.
//! Also: hostile and truncated archives, checksums, the CLI's `--dataset`, and a run
//! with mixup/CutMix/colour jitter/Cutout that resumes bit for bit.
mod common;
use common::venv_python;

use helpers::config::DatasetKind;
use helpers::config::{Arch, Cifar100Labels, Head, ModelConfig, RunConfig};
use helpers::data::cifar::{self, Cifar};
use helpers::data::Dataset;
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;
use helpers::Result;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: usize = 3072;
const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Pixel `j` of image `i` of the file with pattern `seed` (the Python writer uses the
/// same formula).
fn pixel(seed: usize, i: usize, j: usize) -> u8 {
    ((i * 131 + j * 7 + seed * 17) % 251) as u8
}

fn label(seed: usize, i: usize, classes: usize) -> u8 {
    ((i * 3 + seed) % classes) as u8
}

fn fine_names() -> Vec<String> {
    (0..100).map(|c| format!("fine_{c:02}")).collect()
}

fn coarse_names() -> Vec<String> {
    (0..20).map(|c| format!("coarse_{c:02}")).collect()
}

/// One binary batch: label byte(s), then the 3 072 pixel bytes, per image.
fn binary_batch(seed: usize, n: usize, cifar100: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        if cifar100 {
            out.push(label(seed, i, 20));
            out.push(label(seed, i, 100));
        } else {
            out.push(label(seed, i, 10));
        }
        out.extend((0..IMAGE).map(|j| pixel(seed, i, j)));
    }
    out
}

/// `cifar-10-batches-bin` with `n` images per training batch and `n` test images.
fn write_binary_cifar10(root: &Path, n: usize) -> PathBuf {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for b in 1..=5 {
        std::fs::write(
            dir.join(format!("data_batch_{b}.bin")),
            binary_batch(b, n, false),
        )
        .unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), binary_batch(9, n, false)).unwrap();
    // As in the original: one name per line, then blank lines.
    std::fs::write(
        dir.join("batches.meta.txt"),
        format!("{}\n\n", CIFAR10_NAMES.join("\n")),
    )
    .unwrap();
    dir
}

fn write_binary_cifar100(root: &Path, n_train: usize, n_test: usize) -> PathBuf {
    let dir = root.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train.bin"), binary_batch(1, n_train, true)).unwrap();
    std::fs::write(dir.join("test.bin"), binary_batch(9, n_test, true)).unwrap();
    std::fs::write(dir.join("fine_label_names.txt"), fine_names().join("\n")).unwrap();
    std::fs::write(
        dir.join("coarse_label_names.txt"),
        coarse_names().join("\n"),
    )
    .unwrap();
    dir
}

/// Packs `root/folder` as `archive` (`.tar.gz`), with the folder name inside.
fn tar_gz(archive: &Path, root: &Path, folder: &str) {
    let file = std::fs::File::create(archive).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.append_dir_all(folder, root.join(folder)).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
}

/// The pixels and labels the writers above produce for one split.
fn expected(files: &[(usize, usize)], classes: usize, cifar100_fine: bool) -> (Vec<u8>, Vec<i64>) {
    let (mut px, mut lb) = (Vec::new(), Vec::new());
    for &(seed, n) in files {
        for i in 0..n {
            px.extend((0..IMAGE).map(|j| pixel(seed, i, j)));
            let l = if cifar100_fine {
                label(seed, i, 100)
            } else {
                label(seed, i, classes)
            };
            lb.push(l as i64);
        }
    }
    (px, lb)
}

fn pixels_of(set: &helpers::data::ImageSet) -> Vec<u8> {
    Vec::<u8>::try_from(set.images.contiguous().view([-1])).unwrap()
}

fn check_cifar10(ds: &Dataset, n: usize) {
    assert_eq!(ds.name, "cifar10");
    assert_eq!(ds.classes, CIFAR10_NAMES);
    assert_eq!(ds.train.images.size(), vec![5 * n as i64, 3, 32, 32]);
    assert_eq!(ds.test.images.size(), vec![n as i64, 3, 32, 32]);
    let train_files: Vec<(usize, usize)> = (1..=5).map(|b| (b, n)).collect();
    let (px, lb) = expected(&train_files, 10, false);
    assert!(pixels_of(&ds.train) == px, "training pixels as written");
    assert_eq!(ds.train.label_vec(), lb);
    let (px, lb) = expected(&[(9, n)], 10, false);
    assert!(pixels_of(&ds.test) == px, "test pixels as written");
    assert_eq!(ds.test.label_vec(), lb);
    // Channel planes: red first; pixel (c, y, x) of image 0 of batch 1 is byte c·1024 + 32y + x.
    let v = ds.train.images.int64_value(&[0, 1, 2, 3]);
    assert_eq!(v, pixel(1, 0, 1024 + 2 * 32 + 3) as i64);
}

/// Writes a Python release with `pickle.dump` of dicts of numpy arrays, as the
/// originals (`keys = "bytes"`) or as a re-pickled copy with text keys.
const PICKLE_WRITER: &str = r#"
import os, pickle, sys
import numpy as np
out, proto, which, n_train, n_test, keys, labels_as = sys.argv[1:8]
proto, n_train, n_test = int(proto), int(n_train), int(n_test)
K = (lambda s: s.encode()) if keys == "bytes" else (lambda s: s)

def pixels(seed, n):
    i = np.arange(n)[:, None]
    j = np.arange(3072)[None, :]
    return ((i * 131 + j * 7 + seed * 17) % 251).astype(np.uint8)

def labels(seed, n, m):
    v = [(k * 3 + seed) % m for k in range(n)]
    return np.array(v, dtype=np.int64) if labels_as == "array" else v

def dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=proto)

def names(prefix, n):
    return [K(f"{prefix}_{c:02d}") for c in range(n)]

if which == "10":
    d = os.path.join(out, "cifar-10-batches-py")
    os.makedirs(d)
    for b in range(1, 6):
        dump(os.path.join(d, f"data_batch_{b}"), {
            K("batch_label"): K(f"training batch {b} of 5"),
            K("labels"): labels(b, n_train, 10),
            K("data"): pixels(b, n_train),
            K("filenames"): [K(f"img_{k}.png") for k in range(n_train)],
        })
    dump(os.path.join(d, "test_batch"), {
        K("batch_label"): K("testing batch 1 of 1"),
        K("labels"): labels(9, n_test, 10),
        K("data"): pixels(9, n_test),
        K("filenames"): [K(f"img_{k}.png") for k in range(n_test)],
    })
    dump(os.path.join(d, "batches.meta"), {
        K("num_cases_per_batch"): n_train,
        K("label_names"): [K(x) for x in ["airplane", "automobile", "bird", "cat", "deer",
                                          "dog", "frog", "horse", "ship", "truck"]],
        K("num_vis"): 3072,
    })
else:
    d = os.path.join(out, "cifar-100-python")
    os.makedirs(d)
    for name, seed, n in [("train", 1, n_train), ("test", 9, n_test)]:
        dump(os.path.join(d, name), {
            K("filenames"): [K(f"img_{k}.png") for k in range(n)],
            K("batch_label"): K(f"{name} batch"),
            K("fine_labels"): labels(seed, n, 100),
            K("coarse_labels"): labels(seed, n, 20),
            K("data"): pixels(seed, n),
        })
    dump(os.path.join(d, "meta"), {
        K("fine_label_names"): names("fine", 100),
        K("coarse_label_names"): names("coarse", 20),
    })
"#;

fn write_python_release(
    root: &Path,
    protocol: u8,
    which: &str,
    n_train: usize,
    n_test: usize,
    keys: &str,
    labels_as: &str,
) {
    let exe = venv_python();
    assert!(
        exe.is_file(),
        "{} is missing: run scripts/setup to create the venv with numpy",
        exe.display()
    );
    let out = Command::new(&exe)
        .arg("-c")
        .arg(PICKLE_WRITER)
        .arg(root)
        .args([
            protocol.to_string(),
            which.to_string(),
            n_train.to_string(),
            n_test.to_string(),
            keys.to_string(),
            labels_as.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn binary_cifar10_archive_extracts_and_reads_back() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    write_binary_cifar10(&staging, 7);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Another name than the official one: only official names are checked on load.
    let archive = tmp.path().join("mine.tar.gz");
    tar_gz(&archive, &staging, "cifar-10-batches-bin");
    let sha = helpers::io::sha256_file(&archive)?;
    cifar::verify_archive(&archive, &sha, None)?;
    let created = cifar::extract_archive(&archive, &data)?;
    assert_eq!(created, vec![data.join("cifar-10-batches-bin")]);
    let leftovers: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no staging folder left behind");
    let ds = cifar::load(&data, Cifar::Cifar10, Cifar100Labels::Fine)?;
    check_cifar10(&ds, 7);
    assert_eq!(
        ds.files.len(),
        7,
        "5 + 1 batches and the meta file, with checksums"
    );
    assert!(ds.files.iter().all(|f| f.sha256.len() == 64));
    // The extracted folder's files also load when `dir` is the folder itself.
    let direct = cifar::load(
        data.join("cifar-10-batches-bin"),
        Cifar::Cifar10,
        Cifar100Labels::Fine,
    )?;
    check_cifar10(&direct, 7);
    // Extracting again would replace the folder: refused.
    let e = cifar::extract_archive(&archive, &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    Ok(())
}

#[test]
fn binary_cifar100_reads_fine_or_coarse_labels_by_config() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    write_binary_cifar100(tmp.path(), 30, 10);
    let fine = cifar::load(tmp.path(), Cifar::Cifar100, Cifar100Labels::Fine)?;
    assert_eq!(fine.name, "cifar100");
    assert_eq!(fine.classes, fine_names());
    let (px, lb) = expected(&[(1, 30)], 100, true);
    assert!(pixels_of(&fine.train) == px);
    assert_eq!(fine.train.label_vec(), lb);
    let cfg = helpers::config::DataConfig {
        dataset: DatasetKind::Cifar100,
        dir: tmp.path().to_path_buf(),
        cifar100_labels: Cifar100Labels::Coarse,
        ..Default::default()
    };
    let coarse = helpers::data::load(&cfg, 0)?;
    assert_eq!(coarse.name, "cifar100_coarse");
    assert_eq!(coarse.classes, coarse_names());
    assert_eq!(coarse.train.label_vec(), expected(&[(1, 30)], 20, false).1);
    assert_eq!(coarse.test.label_vec(), expected(&[(9, 10)], 20, false).1);
    assert!(pixels_of(&coarse.test) == expected(&[(9, 10)], 20, false).0);
    let card = coarse.card().table()?;
    let text = format!("{card}");
    assert!(
        text.contains("Krizhevsky 2009") && text.contains("no licence stated"),
        "{text}"
    );
    Ok(())
}

#[test]
fn python_pickles_of_protocols_2_4_and_5_read_as_data() -> Result<()> {
    for (protocol, keys, labels_as) in [
        (2, "bytes", "list"),
        (4, "str", "array"),
        (5, "bytes", "list"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write_python_release(tmp.path(), protocol, "10", 6, 6, keys, labels_as);
        let ds = cifar::load(tmp.path(), Cifar::Cifar10, Cifar100Labels::Fine)?;
        check_cifar10(&ds, 6);

        write_python_release(tmp.path(), protocol, "100", 12, 5, keys, labels_as);
        let fine = cifar::load(tmp.path(), Cifar::Cifar100, Cifar100Labels::Fine)?;
        assert_eq!(fine.classes, fine_names(), "protocol {protocol}");
        assert_eq!(fine.train.label_vec(), expected(&[(1, 12)], 100, true).1);
        assert!(pixels_of(&fine.train) == expected(&[(1, 12)], 100, true).0);
        let coarse = cifar::load(tmp.path(), Cifar::Cifar100, Cifar100Labels::Coarse)?;
        assert_eq!(coarse.classes, coarse_names());
        assert_eq!(coarse.test.label_vec(), expected(&[(9, 5)], 20, false).1);
    }
    Ok(())
}

#[test]
fn python_release_in_its_official_archive_folder() -> Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    write_python_release(&staging, 2, "100", 8, 4, "bytes", "list");
    let archive = tmp.path().join("cifar-100-python.tar.gz");
    tar_gz(&archive, &staging, "cifar-100-python");
    let data = tmp.path().join("data");
    cifar::extract_archive(&archive, &data)?;
    let ds = cifar::load(&data, Cifar::Cifar100, Cifar100Labels::Fine)?;
    assert_eq!(ds.train.len(), 8);
    assert_eq!(ds.test.len(), 4);
    assert!(ds.files.iter().any(|f| f.name == "cifar-100-python/train"));
    Ok(())
}

#[test]
fn a_pickle_naming_other_code_is_refused_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar-10-batches-py");
    std::fs::create_dir_all(&dir).unwrap();
    // pickle of os.system("touch pwned") at protocol 2.
    let evil = b"\x80\x02cos\nsystem\nq\x00X\x0b\x00\x00\x00touch pwnedq\x01\x85q\x02Rq\x03.";
    std::fs::write(dir.join("batches.meta"), evil).unwrap();
    let e = cifar::load(tmp.path(), Cifar::Cifar10, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("batches.meta") && e.contains("os.system") && e.contains("allow-list"),
        "{e}"
    );
    assert!(!Path::new("pwned").exists());
}

/// A `.tar.gz` with one entry whose header is written by hand (the tar crate's
/// builder refuses `..` itself).
fn hostile_archive(path: &Path, name: &[u8], kind: tar::EntryType, link: Option<&str>) {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    let body: &[u8] = if kind == tar::EntryType::Regular {
        b"evil"
    } else {
        b""
    };
    header.set_size(body.len() as u64);
    if let Some(target) = link {
        header.set_link_name(target).unwrap();
    }
    header.set_cksum();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    builder.append(&header, body).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cases: [(&[u8], tar::EntryType, Option<&str>, &str); 5] = [
        (b"../evil", tar::EntryType::Regular, None, "`..`"),
        (
            b"cifar-10-batches-bin/../../evil",
            tar::EntryType::Regular,
            None,
            "`..`",
        ),
        (
            b"/tmp/evil-cifar-test",
            tar::EntryType::Regular,
            None,
            "absolute",
        ),
        (
            b"cifar-10-batches-bin/link",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
            "link",
        ),
        (
            b"cifar-10-batches-bin/hard",
            tar::EntryType::Link,
            Some("../../evil"),
            "link",
        ),
    ];
    for (name, kind, link, why) in cases {
        let archive = tmp.path().join("cifar-10-binary.tar.gz");
        hostile_archive(&archive, name, kind, link);
        let e = cifar::extract_archive(&archive, &data)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing entry") && e.contains("cifar-10-binary.tar.gz") && e.contains(why),
            "{e}"
        );
        assert!(!tmp.path().join("evil").exists(), "nothing written outside");
        assert!(!Path::new("/tmp/evil-cifar-test").exists());
        let left: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
        assert!(
            left.is_empty(),
            "no staging folder or partial files left: {left:?}"
        );
    }
}

#[test]
fn truncated_files_are_named_with_the_size_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_binary_cifar10(tmp.path(), 3);
    let batch = dir.join("data_batch_2.bin");
    let bytes = std::fs::read(&batch).unwrap();
    std::fs::write(&batch, &bytes[..bytes.len() - 100]).unwrap();
    let e = cifar::load(tmp.path(), Cifar::Cifar10, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data_batch_2.bin")
            && e.contains("truncated")
            && e.contains("3073-byte records")
            && e.contains("30730000 bytes"),
        "{e}"
    );

    let py = tempfile::tempdir().unwrap();
    write_python_release(py.path(), 2, "10", 4, 4, "bytes", "list");
    let test_batch = py.path().join("cifar-10-batches-py/test_batch");
    let bytes = std::fs::read(&test_batch).unwrap();
    std::fs::write(&test_batch, &bytes[..bytes.len() / 2]).unwrap();
    let e = cifar::load(py.path(), Cifar::Cifar10, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_batch")
            && e.contains("truncated")
            && e.contains(&format!("{} bytes", bytes.len() / 2)),
        "{e}"
    );

    // A truncated archive: extraction stops with the archive's name, leaves nothing.
    let staging = tmp.path().join("s");
    write_binary_cifar10(&staging, 3);
    let archive = tmp.path().join("cut.tar.gz");
    tar_gz(&archive, &staging, "cifar-10-batches-bin");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let data = tmp.path().join("d");
    let e = cifar::extract_archive(&archive, &data)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cut.tar.gz") && e.contains("truncated or corrupt"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);

    // Under its official name, the archive's size is checked first.
    std::fs::rename(&archive, data.join("cifar-10-binary.tar.gz")).unwrap();
    let e = cifar::load(&data, Cifar::Cifar10, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cifar-10-binary.tar.gz")
            && e.contains("expected 170052171")
            && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn a_wrong_checksum_names_the_expected_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("cifar-10-python.tar.gz");
    std::fs::write(&archive, b"not the official archive").unwrap();
    let official = cifar::official_archive(Cifar::Cifar10, cifar::Release::Python);
    let e = cifar::verify_archive(&archive, official.sha256, None)
        .unwrap_err()
        .to_string();
    let actual = format!("{:x}", Sha256::digest(b"not the official archive"));
    assert!(
        e.contains("cifar-10-python.tar.gz")
            && e.contains("checksum mismatch")
            && e.contains(official.sha256)
            && e.contains(&actual),
        "{e}"
    );
}

#[test]
fn missing_files_say_which_archive_goes_where() {
    let tmp = tempfile::tempdir().unwrap();
    let e = cifar::load(tmp.path(), Cifar::Cifar100, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&tmp.path().display().to_string())
            && e.contains("cifar-100-binary.tar.gz")
            && e.contains("https://www.cs.toronto.edu/~kriz/cifar.html"),
        "{e}"
    );
}

#[test]
fn an_unknown_dataset_lists_the_known_ones() {
    let e = RunConfig::from_toml_str("[data]\ndataset = \"cifar1000\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data.dataset") && e.contains("cifar1000") && e.contains("image_folder"),
        "{e}"
    );
    let e = DatasetKind::parse("cifar1000").unwrap_err().to_string();
    assert!(
        e.contains("unknown dataset `cifar1000`")
            && e.contains("fashion_mnist, image_folder, cifar10, cifar100"),
        "{e}"
    );
}

#[test]
fn cifar_configs_parse_and_dataset_switch_follows_dir_and_name() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let c10 = RunConfig::from_toml_file(root.join("configs/cifar10.toml"))?;
    assert_eq!(c10.model.arch, Arch::Resnet18Cifar);
    assert_eq!(
        (c10.train.lr, c10.train.weight_decay, c10.train.batch_size),
        (0.1, 5e-4, 128)
    );
    assert!(
        c10.train.nesterov
            && c10.data.augment.crop_padding == 4
            && c10.data.augment.horizontal_flip
    );
    let switched = c10.clone().with_dataset(DatasetKind::Cifar100);
    assert_eq!(switched.data.dir, PathBuf::from("data/cifar100"));
    assert_eq!(switched.name, "cifar100_resnet18");
    let c100 = RunConfig::from_toml_file(root.join("configs/cifar100.toml"))?;
    assert_eq!(
        switched, c100,
        "--dataset cifar100 on cifar10.toml is cifar100.toml"
    );
    Ok(())
}

#[test]
fn lab_train_takes_seed_002_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cifar10.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(tmp.path())
        .args(["train", "--config"])
        .arg(&config)
        .args([
            "--dataset",
            "cifar100",
            "--batch-size",
            "128",
            "--epochs",
            "30",
            "--lr",
            "0.1",
            "--weight-decay",
            "5e-4",
            "--set",
            "data.augment.cutout_size=8",
            "--root",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Flags parsed, dataset switched: it stops only at the missing CIFAR-100 files.
    assert!(!out.status.success());
    assert!(
        err.contains("data/cifar100")
            && err.contains("cifar-100-binary.tar.gz")
            && err.contains("no CIFAR-100 files"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["train", "--config"])
        .arg(&config)
        .args(["--dataset", "cifar1000"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cifar10, cifar100"), "{err}");
}

/// A tiny CNN on CIFAR-format data with every natural-image augmentation and both
/// mixings: an interrupted run resumes to the same losses as an unbroken one.
#[test]
fn mixing_and_natural_augmentation_resume_bit_for_bit() -> Result<()> {
    let _guard = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    write_binary_cifar10(tmp.path(), 40);
    let data = cifar::load(tmp.path(), Cifar::Cifar10, Cifar100Labels::Fine)?;
    let mut cfg = common::tiny_config("mix");
    cfg.data.dataset = DatasetKind::Cifar10;
    cfg.data.augment.horizontal_flip = true;
    cfg.data.augment.brightness = 0.3;
    cfg.data.augment.contrast = 0.3;
    cfg.data.augment.saturation = 0.3;
    cfg.data.augment.cutout_size = 8;
    cfg.train.mixup_alpha = 0.4;
    cfg.train.cutmix_alpha = 1.0;
    cfg.train.epochs = 2;
    cfg.model = ModelConfig {
        widths: vec![4, 8],
        depths: vec![1, 1],
        head: Head::Gap,
        ..ModelConfig::default()
    };
    let opts = |root: &Path, stop| FitOptions {
        root: root.to_path_buf(),
        existing: Existing::Auto,
        stop_after_epochs: stop,
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let whole = fit_with(&cfg, &data, &opts(&a, None), &mut Silent)?;
    fit_with(&cfg, &data, &opts(&b, Some(1)), &mut Silent)?;
    let resumed = fit_with(&cfg, &data, &opts(&b, None), &mut Silent)?;
    let losses = |h: &helpers::train::History| {
        h.epochs
            .iter()
            .map(|e| (e.train_loss, e.train_accuracy, e.val_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&whole.history), losses(&resumed.history));
    assert_eq!(whole.test, resumed.test);
    assert!(whole
        .history
        .epochs
        .iter()
        .all(|e| e.train_loss.is_finite()));
    Ok(())
}
