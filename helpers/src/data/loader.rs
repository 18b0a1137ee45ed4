//! Batches for training and evaluation: seeded shuffling per epoch, augmentation of
//! training examples, normalisation with statistics of the training split.
use super::augment::augment_into;
use super::config::{AugmentConfig, DataConfig};
use super::split::Split;
use super::{Dataset, ImageSet};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Per-channel mean and standard deviation of pixel values scaled to [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Statistics of `images` (`[N, C, H, W]`, u8).
    pub fn of(images: &Tensor) -> Normalization {
        let x = images.to_kind(Kind::Double) / 255.0;
        let dims = [0i64, 2, 3];
        let mean = Vec::<f64>::try_from(x.mean_dim(dims.as_slice(), false, Kind::Double))
            .unwrap_or_default();
        let std =
            Vec::<f64>::try_from(x.std_dim(dims.as_slice(), false, false)).unwrap_or_default();
        Normalization {
            mean: mean.iter().map(|&v| v as f32).collect(),
            std: std.iter().map(|&v| v.max(1e-6) as f32).collect(),
        }
    }

    /// Normalises raw 0..255 floats `[N, C, H, W]` in place.
    pub fn apply_raw(&self, x: &mut [f32], shape: [usize; 3]) {
        let plane = shape[1] * shape[2];
        for (i, chunk) in x.chunks_mut(plane).enumerate() {
            let c = i % shape[0];
            let (m, s) = (self.mean[c] * 255.0, self.std[c] * 255.0);
            chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
        }
    }

    /// Normalises raw 0..255 pixels `[N, C, H, W]` (any kind) with the arithmetic of
    /// [`Normalization::apply_raw`]: `(v − 255·mean) / (255·std)`.
    pub fn normalize(&self, pixels: &Tensor) -> Tensor {
        let (mean, std) = self.stats_like(pixels);
        (pixels.to_kind(Kind::Float) - mean * 255.0) / (std * 255.0)
    }

    /// Per-channel mean and std as `[1, C, 1, 1]` tensors on `x`'s device.
    fn stats_like(&self, x: &Tensor) -> (Tensor, Tensor) {
        let c = self.mean.len() as i64;
        let mean = Tensor::from_slice(&self.mean)
            .view([1, c, 1, 1])
            .to_device(x.device());
        let std = Tensor::from_slice(&self.std)
            .view([1, c, 1, 1])
            .to_device(x.device());
        (mean, std)
    }

    /// Maps normalised images back to [0, 1] for display.
    pub fn denormalize(&self, x: &Tensor) -> Tensor {
        let (mean, std) = self.stats_like(x);
        (x * std + mean).clamp(0.0, 1.0)
    }
}

/// Batches over a fixed set of examples.
#[derive(Debug, Clone)]
pub struct Loader {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    shape: [usize; 3],
    pub batch_size: usize,
    shuffle: bool,
    /// Training only; `None` when every augmentation is off.
    augment: Option<AugmentConfig>,
    pub norm: Normalization,
    seed: u64,
    pub device: Device,
}

