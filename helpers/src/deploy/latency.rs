//! Inference latency of one model per engine and batch size: p50/p95 latency (ms) and
//! throughput (images/s), measured on real images after warm-up, as a [`Table`] and a
//! [`Figure`] for the notebook and `lab bench-infer`.
//!
//! Engines: libtorch eager with and without autograd recording, and ONNX Runtime on the
//! exported graph with and without its graph optimisations. Two things one might expect
//! are not measurable from Rust here: tch 0.26 binds no `c10::InferenceMode` guard
//! (only `NoGradGuard`, i.e. `tch::no_grad`), and TorchScript needs a module scripted or
//! traced by Python's `torch.jit` — libtorch's C++ API cannot script a layer-list model
//! built in Rust, so there is no `CModule` to time.
use crate::deploy::ort_runtime::{Optimization, OrtModel, OrtOptions};
use crate::models::Model;
use crate::plot::{self, Figure};
use crate::render::Table;
use crate::{Error, Result};
use polars::prelude::Column;
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What the engines that cannot be measured are, for reports.
pub const NOT_MEASURED: &str = "not measured: tch inference mode (tch 0.26 binds no c10::InferenceMode guard; `no_grad` is the closest), TorchScript (needs a torch.jit module from Python; a layer-list model built in Rust cannot be scripted from libtorch's C++ API)";

/// What runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `forward_t(x, false)` with autograd recording on: the cost of a forgotten
    /// `no_grad`.
    TchGrad,
    /// `forward_t(x, false)` under `tch::no_grad`: libtorch eager inference.
    TchNoGrad,
    /// ONNX Runtime (CPU) on the exported graph with all graph optimisations.
    Ort,
    /// ONNX Runtime on the exported graph as is (optimisations disabled).
    OrtUnoptimized,
}

impl Engine {
    /// Every engine, in the order they are measured (tch first, so ONNX Runtime's
    /// spinning worker threads never compete with libtorch's).
    pub const ALL: [Engine; 4] = [
        Engine::TchGrad,
        Engine::TchNoGrad,
        Engine::Ort,
        Engine::OrtUnoptimized,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::TchGrad => "tch eager (autograd on)",
            Engine::TchNoGrad => "tch eager (no_grad)",
            Engine::Ort => "ONNX Runtime (all opts)",
            Engine::OrtUnoptimized => "ONNX Runtime (no graph opts)",
        }
    }

    fn is_ort(self) -> bool {
        matches!(self, Engine::Ort | Engine::OrtUnoptimized)
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct LatencyConfig {
    pub batch_sizes: Vec<usize>,
    /// Untimed runs before the timed ones (allocator, caches, lazy initialisation).
    pub warmup: usize,
    /// Timed runs per engine and batch size.
    pub iterations: usize,
    /// libtorch threads and ONNX Runtime intra-op threads.
    pub threads: usize,
    pub engines: Vec<Engine>,
}

impl Default for LatencyConfig {
    /// Batches 1, 8 and 64; 10 warm-up and 100 timed runs; 2 threads; every engine.
    fn default() -> Self {
        LatencyConfig {
            batch_sizes: vec![1, 8, 64],
            warmup: 10,
            iterations: 100,
            threads: 2,
            engines: Engine::ALL.to_vec(),
        }
    }
}

/// Timings of one engine at one batch size.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub engine: Engine,
    pub batch: usize,
    /// Median latency of one batch, ms.
    pub p50_ms: f64,
    /// 95th-percentile latency of one batch, ms.
    pub p95_ms: f64,
    /// Mean latency of one batch, ms.
    pub mean_ms: f64,
    /// Images per second over all timed runs (batch / mean latency).
    pub images_per_s: f64,
}

/// All measurements of one model.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    pub measurements: Vec<Measurement>,
    pub config: LatencyConfig,
    /// Largest |ONNX Runtime − tch| logit difference on the first batch of each size
    /// (a check that both engines ran the same model); `None` without ONNX Runtime.
    pub ort_max_abs_diff: Option<f64>,
}

/// Measures `model` (on CPU) on batches cut from `images` (`[N, C, H, W]`, normalised
/// as for training; cycled when a batch size exceeds N). ONNX Runtime engines run a
/// temporary export of the model, deleted afterwards.
pub fn measure(model: &Model, images: &Tensor, cfg: &LatencyConfig) -> Result<LatencyReport> {
    check_inputs(model, images, cfg)?;
    let previous_threads = tch::get_num_threads();
    tch::set_num_threads(cfg.threads.max(1) as i32);
    let result = measure_all(model, images, cfg);
    tch::set_num_threads(previous_threads);
    result
}

