//! Sweeps on a Slurm cluster. A sweep's unfinished points become one `sbatch` array job —
//! task `i` runs the same `lab train --resume` the local sweep runs for point `i`, into
//! its own run directory — so a killed or cancelled point continues from its last
//! checkpoint when the sweep is submitted again, and finished points are left out. A
//! manifest (`<runs root>/.slurm/<sweep>.json`) remembers which array index is which point;
//! [`status`] reads `squeue` and the run directories. Results are collected as for a
//! local sweep: `lab grid` on the same root reuses every finished point.
use crate::run::{RunDir, Status};
use crate::sweep::Point;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Resources of each array task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `--partition` (default: the cluster's default partition).
    pub partition: Option<String>,
    /// `--cpus-per-task` (0: Slurm's default).
    pub cpus: usize,
    /// `--gres=gpu:N` (0: none).
    pub gpus: usize,
    /// `--mem`, e.g. `4G`.
    pub mem: Option<String>,
    /// `--time`, e.g. `01:00:00`.
    pub time: Option<String>,
    /// `%N` of `--array`: at most this many tasks at once (0: no limit).
    pub throttle: usize,
}

/// What was (or would be) submitted for one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub sweep: String,
    /// Job id of the latest submission (`None` until submitted).
    pub job: Option<u64>,
    /// Run name of each array index of that submission.
    pub tasks: Vec<String>,
    /// Every point of the sweep, finished or not.
    pub points: Vec<String>,
    /// Folder of the tasks' output files (`<job>_<index>.out`).
    pub logs: PathBuf,
}

/// Where a point stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointState {
    Finished,
    Queued,
    Running,
    /// Not in the queue and not finished; the tail of its output says why.
    Failed(String),
    /// Not submitted yet (or its output is gone).
    NotStarted,
}

impl PointState {
    pub fn name(&self) -> &'static str {
        match self {
            PointState::Finished => "finished",
            PointState::Queued => "queued",
            PointState::Running => "running",
            PointState::Failed(_) => "failed",
            PointState::NotStarted => "not started",
        }
    }
}

/// True when the point's run directory under `root` holds a finished run.
pub fn is_finished(root: &Path, point: &str) -> bool {
    RunDir::at(root.join(point))
        .meta()
        .is_ok_and(|m| m.status == Status::Finished)
}

/// The array script for the points not finished under `root`: task `i` runs `lab train
/// --config <config> --name <point i> --set … --resume --root <root>` with `lab` the
/// binary at `lab`. `points` are the sweep's points as the config writes them (what the
/// commands name), `runs` the same points as `lab train` will run them (the profile
/// applied: their run names and configs). Returns the script and its manifest (job not
/// yet set). A run directory that holds another config is refused here, before anything
/// is submitted.
pub fn array_script(
    sweep: &str,
    lab: &Path,
    config: &Path,
    points: &[Point],
    runs: &[Point],
    root: &Path,
    resources: &Resources,
) -> Result<(String, Manifest)> {
    check_unique(runs)?;
    for run in runs {
        check_not_taken(root, run)?;
    }
    if let Some(limit) = &resources.time {
        check_time_limit(limit, root, runs)?;
    }
    let todo: Vec<(&Point, &Point)> = points
        .iter()
        .zip(runs)
        .filter(|(_, run)| !is_finished(root, &run.name))
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
    if let Some(p) = &resources.partition {
        directive(format!("--partition={p}"));
    }
    if resources.cpus > 0 {
        directive(format!("--cpus-per-task={}", resources.cpus));
    }
    if resources.gpus > 0 {
        directive(format!("--gres=gpu:{}", resources.gpus));
    }
    if let Some(m) = &resources.mem {
        directive(format!("--mem={m}"));
    }
    if let Some(t) = &resources.time {
        directive(format!("--time={t}"));
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
                "--time {limit} ({seconds:.0} s) is shorter than a point needs: {epochs} epochs at the {per_epoch:.1} s per epoch this sweep's finished points took ≈ {needed:.0} s"
            ),
        });
    }
    Ok(())
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

