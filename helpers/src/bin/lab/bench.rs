//! `lab bench`: training and evaluation throughput of the reference CNN on real
//! Fashion-MNIST batches, printed in the same format as scripts/bench_pytorch.py.
use anyhow::Result;
use clap::{Args, ValueEnum};
use helpers::backend::autocast;
use helpers::config::{Arch, ModelConfig, RunConfig, TrainConfig};
use helpers::data::{fashion_mnist, DataLoaders};
use helpers::models;
use helpers::tasks::image::{Batches, ImageClassification};
use helpers::train::{
    Callback, LoopState, Optimizer, Precision, Schedule, Signal, StepInfo, Trainer,
};
use std::time::Instant;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, ValueEnum)]
pub enum What {
    /// Training steps (forward, backward, AdamW update).
    Train,
    /// Evaluation (forward only, no gradients).
    Eval,
    /// Both.
    All,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "all")]
    what: What,
    /// Timed training steps (after warm-up).
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// libtorch threads.
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Training batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Evaluation batch size.
    #[arg(long, default_value_t = 512)]
    eval_batch_size: usize,
    /// Use the NCHW layout instead of channels-last.
    #[arg(long)]
    nchw: bool,
    /// Arithmetic: `fp32`, or `bf16` (libtorch's CPU autocast to bfloat16).
    #[arg(long, value_enum, default_value = "fp32")]
    precision: BenchPrecision,
}

/// The precisions `lab bench` times (the run config's `auto` chooses between these).
#[derive(Clone, Copy, ValueEnum)]
pub enum BenchPrecision {
    Fp32,
    Bf16,
}