fn check_inputs(model: &Model, images: &Tensor, cfg: &LatencyConfig) -> Result<()> {
    if model.device() != Device::Cpu {
        return Err(Error::config(
            "device",
            "latency is compared on CPU (ONNX Runtime runs on CPU here); load the run with device = \"cpu\"",
        ));
    }
    let size = images.size();
    if size.len() != 4 || size[0] == 0 || size[1..] != model.input_shape[..] {
        return Err(Error::Shape {
            op: "latency::measure",
            expected: format!("[N ≥ 1, {:?}]", model.input_shape),
            got: size,
        });
    }
    if cfg.iterations == 0 || cfg.batch_sizes.contains(&0) {
        return Err(Error::config(
            "latency",
            "iterations and batch sizes must be at least 1",
        ));
    }
    Ok(())
}

fn measure_all(model: &Model, images: &Tensor, cfg: &LatencyConfig) -> Result<LatencyReport> {
    let images = images.to_kind(Kind::Float).contiguous();
    let mut measurements = Vec::new();
    let mut max_diff: Option<f64> = None;
    let export = if cfg.engines.iter().any(|e| e.is_ort()) {
        // A missing ONNX Runtime library fails now, not after minutes of tch timing.
        super::ort_runtime::init()?;
        Some(TempOnnx::export(model)?)
    } else {
        None
    };
    for &engine in &cfg.engines {
        let mut runner = Runner::new(engine, model, export.as_ref(), cfg.threads)?;
        for &batch in &cfg.batch_sizes {
            let batches = cut_batches(&images, batch, cfg.warmup + cfg.iterations);
            if engine.is_ort() {
                let diff = max_abs_diff(&mut runner, model, &batches[0])?;
                max_diff = Some(max_diff.map_or(diff, |d| d.max(diff)));
            }
            let times = time_runs(&mut runner, &batches, cfg.warmup, cfg.iterations)?;
            measurements.push(summarise(engine, batch, &times));
        }
    }
    Ok(LatencyReport {
        measurements,
        config: cfg.clone(),
        ort_max_abs_diff: max_diff,
    })
}

/// Up to 16 distinct batches of `batch` images (consecutive, wrapping around), so
/// timed runs do not all read the same cached memory; cut before timing.
fn cut_batches(images: &Tensor, batch: usize, runs: usize) -> Vec<Tensor> {
    let n = images.size()[0];
    let count = runs.clamp(1, 16);
    (0..count)
        .map(|k| {
            let start = (k * batch) as i64 % n;
            let idx: Vec<i64> = (0..batch as i64).map(|i| (start + i) % n).collect();
            images
                .index_select(0, &Tensor::from_slice(&idx))
                .contiguous()
        })
        .collect()
}

/// One engine, ready to run batches.
enum Runner<'m> {
    Tch { model: &'m Model, no_grad: bool },
    Ort(OrtModel),
}

impl<'m> Runner<'m> {
    fn new(
        engine: Engine,
        model: &'m Model,
        export: Option<&TempOnnx>,
        threads: usize,
    ) -> Result<Runner<'m>> {
        let optimization = match engine {
            Engine::TchGrad | Engine::TchNoGrad => {
                let no_grad = engine == Engine::TchNoGrad;
                return Ok(Runner::Tch { model, no_grad });
            }
            Engine::Ort => Optimization::All,
            Engine::OrtUnoptimized => Optimization::Disabled,
        };
        let path = export
            .map(|e| e.path.clone())
            .ok_or_else(|| Error::config("latency", "ONNX Runtime engine without an export"))?;
        let options = OrtOptions {
            optimization,
            intra_threads: threads.max(1),
            ..OrtOptions::default()
        };
        Ok(Runner::Ort(OrtModel::load(&path, &options)?))
    }

    /// Logits for `x`; the output is materialised, so timing covers the whole pass.
    fn run(&mut self, x: &Tensor) -> Result<Tensor> {
        match self {
            Runner::Tch { model, no_grad } if *no_grad => {
                Ok(tch::no_grad(|| model.forward_t(x, false)))
            }
            Runner::Tch { model, .. } => Ok(model.forward_t(x, false)),
            Runner::Ort(ort) => ort.run(x),
        }
    }
}

fn max_abs_diff(runner: &mut Runner, model: &Model, x: &Tensor) -> Result<f64> {
    let reference = tch::no_grad(|| model.forward_fp32(x));
    let got = runner.run(x)?;
    Ok((got - reference).abs().max().double_value(&[]))
}

