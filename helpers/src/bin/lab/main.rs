//! `lab`: the notebook's steps from the command line, for long runs outside Jupyter.
//! Every subcommand calls the same library functions the notebook cells call.
mod bench;
mod bench_text;
mod cluster;
mod coursework;
mod detect;
mod experiments;
mod explain;
mod infer;
mod monitor;
mod serve;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use helpers::backend::{versions, DeviceChoice};
use helpers::config::RunConfig;
use helpers::data::Dataset;
use helpers::data::DatasetKind;
use helpers::profile::Profile;
use helpers::run::Existing;
use helpers::session::Session;
use helpers::tasks::image::{fit_with, FitOptions, TrainedRun};
use helpers::train::{self, Progress, StepInfo};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Deep-learning project workflow on libtorch: train, evaluate, benchmark.
#[derive(Parser)]
#[command(name = "lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print toolchain, library and hardware versions and the available devices.
    Versions,
    /// Train a model from a TOML config into saved_models/<name>/.
    Train(TrainArgs),
    /// Evaluate a run's best checkpoint on the test set; writes metrics.json.
    Evaluate {
        /// Run directory, e.g. saved_models/fashion_cnn.
        #[arg(long)]
        run: PathBuf,
    },
    /// Throughput benchmarks (images/s), to compare with scripts/bench_pytorch.py.
    Bench(bench::BenchArgs),
    /// Embedding throughput (images/s) of a pretrained backbone, as a linear probe
    /// computes it; compare with scripts/bench_embed_pytorch.py.
    BenchEmbed(bench::BenchEmbedArgs),
    /// Tokenisation throughput (texts/s) of the text track's tokenizer against Hugging
    /// Face `tokenizers` (scripts/bench_tokenizers.py) on the same vocabulary.
    BenchTokenize(bench_text::BenchTokenizeArgs),
    /// Learning-rate range test: prints the suggestions, writes the curve as SVG.
    LrFind(experiments::LrFindArgs),
    /// Train every point of the config's [grid] (finished points are reused).
    Grid(experiments::GridArgs),
    /// Train the base config and each one-at-a-time change of its [ablations].
    Ablate(experiments::AblateArgs),
    /// Grad-CAM of test images: an overlay PNG and the map as .npy per index.
    Explain(explain::ExplainArgs),
    /// The comparison of every finished run under a folder, outside Jupyter: table
    /// (HTML, CSV), overlaid curves and metric bars (SVG), one standalone index.html.
    /// Lay out what an assignment collects from existing runs (copied or converted,
    /// never retrained), with MANIFEST.json: where each file came from.
    Handin(coursework::HandinArgs),
    /// An assignment's checklist (project, transfer or mlops): ✓/✗ per requirement from
    /// the runs, the notebook and the hand-in folder; non-zero exit on any ✗.
    Check(coursework::CheckArgs),
    /// Answers to the report template's numbered questions (D1–D11, M0–M9) from the
    /// final run, its data and its sweeps, as Markdown.
    Answers(coursework::AnswersArgs),
    /// PNG captures of TensorBoard's Scalars and HParams dashboards for the runs (the
    /// real TensorBoard on loopback, headless Chromium; stopped afterwards).
    TensorboardShots(coursework::ShotsArgs),
    /// With --sweep: only that sweep's points, in the table `lab grid` / `lab ablate`
    /// prints (e.g. the points a Slurm array job trained).
    Report(ReportArgs),
    /// Inference latency (p50/p95 ms, images/s) at batch 1, 8, 64: tch eager vs ONNX
    /// Runtime on the run's test images (TorchScript and inference mode: not from Rust).
    BenchInfer(infer::BenchInferArgs),
    /// Export a run's best checkpoint to ONNX (opset 17, dynamic batch, BN folded),
    /// and/or write the PyTorch definition its best.pt loads into.
    Export {
        /// Run directory, e.g. saved_models/fashion_cnn.
        #[arg(long)]
        run: PathBuf,
        /// ONNX output file, e.g. model.onnx.
        #[arg(long, required_unless_present = "pytorch")]
        out: Option<PathBuf>,
        /// Python file of the network as an `nn.Module`, e.g. model.py: `model.load(
        /// "<run>/best.pt")` reloads the best weights with strict=True.
        #[arg(long)]
        pytorch: Option<PathBuf>,
    },
    /// Predict with a regression run (the rows of --csv, written to --out with a
    /// predicted_<target> column), a text run (each --text, printed with its class and
    /// probability) or a detection run (each --image, of any size: the image with its
    /// boxes and a JSON of detections written into --out, default `predictions`), from
    /// the run directory's saved preprocessing, vocabulary or tiling.
    Predict {
        /// Run directory, e.g. saved_models/housing_mlp or saved_models/rt_bag.
        #[arg(long)]
        run: PathBuf,
        /// Rows to predict (CSV or .tsv with the training columns; a target column is ignored).
        #[arg(long, requires = "out", conflicts_with = "text")]
        csv: Option<PathBuf>,
        /// Output CSV (with --csv).
        #[arg(long)]
        out: Option<PathBuf>,
        /// A text to classify (repeatable).
        #[arg(long)]
        text: Vec<String>,
        /// An image to detect on (repeatable; a detection run).
        #[arg(long, conflicts_with_all = ["csv", "text"])]
        image: Vec<PathBuf>,
    },
    /// Drift tests (KS, MMD, χ²) of a simulated shift, or the whole detection experiment.
    Drift(monitor::DriftArgs),
    /// Fine-tune on shifted data and promote the candidate only if it passes the gate.
    Retrain(monitor::RetrainArgs),
    /// Serve a run over HTTP: POST /predict and /explain, a demo page at /, Prometheus
    /// /metrics, /health, /alerts; logs every prediction, tests live drift, and swaps in
    /// a model the retraining gate promotes.
    Serve(serve::ServeArgs),
    /// Where the points of a sweep submitted with `lab grid --slurm --submit` stand:
    /// finished, queued, running or failed (with the tail of its output).
    SweepStatus(cluster::StatusArgs),
    /// Object detection: train a detector on the NEON tree crowns (or a config), or
    /// detect on images of any size with a trained run.
    Detect(detect::DetectArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run config (TOML, or YAML for .yaml/.yml), e.g. configs/fashion_mnist.toml.
    #[arg(long)]
    config: PathBuf,
    /// Override data.dataset (e.g. cifar100 with configs/cifar10.toml); the data folder
    /// and the run name follow when they were the old dataset's.
    #[arg(long)]
    dataset: Option<String>,
    /// Override train.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override train.lr.
    #[arg(long)]
    lr: Option<f64>,
    /// Override train.batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override train.weight_decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Override seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override device (cpu, cuda, auto).
    #[arg(long)]
    device: Option<String>,
    /// Override the run name (directory under --root).
    #[arg(long)]
    name: Option<String>,
    /// Override any key: --set train.lr=0.001 --set model.dropout=0.0 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Continue an unfinished run from its last checkpoint.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace an existing run directory.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Folder of run directories.
    #[arg(long, default_value = "saved_models")]
    runs: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// A sweep's config: report its grid's points (every one must be finished).
    #[arg(long)]
    sweep: Option<PathBuf>,
    /// With --sweep: its ablations instead of its grid.
    #[arg(long, requires = "sweep")]
    ablations: bool,
    /// With --ablations: seeds per variant, as given to `lab ablate`.
    #[arg(long, default_value_t = 1, requires = "ablations")]
    seeds: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // After the arguments (`--help` and `--version` need no CUDA), before anything asks
    // libtorch about CUDA (it decides once per process); a no-op without an NVIDIA driver.
    helpers::backend::load_cuda();
    // The environment is read here, once (LAB_PROFILE, LAB_RUNS, LAB_FRESH).
    let session = Session::from_env()?;
    match cli.command {
        Command::Versions => {
            for (k, v) in versions().rows() {
                println!("{k:>16}  {v}");
            }
            println!("{:>16}  {}", "CUDA status", helpers::backend::cuda_status());
        }
        Command::Train(args) => train_cmd(args, &session)?,
        Command::Evaluate { run } => evaluate_cmd(&run)?,
        Command::Bench(args) => bench::run(args)?,
        Command::Report(args) => report_cmd(args, &session)?,
        Command::Handin(args) => coursework::handin(args, &session)?,
        Command::Check(args) => coursework::check(args, &session)?,
        Command::Answers(args) => coursework::answers(args, &session)?,
        Command::TensorboardShots(args) => coursework::tensorboard_shots(args)?,
        Command::BenchEmbed(args) => bench::run_embed(args)?,
        Command::BenchTokenize(args) => bench_text::run(args)?,
        Command::LrFind(args) => experiments::lr_find(args, &session)?,
        Command::Grid(args) => experiments::grid(args, &session)?,
        Command::Ablate(args) => experiments::ablate(args, &session)?,
        Command::Explain(args) => explain::explain(args)?,
        Command::Export { run, out, pytorch } => export_cmd(&run, out.as_deref(), pytorch.as_deref())?,
        Command::BenchInfer(args) => infer::bench_infer(args)?,
        Command::Predict { run, out, image, .. } if !image.is_empty() => {
            let out = out.unwrap_or_else(|| "predictions".into());
            detect::predict_images(&run, &image, &out, 0.3)?
        }
        Command::Predict { run, csv, out, text, .. } => match (csv, out) {
            (Some(csv), Some(out)) => predict_cmd(&run, &csv, &out)?,
            _ if !text.is_empty() => predict_text_cmd(&run, &text)?,
            _ => anyhow::bail!("lab predict: give --csv ROWS --out FILE (a regression run), --text \"…\" (a text run) or --image FILE (a detection run)"),
        },
        Command::Drift(args) => monitor::drift_cmd(args)?,
        Command::Retrain(args) => monitor::retrain_cmd(args)?,
        Command::Serve(args) => serve::serve_cmd(args)?,
        Command::SweepStatus(args) => cluster::status(args, &session)?,
        Command::Detect(args) => detect::detect_cmd(args, &session)?,
    }
    Ok(())
}

