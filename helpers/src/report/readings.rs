//! Readings a notebook states about its own runs, rendered or checked against them: what
//! the sweeps say (every comparison computed from the grid and ablation runs), and
//! whether a written reading of the misclassified gallery still describes the cases
//! this run shows — withdrawn, with what changed, when a rerun shows other cases.
use crate::data::detection::tiles::TileSet;
use crate::evaluate::Predictions;
use crate::experiment::RunSummary;
use crate::explain::error_analysis::misclassified_indices;
use crate::render::Markdown;
use crate::tasks::detection::{analysis::worst_tiles, TrainedDetector};
use crate::tasks::text::{analysis::mistakes, TextData, TrainedText};
use crate::{Error, Result};

/// Below this many points of test accuracy, a single-seed difference is read as noise.
const NOISE_POINTS: f64 = 0.5;

/// "What the sweeps say": the grid's best peak learning rate at each weight decay, how
/// much weight decay moves test accuracy, and each ablation's change against the base,
/// largest first, with the usual reason next to the variants whose effect has one.
pub fn sweep_reading(grid: &[RunSummary], ablations: &[RunSummary]) -> Markdown {
    let mut parts = vec![format!(
        "**What the sweeps say** (this run; single-seed differences below {NOISE_POINTS} points are within seed noise)."
    )];
    parts.extend(grid_reading(grid));
    parts.extend(ablation_reading(ablations));
    Markdown(parts.join(" "))
}

/// The override `key` of a run, as a number.
fn value(run: &RunSummary, key: &str) -> Option<f64> {
    let (_, v) = run.overrides.iter().find(|(k, _)| k == key)?;
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// A learning rate or decay as the config writes it: `1e-2`, `5e-4`, `0`.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:e}")
    }
}

fn points(x: f64) -> String {
    format!("{:.2} points", 100.0 * x)
}

fn grid_reading(grid: &[RunSummary]) -> Option<String> {
    let (lr, wd) = ("train.lr", "train.weight_decay");
    let mut decays: Vec<f64> = grid.iter().filter_map(|r| value(r, wd)).collect();
    decays.sort_by(f64::total_cmp);
    decays.dedup();
    let largest_lr = grid
        .iter()
        .filter_map(|r| value(r, lr))
        .max_by(f64::total_cmp)?;
    let winners: Vec<(f64, f64)> = decays
        .iter()
        .filter_map(|&d| {
            let at_d = grid.iter().filter(|r| value(r, wd) == Some(d));
            let best = at_d.max_by(|a, b| {
                a.meta
                    .best_val_accuracy
                    .total_cmp(&b.meta.best_val_accuracy)
            })?;
            Some((d, value(best, lr)?))
        })
        .collect();
    let lr_sentence = if winners.iter().all(|&(_, w)| w == largest_lr) {
        format!("The largest peak learning rate in the grid ({}) has the best validation accuracy at every weight decay.", num(largest_lr))
    } else {
        let each: Vec<String> = winners
            .iter()
            .map(|&(d, w)| format!("{} at weight decay {}", num(w), num(d)))
            .collect();
        format!(
            "The best peak learning rate by validation accuracy is {}: not simply the largest ({}).",
            each.join(", "),
            num(largest_lr)
        )
    };
    Some(format!("{lr_sentence} {}", decay_sentence(grid, lr, wd)))
}

/// The largest change of test accuracy that weight decay makes at one learning rate.
fn decay_sentence(grid: &[RunSummary], lr: &str, wd: &str) -> String {
    let mut largest: f64 = 0.0;
    for a in grid {
        for b in grid {
            if value(a, lr) == value(b, lr) && value(a, wd) != value(b, wd) {
                largest = largest.max((a.test.accuracy - b.test.accuracy).abs());
            }
        }
    }
    let size = if largest < NOISE_POINTS / 100.0 {
        "within seed noise"
    } else {
        "more than seed noise"
    };
    format!(
        "Weight decay moves test accuracy by at most {} at one learning rate: {size}.",
        points(largest)
    )
}

