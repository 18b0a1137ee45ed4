//! Sweeps on a Slurm cluster. A sweep's unfinished points become one `sbatch` array job —
//! task `i` runs the same `lab train --resume` the local sweep runs for point `i`, into
//! its own run directory — so a killed or cancelled point continues from its last
//! checkpoint when the sweep is submitted again, and finished points are left out. A
//! manifest (`<runs root>/.slurm/<sweep>.json`) remembers which array index is which
//! point; [`status`] reads Slurm's task states and the run directories; [`ClusterSweep`]
//! collects the finished points into the tables a local sweep prints.
mod queue;
mod script;

pub use queue::{check_partition, cluster_answers, TaskState};

use crate::config::{RunConfig, SlurmConfig};
use crate::experiment::{ablation_table, collect_points, grid_table, RunSummary};
use crate::render::{Markdown, Table};
use crate::run::RunDir;
use crate::session::Session;
use crate::sweep::{self, Point};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// Ended without a finished run: Slurm's state and exit code (when it still knows
    /// them) and the tail of the task's output.
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

/// Writes the script beside the manifest, submits it with `sbatch` and saves the manifest
/// with the job id; returns the manifest.
pub fn submit(script: &str, mut manifest: Manifest, root: &Path) -> Result<Manifest> {
    std::fs::create_dir_all(&manifest.logs).map_err(|e| Error::io(&manifest.logs, e))?;
    let path = manifest.logs.join("array.sh");
    crate::io::write_text_atomic(&path, script)?;
    manifest.job = Some(queue::sbatch(&path)?);
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
/// or running (Slurm says so), else failed (Slurm's end state and the tail of its
/// output) or not started.
pub fn status(root: &Path, manifest: &Manifest) -> Result<Vec<(String, PointState)>> {
    let tasks = match manifest.job {
        Some(job) => queue::task_states(job, manifest.tasks.len())?,
        None => Default::default(),
    };
    Ok(manifest
        .points
        .iter()
        .map(|name| {
            let index = manifest.tasks.iter().position(|t| t == name);
            let state = if RunDir::at(root.join(name)).is_finished() {
                PointState::Finished
            } else {
                match (manifest.job, index) {
                    (Some(job), Some(i)) => {
                        let log = manifest.logs.join(format!("{job}_{i}.out"));
                        unfinished_state(tasks.get(&i), &log)
                    }
                    _ => PointState::NotStarted,
                }
            };
            (name.clone(), state)
        })
        .collect())
}

/// A submitted point whose run is not finished: queued or running while Slurm says so,
/// else failed — with Slurm's end state when it still knows it (a cancelled task may
/// leave no output at all) and the last lines of the task's output.
fn unfinished_state(task: Option<&TaskState>, log: &Path) -> PointState {
    match task {
        Some(t) if t.is_queued() => return PointState::Queued,
        Some(t) if t.is_running() => return PointState::Running,
        _ => {}
    }
    let tail = std::fs::read_to_string(log).ok().map(|text| {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    });
    match (task, tail) {
        (Some(t), tail) => PointState::Failed(format!(
            "Slurm: {} (exit {}){}",
            t.state,
            t.exit,
            tail.map(|t| format!("\n{t}")).unwrap_or_default()
        )),
        (None, Some(tail)) => PointState::Failed(tail),
        (None, None) => PointState::NotStarted,
    }
}

/// "3 of 4 finished, 1 running": the one-line summary of a sweep's states.
pub fn progress_line(states: &[(String, PointState)]) -> String {
    let count = |name: &str| states.iter().filter(|(_, s)| s.name() == name).count();
    let mut line = format!("{} of {} finished", count("finished"), states.len());
    for name in ["running", "queued", "failed", "not started"] {
        match count(name) {
            0 => {}
            n => line.push_str(&format!(", {n} {name}")),
        }
    }
    line
}

/// Whether the grid or the ablations of a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    Grid,
    /// Over this many seeds per variant.
    Ablations {
        seeds: usize,
    },
}

/// One sweep of a config as a Slurm array job: the script, its submission, waiting for
/// it, and the tables of its finished points — what `lab grid --slurm`, `lab
/// sweep-status` and `lab report --sweep` do, for a notebook cell.
#[derive(Debug, Clone)]
pub struct ClusterSweep {
    /// The manifest's name: the config's `name`, `-ablations` appended for ablations.
    pub name: String,
    pub kind: SweepKind,
    /// Each array task's resources (the config's `[slurm]` section unless replaced).
    pub resources: SlurmConfig,
    config: PathBuf,
    /// The points as the config writes them (what the commands name) …
    points: Vec<Point>,
    /// … and as `lab train` runs them under the session's profile (their run names).
    runs: Vec<Point>,
    root: PathBuf,
    lab: PathBuf,
}

