//! The `sbatch` array script of a sweep, and the checks made before anything is submitted
//! (unique run names, run directories not taken by another config, a time limit long
//! enough for the config's epochs).
use super::Manifest;
use crate::config::{parse_time_limit, SlurmConfig};
use crate::run::{RunDir, Status};
use crate::sweep::Point;
use crate::{Error, Result};
use std::path::Path;

/// The array script for the points not finished under `root`: task `i` runs `lab train
/// --config <config> --name <point i> --set … --resume --root <root>` with `lab` the
/// binary at `lab`. `points` are the sweep's points as the config writes them (what the
/// commands name), `runs` the same points as `lab train` will run them (the profile
/// applied: their run names and configs). Returns the script and its manifest (job not
/// yet set). A run directory that holds another config is refused here, before anything
/// is submitted.
pub(super) fn array_script(
    sweep: &str,
    lab: &Path,
    config: &Path,
    points: &[Point],
    runs: &[Point],
    root: &Path,
    resources: &SlurmConfig,
) -> Result<(String, Manifest)> {
    check_unique(runs)?;
    for run in runs {
        check_not_taken(root, run)?;
    }
    if !resources.time.is_empty() {
        check_time_limit(&resources.time, root, runs)?;
    }
    let todo: Vec<(&Point, &Point)> = points
        .iter()
        .zip(runs)
        .filter(|(_, run)| !RunDir::at(root.join(&run.name)).is_finished())
        .collect();
    let logs = root.join(".slurm").join(sweep);
    let manifest = Manifest {
        sweep: sweep.into(),
        job: None,
        tasks: todo.iter().map(|(_, run)| run.name.clone()).collect(),
        points: runs.iter().map(|run| run.name.clone()).collect(),
        logs: logs.clone(),
    };
    if todo.is_empty() {
        return Ok((String::new(), manifest));
    }
    let mut s = String::from("#!/usr/bin/env bash\n");
    let mut directive = |d: String| s.push_str(&format!("#SBATCH {d}\n"));
    directive(format!("--job-name=lab-{sweep}"));
    let last = todo.len() - 1;
    directive(match resources.throttle {
        0 => format!("--array=0-{last}"),
        n => format!("--array=0-{last}%{n}"),
    });
    directive(format!("--output={}/%A_%a.out", logs.display()));
    if !resources.partition.is_empty() {
        directive(format!("--partition={}", resources.partition));
    }
    if resources.cpus > 0 {
        directive(format!("--cpus-per-task={}", resources.cpus));
    }
    if resources.gpus > 0 {
        directive(format!("--gres=gpu:{}", resources.gpus));
    }
    if !resources.mem.is_empty() {
        directive(format!("--mem={}", resources.mem));
    }
    if !resources.time.is_empty() {
        directive(format!("--time={}", resources.time));
    }
    s.push_str("set -euo pipefail\ncase \"$SLURM_ARRAY_TASK_ID\" in\n");
    for (i, (p, _)) in todo.iter().enumerate() {
        let sets: String = p
            .overrides
            .iter()
            .map(|(k, v)| format!(" --set {}", shell_quote(&format!("{k}={v}"))))
            .collect();
        s.push_str(&format!(
            "  {i}) exec {} train --config {} --name {}{sets} --resume --root {} ;;\n",
            shell_quote(&lab.display().to_string()),
            shell_quote(&config.display().to_string()),
            shell_quote(&p.name),
            shell_quote(&root.display().to_string()),
        ));
    }
    s.push_str(
        "  *) echo \"no sweep point for array index $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n",
    );
    Ok((s, manifest))
}

/// A run directory of `run`'s name that holds another config belongs to another sweep
/// (or run): training into it would fail in the job.
fn check_not_taken(root: &Path, run: &Point) -> Result<()> {
    let dir = RunDir::at(root.join(&run.name));
    match dir.config() {
        Ok(saved) if saved.hash() != run.config.hash() => Err(Error::Run {
            path: dir.path.clone(),
            reason: format!(
                "holds a run of another config (differing keys: {}): another sweep wrote it; rename this sweep (`name`) or use another --root",
                saved.diff(&run.config).join(", ")
            ),
        }),
        _ => Ok(()),
    }
}

/// Errs when the time limit is shorter than a point needs, judged from the seconds per
/// epoch of this sweep's finished points (no finished point: nothing to judge from).
fn check_time_limit(limit: &str, root: &Path, runs: &[Point]) -> Result<()> {
    let seconds = parse_time_limit(limit)?;
    let per_epoch = runs
        .iter()
        .filter_map(|r| RunDir::at(root.join(&r.name)).meta().ok())
        .filter(|m| m.status == Status::Finished && m.epochs_done > 0)
        .map(|m| m.train_seconds / m.epochs_done as f64)
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        });
    let (Some(per_epoch), Some(epochs)) =
        (per_epoch, runs.iter().map(|r| r.config.train.epochs).max())
    else {
        return Ok(());
    };
    let needed = per_epoch * epochs as f64;
    if needed > seconds {
        return Err(Error::Argument {
            name: "time".into(),
            reason: format!(
                "the time limit {limit} (slurm.time or --time: {seconds:.0} s) is shorter than a point needs: {epochs} epochs at the {per_epoch:.1} s per epoch this sweep's finished points took ≈ {needed:.0} s"
            ),
        });
    }
    Ok(())
}

/// Two points of one sweep with the same run name would write one directory.
fn check_unique(points: &[Point]) -> Result<()> {
    let mut names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Error::config(
            "grid",
            format!(
                "two points are both named `{}`: they would write one run directory",
                w[0]
            ),
        )),
        None => Ok(()),
    }
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
