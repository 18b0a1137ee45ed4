//! Sweeps over configs: overrides of dotted keys (`train.lr = 0.001`), grid points
//! (every combination of `[grid]` values) and one-at-a-time ablations (`[ablations]`),
//! each point an independent run directory, so a sweep resumes (finished points are
//! reused) and fans out to other machines (`lab grid --plan`).
use crate::config::{check_known_keys, known_keys, RunConfig};
use crate::{Error, Result};

/// One run of a sweep: its name, the overrides that define it and the resulting config.
#[derive(Debug, Clone)]
pub struct Point {
    /// Run directory name.
    pub name: String,
    /// What distinguishes the point: the ablation variant, or the grid values.
    pub label: String,
    /// Dotted key → value, applied to the base config.
    pub overrides: Vec<(String, toml::Value)>,
    pub config: RunConfig,
}

/// `cfg` with `key` (dotted, e.g. `train.lr`) set to `value`, validated.
pub fn set_key(cfg: &RunConfig, key: &str, value: &toml::Value) -> Result<RunConfig> {
    set_keys(cfg, &[(key.to_string(), value.clone())])
}

/// `cfg` with every dotted `key = value` set, then validated once: whether a combination
/// (`train.epochs` and `train.warmup_epochs` that must agree) is accepted does not
/// depend on the order of its assignments.
pub fn set_keys(cfg: &RunConfig, assignments: &[(String, toml::Value)]) -> Result<RunConfig> {
    let base = toml::Value::try_from(cfg).expect("config serialises");
    let mut tree = base.clone();
    for (key, value) in assignments {
        check_key(key)?;
        put(&mut tree, key, value)?;
    }
    let out: RunConfig = match tree.try_into() {
        Ok(out) => out,
        Err(_) => return Err(type_error(&base, assignments)),
    };
    out.validate()?;
    Ok(out)
}

/// Replaces the value at dotted `key` of a config tree.
fn put(tree: &mut toml::Value, key: &str, value: &toml::Value) -> Result<()> {
    let mut node = tree;
    for part in key.split('.') {
        node = node
            .get_mut(part)
            .ok_or_else(|| Error::config(key, "unknown key"))?;
    }
    if node.is_table() {
        return Err(Error::config(
            key,
            "names a section, not a value; set one of its keys",
        ));
    }
    *node = value.clone();
    Ok(())
}

/// The first assignment whose value its key cannot take (a type error is the value's
/// alone, so each is tried by itself on the base).
fn type_error(base: &toml::Value, assignments: &[(String, toml::Value)]) -> Error {
    for (key, value) in assignments {
        let mut tree = base.clone();
        if put(&mut tree, key, value).is_err() {
            continue;
        }
        if let Err(e) = tree.try_into::<RunConfig>() {
            return Error::config(
                key,
                format!("cannot take the value {value}: {}", e.message()),
            );
        }
    }
    Error::config(
        "(overrides)",
        "these values cannot be combined into a config",
    )
}

/// Checks that a dotted key exists in a run config (with a did-you-mean otherwise).
pub fn check_key(key: &str) -> Result<()> {
    let mut value = toml::Value::Integer(0);
    for part in key.rsplit('.') {
        let mut t = toml::map::Map::new();
        t.insert(part.to_string(), value);
        value = toml::Value::Table(t);
    }
    if key.starts_with("grid") || key.starts_with("ablations") {
        return Err(Error::config(key, "sweep sections cannot be overridden"));
    }
    check_known_keys(&value, &known_keys(), "")
}

/// Parses `key=value` (value in TOML syntax; bare words are strings).
pub fn parse_assignment(text: &str) -> Result<(String, toml::Value)> {
    let (key, raw) = text
        .split_once('=')
        .ok_or_else(|| Error::config(text, "expected KEY=VALUE, e.g. train.lr=0.001"))?;
    let (key, raw) = (key.trim(), raw.trim());
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("v").cloned())
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    check_key(key)?;
    Ok((key.to_string(), value))
}

