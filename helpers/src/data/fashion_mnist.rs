//! Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017, <https://github.com/zalandoresearch/fashion-mnist>):
//! 70 000 grey 28×28 images of Zalando articles in 10 classes, MIT licence.
//! `scripts/setup` installs the official IDX files into `data/fashion_mnist/`.
use super::idx::{read_idx, IdxArray};
use super::{Dataset, ImageSet, SourceFile};
use crate::{Error, Result};
use std::path::Path;
use tch::{Kind, Tensor};

/// Default folder, relative to the repository root.
pub const DEFAULT_DIR: &str = "data/fashion_mnist";

/// Class names in label order, as in the official README.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The four official files, with the SHA-256 of their decompressed content (the gzip
/// bytes differ between mirrors that recompress them; the IDX content does not).
pub const FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

const SETUP_HINT: &str = "run `scripts/setup` (step `fashion-mnist`) to install it";

/// Loads Fashion-MNIST from `dir` (the folder holding the four official `.gz` files).
/// Checks every header, the image/label counts and the label range; the checksums are
/// recorded (and compared by `scripts/setup`), so a modified copy still loads but shows.
pub fn load(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        let reason = if dir.is_relative() {
            let here = std::env::current_dir().unwrap_or_default();
            format!(
                "dataset folder not found (a relative path, looked for from the current folder {})",
                here.display()
            )
        } else {
            "dataset folder not found".to_string()
        };
        return Err(Error::data(dir, reason).with_hint(format!(
            "give `data.dir` as an absolute path or run from the project root; if the dataset is not installed, {SETUP_HINT}"
        )));
    }
    let mut files = Vec::new();
    let train = load_split(dir, "train", &mut files)?;
    let test = load_split(dir, "t10k", &mut files)?;
    Ok(Dataset {
        name: "fashion_mnist".into(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        train,
        test,
        files,
    })
}

fn load_split(dir: &Path, prefix: &str, files: &mut Vec<SourceFile>) -> Result<ImageSet> {
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let images = read_idx(&images_path, 3).map_err(|e| e.with_hint(SETUP_HINT))?;
    let labels = read_idx(&labels_path, 1).map_err(|e| e.with_hint(SETUP_HINT))?;
    check_pair(&images_path, &images, &labels_path, &labels)?;
    for (path, arr) in [(&images_path, &images), (&labels_path, &labels)] {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        files.push(SourceFile {
            name,
            sha256: arr.sha256.clone(),
        });
    }
    let (n, h, w) = (
        images.dims[0] as i64,
        images.dims[1] as i64,
        images.dims[2] as i64,
    );
    Ok(ImageSet {
        images: Tensor::from_slice(&images.data).view([n, 1, h, w]),
        labels: Tensor::from_slice(&labels.data).to_kind(Kind::Int64),
    })
}

/// Same count of images and labels, and every label a known class.
fn check_pair(
    images_path: &Path,
    images: &IdxArray,
    labels_path: &Path,
    labels: &IdxArray,
) -> Result<()> {
    if images.dims[0] != labels.dims[0] {
        return Err(Error::data(
            labels_path,
            format!(
                "{} labels, but {} holds {} images; the two files must come from the same release",
                labels.dims[0],
                images_path.display(),
                images.dims[0]
            ),
        )
        .with_hint(SETUP_HINT));
    }
    if let Some(pos) = labels
        .data
        .iter()
        .position(|&l| l as usize >= CLASSES.len())
    {
        return Err(Error::data(
            labels_path,
            format!(
                "label {} at index {pos} is outside 0..{}",
                labels.data[pos],
                CLASSES.len()
            ),
        ));
    }
    Ok(())
}

/// True when every file's recorded checksum matches the official content.
pub fn checksums_match(dataset: &Dataset) -> bool {
    FILES.iter().all(|(name, sha)| {
        dataset
            .files
            .iter()
            .any(|f| f.name == *name && f.sha256 == *sha)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::write_idx;

    fn gz_idx(dir: &Path, name: &str, dims: &[usize], data: &[u8]) {
        let raw = dir.join(format!("{name}.raw"));
        write_idx(&raw, dims, data).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &std::fs::read(&raw).unwrap()).unwrap();
        std::fs::write(dir.join(name), enc.finish().unwrap()).unwrap();
    }

    fn fake_dataset(dir: &Path, n_train_labels: usize) {
        gz_idx(dir, "train-images-idx3-ubyte.gz", &[4, 2, 2], &[7; 16]);
        gz_idx(
            dir,
            "train-labels-idx1-ubyte.gz",
            &[n_train_labels],
            &vec![1; n_train_labels],
        );
        gz_idx(dir, "t10k-images-idx3-ubyte.gz", &[2, 2, 2], &[9; 8]);
        gz_idx(dir, "t10k-labels-idx1-ubyte.gz", &[2], &[0, 9]);
    }

    #[test]
    fn loads_tensors_of_the_right_shape() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        fake_dataset(dir.path(), 4);
        let ds = load(dir.path())?;
        assert_eq!(ds.train.images.size(), vec![4, 1, 2, 2]);
        assert_eq!(ds.test.label_vec(), vec![0, 9]);
        assert_eq!(ds.train.class_counts(10)[1], 4);
        assert!(
            !checksums_match(&ds),
            "synthetic files are not the official ones"
        );
        Ok(())
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        fake_dataset(dir.path(), 3);
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("train-labels-idx1-ubyte.gz")
                && e.contains("3 labels")
                && e.contains("4 images"),
            "{e}"
        );
    }

    #[test]
    fn missing_folder_says_which_setup_step() {
        let e = load("/nonexistent/fashion").unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/fashion") && e.contains("fashion-mnist"),
            "{e}"
        );
    }
}
