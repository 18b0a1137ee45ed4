//! `lab grid --slurm`, `lab ablate --slurm` and `lab sweep-status`: a sweep as a Slurm
//! array job, and where its points stand (see `helpers::slurm`).
use anyhow::{Context, Result};
use clap::Args;
use helpers::slurm::{self, PointState, Resources};
use helpers::sweep::Point;
use std::path::{Path, PathBuf};

/// The Slurm flags of `lab grid` and `lab ablate`.
#[derive(Args, Clone, Default)]
pub struct SlurmArgs {
    /// Write the sweep's unfinished points as an sbatch array script (printed; with
    /// --submit, submitted) instead of training here.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Partition of each array task.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// CPUs per task (--cpus-per-task).
    #[arg(long, default_value_t = 0, requires = "slurm")]
    pub cpus: usize,
    /// GPUs per task (--gres=gpu:N).
    #[arg(long, default_value_t = 0, requires = "slurm")]
    pub gpus: usize,
    /// Memory per task, e.g. 8G.
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
    /// Time limit per task, e.g. 02:00:00.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// At most this many tasks at once (--array=…%N).
    #[arg(long, default_value_t = 0, requires = "slurm")]
    pub throttle: usize,
}

impl SlurmArgs {
    fn resources(&self) -> Resources {
        Resources {
            partition: self.partition.clone(),
            cpus: self.cpus,
            gpus: self.gpus,
            mem: self.mem.clone(),
            time: self.time.clone(),
            throttle: self.throttle,
        }
    }
}

/// Writes (and with --submit, submits) the array job of `points` under `root`; `runs`
/// are the points as `lab train` runs them (the session's profile applied).
pub fn sweep(
    args: &SlurmArgs,
    sweep: &str,
    config: &Path,
    points: &[Point],
    runs: &[Point],
    root: &Path,
) -> Result<()> {
    let lab = std::env::current_exe().context("locating the lab binary for the array tasks")?;
    let config = absolute(config)?;
    let root = absolute(root)?;
    if args.submit {
        if let Some(p) = &args.partition {
            slurm::check_partition(p)?;
        }
    }
    let (script, manifest) =
        slurm::array_script(sweep, &lab, &config, points, runs, &root, &args.resources())?;
    if manifest.tasks.is_empty() {
        println!(
            "every point of {sweep} is finished under {}: nothing to submit",
            root.display()
        );
        return Ok(());
    }
    if !args.submit {
        print!("{script}");
        return Ok(());
    }
    let left_out = manifest.points.len() - manifest.tasks.len();
    let manifest = slurm::submit(&script, manifest, &root)?;
    println!(
        "submitted job {} ({} array tasks; {left_out} finished points left out); outputs in {}; `lab sweep-status --config {}` follows it",
        manifest.job.unwrap_or_default(),
        manifest.tasks.len(),
        manifest.logs.display(),
        config.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct StatusArgs {
    /// The sweep's config (its `name` names the sweep).
    #[arg(long)]
    config: PathBuf,
    /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The config's ablations (`lab ablate --slurm`) instead of its grid.
    #[arg(long)]
    ablations: bool,
}

/// The manifest name of a config's grid or ablations.
pub fn sweep_name(config_name: &str, ablations: bool) -> String {
    if ablations {
        format!("{config_name}-ablations")
    } else {
        config_name.to_string()
    }
}

/// Prints each point's state; non-zero exit while any point is failed.
pub fn status(args: StatusArgs, session: &helpers::session::Session) -> Result<()> {
    let cfg = helpers::config::RunConfig::from_toml_file(&args.config)?;
    let root = args.root.unwrap_or_else(|| session.runs_root.clone());
    let name = sweep_name(&cfg.name, args.ablations);
    let manifest = slurm::manifest(&root, &name)?.with_context(|| {
        format!(
            "no submission of sweep `{name}` under {} (lab grid --slurm --submit writes one)",
            root.display()
        )
    })?;
    let states = slurm::status(&root, &manifest)?;
    println!(
        "sweep {} (job {}):",
        manifest.sweep,
        manifest.job.map(|j| j.to_string()).unwrap_or("—".into())
    );
    let mut failed = 0;
    for (name, state) in &states {
        println!("  {:<12} {name}", state.name());
        if let PointState::Failed(tail) = state {
            failed += 1;
            for line in tail.lines() {
                println!("               │ {line}");
            }
        }
    }
    let done = states
        .iter()
        .filter(|(_, s)| *s == PointState::Finished)
        .count();
    println!("{done} of {} finished", states.len());
    if failed > 0 {
        anyhow::bail!("{failed} point(s) failed: `lab grid --slurm --submit` again resumes them from their last checkpoint");
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}
