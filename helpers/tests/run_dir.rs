//! The run directory's contract (`helpers::run`): every state with a best checkpoint can
//! be scored, derived files are rebuilt instead of required, the data is checked against
//! the run's record before any number, a torn finish is repaired by `--resume`, and stale
//! temp files are removed.
mod common;

use common::{lock, opts, serial, synth_dataset, tiny_config, unlock};
use helpers::io::tensors as checkpoint;
use helpers::run::{Existing, RunDir, RunState, Status};
use helpers::tasks::image::{fit_with, FitOptions, TrainedRun};
use helpers::train::Silent;
use helpers::{Error, Result};

fn read(run: &RunDir, file: &str) -> Vec<u8> {
    std::fs::read(run.file(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn derived_files_are_rebuilt_from_the_checkpoints_and_equal_the_originals() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let run = fit_with(
        &tiny_config("derived"),
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )?
    .run;
    let derived = [
        "metrics.json",
        "history.csv",
        "training_curves.svg",
        "confusion_matrix.svg",
    ];
    let originals: Vec<Vec<u8>> = derived.iter().map(|f| read(&run, f)).collect();
    for f in derived {
        std::fs::remove_file(run.file(f)).unwrap();
    }
    let reloaded = TrainedRun::load(&run.path, &data)?;
    let notes = reloaded.notes.join(" | ");
    for what in [
        "metrics.json rebuilt",
        "history.csv rebuilt",
        "figures drawn",
    ] {
        assert!(notes.contains(what), "{what}: {notes}");
    }
    for (f, original) in derived.iter().zip(&originals) {
        assert_eq!(&read(&run, f), original, "{f} rebuilt byte for byte");
    }
    assert!(matches!(
        reloaded.state,
        RunState::Finished { epochs_done: 3, .. }
    ));
    // A folder that cannot be written (a read-only hand-in) still loads.
    std::fs::remove_file(run.file("metrics.json")).unwrap();
    let locked = lock(&run.path);
    let loaded = TrainedRun::load(&run.path, &data);
    unlock(&run.path, locked);
    let notes = loaded?.notes.join(" | ");
    assert!(
        notes.contains("metrics.json rebuilt from the best checkpoint in memory; not saved"),
        "{notes}"
    );
    Ok(())
}

#[test]
fn renamed_or_reordered_classes_and_changed_images_are_refused_before_scoring() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let run = fit_with(
        &tiny_config("classes"),
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )?
    .run;
    let metrics_before = read(&run, "metrics.json");
    let mut renamed = synth_dataset();
    renamed.classes.reverse();
    let err = TrainedRun::load(&run.path, &renamed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("classes: trained on [quadrant 0, quadrant 1, quadrant 2, quadrant 3], now [quadrant 3,"),
        "{err}"
    );
    assert!(err.contains("nothing was scored"), "{err}");
    let edited = synth_dataset();
    let _ = edited.test.images.get(0).fill_(255);
    let err = TrainedRun::load(&run.path, &edited)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pixels or labels"), "{err}");
    // Resuming on other data is refused the same way.
    let err = fit_with(
        &tiny_config("classes"),
        &renamed,
        &opts(dir.path(), Existing::Resume),
        &mut Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("classes: trained on"), "{err}");
    assert_eq!(
        read(&run, "metrics.json"),
        metrics_before,
        "nothing rewritten"
    );
    Ok(())
}

/// A kill after the last epoch's last checkpoint and before its `history.csv` and
/// `meta.json`: the files are those of the epoch before, the checkpoint is the last's.
#[test]
fn a_kill_before_the_last_epochs_history_is_repaired_by_resume() -> Result<()> {
    let _guard = serial();
    let data = synth_dataset();
    let (whole, torn) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = tiny_config("torn");
    let unbroken = fit_with(
        &cfg,
        &data,
        &opts(whole.path(), Existing::Refuse),
        &mut Silent,
    )?;
    let two = FitOptions {
        stop_after_epochs: Some(2),
        ..opts(torn.path(), Existing::Refuse)
    };
    let run = fit_with(&cfg, &data, &two, &mut Silent)?.run;
    let (history_2, meta_2) = (read(&run, "history.csv"), read(&run, "meta.json"));
    let one_more = FitOptions {
        stop_after_epochs: Some(1),
        ..opts(torn.path(), Existing::Resume)
    };
    fit_with(&cfg, &data, &one_more, &mut Silent)?;
    // Roll back what the finish and the last epoch wrote after its last checkpoint.
    for f in ["metrics.json", "best.pt", "training_curves.svg"] {
        let _ = std::fs::remove_file(run.file(f));
    }
    std::fs::write(run.file("history.csv"), &history_2).unwrap();
    std::fs::write(run.file("meta.json"), &meta_2).unwrap();
    let stale = run.file(".meta.json.tmp4194305");
    std::fs::write(&stale, b"{\"status\": \"runn").unwrap();
    let resumed = fit_with(
        &cfg,
        &data,
        &opts(torn.path(), Existing::Resume),
        &mut Silent,
    )?;
    assert_eq!(resumed.meta.status, Status::Finished);
    assert_eq!(resumed.history.epochs.len(), 3);
    let scores = |h: &helpers::train::History| -> Vec<(f64, f64)> {
        h.epochs
            .iter()
            .map(|e| (e.train_loss, e.val_accuracy))
            .collect()
    };
    let on_disk = helpers::train::History::load_csv(&run.file("history.csv"))?;
    assert_eq!(scores(&on_disk), scores(&unbroken.history), "no row lost");
    assert_eq!(
        read(&run, "model_checkpoint.safetensors"),
        read(&unbroken.run, "model_checkpoint.safetensors")
    );
    assert_eq!(
        read(&run, "metrics.json"),
        read(&unbroken.run, "metrics.json")
    );
    assert!(!stale.exists(), "stale temp file removed");
    Ok(())
}

#[test]
fn a_failed_run_is_scored_from_its_best_checkpoint_and_says_its_state() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let cfg = tiny_config("nan");
    let stopped = FitOptions {
        stop_after_epochs: Some(1),
        ..opts(dir.path(), Existing::Refuse)
    };
    let run = fit_with(&cfg, &data, &stopped, &mut Silent)?.run;
    let last = run.last_checkpoint();
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
        matches!(err, Error::NonFinite { best_epoch: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the best checkpoint (epoch 1) is kept"),
        "{err}"
    );
    let scored = TrainedRun::load(&run.path, &data)?;
    assert!(
        matches!(&scored.state, RunState::Failed { epochs_done: 1, best_epoch: 1, message } if message.contains("non-finite")),
        "{:?}",
        scored.state
    );
    assert!(scored.test.accuracy > 0.5, "{}", scored.test.accuracy);
    assert!(run.file("metrics.json").is_file());
    assert_eq!(
        run.meta()?.status,
        Status::Failed,
        "meta.json still says failed"
    );
    Ok(())
}

#[test]
fn a_loss_that_is_not_finite_in_the_first_epoch_says_no_checkpoint_exists() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let mut cfg = tiny_config("nan-first");
    cfg.train.lr = 1e30;
    let err = fit_with(
        &cfg,
        &data,
        &opts(dir.path(), Existing::Refuse),
        &mut Silent,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { best_epoch: 0, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("no checkpoint was written"),
        "{err}"
    );
    let run = RunDir::at(dir.path().join("nan-first"));
    let refused = TrainedRun::load(&run.path, &data).unwrap_err().to_string();
    assert!(
        refused.contains("no best checkpoint") && refused.contains("--force"),
        "{refused}"
    );
    Ok(())
}
