//! Tables for the regression track: a [`TabularSet`] (a [`Frame`] with a target column
//! and its provenance) from California Housing, a TMY3 weather year or the user's own
//! CSV/TSV; its [`card`]; row splits; and the train-fitted [`Preprocessor`].
pub mod california;
pub mod card;
pub mod frame;
pub mod preprocess;
pub mod rows;
pub mod weather;

pub use card::TabularCard;
pub use frame::{Column, Frame};
pub use preprocess::{PreprocessOptions, Preprocessor, Transformed};
pub use rows::RowSplit;

use crate::io::sha256_file;
use crate::{Error, Result};
use std::path::Path;

/// Where a table comes from and what limits conclusions drawn on it.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub source: String,
    pub licence: String,
    pub known_biases: Vec<String>,
}

/// A table with a numeric target to predict.
#[derive(Debug, Clone)]
pub struct TabularSet {
    pub name: String,
    /// Rows that have a target (others are dropped at load and counted).
    pub frame: Frame,
    pub target: String,
    pub provenance: Provenance,
    pub sha256: String,
    /// Whether the file is the official one (its SHA-256 matches); `None` for user data.
    pub official: Option<bool>,
    /// Rows dropped because their target was missing.
    pub rows_without_target: usize,
}

impl TabularSet {
    /// The user's own CSV/TSV with a numeric `target` column; `categorical` lists text
    /// columns that look like numbers (codes, zip codes).
    pub fn from_csv(path: impl AsRef<Path>, target: &str, categorical: &[&str]) -> Result<Self> {
        let path = path.as_ref();
        let frame = Frame::read(path, categorical)?;
        let provenance = Provenance {
            source: format!("user file {}", path.display()),
            licence: "see the data's own terms".into(),
            known_biases: vec!["unknown: document how the rows were collected".into()],
        };
        TabularSet::new(
            path.to_string_lossy().into(),
            frame,
            target,
            provenance,
            None,
        )
    }

    /// Checks the target and drops (and counts) rows without one.
    pub fn new(
        name: String,
        frame: Frame,
        target: &str,
        provenance: Provenance,
        official_sha256: Option<&str>,
    ) -> Result<Self> {
        let values = frame.numeric(target)?;
        let keep: Vec<usize> = (0..values.len()).filter(|&r| values[r].is_some()).collect();
        if keep.is_empty() {
            return Err(Error::data(
                &frame.source,
                format!("target `{target}` is missing in every row"),
            ));
        }
        let rows_without_target = frame.height() - keep.len();
        let sha256 = sha256_file(&frame.source)?;
        let official = official_sha256.map(|s| s == sha256);
        Ok(TabularSet {
            name,
            frame: frame.take(&keep),
            target: target.into(),
            provenance,
            sha256,
            official,
            rows_without_target,
        })
    }

    /// The feature columns (every column but the target).
    pub fn feature_names(&self) -> Vec<&str> {
        let names = self.frame.names.iter().map(String::as_str);
        names.filter(|n| *n != self.target).collect()
    }

    /// The target's values (every kept row has one).
    pub fn target_values(&self) -> Vec<f64> {
        let values = self.frame.numeric(&self.target).expect("checked at load");
        values
            .iter()
            .map(|v| v.expect("rows without a target were dropped"))
            .collect()
    }

    /// The data card.
    pub fn card(&self) -> Result<TabularCard> {
        TabularCard::of(self)
    }
}