/// Says on stderr where a track's run stands (stdout carries the results): the state,
/// as `open_run` says it for image runs.
pub(crate) fn say_state(run: &Path, config_file: &str) {
    let state = helpers::run::RunDir::at(run).task_state(config_file);
    if state == helpers::run::RunState::Missing {
        return; // not a run of this task: loading it says so, naming the file
    }
    eprintln!("{}: {}", run.display(), state.with_best_epoch());
}

fn predict_cmd(run: &std::path::Path, csv: &std::path::Path, out: &std::path::Path) -> Result<()> {
    say_state(run, helpers::tasks::regression::CONFIG_FILE);
    let report = helpers::tasks::regression::deploy::predict_csv(run, csv, out)?;
    println!("{} rows predicted -> {}", report.rows, report.out.display());
    for (column, n) in &report.imputed {
        println!("  {column}: {n} missing cells filled with the training median");
    }
    for (column, n) in &report.unknown_categories {
        println!("  {column}: {n} unseen or missing categories encoded as all zeros");
    }
    Ok(())
}

fn predict_text_cmd(run: &std::path::Path, texts: &[String]) -> Result<()> {
    say_state(run, helpers::tasks::text::CONFIG_FILE);
    for (text, (class, p)) in texts
        .iter()
        .zip(helpers::tasks::text::predict_texts(run, texts)?)
    {
        println!("{class}\t{p:.3}\t{text}");
    }
    Ok(())
}