/// Every combination of the `[grid]` values. With one key, points are named
/// `tuned_variant_<param>_<value>` (the layout course reports expect); with several,
/// `<name>-<param>_<value>-…`.
pub fn grid_points(base: &RunConfig) -> Result<Vec<Point>> {
    if base.grid.is_empty() {
        return Err(Error::config(
            "grid",
            "the config has no [grid] section; add e.g. `\"train.lr\" = [1e-3, 3e-3]`",
        ));
    }
    for (key, values) in &base.grid {
        check_key(key)?;
        if values.is_empty() {
            return Err(Error::config(
                format!("grid.{key}"),
                "empty list of values; give at least one",
            ));
        }
    }
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (key, values) in &base.grid {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values
                    .iter()
                    .map(move |v| [c.clone(), vec![(key.clone(), v.clone())]].concat())
            })
            .collect();
    }
    let single = base.grid.len() == 1;
    combos
        .into_iter()
        .map(|overrides| {
            let label = overrides
                .iter()
                .map(|(k, v)| format!("{}_{}", short_key(k), value_label(v)))
                .collect::<Vec<_>>()
                .join("-");
            let name = if single {
                format!("tuned_variant_{label}")
            } else {
                format!("{}-{label}", base.name)
            };
            point(base, name, label, overrides)
        })
        .collect()
}

/// The base config and one variant per `[ablations]` entry, each over `seeds` seeds
/// (`seed`, `seed + 1`, …); names `<name>-<variant>-s<seed>`.
pub fn ablation_points(base: &RunConfig, seeds: usize) -> Result<Vec<Point>> {
    if base.ablations.is_empty() {
        return Err(Error::config(
            "ablations",
            "the config has no [ablations] section",
        ));
    }
    let mut variants = vec![("base".to_string(), vec![])];
    for (name, changes) in &base.ablations {
        if changes.is_empty() {
            return Err(Error::config(
                format!("ablations.{name}"),
                "changes nothing; give at least one key = value",
            ));
        }
        variants.push((
            name.clone(),
            changes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ));
    }
    let mut points = Vec::new();
    for (variant, overrides) in variants {
        for s in 0..seeds.max(1) as u64 {
            let mut o = overrides.clone();
            o.push(("seed".into(), toml::Value::Integer((base.seed + s) as i64)));
            points.push(point(
                base,
                format!("{}-{variant}-s{}", base.name, base.seed + s),
                variant.clone(),
                o,
            )?);
        }
    }
    Ok(points)
}

fn point(
    base: &RunConfig,
    name: String,
    label: String,
    overrides: Vec<(String, toml::Value)>,
) -> Result<Point> {
    let mut cfg = set_keys(&base.run_only(), &overrides)?;
    cfg.name = name.clone();
    Ok(Point {
        name,
        label,
        overrides,
        config: cfg,
    })
}