/// The usual reason for an ablation's effect, when its sign is the one the reason explains.
fn reason(variant: &str, delta: f64) -> Option<&'static str> {
    match (variant, delta > 0.0) {
        ("no_augmentation", true) => Some(
            "at this budget the model has not yet fit the clean images, and random crops and flips make the task \
             harder without time to pay back",
        ),
        ("no_augmentation", false) => {
            Some("random crops and flips pay back even at this budget")
        }
        ("gap_head", false) => Some(
            "where a feature sits in these centred images matters, and global pooling throws it away",
        ),
        ("constant_lr", false) => Some("the one-cycle schedule's warm-up and annealing are worth having"),
        _ => None,
    }
}

fn ablation_reading(runs: &[RunSummary]) -> Option<String> {
    let mean = |label: &str| {
        let accs: Vec<f64> = runs
            .iter()
            .filter(|r| r.label == label)
            .map(|r| r.test.accuracy)
            .collect();
        (!accs.is_empty()).then(|| accs.iter().sum::<f64>() / accs.len() as f64)
    };
    let base = mean("base")?;
    // Variants in first-seen order, once each however their seeds are listed.
    let mut labels: Vec<&str> = Vec::new();
    for r in runs {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let mut deltas: Vec<(&str, f64)> = labels
        .into_iter()
        .filter(|&l| l != "base")
        .filter_map(|l| Some((l, mean(l)? - base)))
        .collect();
    deltas.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let sentences: Vec<String> = deltas
        .iter()
        .map(|&(variant, delta)| {
            let verb = if delta > 0.0 { "improves" } else { "lowers" };
            let noise = if delta.abs() < NOISE_POINTS / 100.0 {
                " (within seed noise)"
            } else {
                ""
            };
            let why = reason(variant, delta).map_or(String::new(), |r| format!(": {r}"));
            format!(
                "`{variant}` {verb} test accuracy by {}{noise}{why}.",
                points(delta.abs())
            )
        })
        .collect();
    Some(format!(
        "Against the base ({:.2} % test accuracy), largest change first: {}",
        100.0 * base,
        sentences.join(" ")
    ))
}

/// One case a written reading names: `#17 Coat → Shirt`.
#[derive(Debug, PartialEq)]
struct Case {
    index: usize,
    truth: String,
    predicted: String,
}

impl Case {
    fn parse(text: &str) -> Result<Case> {
        let bad = || {
            Error::argument(
                "reading",
                format!("`{text}` is not a case like `#17 Coat → Shirt` (index, true class, →, predicted class)"),
            )
        };
        let rest = text.trim().strip_prefix('#').ok_or_else(bad)?;
        let (index, classes) = rest.split_once(' ').ok_or_else(bad)?;
        let (truth, predicted) = classes.split_once('→').ok_or_else(bad)?;
        Ok(Case {
            index: index.parse().map_err(|_| bad())?,
            truth: truth.trim().to_string(),
            predicted: predicted.trim().to_string(),
        })
    }

    fn of(preds: &Predictions, classes: &[String], index: usize) -> Case {
        Case {
            index,
            truth: classes[preds.labels[index] as usize].clone(),
            predicted: classes[preds.preds[index] as usize].clone(),
        }
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {} → {}", self.index, self.truth, self.predicted)
    }
}

/// Checks a written reading of the first misclassified test images — `reading` lists the
/// cases it discusses, `"#17 Coat → Shirt, #23 Ankle boot → Sandal"` — against this
/// run's predictions: it holds when the gallery shows exactly those cases; otherwise it
/// is withdrawn, saying what each case is now and which cases this run shows instead.
pub fn check_case_reading(
    preds: &Predictions,
    classes: &[String],
    reading: &str,
) -> Result<Markdown> {
    let read: Vec<Case> = reading.split(',').map(Case::parse).collect::<Result<_>>()?;
    let shown: Vec<Case> = misclassified_indices(preds, read.len())
        .into_iter()
        .map(|i| Case::of(preds, classes, i))
        .collect();
    if shown == read {
        return Ok(Markdown(format!(
            "✓ **The reading above holds for this run**: its gallery shows the same {} cases ({}).",
            read.len(),
            list(&read)
        )));
    }
    let changed: Vec<String> = read
        .iter()
        .filter(|c| !shown.contains(c))
        .map(|c| {
            if c.index >= preds.labels.len() {
                return format!(
                    "#{} is past its {} test images",
                    c.index,
                    preds.labels.len()
                );
            }
            let now = Case::of(preds, classes, c.index);
            if now.truth == now.predicted {
                format!("#{} is now classified correctly", c.index)
            } else {
                format!("#{} is now {now}", c.index)
            }
        })
        .collect();
    let changed = match changed.is_empty() {
        true => "the same cases in another order".to_string(),
        false => changed.join("; "),
    };
    Ok(Markdown(format!(
        "✗ **The reading above is withdrawn for this run**: it was written for a run whose gallery showed {}. \
         Here {changed}, and the gallery shows {}: read those images instead.",
        list(&read),
        list(&shown)
    )))
}

/// One tile a written reading of the detection errors names: its index and, when the
/// reading states them, its crowns, crowns found and false alarms.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TileCase {
    index: usize,
    counts: Option<(usize, usize, usize)>,
}

