//! [`RowSplit`]: which rows of a table train, validate and test — shuffled and seeded for
//! independent rows (districts), in time order for a series (no future in the past).
//! Saved with each run as JSON, so a reference tool can score the identical split.
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Row indices of the three parts, each sorted (time order for a series).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSplit {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl RowSplit {
    /// A seeded shuffle of `rows`, cut into `val` and `test` fractions and the rest.
    pub fn shuffled(rows: &[usize], val: f64, test: f64, seed: u64) -> Result<RowSplit> {
        check_fractions(val, test)?;
        let mut idx = rows.to_vec();
        Rng::new(seed, 0x7AB1E).shuffle(&mut idx);
        let (n_val, n_test) = counts(idx.len(), val, test);
        let mut split = RowSplit {
            test: idx[..n_test].to_vec(),
            val: idx[n_test..n_test + n_val].to_vec(),
            train: idx[n_test + n_val..].to_vec(),
        };
        for part in [&mut split.train, &mut split.val, &mut split.test] {
            part.sort_unstable();
        }
        Ok(split)
    }

    /// `0..n` in time order: the first rows train, the next validate, the last test.
    /// `gap` positions are left out before each later part, so that no training example's
    /// target lies in the validation period (a window's look-ahead).
    pub fn chronological(n: usize, val: f64, test: f64, gap: usize) -> Result<RowSplit> {
        check_fractions(val, test)?;
        let (n_val, n_test) = counts(n, val, test);
        let test_start = n - n_test;
        let val_start = test_start.saturating_sub(n_val);
        if val_start < 2 * gap + 1 {
            return Err(Error::argument(
                "gap",
                format!("{n} positions leave nothing to train on with a gap of {gap}"),
            ));
        }
        Ok(RowSplit {
            train: (0..val_start - gap).collect(),
            val: (val_start..test_start - gap).collect(),
            test: (test_start..n).collect(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_json(path, self)
    }

    pub fn load(path: &Path) -> Result<RowSplit> {
        crate::io::read_json(path)
    }
}

fn check_fractions(val: f64, test: f64) -> Result<()> {
    let ok = |f: f64| (0.0..1.0).contains(&f);
    if !ok(val) || !ok(test) || val + test >= 1.0 {
        return Err(Error::argument(
            "val, test",
            format!("fractions {val} and {test} must be in [0, 1) and leave rows to train on"),
        ));
    }
    Ok(())
}

fn counts(n: usize, val: f64, test: f64) -> (usize, usize) {
    let round = |f: f64| (n as f64 * f).round() as usize;
    (round(val), round(test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_parts_are_disjoint_seeded_and_complete() {
        let rows: Vec<usize> = (0..100).collect();
        let a = RowSplit::shuffled(&rows, 0.1, 0.2, 3).unwrap();
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (70, 10, 20));
        let mut all = [a.train.clone(), a.val.clone(), a.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, rows);
        assert_eq!(a, RowSplit::shuffled(&rows, 0.1, 0.2, 3).unwrap());
        assert_ne!(a, RowSplit::shuffled(&rows, 0.1, 0.2, 4).unwrap());
    }

    #[test]
    fn chronological_parts_follow_time_with_gaps() {
        let s = RowSplit::chronological(100, 0.15, 0.15, 5).unwrap();
        assert_eq!(s.train, (0..65).collect::<Vec<_>>());
        assert_eq!(s.val, (70..80).collect::<Vec<_>>());
        assert_eq!(s.test, (85..100).collect::<Vec<_>>());
        assert!(RowSplit::chronological(10, 0.2, 0.2, 5).is_err());
        assert!(RowSplit::shuffled(&[1, 2], 0.6, 0.5, 0).is_err());
    }
}
