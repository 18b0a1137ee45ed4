//! A TMY3 "typical meteorological year" (NREL, Wilcox & Marion 2008): 8,760 hourly rows
//! of one station's weather, each calendar month taken from a different real year. The
//! file `723170TYA.CSV` (Greensboro, NC) as PyPI's pvlib 0.16.1 ships it.
use super::Frame;
use crate::io::{csv, sha256_file};
use crate::{Error, Result};
use std::path::Path;

/// Where `scripts/setup` puts the file, relative to the repository root.
pub const DEFAULT_PATH: &str = "data/tmy3/723170TYA.CSV";
/// SHA-256 of the file as shipped in `pvlib==0.16.1`.
pub const SHA256: &str = "1e96f84638ce98e6b29002bc45a27aa69bb29b0ed0368d3b52b7b1f81610c6c9";
/// The variable forecast.
pub const TARGET: &str = "temperature";

/// The file's measured columns and the names they get here.
const MEASURED: [(&str, &str); 7] = [
    ("Dry-bulb (C)", "temperature"),
    ("Dew-point (C)", "dew_point"),
    ("RHum (%)", "humidity"),
    ("Pressure (mbar)", "pressure"),
    ("Wspd (m/s)", "wind_speed"),
    ("Wdir (degrees)", "wind_direction"),
    ("GHI (W/m^2)", "irradiance"),
];

const DAYS_IN_MONTH: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// One station's hourly year, in time order.
#[derive(Debug, Clone)]
pub struct WeatherYear {
    pub station: String,
    /// Measured variables (the names of [`MEASURED`]), one row per hour.
    pub frame: Frame,
    /// (month, day, hour 1–24) of each row.
    pub hours: Vec<(u32, u32, u32)>,
    /// The real year each month (1–12) was taken from.
    pub source_years: Vec<(u32, u32)>,
    pub sha256: String,
    pub official: bool,
}

impl WeatherYear {
    /// Values of variable `name` (every hour has one).
    pub fn values(&self, name: &str) -> Result<Vec<f64>> {
        let column = self.frame.numeric(name)?;
        column
            .iter()
            .enumerate()
            .map(|(r, v)| {
                v.ok_or_else(|| {
                    Error::data(
                        &self.frame.source,
                        format!("line {}: `{name}` is missing", self.frame.lines[r]),
                    )
                })
            })
            .collect()
    }
}

impl WeatherYear {
    /// The year as a table with `temperature` as the target, for its [`super::TabularCard`].
    pub fn card(&self) -> Result<super::TabularCard> {
        let years: Vec<String> = self
            .source_years
            .iter()
            .map(|(m, y)| format!("{m:02}: {y}"))
            .collect();
        let provenance = super::Provenance {
            source: format!("NREL TMY3 (Wilcox & Marion 2008), station {}, as shipped in PyPI pvlib 0.16.1", self.station),
            licence: "US government work (NREL), public domain; pvlib is BSD-3".into(),
            known_biases: vec![
                format!("A typical meteorological year stitches twelve months from different real years (month: year — {}); the seams at month ends are jumps no real year has, and a model sees each season once.", years.join(", ")),
                "Chosen months are typical by construction: extremes (heat waves, cold snaps) are under-represented, so errors on a real year will be larger.".into(),
                "One station (Greensboro, NC, humid subtropical climate): nothing here says how a model transfers to another climate.".into(),
                "Split in time: the test period is November–December, colder than anything after February in the training months, so the test measures a season the model saw only in January–February.".into(),
            ],
        };
        let set = super::TabularSet::new(
            "tmy3_greensboro".into(),
            self.frame.clone(),
            TARGET,
            provenance,
            Some(SHA256),
        )?;
        set.card()
    }
}

/// Reads a TMY3 file (see [`DEFAULT_PATH`]); the time index must be every hour of a
/// 365-day year exactly once, in order — a gap or a duplicate is an error naming its line.
pub fn load(path: impl AsRef<Path>) -> Result<WeatherYear> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(Error::data(path, "TMY3 weather file not found").with_hint(
            "run `scripts/setup packaged-data` (it installs it from PyPI's pvlib 0.16.1)",
        ));
    }
    let station = std::fs::read_to_string(path)
        .map_err(|e| Error::io(path, e))?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let records = csv::read(path, 1)?;
    let frame = Frame::from_records(records, path, &["Date (MM/DD/YYYY)", "Time (HH:MM)"])?;
    let (hours, years) = time_index(&frame)?;
    check_hourly(&hours, &frame)?;
    let names: Vec<&str> = MEASURED.iter().map(|(file, _)| *file).collect();
    let mut measured = frame.select(&names)?;
    measured.names = MEASURED.iter().map(|(_, ours)| ours.to_string()).collect();
    let sha256 = sha256_file(path)?;
    Ok(WeatherYear {
        station: station_name(&station),
        frame: measured,
        hours,
        source_years: source_years(&years),
        official: sha256 == SHA256,
        sha256,
    })
}

