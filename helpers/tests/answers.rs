//! Answers to the report template's numbered questions from real runs
//! (`report::answers`): one per label in the template's order, figures that are the
//! run's own, verdicts that follow from them, and a notebook that shows them passes the
//! question check of `lab check --assignment report`.
mod common;

use common::{numbered_questions_line, serial, synth_dataset, tiny_config};
use helpers::experiment::RunSummary;
use helpers::report::answers::{Answers, Evidence};
use helpers::report::checklist::Inputs;
use helpers::run::Existing;
use helpers::tasks::image::{fit_with, FitOptions};
use helpers::train::Silent;

#[test]
fn every_numbered_question_is_answered_from_the_runs() {
    let _lock = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    let data = synth_dataset();
    let opts = FitOptions {
        root: root.clone(),
        existing: Existing::Refuse,
        stop_after_epochs: None,
    };
    let run = fit_with(&tiny_config("fashion_cnn"), &data, &opts, &mut Silent).unwrap();
    let grid: Vec<RunSummary> = [0.002, 0.02]
        .into_iter()
        .map(|lr| {
            let mut cfg = tiny_config(&format!("grid-lr_{lr}"));
            (cfg.train.epochs, cfg.train.lr) = (1, lr);
            let point = fit_with(&cfg, &data, &opts, &mut Silent).unwrap();
            let overrides = vec![("train.lr".to_string(), toml::Value::Float(lr))];
            RunSummary::of(&point, cfg.name.clone(), overrides)
        })
        .collect();
    let evidence = Evidence {
        data: &data,
        run: &run,
        grid: &grid,
        ablations: &[],
        overfit_epochs: 5,
        lr_find_steps: 20,
    };
    let answers = Answers::compute(&evidence).unwrap();

    let labels: Vec<&str> = answers.0.iter().map(|a| a.label).collect();
    let expected: Vec<String> = (1..=11)
        .map(|i| format!("D{i}"))
        .chain((0..=9).map(|i| format!("M{i}")))
        .collect();
    assert_eq!(labels, expected);
    let text = |label: &str| answers.get(label).unwrap().answer.clone();
    let l = &run.loaders;
    let sizes = format!(
        "train {}, validation {}, test {}",
        l.train.len(),
        l.val.len(),
        l.test.len()
    );
    assert!(text("D2").contains(&sizes), "{}", text("D2"));
    assert!(
        text("D4").contains("balanced"),
        "4 classes of 120: {}",
        text("D4")
    );
    assert!(
        text("D11").contains("[32, 1, 8, 8]") && text("D11").contains("matches"),
        "{}",
        text("D11")
    );
    assert!(text("M2").contains("ln"), "{}", text("M2"));
    let best = grid
        .iter()
        .max_by(|a, b| {
            a.meta
                .best_val_accuracy
                .total_cmp(&b.meta.best_val_accuracy)
        })
        .unwrap();
    assert!(
        text("M5").contains(&format!("{:.4}", best.meta.best_val_accuracy))
            && text("M5").contains("Best of 2 points"),
        "{}",
        text("M5")
    );
    assert!(text("M8").contains("lab ablate"), "{}", text("M8"));
    assert!(
        text("M9").contains(&format!("test accuracy {:.4}", run.test.accuracy)),
        "{}",
        text("M9")
    );

    // Shown in a notebook (the appendix cell's Markdown output), they answer every label.
    let nb = dir.path().join("notebook.ipynb");
    let cell = serde_json::json!({
        "cell_type": "code", "source": "answers", "metadata": {}, "execution_count": 1,
        "outputs": [{"output_type": "display_data", "data": {"text/markdown": answers.markdown()}}],
    });
    std::fs::write(&nb, serde_json::json!({ "cells": [cell] }).to_string()).unwrap();
    let inputs = Inputs {
        runs: root,
        run: "fashion_cnn".into(),
        suffix: String::new(),
        notebook: nb,
        handin: None,
    };
    let questions = numbered_questions_line(&inputs);
    assert!(questions.starts_with('✓'), "{questions}");
}
