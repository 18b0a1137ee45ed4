//! `lab serve`: a trained image run over HTTP (see `helpers::serve`).
use anyhow::{Context, Result};
use clap::Args;
use helpers::monitor::drift::DriftOptions;
use helpers::monitor::prediction_log::AlertRules;
use helpers::serve::{self, BatchOptions, Engine, MonitorOptions, ServeOptions, ServedModel};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// Run directory to serve, e.g. saved_models/fashion_cnn.
    #[arg(long)]
    run: PathBuf,
    /// Address to bind: loopback unless told otherwise (0.0.0.0 opens it to the network).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0: any free port; the line printed at start says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Inference engine: auto (ONNX Runtime, else tch), ort, tch.
    #[arg(long, default_value = "auto")]
    engine: String,
    /// Most images in one model run.
    #[arg(long, default_value_t = BatchOptions::default().max_batch)]
    max_batch: usize,
    /// Longest wait for more requests to join a batch, milliseconds.
    #[arg(long, default_value_t = BatchOptions::default().max_wait.as_secs_f64() * 1000.0)]
    max_wait_ms: f64,
    /// Requests that may wait for the model; more are refused with 503.
    #[arg(long, default_value_t = BatchOptions::default().queue)]
    queue: usize,
    /// Largest request body, MiB (larger: 413).
    #[arg(long, default_value_t = serve::MAX_BODY >> 20)]
    max_body_mb: usize,
    /// Folder of predictions.jsonl, predictions.csv and alerts.jsonl (default: <run>/serving).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Live inputs in the drift window.
    #[arg(long, default_value_t = 200)]
    drift_window: usize,
    /// Run the drift tests each time this many new inputs arrived …
    #[arg(long, default_value_t = 200)]
    drift_every: usize,
    /// … and at least this many seconds after the previous test (a test costs ~0.1 s of
    /// CPU; under heavy traffic this caps monitoring at a few per cent of the machine).
    #[arg(long, default_value_t = 5.0)]
    drift_min_interval_s: f64,
    /// Do not watch <runs root>/deployed.json for promoted models.
    #[arg(long)]
    no_watch: bool,
}

pub fn serve_cmd(args: ServeArgs) -> Result<()> {
    let engine = Engine::parse(&args.engine)?;
    let drift = DriftOptions::default();
    let model = ServedModel::load(&args.run, engine, &drift)
        .with_context(|| format!("loading run {} to serve", args.run.display()))?;
    let loader: serve::Loader = Arc::new(move |run| ServedModel::load(run, engine, &drift));
    let root = args.run.parent().map(PathBuf::from).unwrap_or_default();
    let options = ServeOptions {
        addr: SocketAddr::new(args.host, args.port),
        batch: BatchOptions {
            max_batch: args.max_batch.max(1),
            max_wait: Duration::from_secs_f64(args.max_wait_ms.max(0.0) / 1000.0),
            queue: args.queue.max(1),
        },
        monitor: MonitorOptions {
            log_dir: args
                .log_dir
                .clone()
                .unwrap_or_else(|| args.run.join("serving")),
            window: args.drift_window,
            every: args.drift_every,
            min_interval: Duration::from_secs_f64(args.drift_min_interval_s.max(0.0)),
            rules: AlertRules::default(),
        },
        max_body: args.max_body_mb.max(1) << 20,
        watch: (!args.no_watch).then(|| root.join("deployed.json")),
        stop_on_signals: true,
    };
    eprintln!("{}: {}", args.run.display(), model.run_state);
    for note in &model.load_notes {
        eprintln!("  {note}");
    }
    let (version, how) = (model.version.clone(), model.engine.clone());
    let server = serve::start(model, loader, options.clone())?;
    println!(
        "serving {version} ({how}) on http://{} — demo page at /, metrics at /metrics",
        server.addr
    );
    println!(
        "logging predictions to {}",
        options.monitor.log_dir.join("predictions.jsonl").display()
    );
    if let Some(p) = &options.watch {
        println!("watching {} for promoted models", p.display());
    }
    server.wait();
    println!("stopped");
    Ok(())
}
