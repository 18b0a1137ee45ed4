//! Reading an extracted release: the binary batches (`data_batch_*.bin`), the python
//! pickles (`data_batch_*`), and the class names, each file recorded with its checksum.
use super::*;

/// Images and labels of one split, before they become tensors.
#[derive(Default)]
pub(super) struct Part {
    pub(super) pixels: Vec<u8>,
    pub(super) labels: Vec<i64>,
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
pub(super) struct Reading {
    pub(super) cifar: Cifar,
    pub(super) release: Release,
    pub(super) labels: Cifar100Labels,
}

/// Reads an extracted release: class names, the training files, the test file.
pub(super) fn read_release(
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
pub(super) fn read_recorded(
    folder: &Path,
    name: &str,
    files: &mut Vec<SourceFile>,
) -> Result<Vec<u8>> {
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
pub(super) fn read_batch(
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
pub(super) fn decode_binary(
    path: &Path,
    bytes: &[u8],
    r: Reading,
    official_images: usize,
) -> Result<Part> {
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

/// Class names from the release's meta file, as many as the chosen labels have classes.
pub(super) fn read_class_names(
    folder: &Path,
    r: Reading,
    files: &mut Vec<SourceFile>,
) -> Result<Vec<String>> {
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