impl BenchPrecision {
    fn precision(self) -> Precision {
        match self {
            BenchPrecision::Fp32 => Precision::Fp32,
            BenchPrecision::Bf16 => Precision::Bf16,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    tch::set_num_threads(args.threads);
    let data = fashion_mnist::load(fashion_mnist::DEFAULT_DIR)?;
    let cfg = RunConfig {
        model: ModelConfig {
            arch: Arch::ReferenceCnn,
            ..ModelConfig::default()
        },
        train: TrainConfig {
            batch_size: args.batch_size,
            eval_batch_size: args.eval_batch_size,
            ..TrainConfig::default()
        },
        ..RunConfig::default()
    };
    let loaders = DataLoaders::new(
        &data,
        &cfg.data,
        args.batch_size,
        args.eval_batch_size,
        cfg.seed,
        tch::Device::Cpu,
    );
    tch::manual_seed(0);
    let mut model = models::build(&cfg.model, data.image_shape(), 10, tch::Device::Cpu)?;
    if args.nchw {
        model.channels_last = false;
        for (_, layer) in &model.layers {
            if let models::Layer::Conv(c) = layer {
                let mut w = c.ws.shallow_clone();
                tch::no_grad(|| w.set_data(&c.ws.contiguous()));
            }
        }
    }
    let precision = args.precision.precision();
    let layout = match (args.nchw, precision) {
        (true, Precision::Bf16) => "nchw_bf16",
        (true, _) => "nchw",
        (false, Precision::Bf16) => "channels_last_bf16",
        (false, _) => "channels_last",
    };
    if matches!(args.what, What::Train | What::All) {
        let ips = bench_train(&model, &cfg, &loaders, args.steps, precision)?;
        println!(
            "lab train img/s {ips:.1} (reference CNN, batch {}, {} threads, {layout})",
            args.batch_size, args.threads
        );
    }
    if matches!(args.what, What::Eval | What::All) {
        let ips = bench_eval(&model, &loaders, precision);
        println!(
            "lab eval img/s {ips:.1} (reference CNN, batch {}, {} threads, {layout})",
            args.eval_batch_size, args.threads
        );
    }
    Ok(())
}

/// Images per second over `steps` AdamW training steps of the training loop (on the
/// first epoch's batches, built beforehand), after 5 warm-up steps.
fn bench_train(
    model: &models::Model,
    cfg: &RunConfig,
    loaders: &DataLoaders,
    steps: usize,
    precision: Precision,
) -> Result<f64> {
    const WARMUP: usize = 5;
    let batches: Vec<(Tensor, Tensor)> = loaders.train.batches(0).take(steps + WARMUP).collect();
    let task = ImageClassification::new(model, Batches::Fixed(batches));
    let mut opt = Optimizer::new(&cfg.train, model.trainable_named());
    let mut trainer = Trainer::new(usize::MAX);
    trainer.precision = precision;
    trainer.validate_every = 0;
    trainer.max_steps = Some(steps + WARMUP);
    let mut state = LoopState::new(Schedule::constant(1e-3), precision);
    let mut clock = Throughput {
        warmup: WARMUP,
        started: None,
        images: 0,
    };
    trainer.run(&task, &mut opt, &mut state, &mut [&mut clock])?;
    let secs = clock
        .started
        .map_or(f64::NAN, |t| t.elapsed().as_secs_f64());
    Ok(clock.images as f64 / secs)
}

/// Counts the images of the steps after `warmup`, from the end of the last warm-up step.
struct Throughput {
    warmup: usize,
    started: Option<Instant>,
    images: usize,
}

impl Callback for Throughput {
    fn on_step(&mut self, info: &StepInfo) -> Signal {
        if info.global_step == self.warmup {
            self.started = Some(Instant::now());
        } else if info.global_step > self.warmup {
            self.images += info.batch_examples;
        }
        Signal::Continue
    }
}

/// Images per second of forward passes, three passes over the test set (after one
/// warm-up batch).
fn bench_eval(model: &models::Model, loaders: &DataLoaders, precision: Precision) -> f64 {
    let batches: Vec<(Tensor, Tensor)> = loaders.test.batches(0).collect();
    let device = tch::Device::Cpu;
    autocast::autocast(device, precision, || {
        tch::no_grad(|| {
            let _ = model.forward_t(&batches[0].0, false);
            let started = Instant::now();
            // Three passes, as scripts/bench_pytorch.py times them: one pass of the
            // test set is ~1.5 s, short enough for a scheduler hiccup to show.
            let images: i64 = (0..3)
                .flat_map(|_| batches.iter())
                .map(|(x, _)| {
                    let _ = model.forward_t(x, false).argmax(-1, false).sum(Kind::Int64);
                    x.size()[0]
                })
                .sum();
            images as f64 / started.elapsed().as_secs_f64()
        })
    })
}

#[derive(Args)]
pub struct BenchEmbedArgs {
    /// Side of the resized input images.
    #[arg(long, default_value_t = 64)]
    input_size: i64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Test images embedded per round (after one warm-up batch).
    #[arg(long, default_value_t = 2048)]
    images: usize,
    /// libtorch threads.
    #[arg(long, default_value_t = 2)]
    threads: i32,
}

/// EfficientNet-Lite0 embeddings of Fashion-MNIST test images (grey → RGB, resized,
/// ImageNet-normalised inside the model), timed the way the linear probe runs them.
pub fn run_embed(args: BenchEmbedArgs) -> Result<()> {
    tch::set_num_threads(args.threads);
    let data = fashion_mnist::load(fashion_mnist::DEFAULT_DIR)?;
    let mut cfg = RunConfig::default();
    cfg.model.arch = Arch::EfficientnetLite0;
    cfg.model.weights = "efficientnet-lite0".into();
    cfg.model.input_size = args.input_size;
    cfg.model.freeze = helpers::config::Freeze::Backbone;
    let loaders = DataLoaders::new(
        &data,
        &cfg.data,
        args.batch_size,
        args.batch_size,
        cfg.seed,
        tch::Device::Cpu,
    );
    let model = models::build(&cfg.model, data.image_shape(), 10, tch::Device::Cpu)?;
    model.set_input_stats(&loaders.norm);
    let n = args.images.min(loaders.test.len());
    let idx: Vec<usize> = (0..n).collect();
    let batches: Vec<Tensor> = idx
        .chunks(args.batch_size)
        .map(|c| loaders.test.normalized(c))
        .collect();
    let _ = model.frozen_embedding(&batches[0]);
    let started = Instant::now();
    for x in &batches {
        let _ = model.frozen_embedding(x).sum(Kind::Float).double_value(&[]);
    }
    let ips = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "lab embed img/s {ips:.1} (EfficientNet-Lite0, {0}×{0}, batch {1}, {2} threads, channels_last)",
        args.input_size, args.batch_size, args.threads
    );
    Ok(())
}
