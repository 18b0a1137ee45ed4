//! The `lab` binary: bad configs are refused with the key, the value and what is allowed.
use std::process::Command;

fn lab_train(config_text: &str) -> (bool, String) {
    lab_train_with(config_text, &[])
}

fn lab_train_with(config_text: &str, flags: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--root",
            dir.path().to_str().unwrap(),
        ])
        .args(flags)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mistyped_key_is_named_with_the_nearest_valid_key() {
    let (ok, err) = lab_train("[train]\nepochz = 3\n");
    assert!(!ok);
    assert!(
        err.contains("`train.epochz`")
            && err.contains("did you mean `train.epochs`?")
            && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn out_of_range_and_unknown_values_name_the_key_and_the_allowed_values() {
    let (ok, err) = lab_train("[train]\nlr = -1.0\n");
    assert!(
        !ok && err.contains("train.lr") && err.contains("must be > 0"),
        "{err}"
    );
    let (ok, err) = lab_train("[train]\nschedule = \"linear\"\n");
    assert!(
        !ok && err.contains("train.schedule")
            && err.contains("one_cycle")
            && err.contains("plateau"),
        "{err}"
    );
    let (ok, err) = lab_train("[data]\ndir = \"/nonexistent/fm\"\n");
    assert!(
        !ok && err.contains("/nonexistent/fm") && err.contains("scripts/setup"),
        "{err}"
    );
}

#[test]
fn a_bad_flag_value_is_reported_as_the_flag() {
    let (ok, err) = lab_train_with("", &["--epochs", "0"]);
    assert!(
        !ok && err.contains("--epochs: must be > 0, found 0")
            && err.contains("sets `train.epochs`")
            && !err.contains("config key"),
        "{err}"
    );
    // The same value written in the file is the file's key.
    let (ok, err) = lab_train("[train]\nepochs = 0\n");
    assert!(!ok && err.contains("config key `train.epochs`"), "{err}");
}

#[test]
fn without_a_terminal_training_prints_plain_progress_lines_within_an_epoch() {
    // Fashion-MNIST's first 512 images, 4 steps: one plain line per step at interval 0.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("small.toml");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fashion_mnist");
    std::fs::write(
        &cfg,
        format!(
            "name = \"small\"\n[data]\ndir = \"{}\"\ntrain_limit = 512\ntest_limit = 100\n\
             [model]\nwidths = [4]\ndepths = [1]\n[train]\nepochs = 1\nbatch_size = 128\nprecision = \"fp32\"\n",
            data.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["train", "--config", cfg.to_str().unwrap(), "--root"])
        .arg(dir.path())
        .env("LAB_PROGRESS_EVERY", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("epoch 1/1 step 2/4 (50 %): loss"), "{text}");
}
