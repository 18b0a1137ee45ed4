//! [`SlurmConfig`]: the `[slurm]` section — the resources each array task of a sweep asks
//! for when `lab grid --slurm` / `lab ablate --slurm` runs it on a cluster. Like the sweep
//! sections it says where a run trains, not what it computes: it is not part of a run's
//! identity (not hashed, not saved into runs).
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Resources of each array task; the `lab grid --slurm` flags override them one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    /// `--partition` ("": the cluster's default partition).
    pub partition: String,
    /// `--cpus-per-task` (0: Slurm's default).
    pub cpus: usize,
    /// `--gres=gpu:N` (0: none).
    pub gpus: usize,
    /// `--mem`, e.g. `8G` ("": Slurm's default).
    pub mem: String,
    /// `--time`, e.g. `02:00:00` ("": the partition's limit).
    pub time: String,
    /// `%N` of `--array`: at most this many tasks at once (0: no limit).
    pub throttle: usize,
}

impl SlurmConfig {
    pub fn is_default(&self) -> bool {
        *self == SlurmConfig::default()
    }

    /// Checks the values Slurm would refuse only after submission.
    pub fn validate(&self) -> Result<()> {
        if self.partition.contains(char::is_whitespace) {
            return Err(Error::config(
                "slurm.partition",
                format!(
                    "`{}` has whitespace; a partition is one word (sinfo lists them)",
                    self.partition
                ),
            ));
        }
        if !self.mem.is_empty() && !is_memory(&self.mem) {
            return Err(Error::config(
                "slurm.mem",
                format!("`{}` is not a Slurm memory size: a whole number with an optional K, M, G or T (e.g. 8G)", self.mem),
            ));
        }
        if !self.time.is_empty() {
            parse_time_limit(&self.time).map_err(|e| Error::config("slurm.time", e.to_string()))?;
        }
        Ok(())
    }
}

/// `8G`, `512M`, `4000`: digits, then at most one unit letter.
fn is_memory(text: &str) -> bool {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    text.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// Seconds of a Slurm time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M` or `D-H:M:S`.
pub fn parse_time_limit(text: &str) -> Result<f64> {
    let bad = || Error::Argument {
        name: "time".into(),
        reason: format!("`{text}` is not a Slurm time limit (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S)"),
    };
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().map_err(|_| bad())?, r),
        None => (0.0, text),
    };
    let parts: Vec<f64> = rest
        .split(':')
        .map(|p| p.parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let within_day = match (text.contains('-'), parts.as_slice()) {
        (false, [m]) => m * 60.0,
        (false, [m, s]) => m * 60.0 + s,
        (_, [h, m, s]) => h * 3600.0 + m * 60.0 + s,
        (true, [h]) => h * 3600.0,
        (true, [h, m]) => h * 3600.0 + m * 60.0,
        _ => return Err(bad()),
    };
    Ok(days * 86_400.0 + within_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_time_limits_read_in_every_form() {
        for (text, seconds) in [
            ("30", 1800.0),
            ("5:30", 330.0),
            ("01:00:00", 3600.0),
            ("2-0", 172_800.0),
            ("1-01:30", 91_800.0),
            ("1-00:00:10", 86_410.0),
        ] {
            assert_eq!(parse_time_limit(text).unwrap(), seconds, "{text}");
        }
        assert!(parse_time_limit("1h").is_err());
        assert!(parse_time_limit("1:2:3:4").is_err());
    }

    #[test]
    fn memory_sizes_are_digits_and_one_unit() {
        for ok in ["8G", "512M", "4000", "1t"] {
            assert!(is_memory(ok), "{ok}");
        }
        for bad in ["", "G", "8GB", "8 G", "1.5G"] {
            assert!(!is_memory(bad), "{bad}");
        }
    }
}
