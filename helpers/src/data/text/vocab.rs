//! Tokenisation: words (letters, digits and inner apostrophes), lower-cased unless the
//! vocabulary keeps case, and single punctuation marks, and a [`Vocabulary`] of the training texts' words that occur at
//! least `min_freq` times — fitted on the training split only, saved with the run, so
//! validation and test words it never saw count as out-of-vocabulary.
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Id of padding (0) and of an out-of-vocabulary word (1).
pub const PAD: i64 = 0;
pub const UNK: i64 = 1;

/// `"It's GREAT!"` → `["it's", "great", "!"]`.
pub fn tokenize(text: &str) -> Vec<String> {
    tokenize_case(text, true)
}

/// [`tokenize`], lower-casing the words only when `lowercase`.
pub fn tokenize_case(text: &str, lowercase: bool) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let inner_apostrophe = (c == '\'' || c == '’')
            && !word.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            if lowercase {
                word.extend(c.to_lowercase());
            } else {
                word.push(c);
            }
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Words by id (`<pad>`, `<unk>`, then by falling training frequency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub words: Vec<String>,
    pub min_freq: usize,
    /// Whether words are lower-cased before lookup (saved vocabularies without the key
    /// were all lower-cased).
    #[serde(default = "lower_cased")]
    pub lowercase: bool,
    #[serde(skip)]
    index: HashMap<String, i64>,
}

fn lower_cased() -> bool {
    true
}

/// Texts as padded id rows.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Row-major `texts × max_length`, padded with [`PAD`].
    pub ids: Vec<i64>,
    pub max_length: usize,
    /// Tokens per text before truncation.
    pub lengths: Vec<usize>,
    /// Texts longer than `max_length` (cut at the end).
    pub truncated: usize,
    /// Tokens kept, and those of them not in the vocabulary.
    pub tokens: usize,
    pub unknown: usize,
}

impl Encoded {
    pub fn oov_rate(&self) -> f64 {
        self.unknown as f64 / self.tokens.max(1) as f64
    }
}

impl Vocabulary {
    /// The lower-cased words of `texts` seen at least `min_freq` times, at most
    /// `max_size` ids in all.
    pub fn fit<'a>(
        texts: impl Iterator<Item = &'a str>,
        min_freq: usize,
        max_size: usize,
    ) -> Vocabulary {
        Vocabulary::fit_case(texts, min_freq, max_size, true)
    }

    /// [`Vocabulary::fit`], keeping the words' case unless `lowercase`.
    pub fn fit_case<'a>(
        texts: impl Iterator<Item = &'a str>,
        min_freq: usize,
        max_size: usize,
        lowercase: bool,
    ) -> Vocabulary {
        let mut counts = HashMap::<String, usize>::new();
        for t in texts {
            for w in tokenize_case(t, lowercase) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut frequent: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= min_freq.max(1))
            .collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut words = vec!["<pad>".to_string(), "<unk>".to_string()];
        words.extend(
            frequent
                .into_iter()
                .take(max_size.saturating_sub(2))
                .map(|(w, _)| w),
        );
        Vocabulary {
            lowercase,
            ..Vocabulary::from_words(words, min_freq)
        }
    }

    /// A lower-casing vocabulary of `words` by id.
    pub fn from_words(words: Vec<String>, min_freq: usize) -> Vocabulary {
        Vocabulary {
            words,
            min_freq,
            lowercase: true,
            index: HashMap::new(),
        }
        .reindexed()
    }

    /// After deserialising: rebuilds the word index.
    pub fn reindexed(mut self) -> Vocabulary {
        self.index = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as i64))
            .collect();
        self
    }

    /// The tokens of `text` as this vocabulary splits them (its case rule).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        tokenize_case(text, self.lowercase)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.len() <= 2
    }

    pub fn id(&self, word: &str) -> i64 {
        self.index.get(word).copied().unwrap_or(UNK)
    }

    /// Every text as `max_length` ids (truncated at the end, padded with [`PAD`]).
    pub fn encode<'a>(&self, texts: impl Iterator<Item = &'a str>, max_length: usize) -> Encoded {
        let mut e = Encoded {
            ids: Vec::new(),
            max_length,
            lengths: Vec::new(),
            truncated: 0,
            tokens: 0,
            unknown: 0,
        };
        for t in texts {
            let tokens = self.tokens(t);
            e.lengths.push(tokens.len());
            e.truncated += usize::from(tokens.len() > max_length);
            let kept: Vec<i64> = tokens.iter().take(max_length).map(|w| self.id(w)).collect();
            e.tokens += kept.len();
            e.unknown += kept.iter().filter(|&&i| i == UNK).count();
            e.ids.extend(&kept);
            e.ids
                .extend(std::iter::repeat_n(PAD, max_length - kept.len()));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_inner_apostrophes_and_punctuation() {
        assert_eq!(
            tokenize("It's GREAT!  Not 'bad'..."),
            ["it's", "great", "!", "not", "'", "bad", "'", ".", ".", "."]
        );
        assert_eq!(tokenize("   "), Vec::<String>::new());
        assert_eq!(tokenize_case("It's GREAT", false), ["It's", "GREAT"]);
    }

    #[test]
    fn a_cased_vocabulary_keeps_case_when_encoding() {
        let v = Vocabulary::fit_case(["Good good", "Good"].into_iter(), 1, 10, false);
        assert_eq!(v.words, ["<pad>", "<unk>", "Good", "good"]);
        assert_eq!(v.encode(["good GOOD"].into_iter(), 2).ids, [3, UNK]);
        // Saved before the key existed: lower-cased.
        let old: Vocabulary =
            serde_json::from_str(r#"{"words": ["<pad>", "<unk>", "a"], "min_freq": 1}"#).unwrap();
        assert!(old.lowercase);
    }

    #[test]
    fn fitted_on_train_unknown_words_counted() {
        let v = Vocabulary::fit(["good film", "good plot", "bad film"].into_iter(), 2, 100);
        assert_eq!(v.words, ["<pad>", "<unk>", "film", "good"]);
        let e = v.encode(["good bad film film film"].into_iter(), 4);
        assert_eq!(e.ids, [3, UNK, 2, 2]);
        assert_eq!((e.truncated, e.tokens, e.unknown), (1, 4, 1));
        let json = serde_json::to_string(&v).unwrap();
        let back: Vocabulary = serde_json::from_str::<Vocabulary>(&json)
            .unwrap()
            .reindexed();
        assert_eq!(back.id("good"), 3);
    }
}
