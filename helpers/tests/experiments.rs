//! Experiment tooling on synthetic data: baselines, sanity checks, the LR finder, grid
//! and ablation sweeps (with reuse of finished points), comparison tables.
mod common;

use common::{serial, synth_dataset, tiny_config};
use helpers::data::DataLoaders;
use helpers::experiment::{ablation_table, grid_table, run_points};
use helpers::tasks::image::{lr_find, FitOptions};
use helpers::train::Silent;
use helpers::{baselines, models, sanity, sweep, Result};

fn loaders_of(cfg: &helpers::config::RunConfig, data: &helpers::data::Dataset) -> DataLoaders {
    DataLoaders::new(
        data,
        &cfg.data,
        cfg.train.batch_size,
        cfg.train.eval_batch_size,
        cfg.seed,
        cfg.device(),
    )
}

#[test]
fn baselines_sit_at_chance_on_balanced_classes() -> Result<()> {
    let (data, cfg) = (synth_dataset(), tiny_config("b"));
    let t = baselines::baselines(&loaders_of(&cfg, &data), &data.classes, 1)?;
    assert_eq!(t.cell(0, "baseline")?, "majority (quadrant 0)");
    assert_eq!(t.cell(0, "accuracy")?, "0.2500", "4 balanced classes");
    let uniform: f64 = t.cell(1, "accuracy")?.parse().unwrap();
    assert!((0.1..0.45).contains(&uniform), "{uniform}");
    Ok(())
}

#[test]
fn sanity_checks_pass_on_a_healthy_model() -> Result<()> {
    let _guard = serial();
    let (data, cfg) = (synth_dataset(), tiny_config("s"));
    let loaders = loaders_of(&cfg, &data);
    tch::manual_seed(1);
    let model = models::build(&cfg.model, data.image_shape(), 4, cfg.device())?;
    let init = sanity::initial_loss(&model, &loaders.train)?;
    assert!(init.passed, "{}", init.verdict());
    let grads = sanity::gradient_flow(&model, &loaders.train)?;
    assert!(grads.passed, "{}", grads.verdict());
    let overfit = sanity::overfit_tiny(&cfg, &data, 64, 30)?;
    assert!(overfit.passed, "{}", overfit.verdict());
    Ok(())
}

#[test]
fn gradient_check_fails_on_a_frozen_layer() -> Result<()> {
    let _guard = serial();
    let (data, cfg) = (synth_dataset(), tiny_config("f"));
    let model = models::build(&cfg.model, data.image_shape(), 4, cfg.device())?;
    // Zero the classifier: no gradient flows back into the convolutions.
    tch::no_grad(|| {
        let vars = model.vs.variables();
        let _ = vars["fc.weight"].shallow_clone().zero_();
    });
    let check = sanity::gradient_flow(&model, &loaders_of(&cfg, &data).train)?;
    assert!(
        !check.passed && check.detail.contains("stages.0.0.conv.weight"),
        "{}",
        check.verdict()
    );
    Ok(())
}

#[test]
fn lr_finder_suggests_rates_and_restores_the_weights() -> Result<()> {
    let _guard = serial();
    let (data, cfg) = (synth_dataset(), tiny_config("lr"));
    let loaders = loaders_of(&cfg, &data);
    let model = models::build(&cfg.model, data.image_shape(), 4, cfg.device())?;
    let before: Vec<(String, tch::Tensor)> = model
        .weights()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let found = lr_find(&model, &loaders.train, &cfg.train, 1e-5, 10.0, 60)?;
    assert!(found.lrs.len() > 10 && found.lrs.windows(2).all(|w| w[1] > w[0]));
    assert!(
        found.steepest > 1e-5
            && found.steepest < 10.0
            && found.valley > 1e-5
            && found.valley < 10.0,
        "{found:?}"
    );
    for (name, t) in before {
        assert!(
            model
                .weights()
                .iter()
                .any(|(n, now)| *n == name && now.equal(&t)),
            "{name} restored"
        );
    }
    assert!(found.figure()?.svg.contains("valley"));
    Ok(())
}

#[test]
fn grid_and_ablation_sweeps_train_reuse_and_tabulate() -> Result<()> {
    let _guard = serial();
    let (dir, data) = (tempfile::tempdir().unwrap(), synth_dataset());
    let mut base = tiny_config("sw");
    base.train.epochs = 1;
    base.grid.insert(
        "train.lr".into(),
        vec![toml::Value::Float(0.01), toml::Value::Float(0.02)],
    );
    let points = sweep::grid_points(&base)?;
    let opts = FitOptions {
        root: dir.path().to_path_buf(),
        ..FitOptions::default()
    };
    let runs = run_points(&points, &data, &opts, &mut Silent)?;
    assert!(dir
        .path()
        .join("tuned_variant_lr_0.01/model_checkpoint.safetensors")
        .is_file());
    let table = grid_table(&runs)?;
    assert_eq!(table.height(), 2);
    let again = run_points(&points, &data, &opts, &mut Silent)?;
    assert_eq!(
        again[0].meta.train_seconds, runs[0].meta.train_seconds,
        "finished points are reused, not retrained"
    );

    base.ablations.insert(
        "no_dropout".into(),
        [("model.dropout".to_string(), toml::Value::Float(0.0))].into(),
    );
    let runs = run_points(
        &sweep::ablation_points(&base, 2)?,
        &data,
        &opts,
        &mut Silent,
    )?;
    let t = ablation_table(&runs)?;
    assert_eq!(
        (
            t.cell(0, "variant")?,
            t.cell(0, "seeds")?,
            t.cell(0, "Δ test acc")?
        ),
        ("base".into(), "2".into(), "0.0000".into())
    );
    assert_eq!(t.cell(1, "variant")?, "no_dropout");

    // `lab report --runs`: every finished run of the folder in one table and page.
    let out = dir.path().join("report");
    let report = helpers::report::runs::build(dir.path(), &out)?;
    assert_eq!(report.runs.len(), 2 + 4, "grid points and ablation runs");
    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert!(
        csv.contains("tuned_variant_lr_0.02") && csv.contains("sw-no_dropout-s8"),
        "{csv}"
    );
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("<table") && page.matches("<svg").count() >= 2);
    Ok(())
}
