//! The regression track end to end on the real packaged data (California Housing, the
//! TMY3 weather year): preparation without leakage, the loop, reuse and resume, the
//! baselines, and the bad inputs a user's own table brings.
use helpers::data::tabular::{california, weather, PreprocessOptions, RowSplit, TabularSet};
use helpers::run::{Existing, FitOptions};
use helpers::tasks::regression::{baselines, deploy, fit, Prepared, RegressionConfig, SeriesSpec};
use helpers::train::Silent;
use std::path::{Path, PathBuf};

mod common;
use common::serial;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn housing() -> (TabularSet, Prepared) {
    let set =
        california::load(repo_file(california::DEFAULT_PATH)).expect("scripts/setup packaged-data");
    let rows: Vec<usize> = (0..set.frame.height()).collect();
    let split = RowSplit::shuffled(&rows, 0.1, 0.2, 0).unwrap();
    let prepared = Prepared::tabular(&set, split, PreprocessOptions::default()).unwrap();
    (set, prepared)
}

fn options(root: &Path) -> FitOptions {
    FitOptions {
        root: root.to_path_buf(),
        existing: Existing::Auto,
        stop_after_epochs: None,
    }
}

fn quick(name: &str, epochs: usize) -> RegressionConfig {
    RegressionConfig::default().variant(name, |c| {
        c.train.epochs = epochs;
        c.net.widths = vec![64, 32];
        c.threads = 2;
    })
}

#[test]
fn california_is_the_real_file_and_its_card_counts_what_is_missing() {
    let (set, data) = housing();
    assert_eq!(set.official, Some(true));
    assert_eq!(set.frame.height(), 20_640);
    let card = set.card().unwrap();
    let bedrooms = card
        .columns
        .iter()
        .find(|c| c.name == "total_bedrooms")
        .unwrap();
    assert_eq!(bedrooms.missing, 207);
    // 8 numeric features + 5 ocean_proximity one-hots.
    assert_eq!(data.feature_names.len(), 13);
    assert_eq!(
        (data.train.len(), data.val.len(), data.test.len()),
        (14_448, 2_064, 4_128)
    );
}

#[test]
fn a_short_mlp_beats_the_baselines_and_a_finished_run_is_reused() {
    let _guard = serial(); // libtorch's generator (dropout) is process-wide
    let (_, data) = housing();
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick("mlp", 4);
    let trained = fit(&cfg, &data, &options(dir.path()), &mut Silent).unwrap();
    let m = trained.test.metrics[0];
    let mean = baselines::mean_predictor(&data).metrics[0];
    let ols = baselines::least_squares(&data).unwrap().metrics[0];
    assert!(
        mean.r2.abs() < 0.01,
        "the mean predictor scores R² ≈ 0, got {}",
        mean.r2
    );
    assert!(
        ols.r2 > 0.55 && ols.r2 < 0.7,
        "OLS on California is R² ≈ 0.64, got {}",
        ols.r2
    );
    assert!(
        m.r2 > ols.r2,
        "4 epochs of the MLP ({}) beat least squares ({})",
        m.r2,
        ols.r2
    );
    let again = fit(&cfg, &data, &options(dir.path()), &mut Silent).unwrap();
    assert!(again.reused);
    assert_eq!(again.test.metrics, trained.test.metrics);
    // Deployed with its preprocessing: ONNX Runtime on raw rows (missing bedrooms
    // included) agrees with tch.
    let check = deploy::export_checked(&trained, &data, &repo_file("scripts")).unwrap();
    assert_eq!(check.rows, 4_128);
    assert!(check.max_rel_diff <= 1e-4, "{check:?}");
    assert!(
        check.ops.contains(&"OneHotEncoder".to_string())
            && check.ops.contains(&"Where".to_string())
    );
    // And from the run directory alone, as `lab predict` does: same numbers as the run.
    let rows = dir.path().join("rows.csv");
    let mut text = String::from("longitude,latitude,housing_median_age,total_rooms,total_bedrooms,population,households,median_income,ocean_proximity\n");
    text.push_str("-122.23,37.88,41,880,,322,126,8.3252,ON THE MOON\n");
    std::fs::write(&rows, text).unwrap();
    let out = dir.path().join("predicted.csv");
    let report = deploy::predict_csv(&dir.path().join("mlp"), &rows, &out).unwrap();
    assert_eq!(report.imputed, [("total_bedrooms".to_string(), 1)]);
    assert_eq!(
        report.unknown_categories,
        [("ocean_proximity".to_string(), 1)]
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.starts_with("longitude,")
            && written
                .lines()
                .next()
                .unwrap()
                .ends_with(",predicted_median_house_value")
    );
    let value: f64 = written
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        value > 15_000.0 && value < 1_000_000.0,
        "a plausible district value: {value}"
    );
}

