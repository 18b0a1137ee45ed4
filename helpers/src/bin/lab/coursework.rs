//! What the courses collect: `lab handin` (an assignment's files from existing runs),
//! `lab check` (its checklist) and `lab tensorboard-shots` (TensorBoard captures); see
//! `helpers::report::{handin, checklist, tensorboard_shots}`.
use anyhow::Result;
use clap::Args;
use helpers::report::checklist::{self, Inputs, Verdict};
use helpers::report::handin::{self, Layout, Sources};
use helpers::report::tensorboard_shots::{capture, ShotOptions};
use helpers::session::Session;
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
