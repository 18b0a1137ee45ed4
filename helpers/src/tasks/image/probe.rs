//! Linear probing on cached embeddings. When the whole backbone is frozen and training
//! images are not augmented, every epoch would push the same pixels through the same
//! fixed network: the embeddings are computed once per split, kept on disk under
//! `<runs>/.embeddings/`, and shared by every run with the same backbone, input size,
//! data and split (a baseline and its tuned variants), so probing costs seconds on a CPU.
use crate::config::RunConfig;
use crate::data::{DataLoaders, Dataset, Loader};
use crate::io::tensors::{read_tensors, write_tensors};
use crate::models::Model;
use crate::Result;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// Embeddings `[N, D]` of each split, in loader order.
#[derive(Debug)]
pub struct EmbeddingCache {
    pub train: Tensor,
    pub val: Tensor,
    pub test: Tensor,
    /// Seconds it took to compute them (when they were computed, by whichever run).
    pub seconds: f64,
    /// True when read from disk instead of computed now.
    pub reused: bool,
}

/// Images per embedding batch.
const BATCH: usize = 256;

/// The cache file for this run's backbone, input size, data and split.
pub fn cache_path(root: &Path, cfg: &RunConfig, data: &Dataset) -> PathBuf {
    let m = &cfg.model;
    let key = format!(
        "{:?}|{}|{}|{}|{}|{}|{}|{}",
        m.arch,
        m.weights,
        m.input_size,
        toml::to_string(&cfg.data).unwrap_or_default(),
        cfg.seed,
        data.name,
        data.train.len(),
        data.test.len()
    );
    let digest = crate::io::hex(&Sha256::digest(key.as_bytes()));
    root.join(".embeddings")
        .join(format!("{}-{}.safetensors", data.name, &digest[..16]))
}

/// Reads the cached embeddings, or computes them with `model`'s frozen prefix and saves
/// them (atomically) for the next run.
pub fn embeddings(
    root: &Path,
    cfg: &RunConfig,
    data: &Dataset,
    model: &Model,
    loaders: &DataLoaders,
) -> Result<EmbeddingCache> {
    let path = cache_path(root, cfg, data);
    if path.is_file() {
        let mut named = read_tensors(&path)?;
        let mut take = |k: &str| named.remove(k);
        if let (Some(train), Some(val), Some(test), Some(secs)) =
            (take("train"), take("val"), take("test"), take("seconds"))
        {
            let device = model.device();
            return Ok(EmbeddingCache {
                train: train.to_device(device),
                val: val.to_device(device),
                test: test.to_device(device),
                seconds: secs.double_value(&[]),
                reused: true,
            });
        }
    }
    let started = Instant::now();
    let (train, val, test) = (
        embed(model, &loaders.train),
        embed(model, &loaders.val),
        embed(model, &loaders.test),
    );
    let seconds = started.elapsed().as_secs_f64();
    let named = vec![
        ("train".to_string(), train.shallow_clone()),
        ("val".to_string(), val.shallow_clone()),
        ("test".to_string(), test.shallow_clone()),
        ("seconds".to_string(), Tensor::from(seconds)),
    ];
    write_tensors(&path, &named)?;
    Ok(EmbeddingCache {
        train,
        val,
        test,
        seconds,
        reused: false,
    })
}

/// The frozen prefix's outputs for every example of `loader`, unaugmented.
pub fn embed(model: &Model, loader: &Loader) -> Tensor {
    let all: Vec<usize> = (0..loader.len()).collect();
    let parts: Vec<Tensor> = all
        .chunks(BATCH)
        .map(|idx| {
            let x = loader.normalized(idx);
            model.frozen_embedding(&x).contiguous()
        })
        .collect();
    Tensor::cat(&parts, 0)
}
