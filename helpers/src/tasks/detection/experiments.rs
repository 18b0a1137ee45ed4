//! The detection track's experiments, one call each from a notebook cell: the LR range
//! test on a fresh detector, and a comparison of config variants (a sweep, ablations) —
//! each variant a run of its own on the same tiles.
use super::analysis;
use super::config::DetectionConfig;
use super::data::DetectionData;
use super::fit::{fit, TrainedDetector};
use super::model::{BackboneKind, Detector};
use super::task::DetectionTask;
use crate::render::Table;
use crate::run::FitOptions;
use crate::train::{lr_find, LrFinder, Optimizer, Progress};
use crate::Result;

/// The LR range test (1e-5 → 1) over `steps` steps of a fresh detector of `cfg`.
pub fn lr_range(cfg: &DetectionConfig, data: &DetectionData, steps: usize) -> Result<LrFinder> {
    tch::manual_seed(cfg.seed as i64);
    let net = Detector::new(&cfg.net, data.classes().len() as i64, tch::Device::Cpu)?;
    let task = DetectionTask::of_config(cfg, &net, &data.train, None, data.classes());
    let mut opt = Optimizer::new(&cfg.train, net.weights());
    lr_find(&task, &mut opt, cfg.train.grad_clip, (1e-5, 1.0, steps))
}

/// A named change of a config.
pub type Variant = (String, Box<dyn Fn(&mut DetectionConfig)>);

/// Trains each variant of `base` (run `<base.name>_<variant>`) on `data` and tabulates
/// them after `base`; the trained variants are returned too.
pub fn compare(
    title: &str,
    base: &TrainedDetector,
    variants: Vec<Variant>,
    data: &DetectionData,
    opts: &FitOptions,
    progress: &mut dyn Progress,
) -> Result<(Table, Vec<TrainedDetector>)> {
    let mut runs = Vec::new();
    for (name, edit) in &variants {
        let cfg = base
            .config
            .variant(&format!("{}_{name}", base.config.name), |c| edit(c));
        runs.push(fit(&cfg, data, opts, progress)?);
    }
    let mut rows: Vec<(&str, &TrainedDetector)> = vec![("baseline", base)];
    rows.extend(variants.iter().map(|(n, _)| n.as_str()).zip(runs.iter()));
    Ok((analysis::comparison(title, &rows)?, runs))
}

/// The peak learning rate at ½, 1 and 2 times the base's.
pub fn lr_sweep(base: &DetectionConfig) -> Vec<Variant> {
    let lr = base.train.lr;
    [(lr / 2.0, "lr_half"), (lr * 2.0, "lr_double")]
        .into_iter()
        .map(|(v, n)| {
            (
                n.to_string(),
                Box::new(move |c: &mut DetectionConfig| c.train.lr = v)
                    as Box<dyn Fn(&mut DetectionConfig)>,
            )
        })
        .collect()
}

/// One change at a time: the scratch CNN instead of the pretrained backbone, and no
/// augmentation.
pub fn ablations() -> Vec<Variant> {
    let v = |n: &str, f: fn(&mut DetectionConfig)| {
        (
            n.to_string(),
            Box::new(f) as Box<dyn Fn(&mut DetectionConfig)>,
        )
    };
    vec![
        v("scratch_backbone", |c| {
            c.net.backbone = BackboneKind::Scratch;
            c.net.pretrained = false;
            c.net.freeze_bn = false;
        }),
        v("no_augmentation", |c| {
            c.augment = super::DetectionAugment::none()
        }),
    ]
}
