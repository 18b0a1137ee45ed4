//! The training loop end to end on synthetic data: learning, checkpoints, bitwise
//! reproducibility, resuming, the NaN guard, and refusing to overwrite other runs.
mod common;

use common::{opts, serial, synth_dataset, tiny_config};
use helpers::backend::precision::cpu_has_native_bf16;
use helpers::backend::Precision;
use helpers::io::tensors as checkpoint;
use helpers::run::Existing;
use helpers::run::Status;
use helpers::tasks::image::{fit_with, FitOptions, TrainedRun};
use helpers::train::Silent;
use helpers::{Error, Result};
use std::path::Path;

#[test]
fn learns_and_the_best_checkpoint_reloads_to_identical_metrics() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let run = fit_with(
        &tiny_config("tiny"),
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let h = &run.history.epochs;
    assert!(
        h.last().unwrap().train_loss < h[0].train_loss,
        "loss fell: {h:?}"
    );
    assert!(
        run.test.accuracy > 0.9,
        "quadrant task is easy: {}",
        run.test.accuracy
    );
    for f in [
        "config.toml",
        "split.json",
        "model_checkpoint.safetensors",
        "last_checkpoint.safetensors",
        "meta.json",
        "history.csv",
        "metrics.json",
        "training_curves.svg",
        "confusion_matrix.svg",
    ] {
        assert!(run.run.file(f).is_file(), "{f} written");
    }
    assert_eq!(run.meta.status, Status::Finished);
    let logs: Vec<_> = std::fs::read_dir(run.run.file("logs")).unwrap().collect();
    assert_eq!(logs.len(), 1, "one TensorBoard event file");
    let reloaded = TrainedRun::load(&run.run.path, &data)?;
    assert_eq!(reloaded.test_predictions().metrics(&data.classes), run.test);
    Ok(())
}

#[test]
fn same_config_and_seed_give_bitwise_identical_metrics() -> Result<()> {
    let _guard = serial();
    let data = synth_dataset();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fit_with(
        &tiny_config("det"),
        &data,
        &opts(a.path(), Existing::Refuse),
        &mut Silent,
    )?;
    fit_with(
        &tiny_config("det"),
        &data,
        &opts(b.path(), Existing::Refuse),
        &mut Silent,
    )?;
    for f in ["metrics.json", "history_losses"] {
        if f == "history_losses" {
            let strip = |p: &Path| -> Vec<String> {
                // Seconds and throughput differ between runs; everything else must not.
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
                    .collect()
            };
            assert_eq!(
                strip(&a.path().join("det/history.csv")),
                strip(&b.path().join("det/history.csv"))
            );
        } else {
            assert_eq!(
                std::fs::read(a.path().join("det").join(f)).unwrap(),
                std::fs::read(b.path().join("det").join(f)).unwrap()
            );
        }
    }
    assert_eq!(
        std::fs::read(a.path().join("det/model_checkpoint.safetensors")).unwrap(),
        std::fs::read(b.path().join("det/model_checkpoint.safetensors")).unwrap()
    );
    Ok(())
}

