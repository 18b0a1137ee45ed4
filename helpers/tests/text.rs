//! The text track end to end on the real packaged data (Rotten Tomatoes snippets):
//! grouped split, vocabulary from the training texts, the loop, reuse, the reference.
use helpers::data::text::{grouped_split, rotten_tomatoes, TextSet, Vocabulary};
use helpers::run::{Existing, FitOptions};
use helpers::tasks::text::{analysis, fit, reference, TextConfig, TextData, TextNetKind};
use helpers::train::Silent;
use std::path::{Path, PathBuf};

mod common;
use common::serial;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn options(root: &Path) -> FitOptions {
    FitOptions {
        root: root.to_path_buf(),
        existing: Existing::Auto,
        stop_after_epochs: None,
    }
}

#[test]
fn rotten_tomatoes_trains_beats_majority_and_is_reused() {
    let _guard = serial();
    let set = rotten_tomatoes::load(repo_file(rotten_tomatoes::DEFAULT_PATH))
        .expect("scripts/setup packaged-data");
    assert_eq!(set.official, Some(true));
    assert_eq!(set.len(), 7_403 + 5_405);
    assert_eq!(
        set.skipped.iter().map(|s| s.1).sum::<usize>(),
        1_097,
        "the plot rows"
    );
    let split = grouped_split(&set, 0.1, 0.2, 0).unwrap();
    let cfg = TextConfig::default().variant("bag", |c| {
        c.train.epochs = 3;
        c.threads = 2;
    });
    let data = TextData::prepare(&set, &split, &cfg.tokens);
    let card = set
        .card(&split, &data.vocab, cfg.tokens.max_length)
        .unwrap();
    // Identical snippets under different movies exist (36 with this seed); counted, not hidden.
    assert!(card.duplicates < 100, "{:?}", card.facts);
    let dir = tempfile::tempdir().unwrap();
    let run = fit(&cfg, &data, &options(dir.path()), &mut Silent).unwrap();
    let (majority, _) = analysis::majority_baseline(&data);
    assert!(
        run.test.accuracy > majority + 0.1,
        "{} vs majority {majority}",
        run.test.accuracy
    );
    let again = fit(&cfg, &data, &options(dir.path()), &mut Silent).unwrap();
    assert!(again.reused);
    assert_eq!(again.test.accuracy, run.test.accuracy);
    // From the run directory alone, as `lab predict --text` does: the test texts' classes.
    let first: Vec<String> = data.test_texts[..20].to_vec();
    let predicted = helpers::tasks::text::predict_texts(&dir.path().join("bag"), &first).unwrap();
    let (_, pred) = run.test_probs.narrow(0, 0, 20).max_dim(-1, false);
    let pred = Vec::<i64>::try_from(&pred).unwrap();
    let names: Vec<String> = pred
        .iter()
        .map(|&k| data.classes[k as usize].clone())
        .collect();
    assert_eq!(
        predicted.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        names
    );
    let cnn = cfg.variant("cnn", |c| {
        c.net.kind = TextNetKind::Cnn;
        c.net.embedding_dim = 32;
        c.net.filters = 16;
        c.train.epochs = 1;
    });
    assert!(
        fit(&cnn, &data, &options(dir.path()), &mut Silent)
            .unwrap()
            .test
            .accuracy
            > majority
    );
    let tfidf = reference::tfidf_logistic(&set, &data, &repo_file("scripts"), dir.path()).unwrap();
    assert!(tfidf.accuracy > 0.7 && tfidf.accuracy < 0.85, "{tfidf:?}");
}

#[test]
fn user_texts_bad_rows_are_named_or_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "review,label\n\"good, really\",pos\n   ,neg\nawful,neg\n",
    )
    .unwrap();
    let set = TextSet::from_csv(&path, "review", "label", None).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.skipped,
        [("empty or whitespace-only text".to_string(), 1)]
    );
    assert_eq!(set.classes, ["neg", "pos"]);
    let e = TextSet::from_csv(&path, "text", "label", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no column `text`; the columns are: review, label"),
        "{e}"
    );
    std::fs::write(&path, b"review,label\n\xff\xfe,pos\n").unwrap();
    let e = TextSet::from_csv(&path, "review", "label", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not UTF-8"), "{e}");
    let v = Vocabulary::fit(["a b"].into_iter(), 1, 10);
    assert_eq!(v.len(), 4);
}