impl TileCase {
    fn parse(text: &str) -> Result<TileCase> {
        let bad = || {
            Error::argument(
                "reading",
                format!(
                    "`{text}` is not a tile like `24` or `24: 21 crowns, 2 found, 9 false alarms`"
                ),
            )
        };
        let (index, counts) = text.split_once(':').unwrap_or((text, ""));
        let numbers: Vec<usize> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        let counts = match numbers[..] {
            [] => None,
            [crowns, found, false_alarms] => Some((crowns, found, false_alarms)),
            _ => return Err(bad()),
        };
        Ok(TileCase {
            index: index.trim().parse().map_err(|_| bad())?,
            counts,
        })
    }
}

/// Checks a written reading of the worst detection tiles — `reading` names tiles as
/// `"24: 21 crowns, 2 found, 9 false alarms; 2; 4"` — against this run: it holds when
/// every tile is among the `n` worst tiles drawn and every stated count is this run's;
/// otherwise it is withdrawn, saying what differs.
pub fn check_tile_reading(
    run: &TrainedDetector,
    tiles: &TileSet,
    n: usize,
    reading: &str,
) -> Result<Markdown> {
    let read: Vec<TileCase> = reading
        .split(';')
        .map(TileCase::parse)
        .collect::<Result<_>>()?;
    let ranked = worst_tiles(run, tiles);
    let drawn: Vec<usize> = ranked.iter().take(n).map(|r| r.0).collect();
    let counts_of = |i: usize| {
        let (_, false_alarms, missed) = *ranked.iter().find(|r| r.0 == i)?;
        let crowns = tiles.tiles[i].boxes.len();
        Some((crowns, crowns - missed, false_alarms))
    };
    let mut changed = Vec::new();
    for case in &read {
        let Some(now) = counts_of(case.index) else {
            changed.push(format!(
                "tile {} is past its {} test tiles",
                case.index,
                tiles.tiles.len()
            ));
            continue;
        };
        if !drawn.contains(&case.index) {
            changed.push(format!("tile {} is not among the {n} worst", case.index));
        }
        if case.counts.is_some_and(|c| c != now) {
            changed.push(format!(
                "tile {} has {} crowns, {} found, {} false alarms",
                case.index, now.0, now.1, now.2
            ));
        }
    }
    let named: Vec<String> = read.iter().map(|c| c.index.to_string()).collect();
    if changed.is_empty() {
        return Ok(Markdown(format!(
            "✓ **The reading above holds for this run**: tiles {} are among its {n} worst, with the counts stated.",
            named.join(", ")
        )));
    }
    let drawn: Vec<String> = drawn.iter().map(usize::to_string).collect();
    Ok(Markdown(format!(
        "✗ **The reading above is withdrawn for this run**: here {}; the {n} worst tiles are {}: read those instead.",
        changed.join("; "),
        drawn.join(", ")
    )))
}