#[test]
fn a_run_stopped_after_one_epoch_resumes_to_the_same_result() -> Result<()> {
    let _guard = serial();
    let data = synth_dataset();
    let (whole, broken) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fit_with(
        &tiny_config("r"),
        &data,
        &opts(whole.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let stopped = FitOptions {
        stop_after_epochs: Some(1),
        ..opts(broken.path(), Existing::Refuse)
    };
    let partial = fit_with(&tiny_config("r"), &data, &stopped, &mut Silent)?;
    assert_eq!(
        (partial.meta.status, partial.meta.epochs_done),
        (Status::Running, 1)
    );
    let refused = fit_with(
        &tiny_config("r"),
        &data,
        &opts(broken.path(), Existing::Refuse),
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("--resume"), "{refused}");
    let resumed = fit_with(
        &tiny_config("r"),
        &data,
        &opts(broken.path(), Existing::Resume),
        &mut Silent,
    )?;
    assert_eq!(resumed.meta.epochs_done, 3);
    let read = |d: &Path, f: &str| std::fs::read(d.join("r").join(f)).unwrap();
    assert_eq!(
        read(whole.path(), "metrics.json"),
        read(broken.path(), "metrics.json")
    );
    assert_eq!(
        read(whole.path(), "model_checkpoint.safetensors"),
        read(broken.path(), "model_checkpoint.safetensors")
    );
    Ok(())
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_step_and_lr_and_keeps_the_best_checkpoint() -> Result<()>
{
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let cfg = tiny_config("nan");
    let stopped = FitOptions {
        stop_after_epochs: Some(1),
        ..opts(dir.path(), Existing::Refuse)
    };
    let run = fit_with(&cfg, &data, &stopped, &mut Silent)?;
    let best_before = std::fs::read(run.run.best_checkpoint()).unwrap();
    // Poison the resumable weights: the next step's loss is NaN.
    let last = run.run.last_checkpoint();
    let mut named = checkpoint::read_tensors(&last)?;
    let w = named.get_mut("model.fc.weight").unwrap();
    *w = w.full_like(f64::NAN);
    checkpoint::write_tensors(&last, &named.into_iter().collect::<Vec<_>>())?;
    let err = fit_with(
        &cfg,
        &data,
        &opts(dir.path(), Existing::Resume),
        &mut Silent,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFinite {
                epoch: 2,
                step: 1,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("epoch 2, step 1") && text.contains("lr "),
        "{text}"
    );
    assert_eq!(
        std::fs::read(run.run.best_checkpoint()).unwrap(),
        best_before,
        "best checkpoint kept"
    );
    let meta = run.run.meta()?;
    assert_eq!(meta.status, Status::Failed);
    assert!(meta.message.unwrap().contains("non-finite loss"));
    Ok(())
}

#[test]
fn another_config_in_the_same_run_directory_is_refused_with_the_differing_keys() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let mut cfg = tiny_config("same");
    cfg.train.epochs = 1;
    fit_with(
        &cfg,
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let finished = fit_with(
        &cfg,
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(
        finished.contains("already finished") && finished.contains("--force"),
        "{finished}"
    );
    let reused = fit_with(&cfg, &data, &opts(dir.path(), Existing::Auto), &mut Silent)?;
    assert!(reused.reused);
    let other = cfg.clone().with_lr(0.5).with_seed(8);
    let e = fit_with(
        &other,
        &data,
        &opts(dir.path(), Existing::Auto),
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("another config") && e.contains("seed") && e.contains("train.lr"),
        "{e}"
    );
    let forced = fit_with(
        &other,
        &data,
        &opts(dir.path(), Existing::Force),
        &mut Silent,
    )?;
    assert_eq!(forced.config.train.lr, 0.5);
    Ok(())
}

#[test]
fn early_stopping_ends_the_run_and_restores_the_best_weights() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let mut cfg = tiny_config("early");
    cfg.train.epochs = 8;
    cfg.train.early_stopping_patience = 1;
    let run = fit_with(
        &cfg,
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )?;
    assert!(
        run.meta.stopped_early && run.meta.epochs_done < 8,
        "{:?}",
        run.meta
    );
    assert_eq!(
        run.meta.epochs_done,
        run.meta.best_epoch + 1,
        "stops one epoch (the patience) after the best"
    );
    let best = run.history.best().unwrap();
    assert_eq!(best.epoch, run.meta.best_epoch);
    // The returned model holds the best weights: its validation accuracy is the best epoch's.
    let val = helpers::evaluate::predict(&run.model, &run.loaders.val);
    assert_eq!(val.accuracy(), best.val_accuracy);
    Ok(())
}

#[test]
fn auto_precision_is_recorded_and_trains_bit_for_bit_as_the_chosen_precision() -> Result<()> {
    let _guard = serial();
    let data = synth_dataset();
    let (auto, told) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = tiny_config("p");
    assert_eq!(cfg.train.precision, Precision::Auto, "auto is the default");
    let run = fit_with(
        &cfg,
        &data,
        &opts(auto.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let choice = run
        .meta
        .precision
        .clone()
        .expect("meta.json records the choice");
    assert_ne!(choice.used, Precision::Auto);
    assert_eq!(choice.probe.is_some(), cpu_has_native_bf16(), "{choice:?}");
    let mut explicit = tiny_config("p");
    explicit.train.precision = choice.used;
    fit_with(
        &explicit,
        &data,
        &opts(told.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let read = |d: &Path| std::fs::read(d.join("p/model_checkpoint.safetensors")).unwrap();
    assert_eq!(
        read(auto.path()),
        read(told.path()),
        "the probe leaves no trace in the weights"
    );
    Ok(())
}

#[test]
fn bf16_runs_learn_repeat_bitwise_and_reload_to_the_same_metrics() -> Result<()> {
    let _guard = serial();
    let data = synth_dataset();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cfg = tiny_config("bf");
    cfg.train.precision = Precision::Bf16;
    let first = fit_with(&cfg, &data, &opts(a.path(), Existing::Refuse), &mut Silent)?;
    fit_with(&cfg, &data, &opts(b.path(), Existing::Refuse), &mut Silent)?;
    assert_eq!(first.meta.precision.as_ref().unwrap().used, Precision::Bf16);
    assert!(first.test.accuracy > 0.9, "{}", first.test.accuracy);
    let read = |d: &Path, f: &str| std::fs::read(d.join("bf").join(f)).unwrap();
    for f in ["model_checkpoint.safetensors", "metrics.json"] {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
    }
    let reloaded = TrainedRun::load(&first.run.path, &data)?;
    assert_eq!(
        reloaded.test_predictions().metrics(&data.classes),
        first.test
    );

    // Stopped after one epoch and resumed: still bf16, and the same bits as unbroken.
    let broken = tempfile::tempdir().unwrap();
    let stopped = FitOptions {
        stop_after_epochs: Some(1),
        ..opts(broken.path(), Existing::Refuse)
    };
    fit_with(&cfg, &data, &stopped, &mut Silent)?;
    let resumed = fit_with(
        &cfg,
        &data,
        &opts(broken.path(), Existing::Resume),
        &mut Silent,
    )?;
    assert_eq!(
        resumed.meta.precision.as_ref().unwrap().used,
        Precision::Bf16
    );
    assert_eq!(
        read(a.path(), "model_checkpoint.safetensors"),
        read(broken.path(), "model_checkpoint.safetensors")
    );
    Ok(())
}

/// Collects the messages a run reports.
#[derive(Default)]
struct Messages(Vec<String>);

impl helpers::train::Progress for Messages {
    fn on_message(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

#[test]
fn one_class_is_refused_and_a_tiny_split_is_warned_about() -> Result<()> {
    let _guard = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut one = synth_dataset();
    one.classes.truncate(1);
    for set in [&mut one.train, &mut one.test] {
        set.labels = set.labels.zeros_like();
    }
    let refused = fit_with(
        &tiny_config("one"),
        &one,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("at least 2"), "{refused}");

    let mut tiny = synth_dataset();
    (tiny.train, tiny.test) = (common::synth_set(64, 1), common::synth_set(16, 2));
    let mut cfg = tiny_config("tiny");
    cfg.train.epochs = 1;
    let mut messages = Messages::default();
    fit_with(
        &cfg,
        &tiny,
        &opts(dir.path(), Existing::Refuse),
        &mut messages,
    )?;
    assert!(
        messages
            .0
            .iter()
            .any(|m| m.starts_with("warning:") && m.contains("16 test images for 4 classes")),
        "{:?}",
        messages.0
    );
    Ok(())
}
