//! Texts for the text-classification track: a [`TextSet`] (texts, labels, the group each
//! text belongs to, provenance) from the Rotten Tomatoes critic snippets, the CrowdFlower
//! tweets (three classes) or the user's own CSV/TSV; a grouped split ([`grouped_split`]), a word [`Vocabulary`] fitted on the
//! training texts, and the [`TextCard`].
pub mod card;
pub mod mojibake;
pub mod rotten_tomatoes;
pub mod tweets;
pub mod user;
pub mod vocab;

pub use card::TextCard;
pub use user::Columns;
pub use vocab::{tokenize, Encoded, Vocabulary};

use crate::data::tabular::{Provenance, RowSplit};
use crate::io::sha256_file;
use crate::rng::Rng;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a set's rows come from: the path errors name, the data's SHA-256 and, for a
/// packaged set, the official one.
pub(crate) struct Origin<'a> {
    pub path: &'a Path,
    pub sha256: String,
    pub official_sha256: Option<&'a str>,
}

impl<'a> Origin<'a> {
    /// A file, checksummed.
    pub fn file(path: &'a Path, official_sha256: Option<&'a str>) -> Result<Origin<'a>> {
        Ok(Origin {
            path,
            sha256: sha256_file(path)?,
            official_sha256,
        })
    }
}

/// Labelled texts.
#[derive(Debug, Clone)]
pub struct TextSet {
    pub name: String,
    pub texts: Vec<String>,
    /// Index into `classes`.
    pub labels: Vec<i64>,
    pub classes: Vec<String>,
    /// What must not be split across train and test (the movie a snippet reviews); each
    /// text its own group when there is none.
    pub groups: Vec<String>,
    pub provenance: Provenance,
    pub sha256: String,
    pub official: Option<bool>,
    /// Rows skipped, with why (empty text, a label outside the kept classes).
    pub skipped: Vec<(String, usize)>,
    /// What reading repaired, with how often (a damaged encoding).
    pub repairs: Vec<(String, usize)>,
}

