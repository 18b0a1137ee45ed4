//! `lab lr-find`, `lab grid` and `lab ablate`: the experiment tooling of the notebook's
//! Methodology and Results sections, from the command line.
use crate::{load_data_for, Bar};
use anyhow::{Context, Result};
use clap::Args;
use helpers::config::RunConfig;
use helpers::data::DataLoaders;
use helpers::experiment::{ablation_table, grid_table, run_points};
use helpers::report::tensorboard_shots::LR_FIND_RUN;
use helpers::session::Session;
use helpers::tasks::image::FitOptions;
use helpers::{models, sweep};
use std::path::PathBuf;

#[derive(Args)]
pub struct LrFindArgs {
    /// Run config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Smallest LR of the sweep.
    #[arg(long, default_value_t = 1e-6)]
    start: f64,
    /// Largest LR of the sweep.
    #[arg(long, default_value_t = 1.0)]
    end: f64,
    /// Steps of the sweep (it stops earlier when the loss diverges).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Where to write the curve.
    #[arg(long, default_value = "lr_finder.svg")]
    out: PathBuf,
}

#[derive(Args)]
pub struct GridArgs {
    /// Run config (TOML) with a [grid] section.
    #[arg(long)]
    config: PathBuf,
    /// Print one self-contained `lab train` command per point instead of training.
    #[arg(long)]
    plan: bool,
    /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
    #[arg(long)]
    root: Option<PathBuf>,
    #[command(flatten)]
    cluster: crate::cluster::SlurmArgs,
}

#[derive(Args)]
pub struct AblateArgs {
    /// Run config (TOML) with an [ablations] section.
    #[arg(long)]
    config: PathBuf,
    /// Seeds per variant (mean ± std across them).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
    #[arg(long)]
    root: Option<PathBuf>,
    #[command(flatten)]
    cluster: crate::cluster::SlurmArgs,
}

/// Training options for the runs of a sweep: under `root` or the session's folder.
fn sweep_options(session: &Session, root: &Option<PathBuf>) -> FitOptions {
    let mut opts = session.fit_options();
    if let Some(root) = root {
        opts.root = root.clone();
    }
    opts
}

pub fn lr_find(args: LrFindArgs, session: &Session) -> Result<()> {
    let cfg = session.profile.apply(RunConfig::from_file(&args.config)?);
    let data = load_data_for(session, &cfg)?;
    let loaders = DataLoaders::new(
        &data,
        &cfg.data,
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        cfg.seed,
        cfg.device(),
    );
    tch::manual_seed(cfg.seed as i64);
    let model = models::build(
        &cfg.model,
        data.image_shape(),
        data.num_classes() as i64,
        cfg.device(),
    )?;
    model.set_input_stats(&loaders.norm);
    let found = helpers::tasks::image::lr_find(
        &model,
        &loaders.train,
        &cfg.train,
        args.start,
        args.end,
        args.steps,
    )?;
    found.figure()?.save(&args.out)?;
    let logs = session.runs_root.join(LR_FIND_RUN).join(&cfg.name);
    let found = found.log_tensorboard(&logs)?;
    println!(
        "{} steps from {:.1e}; suggested LR: steepest descent {:.2e}, valley {:.2e}; curve in {}, TensorBoard events in {}",
        found.lrs.len(),
        args.start,
        found.steepest,
        found.valley,
        args.out.display(),
        logs.display()
    );
    Ok(())
}

pub fn grid(args: GridArgs, session: &Session) -> Result<()> {
    // Points come from the config as written; the profile scales each one (as
    // `lab train --name <point>` would), so `--plan` and `lab grid` agree on names.
    let cfg = RunConfig::from_file(&args.config)?;
    let points =
        sweep::grid_points(&cfg).with_context(|| format!("grid of {}", args.config.display()))?;
    if args.plan {
        for cmd in sweep::plan(&args.config.display().to_string(), &points) {
            println!("{cmd}");
        }
        return Ok(());
    }
    if args.cluster.slurm {
        let kind = helpers::slurm::SweepKind::Grid;
        return crate::cluster::sweep(
            &args.cluster,
            &args.config,
            kind,
            session,
            args.root.as_deref(),
        );
    }
    let points = session.profile.apply_points(points);
    let data = load_data_for(session, &cfg)?;
    let opts = sweep_options(session, &args.root);
    let runs = run_points(&points, &data, &opts, &mut Bar::default())?;
    println!("{}", grid_table(&runs)?);
    Ok(())
}

pub fn ablate(args: AblateArgs, session: &Session) -> Result<()> {
    let cfg = RunConfig::from_file(&args.config)?;
    let points = sweep::ablation_points(&cfg, args.seeds)
        .with_context(|| format!("ablations of {}", args.config.display()))?;
    if args.cluster.slurm {
        let kind = helpers::slurm::SweepKind::Ablations { seeds: args.seeds };
        return crate::cluster::sweep(
            &args.cluster,
            &args.config,
            kind,
            session,
            args.root.as_deref(),
        );
    }
    let points = session.profile.apply_points(points);
    let data = load_data_for(session, &cfg)?;
    let opts = sweep_options(session, &args.root);
    let runs = run_points(&points, &data, &opts, &mut Bar::default())?;
    println!("{}", ablation_table(&runs)?);
    Ok(())
}
