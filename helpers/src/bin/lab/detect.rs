//! `lab detect`: the detection track outside the notebook — train a config into its run
//! directory, or detect on images of any size with a trained run.
use anyhow::{Context, Result};
use helpers::run::{Existing, FitOptions};
use helpers::session::Session;
use helpers::tasks::detection::{self, DetectionConfig, DetectionData};
use helpers::train::PrintScores;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct DetectArgs {
    #[command(subcommand)]
    command: DetectCommand,
}

#[derive(clap::Subcommand)]
enum DetectCommand {
    /// Train a detection config (TOML; default: the built-in NEON tree-crown config).
    Train {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override train.epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Override train.lr (the one-cycle peak).
        #[arg(long)]
        lr: Option<f64>,
        /// Override the run name.
        #[arg(long)]
        name: Option<String>,
        /// Folder of run directories (default: `LAB_RUNS`, else saved_models).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Continue an unfinished run from its last checkpoint.
        #[arg(long, conflicts_with = "force")]
        resume: bool,
        /// Replace an existing run directory.
        #[arg(long)]
        force: bool,
    },
    /// Detect on images with a run: writes <out>/<stem>_boxes.png and <out>/<stem>.json.
    Predict {
        /// Run directory, e.g. saved_models/trees.
        #[arg(long)]
        run: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "predictions")]
        out: PathBuf,
        /// Keep boxes scored at least this.
        #[arg(long, default_value_t = 0.3)]
        min_score: f32,
        /// Images (PNG, JPEG; any size).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Export a run's detector to ONNX (tiles in; heatmap and box maps out, decoded after).
    Export {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn detect_cmd(args: DetectArgs, session: &Session) -> Result<()> {
    match args.command {
        DetectCommand::Train {
            config,
            epochs,
            lr,
            name,
            root,
            resume,
            force,
        } => {
            let mut cfg = match &config {
                Some(p) => DetectionConfig::from_toml_file(p)?,
                None => DetectionConfig::default(),
            };
            if let Some(e) = epochs {
                cfg.train.epochs = e;
            }
            if let Some(v) = lr {
                cfg.train.lr = v;
            }
            if let Some(n) = name {
                cfg.name = n;
            }
            session
                .profile
                .scale_run(&mut cfg.name, &mut cfg.train.epochs);
            let data = DetectionData::prepare(&cfg).context("preparing the tiles")?;
            let existing = match (force, resume) {
                (true, _) => Existing::Force,
                (_, true) => Existing::Resume,
                _ => Existing::Refuse,
            };
            let opts = FitOptions {
                root: root.unwrap_or_else(|| session.runs_root.clone()),
                existing,
                stop_after_epochs: None,
            };
            println!(
                "training {} → {} ({} train / {} validation / {} test tiles)",
                cfg.name,
                opts.root.join(&cfg.name).display(),
                data.train.len(),
                data.val.len(),
                data.test.len()
            );
            let trained = detection::fit(&cfg, &data, &opts, &mut PrintScores::detection())
                .with_context(|| format!("training {}", cfg.name))?;
            let m = &trained.test;
            println!(
                "test tiles: mAP@0.5 {:.3}, mAP@0.5:0.95 {:.3}, AR@100 {:.3}; trained {:.0} s; {:.1} tiles/s → {}",
                m.map50, m.map, m.ar100, trained.meta.train_seconds,
                trained.meta.test_tiles_per_second.unwrap_or(0.0), trained.run.path.display()
            );
        }
        DetectCommand::Predict {
            run,
            out,
            min_score,
            images,
        } => predict_images(&run, &images, &out, min_score)?,
        DetectCommand::Export { run, out } => {
            crate::say_state(&run, detection::CONFIG_FILE);
            let loaded = detection::LoadedDetector::load(&run)?;
            let size = loaded.config.tiles.size as i64;
            detection::onnx::export(&loaded.net, size, &out)?;
            println!(
                "{} → {} ({size}×{size} tiles in; heatmap and boxes maps out)",
                run.display(),
                out.display()
            );
        }
    }
    Ok(())
}

/// Each image detected with the run at `run`, the drawing and JSON written into `out`.
pub fn predict_images(run: &Path, images: &[PathBuf], out: &Path, min_score: f32) -> Result<()> {
    crate::say_state(run, detection::CONFIG_FILE);
    for image in images {
        let p = detection::predict_file(run, image, out, min_score)
            .with_context(|| format!("detecting on {}", image.display()))?;
        println!(
            "{}: {} boxes (score ≥ {min_score}) → {}",
            image.display(),
            p.detections.len(),
            out.display()
        );
    }
    Ok(())
}
