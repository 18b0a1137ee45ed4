//! [`RunConfig`]: everything that defines a run, read from TOML (`configs/*.toml`) or
//! built in a notebook cell with `with_*` methods. Unknown keys are rejected with the
//! nearest valid key; out-of-range values name the key and the allowed range.
mod cluster;
mod keys;

use keys::error_key;
pub(crate) use keys::{check_known_keys, known_keys, syntax_error};
pub(crate) use keys::{diff_values, flatten};

pub use crate::backend::{DeviceChoice, Precision};
pub use crate::data::config::{AugmentConfig, Cifar100Labels, DataConfig, DatasetKind};
pub use crate::models::config::{Arch, Freeze, Head, ModelConfig};
pub use crate::train::config::{OptimizerKind, ScheduleKind, TrainConfig};
use crate::{Error, Result};
pub use cluster::{parse_time_limit, SlurmConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A complete run definition. Saved as `config.toml` in the run directory before the
/// first step, and hashed to recognise finished runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run directory name under `saved_models/`.
    pub name: String,
    /// One seed drives split, data order, augmentation, initialisation and dropout.
    pub seed: u64,
    /// `cpu`, `cuda` or `auto` (CUDA when available).
    pub device: DeviceChoice,
    /// libtorch intra-op threads; 0 keeps libtorch's default (one per core).
    pub threads: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    /// Hyper-parameter grid for `lab grid`: dotted key → values; every combination is a
    /// run. Not part of a run's identity (not hashed, not saved into runs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// One-at-a-time ablations for `lab ablate`: variant name → { dotted key → value }.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ablations: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Resources of each array task when a sweep runs on Slurm. Not part of a run's
    /// identity, like the sweep sections.
    #[serde(skip_serializing_if = "SlurmConfig::is_default")]
    pub slurm: SlurmConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "fashion_cnn".into(),
            seed: 42,
            device: DeviceChoice::Cpu,
            threads: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            grid: BTreeMap::new(),
            ablations: BTreeMap::new(),
            slurm: SlurmConfig::default(),
        }
    }
}

