//! D1–D11: the data questions, from the data card, the run's split, loaders and config.
use super::{answer, Answer, Evidence};
use crate::config::RunConfig;
use crate::data::card::DataCard;
use crate::tasks::image::TrainedRun;

/// D1–D11: the dataset, its split, preprocessing and augmentation, a batch.
pub(super) fn answers(e: &Evidence) -> Vec<Answer> {
    let (data, run) = (e.data, e.run);
    let card = DataCard::of(data);
    let cfg = &run.config;
    let [c, h, w] = data.image_shape();
    let l = &run.loaders;
    let (n_train, n_val, n_test) = (l.train.len(), l.val.len(), l.test.len());
    let split_file = run.run.file("split.json").display().to_string();
    vec![
        answer(
            "D1",
            "Dataset, origin, format",
            format!(
                "{}: {}. Images of {c}×{h}×{w} ({}), 8-bit pixels, one label among {} classes.",
                data.name,
                card.source,
                if c == 1 { "grey" } else { "colour" },
                data.num_classes()
            ),
            "the data card",
        ),
        answer(
            "D2",
            "Size of each split, number of classes",
            format!(
                "train {n_train}, validation {n_val}, test {n_test} images; {} classes.",
                data.num_classes()
            ),
            &split_file,
        ),
        answer(
            "D3",
            "How the validation split was made",
            split_how(cfg),
            &split_file,
        ),
        answer(
            "D4",
            "Class distribution and its effect",
            class_balance(l.train.labels(), data.num_classes()),
            "the run's training split",
        ),
        answer(
            "D5",
            "Particularities",
            format!(
                "Every image is {h}×{w} with {c} channel(s) (no resizing needed), one label per \
                 image (single-label, {} classes). Known bias: {}",
                data.num_classes(),
                card.known_biases
                    .first()
                    .map_or("none recorded", |b| b.as_str())
            ),
            "the data card",
        ),
        answer(
            "D6",
            "Preprocessing, exact parameters, why",
            preprocessing(run),
            "meta.json (normalization)",
        ),
        answer(
            "D7",
            "Does preprocessing differ between splits?",
            "No: train, validation and test go through the same normalisation, with statistics \
             from the training split only (no leakage); only the training loader augments."
                .into(),
            "the run's loaders",
        ),
        answer(
            "D8",
            "Augmentations, exact parameters, why",
            augmentations(cfg),
            "config.toml [data.augment], [train]",
        ),
        answer(
            "D9",
            "Do the augmentations keep the labels?",
            label_preservation(cfg),
            "config.toml [data.augment]",
        ),
        answer(
            "D10",
            "Two or three examples",
            format!(
                "The first training batch as the model sees it (16 images, augmented) is the \
                 image `train/augmented_batch` of the run's TensorBoard log ({}); the notebook \
                 shows 30 raw images per class and an augmented preview.",
                run.run.file("logs").display()
            ),
            "TensorBoard images",
        ),
        answer(
            "D11",
            "Exact shape of a training batch",
            batch_shape(run, [c, h, w]),
            "the run's training loader",
        ),
    ]
}

fn split_how(cfg: &RunConfig) -> String {
    let limit = match cfg.data.train_limit {
        0 => String::new(),
        n => format!(" (training set limited to its first {n} images first)"),
    };
    format!(
        "{:.0} % of the official training set, stratified by class (each class keeps its \
         share), drawn with seed {}{limit}; the official test set is untouched until the \
         final evaluation. The indices are saved in split.json, so every run of this config \
         uses the same split.",
        cfg.data.val_fraction * 100.0,
        cfg.seed
    )
}

fn class_balance(labels: &[i64], classes: usize) -> String {
    let mut counts = vec![0usize; classes];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    let (min, max) = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let ratio = max as f64 / min.max(1) as f64;
    let verdict = if ratio <= 1.1 {
        "balanced: accuracy and macro-F1 tell the same story, the majority baseline sits at \
         chance level, and no class weighting or resampling is needed"
            .to_string()
    } else {
        format!(
            "imbalanced (largest/smallest {ratio:.1}): the majority baseline is above chance, \
             macro-F1 is the fairer score, and class weights or resampling are worth trying"
        )
    };
    format!("Training images per class: {min} to {max}; {verdict}.")
}