impl ClusterSweep {
    /// The `kind` sweep of the config at `config`, run by the `lab` binary at `lab` into
    /// the session's runs folder under its profile.
    pub fn new(
        config: impl AsRef<Path>,
        kind: SweepKind,
        session: &Session,
        lab: impl AsRef<Path>,
    ) -> Result<ClusterSweep> {
        let config = config.as_ref().to_path_buf();
        let cfg = RunConfig::from_file(&config)?;
        let (name, points) = match kind {
            SweepKind::Grid => (cfg.name.clone(), sweep::grid_points(&cfg)?),
            SweepKind::Ablations { seeds } => (
                format!("{}-ablations", cfg.name),
                sweep::ablation_points(&cfg, seeds)?,
            ),
        };
        Ok(ClusterSweep {
            name,
            kind,
            resources: cfg.slurm.clone(),
            runs: session.profile.apply_points(points.clone()),
            points,
            config,
            root: session.runs_root.clone(),
            lab: lab.as_ref().to_path_buf(),
        })
    }

    /// The same sweep under another runs folder.
    pub fn with_root(mut self, root: impl AsRef<Path>) -> ClusterSweep {
        self.root = root.as_ref().to_path_buf();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The array script of the points not finished yet (empty when all are) and its
    /// manifest, with the paths as given (a relative path works when the script is
    /// submitted from the folder it is relative to).
    pub fn script(&self) -> Result<(String, Manifest)> {
        script::array_script(
            &self.name,
            &self.lab,
            &self.config,
            &self.points,
            &self.runs,
            &self.root,
            &self.resources,
        )
    }

    /// Submits the unfinished points (the paths made absolute, so the tasks do not
    /// depend on the folder they start in); `None` when every point is finished. The
    /// partition is checked first, so a wrong one fails before anything is queued.
    pub fn submit(&self) -> Result<Option<Manifest>> {
        if !self.resources.partition.is_empty() {
            check_partition(&self.resources.partition)?;
        }
        let sweep = self.absolute()?;
        let (script, manifest) = sweep.script()?;
        if manifest.tasks.is_empty() {
            return Ok(None);
        }
        submit(&script, manifest, &sweep.root).map(Some)
    }

    /// Where each point stands (every point not started before the first submission).
    pub fn status(&self) -> Result<Vec<(String, PointState)>> {
        let root = absolute(&self.root)?;
        match manifest(&root, &self.name)? {
            Some(m) => status(&root, &m),
            None => Ok(self
                .runs
                .iter()
                .map(|r| (r.name.clone(), PointState::NotStarted))
                .collect()),
        }
    }

    /// Polls every `poll` until no point is queued or running, calling `progress` with
    /// [`progress_line`] whenever it changes; errs after `timeout` (the job keeps
    /// running: `lab sweep-status` follows it).
    pub fn wait(
        &self,
        poll: Duration,
        timeout: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<(String, PointState)>> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let states = self.status()?;
            let line = progress_line(&states);
            if line != last {
                progress(&line);
                last = line;
            }
            let busy = states
                .iter()
                .any(|(_, s)| matches!(s, PointState::Queued | PointState::Running));
            if !busy {
                return Ok(states);
            }
            if started.elapsed() > timeout {
                return Err(Error::Argument {
                    name: "timeout".into(),
                    reason: format!(
                        "sweep {} still has points queued or running after {:.0} s ({last}); it goes on on the cluster: `lab sweep-status` follows it",
                        self.name,
                        timeout.as_secs_f64()
                    ),
                });
            }
            std::thread::sleep(poll);
        }
    }

    /// The finished points' summaries, as [`crate::experiment::run_points`] returns them
    /// for the same sweep run here; errs naming the points not finished.
    pub fn collect(&self) -> Result<Vec<RunSummary>> {
        collect_points(&self.root, &self.runs)
    }

    /// The table the local sweep prints: the grid's, or the ablations'.
    pub fn table(&self, runs: &[RunSummary]) -> Result<Table> {
        match self.kind {
            SweepKind::Grid => grid_table(runs),
            SweepKind::Ablations { .. } => ablation_table(runs),
        }
    }

    /// For a notebook cell: where a Slurm controller answers, submits the unfinished
    /// points, waits (a progress line per change), collects and renders the sweep's table;
    /// elsewhere renders the array script that would be submitted, and says so.
    pub fn run_on_cluster(&self, timeout: Duration) -> Result<Markdown> {
        if !cluster_answers() {
            let (script, manifest) = self.script()?;
            let todo = if script.is_empty() {
                format!(
                    "every one of its {} points is finished under `{}`: nothing to submit",
                    manifest.points.len(),
                    self.root.display()
                )
            } else {
                format!(
                    "its {} unfinished point(s) of {} become this array script:\n\n```bash\n{script}```",
                    manifest.tasks.len(),
                    manifest.points.len()
                )
            };
            return Ok(Markdown(format!(
                "No Slurm controller answers here (`sinfo`), so sweep `{}` is not submitted; {todo}",
                self.name
            )));
        }
        let job = match self.submit()? {
            Some(m) => format!("job {}", m.job.unwrap_or_default()),
            None => "nothing to submit".into(),
        };
        let states = self.wait(Duration::from_secs(2), timeout, &mut |line| {
            println!("{line}")
        })?;
        let runs = self.collect()?;
        Ok(Markdown(format!(
            "Sweep `{}` on Slurm ({job}): {}.\n\n{}",
            self.name,
            progress_line(&states),
            self.table(&runs)?.to_html()
        )))
    }

    fn absolute(&self) -> Result<ClusterSweep> {
        Ok(ClusterSweep {
            config: absolute(&self.config)?,
            root: absolute(&self.root)?,
            lab: absolute(&self.lab)?,
            ..self.clone()
        })
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}
