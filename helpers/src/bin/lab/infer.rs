//! `lab bench-infer`: inference latency (p50/p95 ms) and throughput (images/s) of a
//! run's best model on its real test images, per engine and batch size — tch eager with
//! and without autograd, and ONNX Runtime on a temporary ONNX export. The measuring is
//! `helpers::deploy::latency`, which the notebook calls too. tch inference mode and
//! TorchScript are not measurable from Rust here (see `latency::NOT_MEASURED`).
use anyhow::{Context, Result};
use clap::Args;
use helpers::deploy::latency::{self, Engine, LatencyConfig, LatencyReport};
use std::path::PathBuf;

#[derive(Args)]
pub struct BenchInferArgs {
    /// Run directory, e.g. saved_models/fashion_cnn.
    #[arg(long)]
    run: PathBuf,
    /// libtorch threads and ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Untimed runs per engine and batch size.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed runs per engine and batch size.
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    batch_sizes: Vec<usize>,
    /// Folder to also write `latency.csv`, `latency.html` and the SVG chart into.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Test images the run's loaders normalise, at most this many (enough distinct batches).
const MAX_IMAGES: usize = 1024;

pub fn bench_infer(args: BenchInferArgs) -> Result<()> {
    let (_, trained) = crate::open_run(&args.run)?;
    let test = &trained.loaders.test;
    let idx: Vec<usize> = (0..test.len().min(MAX_IMAGES)).collect();
    let images = test.normalized(&idx).to_device(tch::Device::Cpu);
    let lcfg = LatencyConfig {
        batch_sizes: args.batch_sizes.clone(),
        warmup: args.warmup,
        iterations: args.iterations,
        threads: args.threads,
        engines: Engine::ALL.to_vec(),
    };
    let report = latency::measure(&trained.model, &images, &lcfg)?;
    println!(
        "{} ({:?}, {} test images)",
        args.run.display(),
        trained.config.model.arch,
        idx.len()
    );
    println!("{}", report.table()?);
    print_summary(&report);
    if let Some(out) = &args.out {
        save(&report, out)?;
    }
    Ok(())
}

fn print_summary(report: &LatencyReport) {
    if let Some(diff) = report.ort_max_abs_diff {
        println!("ONNX Runtime vs tch logits: max |Δ| {diff:.2e}");
    }
    for &batch in &report.config.batch_sizes {
        if let Some(s) = report.speedup(Engine::Ort, Engine::TchNoGrad, batch) {
            let verdict = if s >= 2.0 { "≥ 2×" } else { "< 2×" };
            println!("batch {batch}: ONNX Runtime p50 is {s:.2}× tch no_grad ({verdict})");
        }
    }
    println!("{}", latency::NOT_MEASURED);
}

fn save(report: &LatencyReport, out: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let table = report.table()?;
    table.save(out.join("latency.csv"))?;
    table.save(out.join("latency.html"))?;
    let svg = report.figure()?.save_in(out)?;
    println!(
        "wrote {}/latency.csv, latency.html, {}",
        out.display(),
        svg.display()
    );
    Ok(())
}