impl RunConfig {
    /// Reads and validates a TOML file; errors name the file, the key and the fix.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        read_file(path.as_ref(), Self::from_toml_str)
    }

    /// Reads a config by its extension: YAML (`.yaml`, `.yml`) or TOML (anything else).
    /// Both go through the same key and range checks; relative `data.dir` is resolved
    /// beside the file either way.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        match path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            true => read_file(path, Self::from_yaml_str),
            false => read_file(path, Self::from_toml_str),
        }
    }

    /// Parses and validates YAML text with the keys and values of the TOML form (YAML
    /// `null` has no TOML counterpart and is refused).
    pub fn from_yaml_str(text: &str) -> Result<Self> {
        let value: toml::Value = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            Error::Syntax {
                source_name: "YAML text".into(),
                line,
                column,
                reason: e.to_string(),
            }
        })?;
        check_known_keys(&value, &known_keys(), "")?;
        let cfg: RunConfig = value
            .try_into()
            .map_err(|e: toml::de::Error| Error::config("(config)", e.message().to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as YAML text (the `configs/config.yaml` of a hand-in).
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("config serialises")
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let value: toml::Value = text
            .parse()
            .map_err(|e: toml::de::Error| keys::syntax_error(text, &e, "TOML text"))?;
        check_known_keys(&value, &known_keys(), "")?;
        // Typed parse from the text (not the Value) so errors carry the offending line.
        let cfg: RunConfig = toml::from_str(text).map_err(|e: toml::de::Error| {
            Error::config(error_key(text, &e), e.message().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as TOML text (what `config.toml` in a run holds).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks every value's range; the error names the key and what is allowed.
    pub fn validate(&self) -> Result<()> {
        validate_run_name(&self.name)?;
        self.train.validate()?;
        self.data.validate()?;
        self.model.validate()?;
        self.slurm.validate()
    }

    /// The libtorch device this config asks for ([`DeviceChoice::resolve`]).
    pub fn device(&self) -> tch::Device {
        self.device.resolve()
    }

    /// [`RunConfig::device`], or an error that says why `cuda` is not usable.
    pub fn checked_device(&self) -> Result<tch::Device> {
        self.device.checked()
    }

    /// SHA-256 of everything that changes results (all but `name`), hex.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut c = self.run_only();
        c.name = String::new();
        crate::io::hex(&Sha256::digest(c.to_toml().as_bytes()))
    }

    /// The config without the sections that say how to sweep and where to run (grid,
    /// ablations, slurm): what one run of it trains. Its points and `lab train` use this.
    pub fn run_only(&self) -> RunConfig {
        RunConfig {
            grid: BTreeMap::new(),
            ablations: BTreeMap::new(),
            slurm: SlurmConfig::default(),
            ..self.clone()
        }
    }

    /// Keys whose values differ between two configs (dotted paths).
    pub fn diff(&self, other: &RunConfig) -> Vec<String> {
        let a = toml::Value::try_from(self).expect("config serialises");
        let b = toml::Value::try_from(other).expect("config serialises");
        let mut out = Vec::new();
        diff_values(&a, &b, "", &mut out);
        out
    }

    /// Every key and value, flattened to dotted keys (sweep sections left out).
    pub fn flat_values(&self) -> Vec<(String, toml::Value)> {
        let c = self.run_only();
        let mut rows = Vec::new();
        flatten(
            &toml::Value::try_from(&c).expect("config serialises"),
            "",
            &mut rows,
        );
        rows
    }

    /// Every key and value, flattened to dotted keys, as a table.
    pub fn table(&self) -> Result<crate::render::Table> {
        let rows: Vec<(String, String)> = self
            .flat_values()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let (keys, values): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        crate::render::Table::from_columns(
            format!("Run config `{}` (hash {})", self.name, &self.hash()[..12]),
            vec![
                polars::prelude::Column::new("key".into(), keys),
                polars::prelude::Column::new("value".into(), values),
            ],
        )
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.train.epochs = epochs;
        self
    }
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.train.lr = lr;
        self
    }
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.train.batch_size = batch_size;
        self
    }
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.train.weight_decay = weight_decay;
        self
    }
    pub fn with_device(mut self, device: DeviceChoice) -> Self {
        self.device = device;
        self
    }

    /// Switches `data.dataset` (e.g. `cifar10` → `cifar100`, as seed 002's
    /// `--dataset`): `data.dir` follows when it was the old dataset's default folder, and
    /// the run name when the old dataset's name is one of its `_`-separated words, so the
    /// other dataset's run never lands in the same run directory.
    pub fn with_dataset(mut self, dataset: DatasetKind) -> Self {
        let old = std::mem::replace(&mut self.data.dataset, dataset);
        if old == dataset {
            return self;
        }
        if let (Some(from), Some(to)) = (old.default_dir(), dataset.default_dir()) {
            if self.data.dir == Path::new(from) {
                self.data.dir = PathBuf::from(to);
            }
        }
        let words: Vec<&str> = self.name.split('_').collect();
        if words.contains(&old.name()) {
            self.name = words
                .iter()
                .map(|&w| if w == old.name() { dataset.name() } else { w })
                .collect::<Vec<_>>()
                .join("_");
        }
        self
    }
}

/// A run name is one folder under the runs root: no separator, not `.` or `..`, so a run
/// can never be written outside the runs folder.
/// A relative `dir` that does not exist from the current folder, looked up from the
/// folders above the config file instead (the project root of a shipped config such as
/// `configs/fashion_mnist.toml` holding `data/fashion_mnist`): running a config from
/// another folder then finds its data instead of calling it missing. Unchanged when it
/// exists here, is absolute, or is found nowhere.
/// The config that `parse` reads from the file at `path`, its errors naming the file and
/// its `data.dir` resolved beside it.
fn read_file(path: &Path, parse: fn(&str) -> Result<RunConfig>) -> Result<RunConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut cfg = parse(&text).map_err(|e| match e {
        Error::Config { key, reason } => Error::Config {
            key,
            reason: format!("{reason} (in {})", path.display()),
        },
        Error::Syntax {
            line,
            column,
            reason,
            ..
        } => Error::Syntax {
            source_name: path.display().to_string(),
            line,
            column,
            reason,
        },
        other => other,
    })?;
    cfg.data.dir = beside_config(&cfg.data.dir, path);
    Ok(cfg)
}

