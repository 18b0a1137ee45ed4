//! Shared fixtures: a small synthetic dataset that a tiny CNN learns in seconds, and
//! the config of that tiny CNN.
#![allow(dead_code)]
use helpers::config::{Arch, AugmentConfig, DataConfig, Head, ModelConfig, RunConfig, TrainConfig};
use helpers::data::{Dataset, ImageSet};
use helpers::rng::Rng;
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions, TrainedRun};
use helpers::train::Silent;
use std::path::Path;
use tch::Tensor;

pub const CLASSES: usize = 4;

/// libtorch's random generator and thread count are process-wide, and cargo runs tests
/// in parallel threads: training tests take this lock so each run owns the generator.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
pub const SIDE: usize = 8;

/// `n` grey 8×8 images; class c lights up quadrant c (value 200) over noise (0–80).
pub fn synth_set(n: usize, seed: u64) -> ImageSet {
    let mut rng = Rng::new(seed, 99);
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut labels = vec![0i64; n];
    for i in 0..n {
        let class = i % CLASSES;
        labels[i] = class as i64;
        let (qy, qx) = (class / 2 * 4, class % 2 * 4);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let lit = (qy..qy + 4).contains(&y) && (qx..qx + 4).contains(&x);
                pixels[i * 64 + y * SIDE + x] = if lit { 200 } else { rng.below(80) as u8 };
            }
        }
    }
    ImageSet {
        images: Tensor::from_slice(&pixels).view([n as i64, 1, 8, 8]),
        labels: Tensor::from_slice(&labels),
    }
}

pub fn synth_dataset() -> Dataset {
    Dataset {
        name: "synthetic".into(),
        classes: (0..CLASSES).map(|c| format!("quadrant {c}")).collect(),
        train: synth_set(480, 1),
        test: synth_set(120, 2),
        files: vec![],
    }
}

/// Fit options for runs under `root`, treating an existing run as `existing` says.
pub fn opts(root: &Path, existing: Existing) -> FitOptions {
    FitOptions {
        root: root.to_path_buf(),
        existing,
        stop_after_epochs: None,
    }
}

/// A tiny CNN config that fits the synthetic data in a few epochs.
pub fn tiny_config(name: &str) -> RunConfig {
    RunConfig {
        name: name.into(),
        seed: 7,
        threads: 2,
        data: DataConfig {
            val_fraction: 0.25,
            augment: AugmentConfig {
                crop_padding: 1,
                horizontal_flip: false,
                ..AugmentConfig::OFF
            },
            ..DataConfig::default()
        },
        model: ModelConfig {
            arch: Arch::Cnn,
            widths: vec![4, 8],
            depths: vec![1, 1],
            head: Head::Flatten,
            batch_norm: true,
            dropout: 0.1,
            ..ModelConfig::default()
        },
        train: TrainConfig {
            epochs: 3,
            batch_size: 32,
            eval_batch_size: 64,
            lr: 0.02,
            ..TrainConfig::default()
        },
        ..RunConfig::default()
    }
}

/// `n` grey 8×8 images on a near-black background (0–7); classes 0–2 light quadrant c
/// faintly (20–29), class 3 lights nothing ("empty"). Faint on purpose: brightness and
/// noise at severity 5 then change what a model trained on clean images predicts (noise
/// drowns quadrants, so predictions drift towards "empty"), which the quadrant set of
/// `common` (bright on noise) shrugs off.
pub fn faint_set(n: usize, seed: u64) -> ImageSet {
    let mut rng = Rng::new(seed, 98);
    let mut pixels = vec![0u8; n * 64];
    let labels: Vec<i64> = (0..n).map(|i| (i % CLASSES) as i64).collect();
    for (i, &class) in labels.iter().enumerate() {
        let (qy, qx) = (class as usize / 2 * 4, class as usize % 2 * 4);
        for y in 0..8 {
            for x in 0..8 {
                let lit = class < 3 && (qy..qy + 4).contains(&y) && (qx..qx + 4).contains(&x);
                let value = if lit {
                    20 + rng.below(10)
                } else {
                    rng.below(8)
                };
                pixels[i * 64 + y * 8 + x] = value as u8;
            }
        }
    }
    ImageSet {
        images: Tensor::from_slice(&pixels).view([n as i64, 1, 8, 8]),
        labels: Tensor::from_slice(&labels),
    }
}

pub fn faint_dataset() -> Dataset {
    Dataset {
        name: "faint".into(),
        classes: (0..CLASSES).map(|c| format!("quadrant {c}")).collect(),
        train: faint_set(480, 1),
        test: faint_set(120, 2),
        files: vec![],
    }
}

/// The tiny CNN trained on the faint set into `root/faint` (about a second).
pub fn faint_run(root: &Path, data: &Dataset) -> TrainedRun {
    let opts = FitOptions {
        root: root.to_path_buf(),
        existing: Existing::Force,
        stop_after_epochs: None,
    };
    let run = fit_with(&tiny_config("faint"), data, &opts, &mut Silent).unwrap();
    assert!(
        run.test.accuracy > 0.95,
        "faint task learnt: {}",
        run.test.accuracy
    );
    run
}

/// The Python of the venv `scripts/setup` creates (`$LAB_CACHE/venv`, default
/// `${XDG_CACHE_HOME:-~/.cache}/dl-lab/venv`): torch, torchvision, scipy, onnx and
/// onnxruntime for the reference values of the tests.
pub fn venv_python() -> std::path::PathBuf {
    use std::path::PathBuf;
    let cache = std::env::var_os("LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            base.join("dl-lab")
        });
    let python = cache.join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup (step venv)",
        python.display()
    );
    python
}

/// The checklist's lines for `layout` (`lab check --assignment …` prints the same).
pub fn checklist_lines(
    layout: helpers::report::handin::Layout,
    inputs: &helpers::report::checklist::Inputs,
) -> Vec<String> {
    helpers::report::checklist::check(layout, inputs)
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect()
}

/// The checklist's line about the numbered questions of the report template.
pub fn numbered_questions_line(inputs: &helpers::report::checklist::Inputs) -> String {
    checklist_lines(helpers::report::handin::Layout::Report, inputs)
        .into_iter()
        .find(|l| l.contains("numbered question"))
        .expect("the report checklist has a numbered-questions line")
}

/// Makes the folder `dir` unwritable: immutable (`chattr +i`, which binds root too) where
/// allowed, else read-only permissions. Returns whether chattr did it.
pub fn lock(dir: &Path) -> bool {
    let chattr = std::process::Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .status();
    if chattr.is_ok_and(|s| s.success()) {
        return true;
    }
    set_mode(dir, 0o555);
    false
}

/// Undoes [`lock`].
pub fn unlock(dir: &Path, chattr: bool) {
    if chattr {
        let status = std::process::Command::new("chattr")
            .arg("-i")
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    } else {
        set_mode(dir, 0o755);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
