//! What the courses collect: `lab handin` (an assignment's files from existing runs),
//! `lab check` (its checklist) and `lab tensorboard-shots` (TensorBoard captures); see
//! `helpers::report::{handin, checklist, tensorboard_shots}`.
use anyhow::Result;
use clap::Args;
use helpers::config::RunConfig;
use helpers::experiment::collect_finished;
use helpers::report::answers::{Answers, Evidence};
use helpers::report::checklist::{self, Inputs, Verdict};
use helpers::report::handin::{self, Layout, Sources};
use helpers::report::tensorboard_shots::{capture, ShotOptions};
use helpers::run::RunDir;
use helpers::session::Session;
use helpers::sweep::{ablation_points, grid_points};
use helpers::tasks::image::TrainedRun;
use std::path::PathBuf;

#[derive(Args)]
pub struct HandinArgs {
    /// project (best.pt, config, notebook), transfer (saved_models/<run>/model_checkpoint.pt
    /// and logs/) or mlops (checkpoints/, exports/model.onnx, logs/predictions.csv).
    #[arg(long)]
    layout: String,
    /// Folder of run directories.
    #[arg(long, default_value = "saved_models")]
    runs: PathBuf,
    /// The main run (project and mlops layouts; default: fashion_cnn under the profile).
    #[arg(long)]
    run: Option<String>,
    /// The notebook to hand in with the files.
    #[arg(long)]
    notebook: Option<PathBuf>,
    /// The server's prediction log (`predictions.csv` of `lab serve --log-dir`), mlops only.
    #[arg(long)]
    prediction_log: Option<PathBuf>,
    /// Output folder (files already there are never overwritten).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct CheckArgs {
    /// project, transfer or mlops (as `lab handin --layout`).
    #[arg(long)]
    assignment: String,
    /// Folder of run directories.
    #[arg(long, default_value = "saved_models")]
    runs: PathBuf,
    /// The main run (default: fashion_cnn under the profile).
    #[arg(long)]
    run: Option<String>,
    /// The executed notebook.
    #[arg(long, default_value = "notebook.ipynb")]
    notebook: PathBuf,
    /// The hand-in folder (`lab handin --out`).
    #[arg(long)]
    handin: Option<PathBuf>,
}

#[derive(Args)]
pub struct ShotsArgs {
    /// Folder of run directories (TensorBoard's --logdir).
    #[arg(long, default_value = "saved_models")]
    runs: PathBuf,
    /// Output folder of the PNGs.
    #[arg(long, default_value = "shots")]
    out: PathBuf,
    /// Only runs whose folder matches this regular expression.
    #[arg(long, default_value = "")]
    run_filter: String,
    /// The metric's tag prefix (accuracy; mae, map, … on the other tracks).
    #[arg(long, default_value = "accuracy")]
    metric: String,
}

#[derive(Args)]
pub struct AnswersArgs {
    /// The final run's config (its run is read from --runs; the profile applies).
    #[arg(long, default_value = "configs/fashion_mnist.toml")]
    config: PathBuf,
    /// The sweep config whose grid and ablation runs answer M4, M5, M7 and M8.
    #[arg(long, default_value = "configs/sweep.toml")]
    sweep: PathBuf,
    /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Write the answers (Markdown) here instead of printing them.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The main run: as given, else the main notebook's run under the session's profile.
fn main_run(given: Option<String>, session: &Session) -> String {
    given.unwrap_or_else(|| format!("fashion_cnn{}", session.profile.suffix()))
}

pub fn handin(args: HandinArgs, session: &Session) -> Result<()> {
    let sources = Sources {
        runs: args.runs,
        run: main_run(args.run, session),
        suffix: session.profile.suffix().into(),
        notebook: args.notebook,
        prediction_log: args.prediction_log,
    };
    let manifest = handin::build(Layout::parse(&args.layout)?, &sources, &args.out)?;
    for entry in &manifest.files {
        println!("{:<56} ← {}", entry.file.display(), entry.source.display());
    }
    println!(
        "{} files in {}; where each came from: {}",
        manifest.files.len(),
        args.out.display(),
        args.out.join("MANIFEST.json").display()
    );
    Ok(())
}

pub fn check(args: CheckArgs, session: &Session) -> Result<()> {
    let inputs = Inputs {
        runs: args.runs,
        run: main_run(args.run, session),
        suffix: session.profile.suffix().into(),
        notebook: args.notebook,
        handin: args.handin,
    };
    let requirements = checklist::check(Layout::parse(&args.assignment)?, &inputs)?;
    for r in &requirements {
        println!("{r}");
    }
    let missing = requirements
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Missing(_)))
        .count();
    let manual = requirements
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Manual(_)))
        .count();
    println!(
        "{} of {} met, {missing} missing, {manual} to check by reading",
        requirements.len() - missing - manual,
        requirements.len()
    );
    if missing > 0 {
        anyhow::bail!("{missing} requirement(s) of `{}` not met", args.assignment);
    }
    Ok(())
}

/// Answers to the report template's D1–D11 and M0–M9 from the runs: the final run must
/// be finished; unfinished sweep points are left out (their answers say so).
pub fn answers(args: AnswersArgs, session: &Session) -> Result<()> {
    let profile = session.profile;
    let cfg = profile.apply(RunConfig::from_file(&args.config)?);
    let root = args.runs.unwrap_or_else(|| session.runs_root.clone());
    let run_dir = RunDir::at(root.join(&cfg.name));
    if !run_dir.is_finished() {
        anyhow::bail!(
            "{}: not a finished run; `lab train --config {}` trains it",
            run_dir.path.display(),
            args.config.display()
        );
    }
    let data = crate::load_data(&cfg)?;
    let run = TrainedRun::load(&run_dir.path, &data)?;
    let sweep = RunConfig::from_file(&args.sweep)?;
    let grid = collect_finished(&root, &profile.apply_points(grid_points(&sweep)?))?;
    let ablation_points = profile.apply_points(ablation_points(&sweep, profile.seeds())?);
    let ablations = collect_finished(&root, &ablation_points)?;
    let evidence = Evidence {
        data: &data,
        run: &run,
        grid: &grid,
        ablations: &ablations,
        overfit_epochs: profile.overfit_epochs(),
        lr_find_steps: profile.lr_find_steps(),
    };
    let markdown = Answers::compute(&evidence)?.markdown();
    match args.out {
        Some(out) => {
            helpers::io::write_text_atomic(&out, &markdown)?;
            println!("wrote {}", out.display());
        }
        None => println!("{markdown}"),
    }
    Ok(())
}

pub fn tensorboard_shots(args: ShotsArgs) -> Result<()> {
    let options = ShotOptions {
        run_filter: args.run_filter,
        metric: args.metric,
    };
    for png in capture(&args.runs, &args.out, &options)? {
        println!("wrote {}", png.display());
    }
    Ok(())
}