#[test]
fn a_paused_run_resumes_bit_identical() {
    let _guard = serial(); // libtorch's generator (dropout) is process-wide
    let (_, data) = housing();
    let cfg = quick("resume", 3);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = fit(&cfg, &data, &options(a.path()), &mut Silent).unwrap();
    let paused = FitOptions {
        stop_after_epochs: Some(1),
        ..options(b.path())
    };
    assert!(
        fit(&cfg, &data, &paused, &mut Silent).is_err(),
        "a paused call says so"
    );
    let resumed = fit(&cfg, &data, &options(b.path()), &mut Silent).unwrap();
    assert!(!resumed.reused);
    assert_eq!(resumed.test.predicted, whole.test.predicted);
    let bytes = |d: &Path| std::fs::read(d.join("resume/model_checkpoint.safetensors")).unwrap();
    assert_eq!(bytes(a.path()), bytes(b.path()));
}

#[test]
fn the_weather_series_is_split_in_time_and_persistence_is_the_bar() {
    let _guard = serial(); // libtorch's generator (dropout) is process-wide
    let year =
        weather::load(repo_file(weather::DEFAULT_PATH)).expect("scripts/setup packaged-data");
    assert!(year.official);
    assert_eq!(year.source_years.len(), 12);
    let data = Prepared::series(&year, &SeriesSpec::default()).unwrap();
    let s = &data.split;
    assert!(
        s.train.last().unwrap() + 24 + 24 <= s.val[0],
        "a gap of lookback + horizon"
    );
    assert_eq!(data.outputs, ["temperature +1 h", "temperature +24 h"]);
    let persistence = baselines::persistence(&data).unwrap();
    // At +1 h the temperature barely moves; a day ahead, persistence is far worse.
    assert!(
        persistence.metrics[0].mae < 1.5 && persistence.metrics[1].mae > 2.0,
        "{:?}",
        persistence.metrics
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = RegressionConfig::series_default().variant("forecast", |c| c.threads = 2);
    let trained = fit(&cfg, &data, &options(dir.path()), &mut Silent).unwrap();
    let (model, bar) = (&trained.test.metrics, &persistence.metrics);
    assert!(
        model[0].mae < bar[0].mae && model[1].mae < bar[1].mae,
        "the MLP beats persistence: {model:?} vs {bar:?}"
    );
}

#[test]
fn bad_tables_get_errors_that_name_the_cell_or_counted_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let mut text = String::from("x,flat,empty,kind,y\n");
    for i in 0..30 {
        let y = if i == 7 {
            String::new()
        } else {
            format!("{}", i * 2)
        };
        text.push_str(&format!(
            "{i},1,,{},{y}\n",
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    std::fs::write(&path, &text).unwrap();
    let set = TabularSet::from_csv(&path, "y", &[]).unwrap();
    assert_eq!(set.rows_without_target, 1);
    let rows: Vec<usize> = (0..set.frame.height()).collect();
    let split = RowSplit::shuffled(&rows, 0.2, 0.2, 1).unwrap();
    let data = Prepared::tabular(&set, split, PreprocessOptions::default()).unwrap();
    let (pre, _) = data.tabular.as_ref().unwrap();
    let dropped: Vec<&str> = pre.dropped.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(dropped, ["flat", "empty"]);
    std::fs::write(&path, text.replace("\n12,", "\n1 2,")).unwrap();
    let e = TabularSet::from_csv(&path, "y", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 14, column `x`: `1 2` is not a number"),
        "{e}"
    );
    std::fs::write(&path, &text).unwrap();
    let e = TabularSet::from_csv(&path, "price", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `price`"), "{e}");
}
