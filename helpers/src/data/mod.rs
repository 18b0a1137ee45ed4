//! Datasets: file readers, the in-memory [`Dataset`], and its [`DataCard`].
pub mod augment;
pub mod card;
pub mod cifar;
pub mod config;
pub mod detection;
pub mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod loader;
pub mod mixing;
pub mod record;
pub mod split;
pub mod tabular;
pub mod text;

pub use card::DataCard;
pub use record::DataRecord;

pub use config::{AugmentConfig, Cifar100Labels, DataConfig, DatasetKind};

/// Loads the dataset a config names from `data.dir`. `image_folder` reads
/// `dir/train/<class>/…` and `dir/test/<class>/…`, or `dir/<class>/…` with a stratified
/// fifth held out as the test set (seeded by `seed`); skipped files are reported on
/// stderr with their count. `cifar10`/`cifar100` read an extracted official release or
/// an official archive ([`cifar::load`]); with `data.dir` left at its default (the
/// Fashion-MNIST folder), they look in `data/cifar10` / `data/cifar100`.
pub fn load(cfg: &DataConfig, seed: u64) -> crate::Result<Dataset> {
    load_with(cfg, seed, false)
}

/// [`load`], allowed to fetch an official CIFAR archive that is not there
/// ([`cifar::load_with`]).
pub fn load_with(cfg: &DataConfig, seed: u64, download: bool) -> crate::Result<Dataset> {
    let cifar_dir = |c: cifar::Cifar| {
        if cfg.dir == std::path::Path::new(fashion_mnist::DEFAULT_DIR) {
            std::path::PathBuf::from(c.default_dir())
        } else {
            cfg.dir.clone()
        }
    };
    match cfg.dataset {
        DatasetKind::FashionMnist => fashion_mnist::load(&cfg.dir),
        DatasetKind::Cifar10 => {
            let c = cifar::Cifar::Cifar10;
            cifar::load_with(cifar_dir(c), c, cfg.cifar100_labels, download)
        }
        DatasetKind::Cifar100 => {
            let c = cifar::Cifar::Cifar100;
            cifar::load_with(cifar_dir(c), c, cfg.cifar100_labels, download)
        }
        DatasetKind::ImageFolder => {
            let opts = image_folder::ImageFolderOptions {
                size: (cfg.image_size, cfg.image_size),
                channels: cfg.channels,
                skip_bad: cfg.skip_bad_files,
            };
            let (data, skipped) = image_folder::load(&cfg.dir, &opts, 0.2, seed)?;
            if !skipped.is_empty() {
                eprintln!("{}: skipped {} files:", cfg.dir.display(), skipped.len());
                for (path, why) in skipped.iter().take(20) {
                    eprintln!("  {}: {why}", path.display());
                }
            }
            Ok(data)
        }
    }
}
pub use loader::{DataLoaders, Loader, Normalization};
pub use split::Split;

use tch::{Kind, Tensor};

/// Images with their labels, kept as compact `u8` pixels until a loader normalises them.
#[derive(Debug)]
pub struct ImageSet {
    /// `[N, C, H, W]`, `u8` pixels in 0..=255.
    pub images: Tensor,
    /// `[N]`, `i64` class indices.
    pub labels: Tensor,
}

impl ImageSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// True when the set holds no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Labels as a Rust vector.
    pub fn label_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels.to_kind(Kind::Int64)).unwrap_or_default()
    }

    /// Count of examples per class, for `num_classes` classes.
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for l in self.label_vec() {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The examples at `indices` (a new set sharing no storage with this one).
    pub fn select(&self, indices: &[i64]) -> ImageSet {
        let idx = Tensor::from_slice(indices);
        ImageSet {
            images: self.images.index_select(0, &idx),
            labels: self.labels.index_select(0, &idx),
        }
    }

    /// The first `n` images in a grid of `cols` columns, captioned with their class names.
    pub fn samples(
        &self,
        classes: &[String],
        n: usize,
        cols: usize,
    ) -> crate::Result<crate::plot::Figure> {
        let subset = self.head(n);
        let captions: Vec<String> = subset
            .label_vec()
            .iter()
            .map(|&l| {
                classes
                    .get(l as usize)
                    .cloned()
                    .unwrap_or_else(|| l.to_string())
            })
            .collect();
        crate::plot::image_grid("samples", &subset.images, &captions, cols, 3)
    }

    /// The first `n` examples (or all of them when there are fewer).
    pub fn head(&self, n: usize) -> ImageSet {
        let n = n.min(self.len()) as i64;
        ImageSet {
            images: self.images.narrow(0, 0, n).copy(),
            labels: self.labels.narrow(0, 0, n).copy(),
        }
    }
}

/// Where a dataset's files came from and their checksums.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// File name inside the dataset folder.
    pub name: String,
    /// SHA-256 of the decompressed content, hex.
    pub sha256: String,
}

/// An image-classification dataset: a training set, a held-out test set, class names.
#[derive(Debug)]
pub struct Dataset {
    /// Short name, e.g. `fashion_mnist`.
    pub name: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// Training examples (validation is split from these; the test set stays untouched).
    pub train: ImageSet,
    /// Held-out test examples.
    pub test: ImageSet,
    /// The files read, with their checksums.
    pub files: Vec<SourceFile>,
}

impl Dataset {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [i64; 3] {
        let s = self.train.images.size();
        [s[1], s[2], s[3]]
    }

    /// Its name and the SHA-256 of each of its files, as facts for the environment table
    /// ([`crate::backend::Versions::with_all`]).
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut facts = vec![("dataset".to_string(), self.name.clone())];
        for f in &self.files {
            facts.push((format!("sha256 {}", f.name), f.sha256.clone()));
        }
        facts
    }

    /// The data card of this dataset.
    pub fn card(&self) -> DataCard {
        DataCard::of(self)
    }
}
