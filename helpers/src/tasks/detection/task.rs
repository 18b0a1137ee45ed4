//! [`Detection`]: the detection track as a [`Task`] of the training loop — shuffled
//! batches of tiles, augmented with their boxes, CenterNet's focal + L1 loss, the share
//! of box centres the heatmap finds as the training score and mAP@0.5 on the validation
//! tiles as the one that picks the best epoch.
use super::augment::DetectionAugment;
use super::coco_eval;
use super::config::DetectionConfig;
use super::decode::{decode, DecodeConfig, Detection};
use super::model::Detector;
use super::targets::{encode, losses, Targets};
use crate::data::detection::{Annotation, TileSet};
use crate::rng::Rng;
use crate::tasks::common::epoch_batches;
use crate::train::{StepOutput, Task, Validation};
use crate::Result;
use tch::{Device, Kind, Tensor};

#[derive(Clone)]
pub struct DetectionTask<'a> {
    pub net: &'a Detector,
    pub train: &'a TileSet,
    pub val: Option<&'a TileSet>,
    pub classes: &'a [String],
    pub augment: DetectionAugment,
    pub decode: DecodeConfig,
    pub box_loss_weight: f64,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub seed: u64,
}

impl<'a> DetectionTask<'a> {
    pub fn of_config(
        cfg: &DetectionConfig,
        net: &'a Detector,
        train: &'a TileSet,
        val: Option<&'a TileSet>,
        classes: &'a [String],
    ) -> DetectionTask<'a> {
        DetectionTask {
            net,
            train,
            val,
            classes,
            augment: cfg.augment.clone(),
            decode: cfg.decode.clone(),
            box_loss_weight: cfg.box_loss_weight,
            batch_size: cfg.train.batch_size,
            eval_batch_size: cfg.train.eval_batch_size,
            seed: cfg.seed,
        }
    }

    fn loss(&self, out: &super::model::DetectorOutput, t: &Targets) -> Tensor {
        let (focal, l1) = losses(out, t);
        focal + l1 * self.box_loss_weight
    }
}

/// The detections of every tile of `tiles` in evaluation mode, batches of `batch`:
/// inference, with no targets encoded and no loss computed.
pub fn detect_tiles(
    net: &Detector,
    tiles: &TileSet,
    cfg: &DecodeConfig,
    batch: usize,
) -> Vec<Vec<Detection>> {
    run_tiles(net, tiles, cfg, batch, None).0
}

/// [`detect_tiles`] and the mean loss over the tiles (their boxes as targets, the box
/// loss weighted by `box_weight`): validation.
pub fn predict_tiles(
    net: &Detector,
    tiles: &TileSet,
    cfg: &DecodeConfig,
    (batch, classes, box_weight): (usize, usize, f64),
) -> (Vec<Vec<Detection>>, f64) {
    run_tiles(net, tiles, cfg, batch, Some((classes, box_weight)))
}

/// The one batching loop of both; the loss only when `scored` gives (classes, box weight).
fn run_tiles(
    net: &Detector,
    tiles: &TileSet,
    cfg: &DecodeConfig,
    batch: usize,
    scored: Option<(usize, f64)>,
) -> (Vec<Vec<Detection>>, f64) {
    let size = tiles.tiles.first().map(|t| t.size as i64).unwrap_or(0);
    let mut found = Vec::with_capacity(tiles.len());
    let mut loss_sum = 0.0;
    tch::no_grad(|| {
        for start in (0..tiles.len()).step_by(batch.max(1)) {
            let idx: Vec<i64> = (start as i64..(start + batch).min(tiles.len()) as i64).collect();
            let x = tiles
                .images(&Tensor::from_slice(&idx))
                .to_device(net.device());
            let out = net.forward_t(&x, false);
            if let Some((classes, box_weight)) = scored {
                let boxes: Vec<Vec<Annotation>> = idx
                    .iter()
                    .map(|&i| tiles.tiles[i as usize].boxes.clone())
                    .collect();
                let (focal, l1) = losses(&out, &encode(&boxes, classes, size));
                loss_sum += (focal + l1 * box_weight).double_value(&[]) * idx.len() as f64;
            }
            found.extend(decode(&out, size, cfg));
        }
    });
    (found, loss_sum / tiles.len().max(1) as f64)
}

impl Task for DetectionTask<'_> {
    type Batch = (Tensor, Vec<Vec<Annotation>>);

    /// Shuffled batches of tiles, each tile augmented by a generator fixed by (seed,
    /// epoch, batch), so a resumed run replays them.
    fn train_batches(&self, epoch: usize) -> Box<dyn Iterator<Item = Self::Batch> + '_> {
        let chunks = epoch_batches(
            self.train.len(),
            self.batch_size,
            (self.seed, 0xDE7EC7),
            epoch,
            2,
        );
        let device = self.net.device();
        Box::new(chunks.into_iter().enumerate().map(move |(b, idx)| {
            let mut rng = Rng::new(self.seed, 0xA06 + ((epoch as u64) << 20) + b as u64);
            let x = self.train.images(&Tensor::from_slice(&idx));
            let (images, boxes): (Vec<Tensor>, Vec<Vec<Annotation>>) = idx
                .iter()
                .enumerate()
                .map(|(j, &i)| {
                    self.augment.apply(
                        &x.get(j as i64),
                        &self.train.tiles[i as usize].boxes,
                        &mut rng,
                    )
                })
                .unzip();
            (Tensor::stack(&images, 0).to_device(device), boxes)
        }))
    }

    /// The batches [`Task::train_batches`] yields, counted without shuffling: every chunk
    /// of `batch_size` tiles that holds at least two (batch norm needs two).
    fn steps_per_epoch(&self) -> usize {
        let (n, b) = (self.train.len(), self.batch_size.max(1));
        let full = if b >= 2 { n / b } else { 0 };
        full + usize::from(n % b >= 2)
    }

    fn training_step(&self, (x, boxes): Self::Batch) -> Result<StepOutput> {
        let size = x.size()[2];
        let out = self.net.forward_t(&x, true);
        let t = encode(&boxes, self.classes.len(), size);
        let t = Targets {
            heatmap: t.heatmap.to_device(x.device()),
            boxes: t.boxes.to_device(x.device()),
            mask: t.mask.to_device(x.device()),
            num_boxes: t.num_boxes,
        };
        let found = tch::no_grad(|| {
            let hit = out.heatmap.sigmoid().gt(0.5).to_kind(Kind::Float)
                * t.heatmap.eq(1.0).to_kind(Kind::Float);
            hit.sum(Kind::Float).double_value(&[])
        });
        let n = boxes.len();
        Ok(StepOutput {
            loss: self.loss(&out, &t),
            examples: n,
            score: n as f64 * found / t.num_boxes.max(1) as f64,
        })
    }

    fn validate(&self) -> Option<Validation> {
        let val = self.val?;
        let sizes = (
            self.eval_batch_size,
            self.classes.len(),
            self.box_loss_weight,
        );
        let (found, loss) = predict_tiles(self.net, val, &self.decode, sizes);
        let truth: Vec<Vec<Annotation>> = val.tiles.iter().map(|t| t.boxes.clone()).collect();
        let metrics = coco_eval::evaluate(&truth, &found, self.classes);
        Some(Validation {
            loss,
            score: metrics.map50.max(0.0),
        })
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        self.net.weights()
    }

    fn device(&self) -> Device {
        self.net.device()
    }
}