/// `warmup` untimed then `iterations` timed runs, cycling through `batches`; seconds.
fn time_runs(
    runner: &mut Runner,
    batches: &[Tensor],
    warmup: usize,
    iterations: usize,
) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let x = &batches[i % batches.len()];
        let start = Instant::now();
        let logits = runner.run(x)?;
        let elapsed = start.elapsed().as_secs_f64();
        drop(logits);
        if i >= warmup {
            times.push(elapsed);
        }
    }
    Ok(times)
}

fn summarise(engine: Engine, batch: usize, times: &[f64]) -> Measurement {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    Measurement {
        engine,
        batch,
        p50_ms: crate::metrics::quantile(&sorted, 0.50) * 1e3,
        p95_ms: crate::metrics::quantile(&sorted, 0.95) * 1e3,
        mean_ms: mean * 1e3,
        images_per_s: if mean > 0.0 { batch as f64 / mean } else { 0.0 },
    }
}

/// An ONNX export in the temp folder, removed on drop.
struct TempOnnx {
    path: PathBuf,
}

impl TempOnnx {
    fn export(model: &Model) -> Result<TempOnnx> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("helpers-latency-{}-{nanos}.onnx", std::process::id());
        let file = TempOnnx {
            path: std::env::temp_dir().join(name),
        };
        super::onnx::export(model, &file.path)?;
        Ok(file)
    }
}

impl Drop for TempOnnx {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl LatencyReport {
    /// The measurement of `engine` at `batch`, if taken.
    pub fn get(&self, engine: Engine, batch: usize) -> Option<&Measurement> {
        self.measurements
            .iter()
            .find(|m| m.engine == engine && m.batch == batch)
    }

    /// How many times faster `engine` is than `baseline` at `batch`, by p50 latency.
    pub fn speedup(&self, engine: Engine, baseline: Engine, batch: usize) -> Option<f64> {
        let (e, b) = (self.get(engine, batch)?, self.get(baseline, batch)?);
        Some(b.p50_ms / e.p50_ms)
    }

    /// One row per engine and batch size, with the p50 speed-up over tch no_grad.
    pub fn table(&self) -> Result<Table> {
        let ms = &self.measurements;
        let col_f = |name: &str, f: &dyn Fn(&Measurement) -> f64| {
            Column::new(name.into(), ms.iter().map(f).collect::<Vec<f64>>())
        };
        let speedup = |m: &Measurement| {
            self.speedup(m.engine, Engine::TchNoGrad, m.batch)
                .unwrap_or(f64::NAN)
        };
        let title = format!(
            "Inference latency, {} threads, {} timed runs after {} warm-up",
            self.config.threads, self.config.iterations, self.config.warmup
        );
        Table::from_columns(
            title,
            vec![
                Column::new(
                    "engine".into(),
                    ms.iter().map(|m| m.engine.name()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "batch".into(),
                    ms.iter().map(|m| m.batch as u64).collect::<Vec<_>>(),
                ),
                col_f("p50 ms", &|m| m.p50_ms),
                col_f("p95 ms", &|m| m.p95_ms),
                col_f("images/s", &|m| m.images_per_s),
                col_f("p50 speed-up vs tch no_grad", &speedup),
            ],
        )
    }

    /// Bars of p50 latency per image (ms; p50 ÷ batch) for each batch size and
    /// engine: one scale for every batch size, so batching gains show too.
    pub fn figure(&self) -> Result<Figure> {
        let batches = &self.config.batch_sizes;
        let categories: Vec<String> = batches.iter().map(|b| format!("batch {b}")).collect();
        let series: Vec<(&str, Vec<f64>)> = self
            .config
            .engines
            .iter()
            .map(|&e| {
                let per_image = batches
                    .iter()
                    .map(|&b| self.get(e, b).map_or(f64::NAN, |m| m.p50_ms / b as f64))
                    .collect();
                (e.name(), per_image)
            })
            .collect();
        plot::bars(
            "Inference latency per image (p50 / batch)",
            &categories,
            &series,
            "ms per image",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(crate::metrics::quantile(&v, 0.5), 5.5);
        assert!((crate::metrics::quantile(&v, 0.95) - 9.55).abs() < 1e-12);
        assert_eq!(crate::metrics::quantile(&[3.0], 0.95), 3.0);
    }

    #[test]
    fn batches_wrap_around_the_images() {
        let images = Tensor::arange(3, (Kind::Float, Device::Cpu)).view([3, 1, 1, 1]);
        let batches = cut_batches(&images, 2, 100);
        assert_eq!(batches.len(), 16);
        let first = Vec::<f32>::try_from(batches[1].view([-1])).unwrap();
        assert_eq!(first, vec![2.0, 0.0]);
    }
}