/// "723170,"GREENSBORO PIEDMONT TRIAD INT",NC,..." → "GREENSBORO PIEDMONT TRIAD INT, NC (723170)".
fn station_name(line: &str) -> String {
    let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
    match f.as_slice() {
        [id, name, state, ..] => format!("{name}, {state} ({id})"),
        _ => line.to_string(),
    }
}

type TimeIndex = (Vec<(u32, u32, u32)>, Vec<(u32, u32)>);

/// (month, day, hour) and (month, year) of every row, from `MM/DD/YYYY` and `HH:MM`.
fn time_index(frame: &Frame) -> Result<TimeIndex> {
    let text = |name: &str| -> Result<Vec<String>> {
        match frame.column(name)? {
            super::Column::Categorical(v) => {
                Ok(v.iter().map(|s| s.clone().unwrap_or_default()).collect())
            }
            super::Column::Numeric(_) => unreachable!("declared categorical"),
        }
    };
    let (dates, times) = (text("Date (MM/DD/YYYY)")?, text("Time (HH:MM)")?);
    let mut hours = Vec::with_capacity(dates.len());
    let mut years = Vec::with_capacity(dates.len());
    for (r, (date, time)) in dates.iter().zip(&times).enumerate() {
        let bad = |what: &str| {
            Error::data(&frame.source, format!("line {}: {what}", frame.lines[r]))
                .with_hint("TMY3 dates are MM/DD/YYYY and times HH:MM, 01:00 to 24:00")
        };
        let d: Vec<u32> = date.split('/').filter_map(|p| p.parse().ok()).collect();
        let hour: Option<u32> = time.split(':').next().and_then(|h| h.parse().ok());
        match (d.as_slice(), hour) {
            ([m, day, y], Some(h)) if (1..=12).contains(m) && (1..=24).contains(&h) => {
                hours.push((*m, *day, h));
                years.push((*m, *y));
            }
            _ => return Err(bad(&format!("unreadable date/time `{date} {time}`"))),
        }
    }
    Ok((hours, years))
}

/// Every hour of a 365-day year exactly once, in order.
fn check_hourly(hours: &[(u32, u32, u32)], frame: &Frame) -> Result<()> {
    let mut expected = (1u32, 1u32, 1u32);
    for (r, &h) in hours.iter().enumerate() {
        if h != expected {
            let what = if r > 0 && h == hours[r - 1] {
                "duplicate"
            } else {
                "gap or disorder"
            };
            return Err(Error::data(
                &frame.source,
                format!(
                    "line {}: {what} in the time index: found {:02}/{:02} {:02}:00, expected {:02}/{:02} {:02}:00",
                    frame.lines[r], h.0, h.1, h.2, expected.0, expected.1, expected.2
                ),
            ));
        }
        expected = next_hour(expected);
    }
    if hours.len() != 8760 {
        return Err(Error::data(
            &frame.source,
            format!("{} hours, a TMY3 year has 8760", hours.len()),
        ));
    }
    Ok(())
}

fn next_hour((m, d, h): (u32, u32, u32)) -> (u32, u32, u32) {
    if h < 24 {
        (m, d, h + 1)
    } else if d < DAYS_IN_MONTH[(m - 1) as usize] {
        (m, d + 1, 1)
    } else {
        (m + 1, 1, 1)
    }
}

fn source_years(years: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = years.to_vec();
    out.dedup();
    out
}

/// Day of the year (1–365) of (month, day).
pub fn day_of_year(month: u32, day: u32) -> u32 {
    DAYS_IN_MONTH[..(month - 1) as usize].iter().sum::<u32>() + day
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_walks_a_365_day_year() {
        let mut t = (1, 1, 1);
        for _ in 1..8760 {
            t = next_hour(t);
        }
        assert_eq!(t, (12, 31, 24));
        assert_eq!(day_of_year(12, 31), 365);
        assert_eq!(day_of_year(3, 1), 60);
    }

    #[test]
    fn gaps_and_duplicates_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.csv");
        let mut text = String::from("1,\"X\",NC\nDate (MM/DD/YYYY),Time (HH:MM),v\n");
        for h in [1, 2, 2] {
            text.push_str(&format!("01/01/1990,{h:02}:00,1\n"));
        }
        std::fs::write(&path, text).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("line 5: duplicate in the time index"), "{e}");
    }
}
