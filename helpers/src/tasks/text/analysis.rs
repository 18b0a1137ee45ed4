//! Reading a text model's errors: the test texts it got wrong with the most confidence,
//! its calibration, and a comparison of runs and baselines on the same test texts.
use super::data::TextData;
use super::fit::TrainedText;
use crate::explain::{reliability_of, Reliability};
use crate::render::{Markdown, Table};
use crate::Result;
use polars::prelude::Column;
use tch::Kind;

/// The test texts' predictions: per text the predicted class and its probability, and
/// the misclassified texts, most confident first.
pub struct Mistakes {
    pub predicted: Vec<i64>,
    pub confidence: Vec<f64>,
    pub labels: Vec<i64>,
    pub by_confidence: Vec<usize>,
}

/// The run's [`Mistakes`] on `data`'s test texts.
pub fn mistakes(run: &TrainedText, data: &TextData) -> Result<Mistakes> {
    let labels = data.test.label_vec();
    let (conf, pred) = run.test_probs.max_dim(-1, false);
    let confidence = Vec::<f64>::try_from(&conf.to_kind(Kind::Double))?;
    let predicted = Vec::<i64>::try_from(&pred)?;
    let mut by_confidence: Vec<usize> = (0..labels.len())
        .filter(|&i| predicted[i] != labels[i])
        .collect();
    by_confidence.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    Ok(Mistakes {
        predicted,
        confidence,
        labels,
        by_confidence,
    })
}

impl Mistakes {
    /// The `k` most confident mistakes whose text is not blank, as the gallery of
    /// explained mistakes shows them: indices into the test texts.
    pub fn shown(&self, data: &TextData, k: usize) -> Vec<usize> {
        self.by_confidence
            .iter()
            .copied()
            .filter(|&i| !data.test_texts[i].trim().is_empty())
            .take(k)
            .collect()
    }
}

/// The `k` test texts misclassified with the highest predicted probability.
pub fn confident_mistakes(run: &TrainedText, data: &TextData, k: usize) -> Result<Table> {
    let Mistakes {
        predicted: pred,
        confidence: conf,
        labels,
        by_confidence: mut wrong,
    } = mistakes(run, data)?;
    wrong.truncate(k);
    let class = |i: i64| data.classes[i as usize].clone();
    Table::from_columns(
        format!("The {k} most confident mistakes on the test texts"),
        vec![
            Column::new(
                "text".into(),
                wrong
                    .iter()
                    .map(|&i| data.test_texts[i].clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "true".into(),
                wrong.iter().map(|&i| class(labels[i])).collect::<Vec<_>>(),
            ),
            Column::new(
                "predicted".into(),
                wrong.iter().map(|&i| class(pred[i])).collect::<Vec<_>>(),
            ),
            Column::new(
                "confidence".into(),
                wrong.iter().map(|&i| conf[i]).collect::<Vec<_>>(),
            ),
        ],
    )
}

/// Reliability diagram and expected calibration error of the run's test probabilities
/// (10 equal-width bins).
pub fn calibration(run: &TrainedText, data: &TextData) -> Result<Reliability> {
    reliability_of(&run.test_probs, &data.test.label_vec(), 10)
}

/// One predictor's line of [`comparison`].
struct Line {
    name: String,
    accuracy: f64,
    macro_f1: f64,
    train_seconds: Option<f64>,
    parameters: Option<i64>,
}

/// Test accuracy and macro-F1 of runs (and named baselines) side by side.
pub fn comparison(
    title: &str,
    runs: &[(&str, &TrainedText)],
    baselines: &[(&str, f64, f64)],
) -> Result<Table> {
    let mut rows: Vec<Line> = runs
        .iter()
        .map(|(n, r)| Line {
            name: n.to_string(),
            accuracy: r.test.accuracy,
            macro_f1: r.test.macro_avg.f1,
            train_seconds: Some(r.meta.train_seconds),
            parameters: Some(r.meta.num_parameters),
        })
        .collect();
    rows.extend(baselines.iter().map(|(n, a, f)| Line {
        name: n.to_string(),
        accuracy: *a,
        macro_f1: *f,
        train_seconds: None,
        parameters: None,
    }));
    Table::from_columns(
        title,
        vec![
            Column::new(
                "predictor".into(),
                rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "test accuracy".into(),
                rows.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
            ),
            Column::new(
                "macro-F1".into(),
                rows.iter().map(|r| r.macro_f1).collect::<Vec<_>>(),
            ),
            Column::new(
                "train s".into(),
                rows.iter()
                    .map(|r| r.train_seconds.unwrap_or(f64::NAN))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "parameters".into(),
                rows.iter()
                    .map(|r| r.parameters.map_or("—".into(), |p| p.to_string()))
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

/// The majority class's test accuracy and macro-F1 (it predicts the most frequent
/// training class for every text).
pub fn majority_baseline(data: &TextData) -> (f64, f64) {
    let train = data.train.label_vec();
    let mut counts = vec![0usize; data.classes.len()];
    train.iter().for_each(|&l| counts[l as usize] += 1);
    let majority = (0..counts.len()).max_by_key(|&c| counts[c]).unwrap_or(0) as i64;
    let labels = data.test.label_vec();
    let preds = vec![majority; labels.len()];
    let m = crate::metrics::Metrics::compute(&labels, &preds, &data.classes);
    (m.accuracy, m.macro_avg.f1)
}

/// How the network with the best validation accuracy (the test texts pick nothing)
/// compares with the TF-IDF reference and the goal of 79 %.
pub fn verdict(runs: &[(&str, &TrainedText)], tfidf_accuracy: f64) -> Result<Markdown> {
    let (name, run) = runs
        .iter()
        .max_by(|a, b| {
            a.1.meta
                .best_val_accuracy
                .total_cmp(&b.1.meta.best_val_accuracy)
        })
        .ok_or_else(|| crate::Error::argument("runs", "no run to judge"))?;
    let acc = run.test.accuracy;
    let versus = if acc > tfidf_accuracy {
        "beats"
    } else {
        "does **not** beat"
    };
    let goal = if acc >= 0.79 { "meets" } else { "misses" };
    Ok(Markdown(format!(
        "The network with the best validation accuracy ({:.1} %), **{name}**, reaches {:.1} % test accuracy (macro-F1 {:.3}) in {:.0} s of training: it {versus} TF-IDF + logistic regression on the same split ({:.1} %) and {goal} the goal of 79 %.",
        100.0 * run.meta.best_val_accuracy, 100.0 * acc, run.test.macro_avg.f1, run.meta.train_seconds, 100.0 * tfidf_accuracy
    )))
}