fn train_cmd(args: TrainArgs, session: &Session) -> Result<()> {
    let cfg = config_with_overrides(&args, session.profile)?;
    let data = load_data_for(session, &cfg)?;
    let existing = if args.force {
        Existing::Force
    } else if args.resume {
        Existing::Resume
    } else {
        Existing::Refuse
    };
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| session.runs_root.clone());
    println!(
        "training {} → {}",
        args.config.display(),
        root.join(&cfg.name).display()
    );
    let opts = FitOptions {
        root,
        existing,
        stop_after_epochs: None,
    };
    let trained = fit_with(&cfg, &data, &opts, &mut Bar::default())
        .with_context(|| format!("training {}", args.config.display()))?;
    print_result(&trained)
}

fn config_with_overrides(args: &TrainArgs, profile: Profile) -> Result<RunConfig> {
    // A sweep config trains its base here; its points come from `lab grid` / `--plan`.
    let mut cfg = RunConfig::from_file(&args.config)?.run_only();
    let assignments = args
        .sets
        .iter()
        .map(|a| helpers::sweep::parse_assignment(a))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    cfg = helpers::sweep::set_keys(&cfg, &assignments)?;
    if let Some(v) = &args.dataset {
        cfg = cfg.with_dataset(DatasetKind::parse(v).context("--dataset")?);
    }
    if let Some(v) = args.epochs {
        cfg.train.epochs = v
    }
    if let Some(v) = args.lr {
        cfg.train.lr = v
    }
    if let Some(v) = args.batch_size {
        cfg.train.batch_size = v
    }
    if let Some(v) = args.weight_decay {
        cfg.train.weight_decay = v
    }
    if let Some(v) = args.seed {
        cfg.seed = v
    }
    if let Some(v) = &args.device {
        cfg.device = DeviceChoice::parse(v).context("--device")?
    }
    if let Some(v) = &args.name {
        cfg.name = v.clone()
    }
    let cfg = profile.apply(cfg);
    cfg.validate().map_err(|e| match e {
        helpers::Error::Config { key, reason } => match flag_for(args, &key) {
            Some(flag) => anyhow::anyhow!(
                "{flag}: {reason} (it sets `{key}` of {})",
                args.config.display()
            ),
            None => helpers::Error::Config { key, reason }.into(),
        },
        other => other.into(),
    })?;
    Ok(cfg)
}