fn preprocessing(run: &TrainedRun) -> String {
    let norm = &run.meta.normalization;
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| format!("{x:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "Pixels scaled to [0, 1] (÷ 255), then standardised per channel, x ← (x − mean) / std \
         with mean [{}] and std [{}] measured on the training split: zero-mean, unit-variance \
         inputs keep the first layers' activations and gradients in range. {}",
        list(&norm.mean),
        list(&norm.std),
        if run.model.channels_last {
            "Tensors are laid out channels-last (NHWC), which oneDNN's convolutions run faster."
        } else {
            "Tensors stay NCHW."
        }
    )
}

fn augmentations(cfg: &RunConfig) -> String {
    let a = &cfg.data.augment;
    let t = &cfg.train;
    let mut parts = Vec::new();
    if a.crop_padding > 0 {
        parts.push(format!(
            "random crop after zero padding of {} px (translations up to ±{} px)",
            a.crop_padding, a.crop_padding
        ));
    }
    if a.horizontal_flip {
        parts.push("horizontal flip with probability 0.5".into());
    }
    if a.random_erasing > 0.0 {
        parts.push(format!(
            "random erasing with probability {}",
            a.random_erasing
        ));
    }
    for (name, v) in [
        ("brightness", a.brightness),
        ("contrast", a.contrast),
        ("saturation", a.saturation),
    ] {
        if v > 0.0 {
            parts.push(format!("{name} jitter ×[{:.2}, {:.2}]", 1.0 - v, 1.0 + v));
        }
    }
    if a.cutout_size > 0 {
        parts.push(format!("cutout of a {0}×{0} px square", a.cutout_size));
    }
    for (name, alpha) in [("mixup", t.mixup_alpha), ("CutMix", t.cutmix_alpha)] {
        if alpha > 0.0 {
            parts.push(format!("{name} with α = {alpha}"));
        }
    }
    if parts.is_empty() {
        return "None: the training images are used as they are.".into();
    }
    format!(
        "{} — applied to training batches only, to make the model invariant to small shifts \
         and poses it will meet at test time and to slow overfitting.",
        parts.join("; ")
    )
}

fn label_preservation(cfg: &RunConfig) -> String {
    let a = &cfg.data.augment;
    let mut parts = Vec::new();
    if a.crop_padding > 0 {
        parts.push(format!(
            "the crop shifts the object by at most {} px and never cuts it out, so the class \
             stays visible",
            a.crop_padding
        ));
    }
    if a.horizontal_flip {
        parts.push(
            "a mirrored image shows the same class when classes have no handedness (garments, \
             animals, vehicles; not digits or text)"
                .to_string(),
        );
    }
    if a.random_erasing > 0.0 || a.cutout_size > 0 {
        parts.push("erasing/cutout hides a patch, not the whole object".to_string());
    }
    if a.brightness > 0.0 || a.contrast > 0.0 || a.saturation > 0.0 {
        parts.push("colour jitter changes lighting, not shape".to_string());
    }
    if cfg.train.mixup_alpha > 0.0 || cfg.train.cutmix_alpha > 0.0 {
        parts.push(
            "mixup/CutMix do change the label: the target is mixed in the same proportion as \
             the images"
                .to_string(),
        );
    }
    match parts.is_empty() {
        true => "No augmentation, nothing to check.".into(),
        false => format!("Yes: {}.", parts.join("; ")),
    }
}

fn batch_shape(run: &TrainedRun, input_shape: [i64; 3]) -> String {
    let Some((x, y)) = run.loaders.train.batches(0).next() else {
        return "The training loader yields no batch (empty training split).".into();
    };
    let (xs, ys) = (x.size(), y.size());
    let consistent = xs[1..] == input_shape;
    format!(
        "images {xs:?} ({:?}), labels {ys:?} ({:?}); the per-image shape {:?} {} the \
         dataset's input shape {input_shape:?}.",
        x.kind(),
        y.kind(),
        &xs[1..],
        if consistent {
            "matches"
        } else {
            "does NOT match"
        }
    )
}
