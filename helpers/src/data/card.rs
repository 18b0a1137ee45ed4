//! [`DataCard`]: what a reader must know about a dataset before trusting results on it
//! (after Gebru et al., "Datasheets for Datasets", 2018): source, licence, size, classes,
//! class balance and known biases.
use super::Dataset;
use crate::plot::{self, Figure};
use crate::render::{evcxr_emit, Table};
use crate::Result;
use polars::prelude::Column;

/// Facts about a dataset, shown as a table.
#[derive(Debug, Clone)]
pub struct DataCard {
    pub name: String,
    pub source: String,
    pub licence: String,
    pub image_shape: [i64; 3],
    pub classes: Vec<String>,
    pub train_counts: Vec<usize>,
    pub test_counts: Vec<usize>,
    pub known_biases: Vec<String>,
}

/// Provenance text known for the datasets the library ships readers for.
fn provenance(name: &str) -> (&'static str, &'static str, Vec<&'static str>) {
    match name {
        "fashion_mnist" => (
            "Zalando Research, Xiao, Rasul & Vollgraf 2017 (arXiv:1708.07747); official IDX files, installed from Debian's dataset-fashion-mnist",
            "MIT",
            vec![
                "Catalogue photos from one European retailer (Zalando, ~2017): centred, single article, plain background — not photos of worn clothes.",
                "Grey 28×28 thumbnails: colour, texture and fine detail are lost, so Shirt vs T-shirt/top vs Pullover vs Coat is ambiguous even for people.",
                "Labels come from the catalogue's product categories, not from annotators; some images are known to be mislabelled.",
                "Classes are exactly balanced, unlike real product streams; accuracy here overstates accuracy on a skewed stream.",
            ],
        ),
        "cifar10" | "cifar100" | "cifar100_coarse" => (
            if name == "cifar10" {
                "Krizhevsky 2009, \"Learning Multiple Layers of Features from Tiny Images\" (tech. report, U. Toronto); official archive from https://www.cs.toronto.edu/~kriz/cifar.html, checked against its SHA-256"
            } else {
                "Krizhevsky 2009, \"Learning Multiple Layers of Features from Tiny Images\" (tech. report, U. Toronto); official archive from https://www.cs.toronto.edu/~kriz/cifar.html, checked against its SHA-256; 100 classes in 20 superclasses (coarse labels)"
            },
            "no licence stated; cite Krizhevsky 2009",
            cifar_biases(name),
        ),
        _ => ("user-provided files", "see the dataset's own terms", vec!["unknown: document how the images were collected and labelled"]),
    }
}

/// What is known to limit conclusions drawn on CIFAR.
fn cifar_biases(name: &str) -> Vec<&'static str> {
    let mut b = vec![
        "A subset of the 80 Million Tiny Images collection (2008): web image-search results for WordNet nouns, mostly English-language search engines, then checked by paid student labellers; the parent collection was withdrawn in 2020 over offensive labels and images (Birhane & Prabhu 2021), CIFAR itself was not.",
        "32×32 thumbnails of object-centred photos: fine detail is gone, and the objects are mostly in canonical poses and viewpoints.",
        "Classes are exactly balanced (by construction), unlike real image streams.",
        "Test images have near-duplicates in the training set (Barz & Denzler 2020: ~3 % of CIFAR-10's and ~10 % of CIFAR-100's test images), which inflates test accuracy.",
        "Years of model selection on the same test set: new test sets drawn the same way score several points lower (CIFAR-10.1, Recht et al. 2018).",
    ];
    if name == "cifar10" {
        b.push("Test labels are nearly clean (Northcutt et al. 2021 estimate ~0.5 % errors); automobile vs truck and cat vs dog are the classic confusions.");
    } else {
        b.push("Test labels are noisier than CIFAR-10's (Northcutt et al. 2021 estimate ~6 % errors), and many classes are fine-grained (maple vs oak vs willow tree), so some errors are not the model's.");
        b.push("The 20 superclasses group visually unlike classes (e.g. non-insect invertebrates: crab, lobster, snail, spider, worm).");
    }
    b
}

impl DataCard {
    /// Builds the card of a loaded dataset.
    pub fn of(data: &Dataset) -> DataCard {
        let (source, licence, biases) = provenance(&data.name);
        DataCard {
            name: data.name.clone(),
            source: source.into(),
            licence: licence.into(),
            image_shape: data.image_shape(),
            classes: data.classes.clone(),
            train_counts: data.train.class_counts(data.num_classes()),
            test_counts: data.test.class_counts(data.num_classes()),
            known_biases: biases.into_iter().map(String::from).collect(),
        }
    }

    /// Largest class count over smallest, in the training set (1.0 = balanced).
    pub fn imbalance_ratio(&self) -> f64 {
        let max = self.train_counts.iter().copied().max().unwrap_or(0) as f64;
        let min = self.train_counts.iter().copied().min().unwrap_or(0) as f64;
        if min == 0.0 {
            f64::INFINITY
        } else {
            max / min
        }
    }

    /// The card as a (field, value) table.
    pub fn table(&self) -> Result<Table> {
        let [c, h, w] = self.image_shape;
        let train: usize = self.train_counts.iter().sum();
        let test: usize = self.test_counts.iter().sum();
        let mut rows = vec![
            ("name", self.name.clone()),
            ("source", self.source.clone()),
            ("licence", self.licence.clone()),
            (
                "size",
                format!("{} images: {train} train, {test} test", train + test),
            ),
            (
                "image",
                format!("{c}×{h}×{w} (channels × height × width), 8-bit"),
            ),
            (
                "classes",
                format!("{}: {}", self.classes.len(), self.classes.join(", ")),
            ),
            (
                "class balance (train)",
                format!(
                    "{:?}; max/min = {:.2}",
                    self.train_counts,
                    self.imbalance_ratio()
                ),
            ),
            ("class balance (test)", format!("{:?}", self.test_counts)),
        ];
        for b in &self.known_biases {
            rows.push(("known bias", b.clone()));
        }
        let (fields, values): (Vec<String>, Vec<String>) =
            rows.into_iter().map(|(f, v)| (f.to_string(), v)).unzip();
        Table::from_columns(
            format!("Data card: {}", self.name),
            vec![
                Column::new("field".into(), fields),
                Column::new("value".into(), values),
            ],
        )
    }

    /// Bar chart of images per class, train and test side by side.
    pub fn balance_figure(&self) -> Result<Figure> {
        let as_f64 = |v: &[usize]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        plot::bars(
            "Class balance",
            &self.classes,
            &[
                ("train", as_f64(&self.train_counts)),
                ("test", as_f64(&self.test_counts)),
            ],
            "images",
        )
    }

    /// evcxr's hook: shows the card's table.
    pub fn evcxr_display(&self) {
        match self.table() {
            Ok(t) => t.evcxr_display(),
            Err(e) => evcxr_emit("text/plain", &e.to_string()),
        }
    }
}