/// The command-line flag that set config key `key`, when one did: a bad value is then
/// reported as the flag the user typed, not as a key their file does not contain.
fn flag_for(args: &TrainArgs, key: &str) -> Option<&'static str> {
    [
        ("train.epochs", "--epochs", args.epochs.is_some()),
        ("train.lr", "--lr", args.lr.is_some()),
        (
            "train.batch_size",
            "--batch-size",
            args.batch_size.is_some(),
        ),
        (
            "train.weight_decay",
            "--weight-decay",
            args.weight_decay.is_some(),
        ),
        ("seed", "--seed", args.seed.is_some()),
        ("name", "--name", args.name.is_some()),
    ]
    .into_iter()
    .find(|&(k, _, given)| given && k == key)
    .map(|(_, flag, _)| flag)
}

/// The config's dataset for a command that trains: a missing official archive is
/// downloaded when the session allows it (`LAB_DOWNLOAD=1`).
pub(crate) fn load_data_for(session: &Session, cfg: &RunConfig) -> Result<Dataset> {
    Ok(helpers::data::load_with(
        &cfg.data,
        cfg.seed,
        session.download,
    )?)
}

/// The config's dataset, as it is on disk.
pub(crate) fn load_data(cfg: &RunConfig) -> Result<Dataset> {
    Ok(helpers::data::load(&cfg.data, cfg.seed)?)
}