/// The last part of a dotted key (`train.lr` → `lr`).
fn short_key(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// A value as it appears in a run name: `0.001`, `false`, `adamw`.
pub fn value_label(v: &toml::Value) -> String {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One self-contained `lab train` command per point, for running a sweep as independent
/// processes (a SLURM array job, Ray tasks); each writes its own run directory.
pub fn plan(config_path: &str, points: &[Point]) -> Vec<String> {
    points
        .iter()
        .map(|p| {
            let sets: String = p
                .overrides
                .iter()
                .map(|(k, v)| format!(" --set '{k}={v}'"))
                .collect();
            format!(
                "lab train --config {config_path} --name {}{sets} --resume",
                p.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_that_must_agree_are_accepted_in_either_order() {
        let base = RunConfig::default();
        let epochs = ("train.epochs".to_string(), toml::Value::Integer(20));
        let warmup = ("train.warmup_epochs".to_string(), toml::Value::Float(12.0));
        for order in [
            [epochs.clone(), warmup.clone()],
            [warmup.clone(), epochs.clone()],
        ] {
            let cfg = set_keys(&base, &order).unwrap();
            assert_eq!((cfg.train.epochs, cfg.train.warmup_epochs), (20, 12.0));
        }
        let too_long = ("train.warmup_epochs".to_string(), toml::Value::Float(30.0));
        let err = set_keys(&base, &[epochs, too_long])
            .unwrap_err()
            .to_string();
        assert!(err.contains("warmup_epochs"), "{err}");
        let text = ("train.lr".to_string(), toml::Value::String("fast".into()));
        let err = set_keys(&base, &[warmup, text]).unwrap_err().to_string();
        assert!(err.contains("train.lr") && err.contains("fast"), "{err}");
    }

    fn base_with_grid(text: &str) -> Result<RunConfig> {
        RunConfig::from_toml_str(text)
    }

    #[test]
    fn grid_expands_every_combination_with_readable_names() -> Result<()> {
        let base = base_with_grid(
            "[grid]\n\"train.lr\" = [0.001, 0.01]\n\"model.dropout\" = [0.0, 0.5]\n",
        )?;
        let points = grid_points(&base)?;
        assert_eq!(points.len(), 4);
        assert_eq!(points[0].name, "fashion_cnn-dropout_0.0-lr_0.001");
        assert_eq!(points[3].config.train.lr, 0.01);
        assert_eq!(points[3].config.model.dropout, 0.5);
        assert!(points[0].config.grid.is_empty(), "points carry no grid");
        Ok(())
    }

    #[test]
    fn one_key_grid_uses_the_tuned_variant_layout() -> Result<()> {
        let base = base_with_grid("[grid]\n\"train.lr\" = [0.0003, 0.001, 0.003]\n")?;
        let names: Vec<String> = grid_points(&base)?.into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "tuned_variant_lr_0.0003",
                "tuned_variant_lr_0.001",
                "tuned_variant_lr_0.003"
            ]
        );
        Ok(())
    }

    #[test]
    fn unknown_grid_key_and_empty_values_are_named() {
        let e = base_with_grid("[grid]\n\"train.lrr\" = [1]\n")
            .and_then(|b| grid_points(&b))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train.lrr") && e.contains("did you mean `train.lr`"),
            "{e}"
        );
        let e = base_with_grid("[grid]\n\"train.lr\" = []\n")
            .and_then(|b| grid_points(&b))
            .unwrap_err()
            .to_string();
        assert!(e.contains("grid.train.lr") && e.contains("empty"), "{e}");
        let e = base_with_grid("[grid]\n\"train.lr\" = [-1.0]\n")
            .and_then(|b| grid_points(&b))
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.lr") && e.contains("must be > 0"), "{e}");
    }

    #[test]
    fn ablations_start_with_the_base_and_repeat_over_seeds() -> Result<()> {
        let base = base_with_grid("[ablations]\nno_dropout = { \"model.dropout\" = 0.0 }\n")?;
        let points = ablation_points(&base, 2)?;
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fashion_cnn-base-s42",
                "fashion_cnn-base-s43",
                "fashion_cnn-no_dropout-s42",
                "fashion_cnn-no_dropout-s43"
            ]
        );
        assert_eq!(
            (points[3].config.model.dropout, points[3].config.seed),
            (0.0, 43)
        );
        Ok(())
    }

    #[test]
    fn assignments_parse_toml_values_and_plan_round_trips() -> Result<()> {
        assert_eq!(
            parse_assignment("train.lr=1e-3")?,
            ("train.lr".into(), toml::Value::Float(1e-3))
        );
        assert_eq!(
            parse_assignment("train.optimizer=sgd")?.1,
            toml::Value::String("sgd".into())
        );
        assert!(parse_assignment("train.nope=1").is_err());
        let base = base_with_grid("[grid]\n\"train.lr\" = [0.001]\n")?;
        let cmds = plan("configs/x.toml", &grid_points(&base)?);
        assert_eq!(cmds, ["lab train --config configs/x.toml --name tuned_variant_lr_0.001 --set 'train.lr=0.001' --resume"]);
        Ok(())
    }
}
