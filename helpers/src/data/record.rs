//! [`DataRecord`]: what a run trained on — the class names in label order, the image
//! shape, the set sizes and a digest of every pixel and label — saved in the run's
//! `meta.json` and compared with the data a tool is given before it produces a number
//! (renamed or reordered class folders, other images, another resize).
use super::{Dataset, ImageSet};
use crate::io::hex;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The data of a run, as `meta.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    pub dataset: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// `[C, H, W]` after the config's preprocessing (resize, channels).
    pub image_shape: [i64; 3],
    pub train_examples: usize,
    pub test_examples: usize,
    /// SHA-256 over the class names, then the training and the test set's labels and
    /// pixels, in order: equal digests mean the same examples with the same labels.
    pub digest: String,
}

impl DataRecord {
    /// The record of `data` as it is now (hashing every pixel: ~0.1 s for Fashion-MNIST).
    pub fn of(data: &Dataset) -> DataRecord {
        let mut hash = Sha256::new();
        for class in &data.classes {
            hash.update(class.as_bytes());
            hash.update([0u8]);
        }
        hash_set(&mut hash, &data.train);
        hash_set(&mut hash, &data.test);
        DataRecord {
            dataset: data.name.clone(),
            classes: data.classes.clone(),
            image_shape: data.image_shape(),
            train_examples: data.train.len(),
            test_examples: data.test.len(),
            digest: hex(&hash.finalize()),
        }
    }

    /// Ok when `now` is the data this record describes; otherwise an error for the run at
    /// `run` that lists each difference (trained on → given now) and what to do.
    pub fn check(&self, now: &DataRecord, run: &Path, data_dir: &Path) -> Result<()> {
        let differences = self.differences(now);
        if differences.is_empty() {
            return Ok(());
        }
        Err(Error::Run {
            path: run.to_path_buf(),
            reason: format!(
                "the data in {} is not the data this run trained on (meta.json `data`): {}; \
                 nothing was scored — point data.dir at the data it trained on, or train a new \
                 run on this data (--force replaces this one)",
                data_dir.display(),
                differences.join("; ")
            ),
        })
    }

    /// Each way `now` differs from `self`, as "what: trained on … , now …".
    fn differences(&self, now: &DataRecord) -> Vec<String> {
        let mut found = Vec::new();
        let mut differ = |what: &str, then: String, now: String| {
            if then != now {
                found.push(format!("{what}: trained on {then}, now {now}"));
            }
        };
        differ("dataset", self.dataset.clone(), now.dataset.clone());
        differ(
            "classes",
            class_list(&self.classes),
            class_list(&now.classes),
        );
        differ(
            "image shape",
            format!("{:?}", self.image_shape),
            format!("{:?}", now.image_shape),
        );
        differ(
            "training images",
            self.train_examples.to_string(),
            now.train_examples.to_string(),
        );
        differ(
            "test images",
            self.test_examples.to_string(),
            now.test_examples.to_string(),
        );
        if found.is_empty() && self.digest != now.digest {
            found.push(format!(
                "pixels or labels: same classes and sizes, but the content digest was {} and is now {}",
                short(&self.digest),
                short(&now.digest)
            ));
        }
        found
    }
}

/// Labels then pixels of one set, as bytes.
fn hash_set(hash: &mut Sha256, set: &ImageSet) {
    for label in set.label_vec() {
        hash.update(label.to_le_bytes());
    }
    let pixels = set.images.flatten(0, -1);
    let bytes = Vec::<u8>::try_from(&pixels).unwrap_or_default();
    hash.update(&bytes);
}

/// Class names in order, bracketed (order matters: it is the label numbering).
fn class_list(classes: &[String]) -> String {
    format!("[{}]", classes.join(", "))
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn dataset(classes: &[&str], first_pixel: u8) -> Dataset {
        let images = Tensor::zeros([4, 1, 2, 2], (Kind::Uint8, tch::Device::Cpu));
        let _ = images.get(0).get(0).get(0).get(0).fill_(first_pixel as i64);
        let labels = Tensor::from_slice(&[0i64, 1, 0, 1]);
        let set = |i: &Tensor| ImageSet {
            images: i.copy(),
            labels: labels.copy(),
        };
        Dataset {
            name: "synthetic".into(),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            train: set(&images),
            test: set(&images),
            files: Vec::new(),
        }
    }

    #[test]
    fn renamed_classes_and_changed_pixels_are_told_apart() {
        let trained = DataRecord::of(&dataset(&["cat", "dog"], 0));
        let run = Path::new("runs/r");
        let dir = Path::new("data/x");
        assert!(trained
            .check(&DataRecord::of(&dataset(&["cat", "dog"], 0)), run, dir)
            .is_ok());
        let renamed = trained
            .check(&DataRecord::of(&dataset(&["dog", "cat"], 0)), run, dir)
            .unwrap_err()
            .to_string();
        assert!(
            renamed.contains("classes: trained on [cat, dog], now [dog, cat]"),
            "{renamed}"
        );
        let edited = trained
            .check(&DataRecord::of(&dataset(&["cat", "dog"], 7)), run, dir)
            .unwrap_err()
            .to_string();
        assert!(edited.contains("pixels or labels"), "{edited}");
        assert!(edited.contains("data/x"), "{edited}");
    }
}