/// Runs a Slurm client command; a missing command or a refusal is an error naming it.
fn slurm(tool: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(tool).args(args).output().map_err(|e| Error::Argument {
        name: tool.into(),
        reason: format!("cannot run `{tool}` ({e}): is Slurm's client on the PATH (and SLURM_CONF set, for a cluster of your own)?"),
    })?;
    if !out.status.success() {
        return Err(Error::Argument {
            name: tool.into(),
            reason: format!(
                "`{tool} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Errs unless `partition` exists on the cluster (checked before anything is submitted).
pub fn check_partition(partition: &str) -> Result<()> {
    let listed = slurm("sinfo", &["-h", "-o", "%P"])?;
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.trim().trim_end_matches('*'))
        .collect();
    if names.contains(&partition) {
        Ok(())
    } else {
        Err(Error::Argument {
            name: "partition".into(),
            reason: format!(
                "`{partition}` is not a partition of this cluster (sinfo lists: {})",
                names.join(", ")
            ),
        })
    }
}

/// Writes the script beside the manifest, submits it with `sbatch` and saves the manifest
/// with the job id; returns the manifest.
pub fn submit(script: &str, mut manifest: Manifest, root: &Path) -> Result<Manifest> {
    std::fs::create_dir_all(&manifest.logs).map_err(|e| Error::io(&manifest.logs, e))?;
    let path = manifest.logs.join("array.sh");
    crate::io::write_text_atomic(&path, script)?;
    let out = slurm("sbatch", &["--parsable", &path.display().to_string()])?;
    let job: u64 = out
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| Error::Argument {
            name: "sbatch".into(),
            reason: format!("unexpected answer `{}` (expected a job id)", out.trim()),
        })?;
    manifest.job = Some(job);
    crate::io::write_json(&manifest_path(root, &manifest.sweep), &manifest)?;
    Ok(manifest)
}

/// `<root>/.slurm/<sweep>.json`.
pub fn manifest_path(root: &Path, sweep: &str) -> PathBuf {
    root.join(".slurm").join(format!("{sweep}.json"))
}

/// The manifest of the latest submission of `sweep` under `root`, if any.
pub fn manifest(root: &Path, sweep: &str) -> Result<Option<Manifest>> {
    let path = manifest_path(root, sweep);
    if !path.is_file() {
        return Ok(None);
    }
    crate::io::read_json(&path).map(Some)
}

/// Every point of the sweep with its state: finished (its run directory says so), queued
/// or running (`squeue`), else failed (with the tail of its output) or not started.
pub fn status(root: &Path, manifest: &Manifest) -> Result<Vec<(String, PointState)>> {
    let queue = match manifest.job {
        Some(job) => queued_tasks(job)?,
        None => Vec::new(),
    };
    Ok(manifest
        .points
        .iter()
        .map(|name| {
            let index = manifest.tasks.iter().position(|t| t == name);
            let state = if is_finished(root, name) {
                PointState::Finished
            } else if let Some(state) = index
                .and_then(|i| queue.iter().find(|(t, _)| *t == i))
                .map(|(_, s)| s.clone())
            {
                state
            } else {
                match (manifest.job, index) {
                    (Some(job), Some(i)) => {
                        failed_or_not_started(&manifest.logs.join(format!("{job}_{i}.out")))
                    }
                    _ => PointState::NotStarted,
                }
            };
            (name.clone(), state)
        })
        .collect())
}

/// Array indices of `job` still in the queue, pending or running.
fn queued_tasks(job: u64) -> Result<Vec<(usize, PointState)>> {
    let out = slurm(
        "squeue",
        &["-h", "-r", "-j", &job.to_string(), "-o", "%K %T"],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (index, state) = l.split_once(' ')?;
            let state = match state.trim() {
                "RUNNING" | "COMPLETING" => PointState::Running,
                _ => PointState::Queued,
            };
            Some((index.trim().parse().ok()?, state))
        })
        .collect())
}

fn failed_or_not_started(log: &Path) -> PointState {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            PointState::Failed(lines[lines.len().saturating_sub(5)..].join("\n"))
        }
        Err(_) => PointState::NotStarted,
    }
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
}
