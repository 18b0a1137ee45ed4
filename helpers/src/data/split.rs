//! [`Split`]: a stratified, seeded partition of the training set into train and
//! validation indices (the test set is never touched). Saved into each run as JSON.
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Indices into the original training set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<i64>,
    pub val: Vec<i64>,
}

impl Split {
    /// Per class, shuffles its examples and holds out `round(val_fraction · n_class)` of
    /// them, so every class keeps its proportion in both parts. `limit` > 0 first keeps a
    /// stratified subset of that many examples (for quick profiles).
    pub fn stratified(labels: &[i64], val_fraction: f64, limit: usize, seed: u64) -> Split {
        let num_classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        let keep = if limit > 0 && limit < labels.len() {
            limit as f64 / labels.len() as f64
        } else {
            1.0
        };
        let mut rng = Rng::new(seed, 0x5_u64 << 32);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for class in 0..num_classes {
            let mut idx: Vec<i64> = (0..labels.len() as i64)
                .filter(|&i| labels[i as usize] == class as i64)
                .collect();
            rng.shuffle(&mut idx);
            idx.truncate((idx.len() as f64 * keep).round() as usize);
            let n_val = (idx.len() as f64 * val_fraction).round() as usize;
            val.extend_from_slice(&idx[..n_val]);
            train.extend_from_slice(&idx[n_val..]);
        }
        train.sort_unstable();
        val.sort_unstable();
        Split { train, val }
    }

    /// Saves as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_text_atomic(
            path,
            &serde_json::to_string(self).expect("split serialises"),
        )
    }

    /// Loads a saved split.
    pub fn load(path: &Path) -> Result<Split> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::data(path, format!("not a split file: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_class_proportions_and_is_disjoint() {
        // 100 of class 0, 50 of class 1.
        let labels: Vec<i64> = (0..150).map(|i| i64::from(i >= 100)).collect();
        let s = Split::stratified(&labels, 0.2, 0, 3);
        let count = |ix: &[i64], c: i64| ix.iter().filter(|&&i| labels[i as usize] == c).count();
        assert_eq!((count(&s.val, 0), count(&s.val, 1)), (20, 10));
        assert_eq!((count(&s.train, 0), count(&s.train, 1)), (80, 40));
        let mut all: Vec<i64> = s.train.iter().chain(&s.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..150).collect::<Vec<_>>());
    }

    #[test]
    fn seeded_and_limited() {
        let labels: Vec<i64> = (0..1000).map(|i| i % 10).collect();
        assert_eq!(
            Split::stratified(&labels, 0.1, 0, 1),
            Split::stratified(&labels, 0.1, 0, 1)
        );
        assert_ne!(
            Split::stratified(&labels, 0.1, 0, 1),
            Split::stratified(&labels, 0.1, 0, 2)
        );
        let small = Split::stratified(&labels, 0.1, 200, 1);
        assert_eq!(small.train.len() + small.val.len(), 200);
        assert_eq!(small.val.len(), 20);
    }
}