fn beside_config(dir: &Path, config: &Path) -> PathBuf {
    if dir.is_absolute() || dir.exists() {
        return dir.to_path_buf();
    }
    let config = config
        .canonicalize()
        .unwrap_or_else(|_| config.to_path_buf());
    config
        .ancestors()
        .skip(1)
        .map(|a| a.join(dir))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| dir.to_path_buf())
}

pub(crate) fn validate_run_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        return Ok(());
    }
    Err(Error::config(
        "name",
        format!("`{name}` is not a plain folder name; use letters, digits, `_`, `-` or `.` (no `/`, not `..`)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() -> Result<()> {
        let cfg = RunConfig::default();
        assert_eq!(RunConfig::from_toml_str(&cfg.to_toml())?, cfg);
        Ok(())
    }

    #[test]
    fn yaml_configs_read_as_their_toml_twins_and_are_checked_alike() -> Result<()> {
        let mut cfg = RunConfig::default();
        cfg.train.lr = 3e-4;
        cfg.grid
            .insert("train.lr".into(), vec![1e-3.into(), 1e-2.into()]);
        assert_eq!(RunConfig::from_yaml_str(&cfg.to_yaml())?, cfg);
        let typo = RunConfig::from_yaml_str("train:\n  lerning_rate: 0.1\n").unwrap_err();
        assert!(typo.to_string().contains("lerning_rate"), "{typo}");
        let range = RunConfig::from_yaml_str("train:\n  epochs: 0\n").unwrap_err();
        assert!(range.to_string().contains("epochs"), "{range}");
        let syntax = RunConfig::from_yaml_str("train:\n  lr: [1\n").unwrap_err();
        assert!(
            matches!(syntax, Error::Syntax { line: 2.., .. }),
            "{syntax}"
        );
        Ok(())
    }

    #[test]
    fn a_relative_data_dir_is_found_from_the_config_file() {
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(project.path().join("configs")).unwrap();
        std::fs::create_dir_all(project.path().join("elsewhere_data/fm")).unwrap();
        let path = project.path().join("configs/run.toml");
        std::fs::write(&path, "[data]\ndir = \"elsewhere_data/fm\"\n").unwrap();
        // The tests run in the crate's folder, where `elsewhere_data/fm` does not exist.
        let cfg = RunConfig::from_toml_file(&path).unwrap();
        assert_eq!(
            cfg.data.dir,
            project
                .path()
                .canonicalize()
                .unwrap()
                .join("elsewhere_data/fm")
        );
        std::fs::write(&path, "[data]\ndir = \"nowhere/fm\"\n").unwrap();
        let cfg = RunConfig::from_toml_file(&path).unwrap();
        assert_eq!(cfg.data.dir, Path::new("nowhere/fm"));
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "seed = 1\n[train\nlr = 1\n").unwrap();
        let e = RunConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: line 2, column ", path.display()))
                && e.contains("invalid table header")
                && !e.contains("(file)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_nearest() {
        let e = RunConfig::from_toml_str("[train]\nlearning_rate = 0.1\n")
            .unwrap_err()
            .to_string();
        // Nothing is close to `learning_rate`: the valid keys of [train] instead of a guess.
        assert!(
            e.contains("`train.learning_rate`")
                && e.contains("the keys in [train] are: ")
                && e.contains(", lr, ")
                && !e.contains("did you mean"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nlerning_rate = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("batch_size`?"), "a far-off suggestion: {e}");
        let e = RunConfig::from_toml_str("[train]\nepoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.epoch`") && e.contains("did you mean `train.epochs`?"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("sed = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`sed`") && e.contains("`seed`"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_allowed() {
        let e = RunConfig::from_toml_str("[train]\nlr = -0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.lr") && e.contains("must be > 0"), "{e}");
        let e = RunConfig::from_toml_str("[train]\nbatch_size = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.batch_size"), "{e}");
        let e = RunConfig::from_toml_str("[train]\noptimizer = \"adamx\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`train.optimizer`") && e.contains("adamw") && e.contains("sgd"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nschedule = \"cosin\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule") && e.contains("one_cycle"), "{e}");
    }

    #[test]
    fn run_names_that_leave_the_runs_folder_are_refused() {
        for bad in ["../x", "a/b", "..", ".", "", "a\\b"] {
            let e = RunConfig::default()
                .with_name(bad)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("config key `name`") && e.contains("plain folder name"),
                "{bad}: {e}"
            );
        }
        assert!(RunConfig::default()
            .with_name("fashion_cnn-smoke.v2")
            .validate()
            .is_ok());
    }

    #[test]
    fn hash_ignores_name_and_diff_lists_keys() {
        let a = RunConfig::default();
        let b = a.clone().with_name("other");
        assert_eq!(a.hash(), b.hash());
        let c = a.clone().with_lr(0.1).with_epochs(3);
        assert_ne!(a.hash(), c.hash());
        let d = a.diff(&c);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].starts_with("train.epochs") && d[1].starts_with("train.lr"),
            "{d:?}"
        );
    }

    #[test]
    fn natural_augmentation_keys_live_under_data_augment() -> Result<()> {
        let text = "[data]\ncifar100_labels = \"coarse\"\n[data.augment]\ncrop_padding = 4\nbrightness = 0.2\ncutout_size = 8\n[train]\nmixup_alpha = 0.2\nprecision = \"bf16\"\n[model]\nchannels_last = true\n";
        let cfg = RunConfig::from_toml_str(text)?;
        assert_eq!(cfg.data.augment.crop_padding, 4);
        assert_eq!(cfg.data.augment.brightness, 0.2);
        assert_eq!(cfg.data.augment.cutout_size, 8);
        assert_eq!(cfg.data.cifar100_labels, Cifar100Labels::Coarse);
        assert_eq!(cfg.train.precision, Precision::Bf16);
        assert!(cfg.model.channels_last && cfg.train.mixup_alpha == 0.2);
        assert_eq!(RunConfig::from_toml_str(&cfg.to_toml())?, cfg, "round trip");
        let keys: Vec<String> = cfg.flat_values().into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.contains(&"data.augment.cutout_size".to_string()),
            "{keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.contains("natural_augment")),
            "{keys:?}"
        );

        let e = RunConfig::from_toml_str("[data.augment]\nbrightnes = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `data.augment.brightness`?"), "{e}");
        let e = RunConfig::from_toml_str("[data.augment]\nsaturation = 1.5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.augment.saturation") && e.contains("[0, 1]"),
            "{e}"
        );
        let e = RunConfig::from_toml_str("[train]\nprecision = \"fp8\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.precision") && e.contains("bf16"), "{e}");
        let e = RunConfig::from_toml_str("[train]\ncutmix_alpha = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.cutmix_alpha"), "{e}");
        Ok(())
    }

    #[test]
    fn switching_dataset_moves_default_dir_and_name_only() {
        let mut cfg = RunConfig::default().with_name("cifar10_resnet18");
        cfg.data.dataset = DatasetKind::Cifar10;
        cfg.data.dir = PathBuf::from("data/cifar10");
        let c = cfg.clone().with_dataset(DatasetKind::Cifar100);
        assert_eq!(
            (c.name.as_str(), c.data.dir.as_path()),
            ("cifar100_resnet18", Path::new("data/cifar100"))
        );
        cfg.data.dir = PathBuf::from("/mnt/my_cifar");
        cfg.name = "mine".into();
        let c = cfg.with_dataset(DatasetKind::Cifar100);
        assert_eq!(
            (c.name.as_str(), c.data.dir.as_path()),
            ("mine", Path::new("/mnt/my_cifar"))
        );
    }
}
