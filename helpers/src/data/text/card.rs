//! [`TextCard`]: what a reader must know about a text set before trusting a classifier
//! on it — source, licence, size and class balance per split, text lengths in tokens
//! (and how many `max_length` cuts), vocabulary size, out-of-vocabulary rates on
//! validation and test, texts duplicated across splits, and known biases.
use super::{TextSet, Vocabulary};
use crate::data::tabular::RowSplit;
use crate::metrics::quantile;
use crate::plot::{self, Figure};
use crate::render::Table;
use crate::Result;
use polars::prelude::Column;
use std::collections::HashSet;

#[derive(Debug, Clone)]
pub struct TextCard {
    pub name: String,
    pub facts: Vec<(String, String)>,
    /// Tokens per text, all splits.
    pub lengths: Vec<usize>,
    pub oov_val: f64,
    pub oov_test: f64,
    /// Texts of val or test whose exact (lower-cased) text is also in train.
    pub duplicates: usize,
}

impl TextCard {
    pub fn of(
        set: &TextSet,
        split: &RowSplit,
        vocab: &Vocabulary,
        max_length: usize,
    ) -> Result<TextCard> {
        let texts = |rows: &[usize]| {
            rows.iter()
                .map(|&r| set.texts[r].as_str())
                .collect::<Vec<_>>()
        };
        let encode = |rows: &[usize]| vocab.encode(texts(rows).into_iter(), max_length);
        let (train, val, test) = (
            encode(&split.train),
            encode(&split.val),
            encode(&split.test),
        );
        let lengths: Vec<usize> = set.texts.iter().map(|t| vocab.tokens(t).len()).collect();
        let mut sorted: Vec<f64> = lengths.iter().map(|&l| l as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let seen: HashSet<String> = split
            .train
            .iter()
            .map(|&r| set.texts[r].to_lowercase())
            .collect();
        let duplicates = split
            .val
            .iter()
            .chain(&split.test)
            .filter(|&&r| seen.contains(&set.texts[r].to_lowercase()))
            .count();
        let balance = |rows: &[usize]| {
            let counts = set.class_counts(rows);
            let named: Vec<String> = set
                .classes
                .iter()
                .zip(&counts)
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            format!("{} texts: {}", rows.len(), named.join(", "))
        };
        let groups = |rows: &[usize]| {
            rows.iter()
                .map(|&r| &set.groups[r])
                .collect::<HashSet<_>>()
                .len()
        };
        let truncated = train.truncated + val.truncated + test.truncated;
        let mut facts = vec![
            ("name".to_string(), set.name.clone()),
            ("source".into(), set.provenance.source.clone()),
            ("licence".into(), set.provenance.licence.clone()),
            ("size".into(), format!("{} texts, {} classes: {}", set.len(), set.classes.len(), set.classes.join(", "))),
            ("skipped rows".into(), counted(&set.skipped)),
            ("repaired on reading".into(), counted(&set.repairs)),
            ("train".into(), format!("{} ({} groups)", balance(&split.train), groups(&split.train))),
            ("validation".into(), format!("{} ({} groups)", balance(&split.val), groups(&split.val))),
            ("test".into(), format!("{} ({} groups)", balance(&split.test), groups(&split.test))),
            (
                "length (tokens)".into(),
                format!(
                    "min {} / median {} / 95th percentile {} / max {}; {truncated} texts ({:.2} %) longer than max_length {max_length} are cut",
                    sorted[0], quantile(&sorted, 0.5), quantile(&sorted, 0.95), sorted[sorted.len() - 1],
                    100.0 * truncated as f64 / set.len() as f64
                ),
            ),
            ("vocabulary".into(), format!("{} ids (words seen ≥ {} times in the training texts, plus <pad>, <unk>)", vocab.len(), vocab.min_freq)),
            ("out-of-vocabulary tokens".into(), format!("train {:.2} %, validation {:.2} %, test {:.2} %", 100.0 * train.oov_rate(), 100.0 * val.oov_rate(), 100.0 * test.oov_rate())),
            ("duplicates across splits".into(), format!("{duplicates} validation/test texts also appear (same text) in train")),
            ("SHA-256".into(), match set.official {
                Some(true) => format!("{} (the official file)", set.sha256),
                Some(false) => format!("{} — differs from the official file", set.sha256),
                None => set.sha256.clone(),
            }),
        ];
        facts.extend(
            set.provenance
                .known_biases
                .iter()
                .map(|b| ("known bias".to_string(), b.clone())),
        );
        Ok(TextCard {
            name: set.name.clone(),
            facts,
            lengths,
            oov_val: val.oov_rate(),
            oov_test: test.oov_rate(),
            duplicates,
        })
    }

    pub fn table(&self) -> Result<Table> {
        let (f, v): (Vec<String>, Vec<String>) = self.facts.iter().cloned().unzip();
        Table::from_columns(
            format!("Data card: {}", self.name),
            vec![
                Column::new("field".into(), f),
                Column::new("value".into(), v),
            ],
        )
    }

    /// Histogram of text lengths in tokens (bins of 5).
    pub fn length_figure(&self) -> Result<Figure> {
        let max = self.lengths.iter().copied().max().unwrap_or(0);
        let bins = max / 5 + 1;
        let mut counts = vec![0.0; bins];
        self.lengths.iter().for_each(|&l| counts[l / 5] += 1.0);
        let labels: Vec<String> = (0..bins).map(|b| format!("{}", b * 5)).collect();
        plot::bars(
            "Text length (tokens)",
            &labels,
            &[("texts", counts)],
            "texts",
        )
    }

    pub fn evcxr_display(&self) {
        match self.table() {
            Ok(t) => t.evcxr_display(),
            Err(e) => println!("{e}"),
        }
    }
}

/// `"n: why; …"`, or "none".
fn counted(skipped: &[(String, usize)]) -> String {
    if skipped.is_empty() {
        return "none".into();
    }
    skipped
        .iter()
        .map(|(why, n)| format!("{n}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}