fn report_cmd(args: ReportArgs, session: &Session) -> Result<()> {
    use helpers::slurm::{ClusterSweep, SweepKind};
    let report = match &args.sweep {
        None => helpers::report::runs::build(&args.runs, &args.out)?,
        Some(config) => {
            let kind = match args.ablations {
                true => SweepKind::Ablations { seeds: args.seeds },
                false => SweepKind::Grid,
            };
            // No binary runs here: the sweep only names its points' run directories.
            let sweep = ClusterSweep::new(config, kind, session, "lab")?.with_root(&args.runs);
            let runs = sweep.collect()?;
            let table = sweep.table(&runs)?;
            let title = format!("Sweep {} in {}", sweep.name, args.runs.display());
            helpers::report::runs::write(&title, runs, table, &args.out)?
        }
    };
    println!("{}", report.table);
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// A run's data (its config's) and the run loaded on it, in any state with a best
/// checkpoint; its state and what loading rebuilt are printed on stderr.
pub(crate) fn open_run(run: &Path) -> Result<(Dataset, TrainedRun)> {
    let cfg = helpers::run::RunDir::at(run).config()?;
    let data = load_data(&cfg)?;
    let trained =
        TrainedRun::load(run, &data).with_context(|| format!("loading run {}", run.display()))?;
    eprintln!("{}: {}", run.display(), trained.state_line());
    for note in &trained.notes {
        eprintln!("  {note}");
    }
    Ok((data, trained))
}

fn evaluate_cmd(run: &Path) -> Result<()> {
    // Read before loading, which rebuilds a missing file from the same checkpoint.
    let saved = helpers::run::RunDir::at(run).metrics().ok();
    let (data, trained) = open_run(run)?;
    let Some(saved) = saved else {
        // Loading just scored the best checkpoint; written here too, so a folder that
        // cannot be written fails as `evaluate` must, not with a note.
        trained.run.write_metrics(&trained.test)?;
        println!("{}", trained.test.report_table("Test set")?);
        println!(
            "wrote {} (there were no saved scores)",
            trained.run.file("metrics.json").display()
        );
        return Ok(());
    };
    let metrics = trained.test_predictions().metrics(&data.classes);
    // The saved scores against those recomputed now: equal on the machine that trained it.
    let same = serde_json::to_string(&metrics)? == serde_json::to_string(&saved)?;
    trained.run.write_metrics(&metrics)?;
    println!("{}", metrics.report_table("Test set")?);
    println!(
        "wrote {} ({})",
        trained.run.file("metrics.json").display(),
        match same {
            true => "identical to the saved scores",
            false => "the saved scores differed: replaced",
        }
    );
    Ok(())
}

fn export_cmd(run: &Path, onnx: Option<&Path>, pytorch: Option<&Path>) -> Result<()> {
    let (data, trained) = open_run(run)?;
    if let Some(out) = onnx {
        helpers::deploy::export(&trained.model, out)?;
        println!(
            "wrote {} (input `input` [batch, {:?}], output `logits`)",
            out.display(),
            trained.model.input_shape
        );
    }
    if let Some(out) = pytorch {
        export_pytorch(&trained, &data.classes, out)?;
    }
    Ok(())
}

/// The definition at `out`, and the run's best.pt (converted from its safetensors when a
/// run from before best.pt existed lacks it).
fn export_pytorch(trained: &TrainedRun, classes: &[String], out: &Path) -> Result<()> {
    use helpers::deploy::pytorch::{export_definition, Provenance};
    let run = &trained.run;
    let name = run.path.file_name().unwrap_or_default().to_string_lossy();
    let hash = trained.config.hash();
    let about = Provenance {
        run: &name,
        config_hash: &hash,
        classes,
        norm: &trained.loaders.norm,
    };
    export_definition(&trained.model, &about, out)?;
    let weights = run.pytorch_checkpoint_or_convert()?;
    println!(
        "wrote {}: `model.load(\"{}\")` gives the network with its best weights (strict=True); `model.preprocess(uint8 images)` its input",
        out.display(),
        weights.display()
    );
    Ok(())
}

fn print_result(t: &TrainedRun) -> Result<()> {
    println!("{}", t.test.report_table("Test set, best checkpoint")?);
    println!(
        "best epoch {} (val acc {:.4}); test accuracy {:.4}, macro-F1 {:.4}; {:.1} s of training; run in {}",
        t.meta.best_epoch,
        t.meta.best_val_accuracy,
        t.test.accuracy,
        t.test.macro_avg.f1,
        t.meta.train_seconds,
        t.run.path.display()
    );
    Ok(())
}

/// A progress bar with loss, accuracy and images/s on a terminal; elsewhere (a Slurm log,
/// `| tee`, nohup) a plain line every `LAB_PROGRESS_EVERY` seconds (default 30), so a
/// long epoch shows it is alive.
#[derive(Default)]
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
    /// Decided at the first step (not per step: a syscall and an environment lookup).
    plain: Option<Option<Plain>>,
}

/// Plain progress lines: their interval and when the last one was printed.
struct Plain {
    every: f64,
    last: std::time::Instant,
}

impl Plain {
    /// `Some` when stderr is not a terminal (where a bar would not show).
    fn when_no_terminal() -> Option<Plain> {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            return None;
        }
        let every = std::env::var("LAB_PROGRESS_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30.0);
        Some(Plain {
            every,
            last: std::time::Instant::now(),
        })
    }

    fn print_if_due(&mut self, s: &StepInfo) {
        if self.last.elapsed().as_secs_f64() < self.every {
            return;
        }
        self.last = std::time::Instant::now();
        println!(
            "epoch {}/{} step {}/{} ({:.0} %): loss {:.4} acc {:.4} {:.0} img/s",
            s.epoch,
            s.epochs,
            s.step,
            s.steps,
            100.0 * s.step as f64 / s.steps.max(1) as f64,
            s.loss,
            s.accuracy,
            s.images_per_sec
        );
    }
}

impl Progress for Bar {
    fn on_step(&mut self, s: &StepInfo) {
        if let Some(plain) = self.plain.get_or_insert_with(Plain::when_no_terminal) {
            plain.print_if_due(s);
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(s.steps as u64);
            b.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {msg}")
                    .expect("valid template"),
            );
            b
        });
        bar.set_prefix(format!("epoch {}/{}", s.epoch, s.epochs));
        bar.set_position(s.step as u64);
        bar.set_message(format!(
            "loss {:.4} acc {:.4} {:.0} img/s",
            s.loss, s.accuracy, s.images_per_sec
        ));
    }
    fn on_epoch(&mut self, r: &train::EpochRecord, epochs: usize) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        println!("{}", train::progress::epoch_line(r, epochs));
    }
    fn on_message(&mut self, text: &str) {
        println!("{text}");
    }
}
