//! Hand-in folders from existing runs (`report::handin`) and the assignments' checklists
//! (`report::checklist`): the files each layout names,
//! copied or converted (never retrained), a manifest with their SHA-256, and nothing
//! overwritten when the folder already holds other content.
mod common;

use common::{checklist_lines, numbered_questions_line, serial, synth_dataset, tiny_config};
use helpers::report::handin::{build, Layout, Sources};
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;
use std::path::Path;

fn train(root: &Path, names: &[&str]) {
    let _lock = serial();
    let data = synth_dataset();
    let opts = FitOptions {
        root: root.to_path_buf(),
        existing: Existing::Force,
        stop_after_epochs: None,
    };
    for name in names {
        let mut cfg = tiny_config(name);
        cfg.train.epochs = 1;
        fit_with(&cfg, &data, &opts, &mut Silent).unwrap();
    }
}

fn sources(root: &Path, run: &str, notebook: Option<&Path>) -> Sources {
    Sources {
        runs: root.to_path_buf(),
        run: run.into(),
        suffix: String::new(),
        notebook: notebook.map(Path::to_path_buf),
        prediction_log: None,
    }
}

#[test]
fn project_layout_copies_the_run_and_never_overwrites_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    train(&root, &["fashion_cnn"]);
    let notebook = dir.path().join("notebook.ipynb");
    std::fs::write(&notebook, "{}").unwrap();
    let out = dir.path().join("handin");

    let manifest = build(
        Layout::Project,
        &sources(&root, "fashion_cnn", Some(&notebook)),
        &out,
    )
    .unwrap();
    let files: Vec<String> = manifest
        .files
        .iter()
        .map(|e| e.file.display().to_string())
        .collect();
    assert_eq!(files, ["best.pt", "config.toml", "notebook.ipynb"]);
    assert_eq!(
        std::fs::read(out.join("best.pt")).unwrap(),
        std::fs::read(root.join("fashion_cnn/best.pt")).unwrap()
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(written["files"][0]["run"], "fashion_cnn");
    assert_eq!(
        written["files"][0]["sha256"].as_str().unwrap(),
        helpers::io::sha256_file(&out.join("best.pt")).unwrap()
    );
    // The same hand-in again is fine; a changed file in the folder is refused, untouched.
    build(
        Layout::Project,
        &sources(&root, "fashion_cnn", Some(&notebook)),
        &out,
    )
    .unwrap();
    std::fs::write(out.join("config.toml"), "edited by hand").unwrap();
    let err = build(Layout::Project, &sources(&root, "fashion_cnn", None), &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.toml") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("config.toml")).unwrap(),
        "edited by hand"
    );

    let err = build(
        Layout::Project,
        &sources(&root, "no_such_run", None),
        &dir.path().join("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no_such_run") && err.contains("not a finished run"),
        "{err}"
    );
}

#[test]
fn transfer_layout_names_each_run_and_converts_runs_without_best_pt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    train(
        &root,
        &[
            "cnn_scratch",
            "baseline_pretrained",
            "tuned_variant_lr_0.01",
        ],
    );
    // A run from before best.pt was written: converted from its safetensors checkpoint.
    std::fs::remove_file(root.join("cnn_scratch/best.pt")).unwrap();
    let out = dir.path().join("handin");
    let manifest = build(Layout::Transfer, &sources(&root, "", None), &out).unwrap();
    for run in [
        "cnn_scratch",
        "baseline_pretrained",
        "tuned_variant_lr_0.01",
    ] {
        let checkpoint = out
            .join("saved_models")
            .join(run)
            .join("model_checkpoint.pt");
        let tensors = helpers::weights::torch_file::read_state_dict(&checkpoint).unwrap();
        assert!(tensors.iter().any(|(n, _)| n == "fc.weight"), "{run}");
        let logs = out.join("saved_models").join(run).join("logs");
        assert!(std::fs::read_dir(&logs).unwrap().count() > 0, "{run} logs");
    }
    assert!(manifest.files.iter().all(|e| e.config_hash.is_some()));

    let missing = dir.path().join("empty");
    std::fs::create_dir_all(&missing).unwrap();
    let err = build(
        Layout::Transfer,
        &sources(&missing, "", None),
        &dir.path().join("y"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cnn_scratch"), "{err}");
}

/// A notebook with the given cells: (markdown or code, source, execution count, output).
fn notebook(path: &Path, cells: &[(&str, &str, Option<u64>, &str)]) {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(kind, source, count, output)| {
            serde_json::json!({
                "cell_type": kind, "source": source, "metadata": {},
                "execution_count": count,
                "outputs": [{"output_type": "execute_result", "data": {"text/html": output}}],
            })
        })
        .collect();
    std::fs::write(path, serde_json::json!({ "cells": cells }).to_string()).unwrap();
}

