//! `lab grid --slurm`, `lab ablate --slurm` and `lab sweep-status`: a sweep as a Slurm
//! array job, and where its points stand (see `helpers::slurm`).
use anyhow::{Context, Result};
use clap::Args;
use helpers::config::SlurmConfig;
use helpers::session::Session;
use helpers::slurm::{self, ClusterSweep, PointState, SweepKind};
use std::path::{Path, PathBuf};

/// The Slurm flags of `lab grid` and `lab ablate`; each one replaces the same key of the
/// config's `[slurm]` section.
#[derive(Args, Clone, Default)]
pub struct SlurmArgs {
    /// Write the sweep's unfinished points as an sbatch array script (printed; with
    /// --submit, submitted) instead of training here.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Partition of each array task (slurm.partition).
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// CPUs per task, --cpus-per-task (slurm.cpus).
    #[arg(long, requires = "slurm")]
    pub cpus: Option<usize>,
    /// GPUs per task, --gres=gpu:N (slurm.gpus).
    #[arg(long, requires = "slurm")]
    pub gpus: Option<usize>,
    /// Memory per task, e.g. 8G (slurm.mem).
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
    /// Time limit per task, e.g. 02:00:00 (slurm.time).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// At most this many tasks at once, --array=…%N (slurm.throttle).
    #[arg(long, requires = "slurm")]
    pub throttle: Option<usize>,
}

impl SlurmArgs {
    /// The config's resources with each given flag in place of its key.
    fn resources(&self, config: &SlurmConfig) -> Result<SlurmConfig> {
        let resources = SlurmConfig {
            partition: self.partition.clone().unwrap_or(config.partition.clone()),
            cpus: self.cpus.unwrap_or(config.cpus),
            gpus: self.gpus.unwrap_or(config.gpus),
            mem: self.mem.clone().unwrap_or(config.mem.clone()),
            time: self.time.clone().unwrap_or(config.time.clone()),
            throttle: self.throttle.unwrap_or(config.throttle),
        };
        resources
            .validate()
            .context("a --slurm flag (each replaces the [slurm] key it names)")?;
        Ok(resources)
    }
}

/// Prints (and with --submit, submits) the array job of the config's unfinished `kind`
/// points under `root` (default: the session's runs folder).
pub fn sweep(
    args: &SlurmArgs,
    config: &Path,
    kind: SweepKind,
    session: &Session,
    root: Option<&Path>,
) -> Result<()> {
    let lab = std::env::current_exe().context("locating the lab binary for the array tasks")?;
    let config =
        std::path::absolute(config).with_context(|| format!("resolving {}", config.display()))?;
    let mut sweep = ClusterSweep::new(&config, kind, session, lab)?;
    if let Some(root) = root {
        sweep = sweep.with_root(root);
    }
    let root = std::path::absolute(sweep.root())
        .with_context(|| format!("resolving {}", sweep.root().display()))?;
    sweep = sweep.with_root(&root);
    sweep.resources = args.resources(&sweep.resources)?;
    if !args.submit {
        let (script, _) = sweep.script()?;
        if script.is_empty() {
            println!("{}", nothing_left(&sweep.name, &root));
        }
        print!("{script}");
        return Ok(());
    }
    let Some(manifest) = sweep.submit()? else {
        println!("{}", nothing_left(&sweep.name, &root));
        return Ok(());
    };
    let left_out = manifest.points.len() - manifest.tasks.len();
    println!(
        "submitted job {} ({} array tasks; {left_out} finished points left out); outputs in {}; `lab sweep-status --config {}` follows it",
        manifest.job.unwrap_or_default(),
        manifest.tasks.len(),
        manifest.logs.display(),
        config.display()
    );
    Ok(())
}

fn nothing_left(sweep: &str, root: &Path) -> String {
    format!(
        "every point of {sweep} is finished under {}: nothing to submit",
        root.display()
    )
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
pub fn status(args: StatusArgs, session: &Session) -> Result<()> {
    let cfg = helpers::config::RunConfig::from_file(&args.config)?;
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
    for (name, state) in &states {
        println!("  {:<12} {name}", state.name());
        if let PointState::Failed(tail) = state {
            for line in tail.lines() {
                println!("               │ {line}");
            }
        }
    }
    println!("{}", slurm::progress_line(&states));
    let failed = states
        .iter()
        .filter(|(_, s)| matches!(s, PointState::Failed(_)))
        .count();
    if failed > 0 {
        anyhow::bail!("{failed} point(s) failed: `lab grid --slurm --submit` again resumes them from their last checkpoint");
    }
    Ok(())
}