impl Loader {
    /// A loader over `set`; `augment` only for training (an all-off config counts as none).
    pub fn new(
        set: &ImageSet,
        batch_size: usize,
        shuffle: bool,
        augment: Option<AugmentConfig>,
        norm: Normalization,
        seed: u64,
        device: Device,
    ) -> Loader {
        let s = set.images.size();
        let pixels = Vec::<u8>::try_from(set.images.contiguous().view([-1])).unwrap_or_default();
        Loader {
            pixels,
            labels: set.label_vec(),
            shape: [s[1] as usize, s[2] as usize, s[3] as usize],
            batch_size,
            shuffle,
            augment: augment.filter(AugmentConfig::any),
            norm,
            seed,
            device,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of batches per epoch (the last one may be smaller).
    pub fn num_batches(&self) -> usize {
        self.len().div_ceil(self.batch_size)
    }

    /// Raw images `[n, C, H, W]` (u8) at positions `idx` in loader order, for display.
    pub fn images(&self, idx: &[usize]) -> Tensor {
        let n = self.shape.iter().product::<usize>();
        let mut buf = Vec::with_capacity(idx.len() * n);
        idx.iter()
            .for_each(|&i| buf.extend_from_slice(&self.pixels[i * n..(i + 1) * n]));
        let [c, h, w] = self.shape.map(|d| d as i64);
        Tensor::from_slice(&buf).view([idx.len() as i64, c, h, w])
    }

    /// Labels in loader order (unshuffled).
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The batches of `epoch`: `(images [B, C, H, W] normalised f32, labels [B] i64)`.
    /// Order and augmentation depend only on (seed, epoch), so a resumed run replays them.
    pub fn batches(&self, epoch: usize) -> impl Iterator<Item = (Tensor, Tensor)> + '_ {
        let (chunks, mut rng) = self.order(epoch);
        chunks
            .into_iter()
            .map(move |idx| self.batch(&idx, &mut rng))
    }

    /// The positions (in loader order) of each batch of `epoch`, the same ones
    /// [`Loader::batches`] draws: for training on cached embeddings.
    pub fn batch_indices(&self, epoch: usize) -> Vec<Vec<usize>> {
        self.order(epoch).0
    }

    /// Normalised, unaugmented images at positions `idx`, on the loader's device.
    pub fn normalized(&self, idx: &[usize]) -> Tensor {
        let n = self.shape.iter().product::<usize>();
        let mut buf = Vec::with_capacity(idx.len() * n);
        for &i in idx {
            buf.extend(self.pixels[i * n..(i + 1) * n].iter().map(|&p| p as f32));
        }
        self.norm.apply_raw(&mut buf, self.shape);
        let [c, h, w] = self.shape.map(|d| d as i64);
        Tensor::from_slice(&buf)
            .view([idx.len() as i64, c, h, w])
            .to_device(self.device)
    }

    /// True when training batches are augmented (so each epoch sees other pixels).
    pub fn augments(&self) -> bool {
        self.augment.is_some()
    }

    /// The epoch's batches of positions, and the generator augmentation continues with.
    fn order(&self, epoch: usize) -> (Vec<Vec<usize>>, Rng) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = Rng::new(self.seed, 1 + epoch as u64);
        if self.shuffle {
            rng.shuffle(&mut order);
        }
        let chunks = order.chunks(self.batch_size).map(|c| c.to_vec()).collect();
        (chunks, rng)
    }

    fn batch(&self, idx: &[usize], rng: &mut Rng) -> (Tensor, Tensor) {
        let n = self.shape.iter().product::<usize>();
        let mut buf = vec![0f32; idx.len() * n];
        // Cutout writes the training mean, which normalises to 0 (as in the paper).
        let fill: Vec<f32> = self.norm.mean.iter().map(|m| m * 255.0).collect();
        for (k, &i) in idx.iter().enumerate() {
            let src = &self.pixels[i * n..(i + 1) * n];
            let dst = &mut buf[k * n..(k + 1) * n];
            match &self.augment {
                Some(cfg) => augment_into(src, dst, self.shape, cfg, &fill, rng),
                None => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s as f32),
            }
        }
        self.norm.apply_raw(&mut buf, self.shape);
        let [c, h, w] = self.shape.map(|d| d as i64);
        let images = Tensor::from_slice(&buf)
            .view([idx.len() as i64, c, h, w])
            .to_device(self.device);
        let labels: Vec<i64> = idx.iter().map(|&i| self.labels[i]).collect();
        (images, Tensor::from_slice(&labels).to_device(self.device))
    }
}

/// Train/val/test loaders built from one dataset, config and seed.
#[derive(Debug, Clone)]
pub struct DataLoaders {
    pub train: Loader,
    pub val: Loader,
    pub test: Loader,
    pub split: Split,
    pub norm: Normalization,
}

impl DataLoaders {
    /// Examples per split and class, as a table.
    pub fn table(&self, classes: &[String]) -> crate::Result<crate::render::Table> {
        use polars::prelude::Column;
        let count = |l: &Loader| {
            let mut c = vec![0u64; classes.len()];
            l.labels().iter().for_each(|&y| c[y as usize] += 1);
            c
        };
        let mut cols = vec![Column::new(
            "class".into(),
            classes
                .iter()
                .cloned()
                .chain(["total".to_string()])
                .collect::<Vec<_>>(),
        )];
        for (name, l) in [
            ("train", &self.train),
            ("val", &self.val),
            ("test", &self.test),
        ] {
            let mut c = count(l);
            c.push(l.len() as u64);
            cols.push(Column::new(name.into(), c));
        }
        let norm = format!("mean {:?}, std {:?}", self.norm.mean, self.norm.std);
        crate::render::Table::from_columns(
            format!("Stratified split (normalisation from train: {norm})"),
            cols,
        )
    }

