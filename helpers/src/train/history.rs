//! [`History`]: one record per epoch, saved as `history.csv` and drawn as curves.
use crate::plot::{self, Figure, Series};
use crate::render::Table;
use crate::{Error, Result};
use polars::prelude::Column;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// LR of the epoch's last step.
    pub lr: f64,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
    /// Training throughput, images per second.
    pub images_per_sec: f64,
}

const HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_sec";

/// Per-epoch records of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The record with the best validation accuracy (first one on ties).
    pub fn best(&self) -> Option<&EpochRecord> {
        self.epochs
            .iter()
            .fold(None, |best: Option<&EpochRecord>, r| match best {
                Some(b) if b.val_accuracy >= r.val_accuracy => Some(b),
                _ => Some(r),
            })
    }

    /// Total training wall time, seconds.
    pub fn seconds(&self) -> f64 {
        self.epochs.iter().map(|r| r.seconds).sum()
    }

    /// CSV text with a header row; numbers at full precision.
    pub fn to_csv(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for r in &self.epochs {
            out += &format!(
                "{},{},{},{},{},{},{},{}\n",
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.val_loss,
                r.val_accuracy,
                r.lr,
                r.seconds,
                r.images_per_sec
            );
        }
        out
    }

    /// Saves `history.csv` atomically.
    pub fn save_csv(&self, path: &Path) -> Result<()> {
        crate::io::write_text_atomic(path, &self.to_csv())
    }

    /// Reads a `history.csv` written by [`History::save_csv`].
    pub fn load_csv(path: &Path) -> Result<History> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(Error::data(path, format!("expected the header `{HEADER}`")));
        }
        let epochs = lines
            .enumerate()
            .map(|(i, line)| {
                parse_record(line).ok_or_else(|| {
                    Error::data(path, format!("line {}: cannot parse `{line}`", i + 2))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(History { epochs })
    }

    /// Loss and accuracy (train vs val) and LR against epochs.
    pub fn curves(&self) -> Result<Figure> {
        self.curves_scored("accuracy")
    }

    /// [`History::curves`] with the score panel titled `score` (a track whose score is
    /// not an accuracy: detection's mAP).
    pub fn curves_scored(&self, score: &str) -> Result<Figure> {
        let pts = |f: fn(&EpochRecord) -> f64| {
            self.epochs
                .iter()
                .map(|r| (r.epoch as f64, f(r)))
                .collect::<Vec<_>>()
        };
        plot::lines(
            "training_curves",
            &[
                (
                    "loss",
                    "epoch",
                    vec![
                        Series::new("train", pts(|r| r.train_loss)),
                        Series::new("val", pts(|r| r.val_loss)),
                    ],
                ),
                (
                    score,
                    "epoch",
                    vec![
                        Series::new("train", pts(|r| r.train_accuracy)),
                        Series::new("val", pts(|r| r.val_accuracy)),
                    ],
                ),
                (
                    "learning rate (end of epoch)",
                    "epoch",
                    vec![Series::new("lr", pts(|r| r.lr))],
                ),
            ],
        )
    }

    /// The records as a table.
    pub fn table(&self) -> Result<Table> {
        let col = |name: &str, f: fn(&EpochRecord) -> f64| {
            Column::new(name.into(), self.epochs.iter().map(f).collect::<Vec<_>>())
        };
        Table::from_columns(
            "Training history",
            vec![
                Column::new(
                    "epoch".into(),
                    self.epochs
                        .iter()
                        .map(|r| r.epoch as u64)
                        .collect::<Vec<_>>(),
                ),
                col("train_loss", |r| r.train_loss),
                col("train_acc", |r| r.train_accuracy),
                col("val_loss", |r| r.val_loss),
                col("val_acc", |r| r.val_accuracy),
                col("lr", |r| r.lr),
                col("seconds", |r| r.seconds),
                col("img/s", |r| r.images_per_sec),
            ],
        )
    }
}

fn parse_record(line: &str) -> Option<EpochRecord> {
    let v: Vec<&str> = line.split(',').collect();
    if v.len() != 8 {
        return None;
    }
    let f = |i: usize| v[i].parse::<f64>().ok();
    Some(EpochRecord {
        epoch: v[0].parse().ok()?,
        train_loss: f(1)?,
        train_accuracy: f(2)?,
        val_loss: f(3)?,
        val_accuracy: f(4)?,
        lr: f(5)?,
        seconds: f(6)?,
        images_per_sec: f(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_exactly() -> Result<()> {
        let r = |e, acc| EpochRecord {
            epoch: e,
            train_loss: 0.1 / 3.0,
            train_accuracy: 0.9,
            val_loss: 0.2,
            val_accuracy: acc,
            lr: 1e-3,
            seconds: 1.5,
            images_per_sec: 1000.0,
        };
        let h = History {
            epochs: vec![r(1, 0.8), r(2, 0.85), r(3, 0.85)],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.csv");
        h.save_csv(&p)?;
        assert_eq!(History::load_csv(&p)?, h);
        assert_eq!(h.best().map(|b| b.epoch), Some(2));
        Ok(())
    }
}