impl TextSet {
    /// Builds a set from (text, label, group) rows; `keep` restricts the classes (others
    /// are skipped and counted), in that order; otherwise classes are sorted.
    pub(crate) fn from_rows<'a>(
        name: String,
        rows: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
        keep: Option<&[&str]>,
        provenance: Provenance,
        origin: Origin,
    ) -> Result<TextSet> {
        let path = origin.path;
        let mut kept: Vec<(String, String, String)> = Vec::new();
        let mut skipped = BTreeMap::<String, usize>::new();
        for (i, (text, label, group)) in rows.enumerate() {
            let label = label.trim();
            if text.trim().is_empty() {
                *skipped
                    .entry("empty or whitespace-only text".into())
                    .or_default() += 1;
            } else if keep.is_some_and(|k| !k.contains(&label)) {
                *skipped
                    .entry(format!("label `{label}` (not a class of this task)"))
                    .or_default() += 1;
            } else {
                let group = group.map_or_else(|| format!("row {i}"), str::to_string);
                kept.push((text.trim().to_string(), label.to_string(), group));
            }
        }
        let classes: Vec<String> = match keep {
            Some(k) => k.iter().map(|s| s.to_string()).collect(),
            None => {
                let mut c: Vec<String> = kept.iter().map(|r| r.1.clone()).collect();
                c.sort_unstable();
                c.dedup();
                c
            }
        };
        if classes.len() < 2 {
            return Err(Error::data(
                path,
                format!(
                    "{} class(es) found; classification needs two or more",
                    classes.len()
                ),
            ));
        }
        let index = |l: &str| {
            classes
                .iter()
                .position(|c| c == l)
                .expect("kept labels are classes") as i64
        };
        let sha256 = origin.sha256;
        Ok(TextSet {
            name,
            labels: kept.iter().map(|r| index(&r.1)).collect(),
            texts: kept.iter().map(|r| r.0.clone()).collect(),
            groups: kept.into_iter().map(|r| r.2).collect(),
            classes,
            provenance,
            official: origin.official_sha256.map(|s| s == sha256),
            sha256,
            skipped: skipped.into_iter().collect(),
            repairs: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The set without the texts of the `drop` classes; they are counted as skipped.
    pub fn without_classes(&self, drop: &[&str]) -> Result<TextSet> {
        if let Some(unknown) = drop.iter().find(|d| !self.classes.iter().any(|c| c == *d)) {
            return Err(Error::argument(
                "drop",
                format!(
                    "`{unknown}` is not a class; the classes are: {}",
                    self.classes.join(", ")
                ),
            ));
        }
        let classes: Vec<String> = self
            .classes
            .iter()
            .filter(|c| !drop.contains(&c.as_str()))
            .cloned()
            .collect();
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| !drop.contains(&self.classes[self.labels[i] as usize].as_str()))
            .collect();
        let mut skipped = self.skipped.clone();
        for d in drop {
            let n = self
                .labels
                .iter()
                .filter(|&&l| self.classes[l as usize] == *d)
                .count();
            skipped.push((format!("label `{d}` (dropped on request)"), n));
        }
        let relabel = |l: i64| {
            classes
                .iter()
                .position(|c| *c == self.classes[l as usize])
                .expect("kept class") as i64
        };
        Ok(TextSet {
            texts: keep.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: keep.iter().map(|&i| relabel(self.labels[i])).collect(),
            groups: keep.iter().map(|&i| self.groups[i].clone()).collect(),
            classes,
            skipped,
            ..self.clone()
        })
    }

    /// Texts per class of `rows`.
    pub fn class_counts(&self, rows: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        rows.iter()
            .for_each(|&r| counts[self.labels[r] as usize] += 1);
        counts
    }

    pub fn card(
        &self,
        split: &RowSplit,
        vocab: &Vocabulary,
        max_length: usize,
    ) -> crate::Result<TextCard> {
        TextCard::of(self, split, vocab, max_length)
    }
}

/// Splits `set` so that no group has texts in two parts: groups are shuffled (seeded) and
/// dealt into test, then validation, until each holds its fraction of the texts; the
/// rest train. Class balance follows from the groups (the card reports it per part).
pub fn grouped_split(set: &TextSet, val: f64, test: f64, seed: u64) -> Result<RowSplit> {
    if !(0.0..1.0).contains(&(val + test)) || val < 0.0 || test < 0.0 {
        return Err(Error::argument(
            "val, test",
            format!("fractions {val} and {test} must leave texts to train on"),
        ));
    }
    let mut members = BTreeMap::<&str, Vec<usize>>::new();
    set.groups
        .iter()
        .enumerate()
        .for_each(|(i, g)| members.entry(g).or_default().push(i));
    let mut groups: Vec<&Vec<usize>> = members.values().collect();
    Rng::new(seed, 0x7E27).shuffle(&mut groups);
    let n = set.len() as f64;
    let (mut parts, mut part) = ([Vec::new(), Vec::new(), Vec::new()], 0);
    let targets = [test * n, val * n];
    for g in groups {
        while part < 2 && parts[part].len() as f64 >= targets[part] {
            part += 1;
        }
        parts[part].extend_from_slice(g);
    }
    for p in parts.iter_mut() {
        p.sort_unstable();
    }
    let [test, val, train] = parts;
    Ok(RowSplit { train, val, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(groups: &[&str]) -> TextSet {
        let rows: Vec<(String, String, String)> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    format!("text {i}"),
                    if i % 2 == 0 { "a".into() } else { "b".into() },
                    g.to_string(),
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "x").unwrap();
        let it = rows
            .iter()
            .map(|(t, l, g)| (t.as_str(), l.as_str(), Some(g.as_str())));
        TextSet::from_rows(
            "t".into(),
            it,
            None,
            Provenance {
                source: String::new(),
                licence: String::new(),
                known_biases: vec![],
            },
            Origin::file(&path, None).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn no_group_crosses_a_split() {
        let groups: Vec<String> = (0..200).map(|i| format!("movie{}", i / 4)).collect();
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let s = set(&refs);
        let split = grouped_split(&s, 0.1, 0.2, 1).unwrap();
        assert_eq!(split.train.len() + split.val.len() + split.test.len(), 200);
        let of = |rows: &[usize]| {
            rows.iter()
                .map(|&r| s.groups[r].clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(of(&split.train).is_disjoint(&of(&split.test)));
        assert!(of(&split.train).is_disjoint(&of(&split.val)));
        assert!(
            (split.test.len() as i64 - 40).abs() <= 4,
            "{}",
            split.test.len()
        );
    }
}