/// Checks a written reading of the text track's most confident mistakes — `reading`
/// quotes the start of each snippet it discusses, `|` between them — against this run:
/// it holds when each is among the `k` mistakes the gallery shows (compared in lower
/// case, letters and digits only, as the gallery prints tokens); otherwise it is
/// withdrawn, naming the snippets this run gets right or ranks lower.
pub fn check_snippet_reading(
    run: &TrainedText,
    data: &TextData,
    k: usize,
    reading: &str,
) -> Result<Markdown> {
    let quoted: Vec<&str> = reading
        .split('|')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .collect();
    if quoted.is_empty() {
        return Err(Error::argument(
            "reading",
            "no snippet quoted: give the start of each, `|` between them",
        ));
    }
    let words = |s: &str| {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let shown: Vec<String> = mistakes(run, data)?
        .shown(data, k)
        .into_iter()
        .map(|i| words(&data.test_texts[i]))
        .collect();
    let missing: Vec<String> = quoted
        .iter()
        .filter(|q| !shown.iter().any(|s| s.starts_with(&words(q))))
        .map(|q| format!("“{q}”"))
        .collect();
    if missing.is_empty() {
        return Ok(Markdown(format!(
            "✓ **The reading above holds for this run**: the {} snippets it reads are among its {k} most confident mistakes.",
            quoted.len()
        )));
    }
    Ok(Markdown(format!(
        "✗ **The reading above is withdrawn for this run**: {} {} not among its {k} most confident mistakes; read the gallery above instead.",
        missing.join(", "),
        if missing.len() == 1 { "is" } else { "are" }
    )))
}

fn list(cases: &[Case]) -> String {
    cases
        .iter()
        .map(Case::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn predictions(labels: &[i64], preds: &[i64]) -> Predictions {
        Predictions {
            labels: labels.to_vec(),
            preds: preds.to_vec(),
            probs: Tensor::zeros([labels.len() as i64, 3], tch::kind::FLOAT_CPU),
            losses: vec![0.0; labels.len()],
        }
    }

    /// A finished run's summary with these validation and test accuracies (the test
    /// accuracy out of 10 000 predictions), as the sweep labels it.
    fn run(label: &str, grid: Option<(f64, f64)>, val: f64, test: f64) -> RunSummary {
        let correct = (test * 10_000.0).round() as usize;
        let preds: Vec<i64> = (0..10_000).map(|i| i64::from(i >= correct)).collect();
        let classes = ["a".to_string(), "b".to_string()];
        let meta = crate::run::Meta {
            status: crate::run::Status::Finished,
            epochs_done: 3,
            best_epoch: 3,
            best_val_accuracy: val,
            stopped_early: false,
            seed: 42,
            config_hash: String::new(),
            normalization: crate::data::Normalization {
                mean: vec![0.0],
                std: vec![1.0],
            },
            num_parameters: 1,
            trainable_parameters: None,
            embed_seconds: None,
            train_seconds: 1.0,
            test_accuracy: Some(test),
            test_macro_f1: None,
            message: None,
            precision: None,
            data: None,
            versions: crate::backend::versions(),
        };
        let overrides = grid.map_or(Vec::new(), |(lr, wd)| {
            vec![
                ("train.lr".into(), toml::Value::Float(lr)),
                ("train.weight_decay".into(), toml::Value::Float(wd)),
            ]
        });
        RunSummary {
            name: label.into(),
            label: label.into(),
            overrides,
            history: Default::default(),
            test: crate::metrics::Metrics::compute(&vec![0; 10_000], &preds, &classes),
            meta,
        }
    }

    #[test]
    fn the_sweep_reading_is_computed_from_the_runs() {
        // The default profile's sweep results (validation, test accuracy).
        let mut grid = vec![
            run("g1", Some((1e-3, 0.0)), 0.8567, 0.8441),
            run("g2", Some((1e-3, 5e-4)), 0.8575, 0.8423),
            run("g3", Some((3e-3, 0.0)), 0.8767, 0.8702),
            run("g4", Some((3e-3, 5e-4)), 0.8733, 0.8693),
            run("g5", Some((1e-2, 0.0)), 0.8808, 0.8757),
            run("g6", Some((1e-2, 5e-4)), 0.8758, 0.8719),
        ];
        let ablations = vec![
            run("base", None, 0.8733, 0.8693),
            run("no_augmentation", None, 0.9017, 0.8890),
            run("gap_head", None, 0.8542, 0.8436),
            run("no_dropout", None, 0.8725, 0.8705),
        ];
        let text = sweep_reading(&grid, &ablations).0;
        for said in [
            "The largest peak learning rate in the grid (1e-2) has the best validation accuracy at every weight decay",
            "at most 0.38 points at one learning rate: within seed noise",
            "base (86.93 % test accuracy)",
            "`gap_head` lowers test accuracy by 2.57 points: where a feature sits",
            "`no_augmentation` improves test accuracy by 1.97 points: at this budget",
            "`no_dropout` improves test accuracy by 0.12 points (within seed noise).",
        ] {
            assert!(text.contains(said), "missing `{said}` in: {text}");
        }
        // Another grid result, another sentence: lr 1e-3 made best at weight decay 0.
        grid[0].meta.best_val_accuracy = 0.99;
        let text = sweep_reading(&grid, &ablations).0;
        assert!(
            text.contains(
                "is 1e-3 at weight decay 0, 1e-2 at weight decay 5e-4: not simply the largest"
            ),
            "{text}"
        );
    }

    #[test]
    fn tile_readings_parse_with_or_without_counts() {
        let tile = TileCase::parse(" 24: 21 crowns, 2 found, 9 false alarms").unwrap();
        assert_eq!((tile.index, tile.counts), (24, Some((21, 2, 9))));
        assert_eq!(TileCase::parse("4").unwrap().counts, None);
        let bad = TileCase::parse("24: 21 crowns, 2 found").unwrap_err();
        assert!(
            bad.to_string().contains("`24: 21 crowns, 2 found`"),
            "{bad}"
        );
    }

    #[test]
    fn a_case_reading_holds_only_for_the_cases_shown() {
        let classes: Vec<String> = ["Coat", "Shirt", "Sandal"].map(String::from).to_vec();
        let preds = predictions(&[0, 1, 0, 2], &[1, 1, 1, 0]);
        let holds = check_case_reading(&preds, &classes, "#0 Coat → Shirt, #2 Coat → Shirt")
            .unwrap()
            .0;
        assert!(holds.starts_with("✓"), "{holds}");
        // A rerun where #2 became right: the reading is withdrawn, saying so.
        let rerun = predictions(&[0, 1, 0, 2], &[1, 1, 0, 0]);
        let withdrawn = check_case_reading(&rerun, &classes, "#0 Coat → Shirt, #2 Coat → Shirt")
            .unwrap()
            .0;
        assert!(
            withdrawn.starts_with("✗")
                && withdrawn.contains("#2 is now classified correctly")
                && withdrawn.contains("#3 Sandal → Coat"),
            "{withdrawn}"
        );
        let smaller = check_case_reading(&preds, &classes, "#0 Coat → Shirt, #9 Coat → Shirt")
            .unwrap()
            .0;
        assert!(
            smaller.contains("#9 is past its 4 test images"),
            "{smaller}"
        );
        let bad = check_case_reading(&preds, &classes, "#0 Coat to Shirt").unwrap_err();
        assert!(bad.to_string().contains("`#0 Coat to Shirt`"), "{bad}");
    }
}