#[test]
fn the_transfer_checklist_reads_runs_and_notebook() {
    use helpers::report::checklist::{check, Inputs, Verdict};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    train(&root, &["cnn_scratch", "baseline_pretrained"]);
    {
        let _lock = serial();
        for lr in [0.003, 0.01, 0.03] {
            let mut cfg = tiny_config(&format!("tuned_variant_lr_{lr}"));
            cfg.train.epochs = 1;
            cfg.train.lr = lr;
            let opts = FitOptions {
                root: root.clone(),
                existing: Existing::Force,
                stop_after_epochs: None,
            };
            fit_with(&cfg, &synth_dataset(), &opts, &mut Silent).unwrap();
        }
    }
    let nb = dir.path().join("notebook.ipynb");
    let inputs = Inputs {
        runs: root.clone(),
        run: String::new(),
        suffix: String::new(),
        notebook: nb.clone(),
        handin: None,
    };
    let cells = [
        (
            "markdown",
            "## What the model looks at: Grad-CAM\nFive maps.",
            None,
            "",
        ),
        ("code", "gallery", Some(1), "<svg/>"),
        ("markdown", "### Misclassified cases", None, ""),
        ("code", "errors", Some(2), "<svg/>"),
    ];
    notebook(&nb, &cells);
    let report = check(Layout::Transfer, &inputs).unwrap();
    let text: Vec<String> = report.iter().map(|r| r.to_string()).collect();
    assert!(
        report
            .iter()
            .all(|r| !matches!(r.verdict, Verdict::Missing(_))),
        "{text:#?}"
    );
    assert_eq!(
        report
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Manual(_)))
            .count(),
        2
    );

    // A cell run out of order, and a variant that changes a second key, are named.
    let mut out_of_order = cells;
    out_of_order[3].2 = Some(1);
    notebook(&nb, &out_of_order);
    let mut cfg = tiny_config("tuned_variant_lr_0.1");
    cfg.train.epochs = 2;
    cfg.train.lr = 0.1;
    let opts = FitOptions {
        root: root.clone(),
        existing: Existing::Force,
        stop_after_epochs: None,
    };
    {
        let _lock = serial();
        fit_with(&cfg, &synth_dataset(), &opts, &mut Silent).unwrap();
    }
    let text: Vec<String> = check(Layout::Transfer, &inputs)
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(
        text[0].starts_with("✗") && text[0].contains("out of order"),
        "{text:#?}"
    );
    let variants = text.iter().find(|t| t.contains("tuned variants")).unwrap();
    assert!(
        variants.starts_with("✗") && variants.contains("train.epochs"),
        "{variants}"
    );
}

#[test]
fn report_layout_and_its_numbered_questions() {
    use helpers::report::checklist::Inputs;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    train(&root, &["fashion_cnn", "other"]);
    let out = dir.path().join("handin");
    build(Layout::Report, &sources(&root, "fashion_cnn", None), &out).unwrap();
    let yaml = helpers::config::RunConfig::from_file(out.join("configs/config.yaml")).unwrap();
    let toml = helpers::run::RunDir::at(root.join("fashion_cnn"))
        .config()
        .unwrap();
    assert_eq!(yaml.hash(), toml.hash(), "the YAML config is the run's");
    let ckpt =
        helpers::weights::torch_file::read_state_dict(&out.join("artifacts/best.ckpt")).unwrap();
    assert!(ckpt.iter().any(|(n, _)| n == "fc.weight"));
    for run in ["fashion_cnn", "other"] {
        assert!(
            std::fs::read_dir(out.join("runs").join(run))
                .unwrap()
                .count()
                > 0,
            "{run}"
        );
    }

    // The template's questions alone are not answers; an answer under each one is.
    let nb = dir.path().join("report.ipynb");
    let question = |label: &str| format!("**{label}.** A question?\n");
    let template: String = (1..=11)
        .map(|i| question(&format!("D{i}")))
        .chain((0..=9).map(|i| question(&format!("M{i}"))))
        .collect::<Vec<_>>()
        .join("\n### next part\n");
    notebook(&nb, &[("markdown", &template, None, "")]);
    let inputs = Inputs {
        runs: root.clone(),
        run: "fashion_cnn".into(),
        suffix: String::new(),
        notebook: nb.clone(),
        handin: Some(out.clone()),
    };
    let questions = numbered_questions_line(&inputs);
    assert!(
        questions.starts_with("✗") && questions.contains("D1, D2"),
        "{questions}"
    );
    let answered = template.replace("A question?\n", "A question?\nThe answer, from the runs.\n");
    notebook(&nb, &[("markdown", &answered, None, "")]);
    let lines = checklist_lines(Layout::Report, &inputs);
    assert!(lines.iter().all(|l| l.starts_with('✓')), "{lines:#?}");
}