    /// The first `n` training images as the model sees them (augmented, then mapped
    /// back to [0, 1] for display), captioned with their labels: a sanity batch.
    pub fn preview(&self, classes: &[String], n: usize) -> crate::Result<crate::plot::Figure> {
        let (x, y) = self
            .train
            .batches(0)
            .next()
            .ok_or_else(|| crate::Error::config("data", "the training split is empty"))?;
        let n = n.min(x.size()[0] as usize) as i64;
        let images = self
            .norm
            .denormalize(&x.narrow(0, 0, n).to_device(Device::Cpu));
        let captions: Vec<String> = Vec::<i64>::try_from(y.narrow(0, 0, n).to_device(Device::Cpu))?
            .iter()
            .map(|&l| classes[l as usize].clone())
            .collect();
        crate::plot::image_grid("augmented_batch", &images.contiguous(), &captions, 8, 3)
    }

    /// Splits the training set (stratified, seeded), computes normalisation on the train
    /// part only, and builds the three loaders.
    pub fn new(
        data: &Dataset,
        cfg: &DataConfig,
        batch_size: usize,
        eval_batch_size: usize,
        seed: u64,
        device: Device,
    ) -> DataLoaders {
        let split = Split::stratified(
            &data.train.label_vec(),
            cfg.val_fraction,
            cfg.train_limit,
            seed,
        );
        DataLoaders::with_split(data, cfg, split, batch_size, eval_batch_size, seed, device)
    }

    /// As [`DataLoaders::new`] with a given split (e.g. one saved in a run).
    pub fn with_split(
        data: &Dataset,
        cfg: &DataConfig,
        split: Split,
        batch_size: usize,
        eval_batch_size: usize,
        seed: u64,
        device: Device,
    ) -> DataLoaders {
        let train_set = data.train.select(&split.train);
        let val_set = data.train.select(&split.val);
        let test_set = if cfg.test_limit > 0 {
            data.test.head(cfg.test_limit)
        } else {
            data.test.head(data.test.len())
        };
        let norm = Normalization::of(&train_set.images);
        let aug = Some(cfg.augment.clone());
        let eval_loader = |set: &ImageSet| {
            Loader::new(
                set,
                eval_batch_size,
                false,
                None,
                norm.clone(),
                seed,
                device,
            )
        };
        DataLoaders {
            train: Loader::new(
                &train_set,
                batch_size,
                true,
                aug,
                norm.clone(),
                seed,
                device,
            ),
            val: eval_loader(&val_set),
            test: eval_loader(&test_set),
            split,
            norm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 RGB 8×8 images, image `i` filled with the value `10·i`, label `i % 3`.
    fn set() -> ImageSet {
        let pixels: Vec<u8> = (0..12u8).flat_map(|i| vec![10 * i; 3 * 64]).collect();
        let labels: Vec<i64> = (0..12).map(|i| i % 3).collect();
        ImageSet {
            images: Tensor::from_slice(&pixels).view([12, 3, 8, 8]),
            labels: Tensor::from_slice(&labels),
        }
    }

    #[test]
    fn natural_augmentation_keeps_labels_and_pixel_range_and_replays_per_epoch() {
        let s = set();
        let norm = Normalization::of(&s.images);
        let natural = AugmentConfig {
            brightness: 0.5,
            contrast: 0.5,
            saturation: 0.5,
            cutout_size: 4,
            ..AugmentConfig::OFF
        };
        let loader = Loader::new(&s, 5, true, Some(natural), norm.clone(), 3, Device::Cpu);
        assert!(loader.augments());
        let epoch = |e| loader.batches(e).collect::<Vec<_>>();
        for (x, y) in epoch(0) {
            let shown = norm.denormalize(&x);
            let (lo, hi) = (shown.min().double_value(&[]), shown.max().double_value(&[]));
            assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
            for k in 0..y.size()[0] {
                let label = y.int64_value(&[k]);
                assert!((0..3).contains(&label));
            }
        }
        let order: Vec<i64> = epoch(1)
            .iter()
            .flat_map(|(_, y)| Vec::<i64>::try_from(y).unwrap())
            .collect();
        let idx: Vec<usize> = loader.batch_indices(1).concat();
        let want: Vec<i64> = idx.iter().map(|&i| loader.labels()[i]).collect();
        assert_eq!(order, want, "labels travel with their images");
        let (a, b) = (epoch(2), epoch(2));
        for ((xa, _), (xb, _)) in a.iter().zip(&b) {
            assert!(xa.equal(xb), "same epoch, same augmentation");
        }
        let off = Loader::new(&s, 5, true, Some(AugmentConfig::OFF), norm, 3, Device::Cpu);
        assert!(!off.augments());
    }
}
