//! [`TextData`]: a text set as tensors for the loop — ids `[n, max_length]` and labels
//! per split, with the vocabulary fitted on the training texts only.
use super::config::TokenConfig;
use crate::data::tabular::RowSplit;
use crate::data::text::{Encoded, TextSet, Vocabulary};
use crate::{Error, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tch::Tensor;

/// One split's ids and labels.
#[derive(Debug)]
pub struct TextArrays {
    pub ids: Tensor,
    pub labels: Tensor,
    pub encoded: Encoded,
}

impl TextArrays {
    pub fn len(&self) -> usize {
        self.ids.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn label_vec(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels).expect("1-D labels")
    }
}

#[derive(Debug)]
pub struct TextData {
    pub name: String,
    pub classes: Vec<String>,
    pub vocab: Vocabulary,
    pub tokens: TokenConfig,
    pub split: RowSplit,
    pub train: TextArrays,
    pub val: TextArrays,
    pub test: TextArrays,
    /// The test texts, in order (error analysis).
    pub test_texts: Vec<String>,
    pub fingerprint: String,
}

impl TextData {
    /// Encodes `set` by `split` with a vocabulary of its training texts. A class with no
    /// training text (seen only in validation or test) is an error: no model can learn it.
    pub fn prepare(set: &TextSet, split: &RowSplit, tokens: &TokenConfig) -> Result<TextData> {
        untrainable_class(set, split)?;
        let texts = |rows: &[usize]| {
            rows.iter()
                .map(|&r| set.texts[r].as_str())
                .collect::<Vec<_>>()
        };
        let vocab = Vocabulary::fit_case(
            texts(&split.train).into_iter(),
            tokens.min_freq,
            tokens.max_vocab,
            tokens.lowercase,
        );
        let arrays = |rows: &[usize]| {
            let encoded = vocab.encode(texts(rows).into_iter(), tokens.max_length);
            let labels: Vec<i64> = rows.iter().map(|&r| set.labels[r]).collect();
            TextArrays {
                ids: Tensor::from_slice(&encoded.ids)
                    .view([rows.len() as i64, tokens.max_length as i64]),
                labels: Tensor::from_slice(&labels),
                encoded,
            }
        };
        #[derive(Serialize)]
        struct Fingerprint<'a>(&'a str, &'a RowSplit, &'a TokenConfig);
        let digest = Sha256::digest(
            serde_json::to_vec(&Fingerprint(&set.sha256, split, tokens)).expect("serialises"),
        );
        Ok(TextData {
            name: set.name.clone(),
            classes: set.classes.clone(),
            train: arrays(&split.train),
            val: arrays(&split.val),
            test: arrays(&split.test),
            test_texts: texts(&split.test).into_iter().map(String::from).collect(),
            vocab,
            tokens: tokens.clone(),
            split: split.clone(),
            fingerprint: crate::io::hex(&digest),
        })
    }
}

fn untrainable_class(set: &TextSet, split: &RowSplit) -> Result<()> {
    let train = set.class_counts(&split.train);
    let held_out = set.class_counts(&[split.val.as_slice(), &split.test].concat());
    match (0..train.len()).find(|&c| train[c] == 0 && held_out[c] > 0) {
        None => Ok(()),
        Some(c) => {
            let class = &set.classes[c];
            Err(Error::data(
                &set.name,
                format!("class `{class}` has {} validation/test texts and none in train: no model can learn it", held_out[c]),
            )
            .with_hint(format!("add training texts of `{class}`, or drop it: set.without_classes(&[\"{class}\"]) (its texts are counted as skipped)")))
        }
    }
}
