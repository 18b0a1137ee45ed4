//! `lab check --assignment <layout>`: an assignment's own checklist, one line per
//! requirement, read from the runs, the executed notebook and the hand-in folder. A
//! requirement the files can prove is ✓ or ✗ (with what is missing and the command that
//! makes it); one only a reader can judge (an interpretation's quality, how many
//! examples a figure shows) is listed as a manual check and never counts as passed.
use super::handin::{dir_name, Layout};
use crate::run::RunDir;
use crate::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where the checked files are.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub runs: PathBuf,
    /// The main run (project and mlops checklists).
    pub run: String,
    /// The profile's run-name suffix (see `handin::Sources::suffix`).
    pub suffix: String,
    pub notebook: PathBuf,
    /// The hand-in folder (`lab handin --out`), when there is one.
    pub handin: Option<PathBuf>,
}

/// How one requirement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Met,
    /// Not met: what is missing and what makes it.
    Missing(String),
    /// For a reader to judge: what to look at.
    Manual(String),
}

/// One line of the checklist.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub text: &'static str,
    pub verdict: Verdict,
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Met => write!(f, "✓ {}", self.text),
            Verdict::Missing(why) => write!(f, "✗ {}: {why}", self.text),
            Verdict::Manual(what) => write!(f, "· {} (check by reading: {what})", self.text),
        }
    }
}

/// The checklist of `layout` against `inputs`.
pub fn check(layout: Layout, inputs: &Inputs) -> Result<Vec<Requirement>> {
    let notebook = Notebook::read(&inputs.notebook)?;
    let mut out = vec![req(
        "the notebook ran top to bottom without errors",
        notebook.ran_cleanly(),
    )];
    match layout {
        Layout::Project => project(inputs, &notebook, &mut out),
        Layout::Transfer => transfer(inputs, &notebook, &mut out),
        Layout::Mlops => mlops(inputs, &notebook, &mut out),
        Layout::Report => report(inputs, &notebook, &mut out),
    }
    Ok(out)
}

fn project(inputs: &Inputs, nb: &Notebook, out: &mut Vec<Requirement>) {
    let sections = [
        "Problem",
        "Methodology",
        "Results",
        "Analysis",
        "Conclusion",
    ];
    let missing: Vec<&str> = sections
        .iter()
        .copied()
        .filter(|s| !nb.has_filled_section(s))
        .collect();
    out.push(req(
        "five sections filled (Problem, Methodology, Results, Analysis, Conclusion)",
        none_missing(&missing, "a heading with text under it"),
    ));
    out.push(req(
        "a versions cell (libtorch, toolchain)",
        found(
            nb.outputs_contain("libtorch"),
            "no output names libtorch: add `versions()` to the setup cell",
        ),
    ));
    let run = RunDir::at(inputs.runs.join(&inputs.run));
    out.push(req(
        "the main run finished, its seed and split saved",
        finished_with_split(&run),
    ));
    let best = inputs
        .handin
        .as_ref()
        .map(|h| h.join("best.pt"))
        .unwrap_or(run.pytorch_checkpoint());
    out.push(req(
        "best.pt saved",
        found(
            best.is_file(),
            &format!(
                "{} is missing: `lab handin --layout project`",
                best.display()
            ),
        ),
    ));
    out.push(req(
        "an ablation table",
        found(nb.outputs_contain("Ablations: one change at a time"), "no ablation table: `helpers::experiment::ablation_table` in the notebook, or `lab ablate`"),
    ));
}

fn transfer(inputs: &Inputs, nb: &Notebook, out: &mut Vec<Requirement>) {
    let run = |name: &str| RunDir::at(inputs.runs.join(format!("{name}{}", inputs.suffix)));
    let (scratch, pretrained) = (run("cnn_scratch"), run("baseline_pretrained"));
    out.push(req(
        "baseline_pretrained trained",
        finished_with_split(&pretrained),
    ));
    out.push(req("cnn_scratch trained", finished_with_split(&scratch)));
    out.push(req(
        "the scratch CNN has the pretrained model's epochs and split",
        same_budget(&scratch, &pretrained),
    ));
    let tuned = tuned_variants(&inputs.runs, &inputs.suffix);
    out.push(req(
        "three tuned variants of one parameter",
        one_parameter(&tuned),
    ));
    let mut all = vec![scratch, pretrained];
    all.extend(tuned);
    let without: Vec<String> = all
        .iter()
        .filter(|r| !has_events(r))
        .map(|r| dir_name(&r.path))
        .collect();
    out.push(req(
        "TensorBoard logs for every run",
        none_missing(
            &without.iter().map(String::as_str).collect::<Vec<_>>(),
            "logs/events.out.tfevents.*",
        ),
    ));
    out.push(Requirement {
        text: "≥ 5 Grad-CAM examples with explanations",
        verdict: match nb.has_filled_section("Grad-CAM") {
            true => Verdict::Manual(
                "count the examples in the Grad-CAM section and read their explanations".into(),
            ),
            false => Verdict::Missing("no Grad-CAM section with text and figures".into()),
        },
    });
    out.push(Requirement {
        text: "≥ 3 misclassified cases interpreted",
        verdict: match nb.has_filled_section("Misclassified") {
            true => Verdict::Manual("read the interpretation of each misclassified case".into()),
            false => Verdict::Missing("no section on misclassified cases".into()),
        },
    });
}

fn mlops(inputs: &Inputs, nb: &Notebook, out: &mut Vec<Requirement>) {
    let run = RunDir::at(inputs.runs.join(&inputs.run));
    out.push(req("the model trained", finished_with_split(&run)));
    out.push(req(
        "an ONNX export",
        found(
            run.file("model.onnx").is_file(),
            "`lab export --run <run> --out <run>/model.onnx`",
        ),
    ));
    out.push(req(
        "an ONNX Runtime latency benchmark",
        found(
            nb.outputs_contain("ONNX Runtime") && nb.outputs_contain("p50"),
            "no latency table: `lab bench-infer --run <run>` or the notebook's deployment section",
        ),
    ));
    // The detectors' columns in the drift tables (`<th>ks</th>` …).
    let methods = [">ks<", ">mmd<", ">chi_square<"];
    let named = methods.iter().filter(|m| nb.outputs_contain(m)).count();
    out.push(req(
        "≥ 2 drift detection methods",
        found(named >= 2, &format!("{named} of the detectors (KS, MMD, χ²) appear in the outputs: `lab drift --experiment`")),
    ));
    let deployments = inputs.runs.join(crate::monitor::retrain::DEPLOYMENTS_FILE);
    out.push(req(
        "retraining behind a gate, its decision logged",
        found(
            deployments.is_file(),
            &format!(
                "{} is missing: `lab retrain --run <run> --shift noise`",
                deployments.display()
            ),
        ),
    ));
    let csv = inputs
        .handin
        .as_ref()
        .map(|h| h.join("logs/predictions.csv"));
    out.push(req(
        "CSV production logs",
        match csv {
            Some(p) if p.is_file() => Verdict::Met,
            Some(p) => Verdict::Missing(format!("{} is missing: `lab handin --layout mlops --prediction-log <log dir>/predictions.csv`", p.display())),
            None => Verdict::Missing("give --handin (the folder of `lab handin --layout mlops`)".into()),
        },
    ));
}

fn report(inputs: &Inputs, nb: &Notebook, out: &mut Vec<Requirement>) {
    let run = RunDir::at(inputs.runs.join(&inputs.run));
    out.push(req("the model trained", finished_with_split(&run)));
    let labels: Vec<String> = (1..=11)
        .map(|i| format!("D{i}"))
        .chain((0..=9).map(|i| format!("M{i}")))
        .collect();
    let unanswered: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|label| !nb.answers(label))
        .collect();
    out.push(req(
        "every numbered question answered (D1–D11, M0–M9)",
        none_missing(&unanswered, "a line starting with the label and its answer"),
    ));
    let Some(handin) = &inputs.handin else {
        out.push(req(
            "the template's files",
            Verdict::Missing("give --handin (the folder of `lab handin --layout report`)".into()),
        ));
        return;
    };
    let missing: Vec<&str> = ["artifacts/best.ckpt", "configs/config.yaml", "runs"]
        .into_iter()
        .filter(|f| !handin.join(f).exists())
        .collect();
    out.push(req(
        "runs/, artifacts/best.ckpt and configs/config.yaml",
        none_missing(&missing, "`lab handin --layout report`"),
    ));
}

fn req(text: &'static str, verdict: Verdict) -> Requirement {
    Requirement { text, verdict }
}

fn found(ok: bool, otherwise: &str) -> Verdict {
    if ok {
        Verdict::Met
    } else {
        Verdict::Missing(otherwise.into())
    }
}

fn none_missing(missing: &[&str], what: &str) -> Verdict {
    match missing {
        [] => Verdict::Met,
        names => Verdict::Missing(format!("missing {} ({what})", names.join(", "))),
    }
}

fn finished_with_split(run: &RunDir) -> Verdict {
    if !run.is_finished() {
        return Verdict::Missing(format!(
            "{} is not a finished run: train it (`lab train … --name {}`)",
            run.path.display(),
            dir_name(&run.path)
        ));
    }
    found(
        run.file("split.json").is_file(),
        &format!("{} has no split.json", run.path.display()),
    )
}

/// Same epochs and the same split file (stratified by the same seed).
fn same_budget(a: &RunDir, b: &RunDir) -> Verdict {
    let (Ok(ca), Ok(cb)) = (a.config(), b.config()) else {
        return Verdict::Missing("both runs must exist".into());
    };
    if ca.train.epochs != cb.train.epochs {
        return Verdict::Missing(format!("{} epochs vs {}", ca.train.epochs, cb.train.epochs));
    }
    let hash = |r: &RunDir| crate::io::sha256_file(&r.file("split.json")).ok();
    found(
        hash(a).is_some() && hash(a) == hash(b),
        "their split.json files differ: train both with the same seed, data and val_fraction",
    )
}

fn tuned_variants(root: &Path, suffix: &str) -> Vec<RunDir> {
    super::handin::tuned_variant_dirs(root, suffix)
        .into_iter()
        .map(RunDir::at)
        .filter(RunDir::is_finished)
        .collect()
}

/// At least three finished variants whose configs differ in one and the same key.
fn one_parameter(runs: &[RunDir]) -> Verdict {
    if runs.len() < 3 {
        return Verdict::Missing(format!(
            "{} finished tuned_variant_* run(s): `lab grid --config configs/transfer.toml`",
            runs.len()
        ));
    }
    let configs: Vec<_> = runs.iter().filter_map(|r| r.config().ok()).collect();
    // `diff` gives "key: a → b".
    let mut keys: Vec<String> = configs
        .windows(2)
        .flat_map(|w| w[0].diff(&w[1]))
        .filter_map(|d| d.split(':').next().map(str::to_string))
        .filter(|k| k != "name")
        .collect();
    keys.sort();
    keys.dedup();
    match keys.as_slice() {
        [_] => Verdict::Met,
        [] => Verdict::Missing("the variants have identical configs".into()),
        many => Verdict::Missing(format!(
            "the variants differ in {}, not in one parameter",
            many.join(", ")
        )),
    }
}

fn has_events(run: &RunDir) -> bool {
    std::fs::read_dir(run.file("logs"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents")
        })
}

/// `D3` of `**D3.** …` or `M0: …`; `None` for other lines.
fn question_label(line: &str) -> Option<&str> {
    let rest = line.trim_start().trim_start_matches('*');
    let digits = rest
        .get(1..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    let end = 1 + digits;
    let label_ok = rest.starts_with(['D', 'M']) && digits > 0;
    let next = rest[end..].chars().next();
    (label_ok && matches!(next, Some('.' | ':' | '*'))).then(|| &rest[..end])
}

/// A step through the notebook's content.
enum Item {
    Line(String),
    Output,
}

/// An executed notebook, read as JSON.
struct Notebook {
    cells: Vec<Value>,
}

impl Notebook {
    fn read(path: &Path) -> Result<Notebook> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a notebook (JSON): {e}")))?;
        let cells = json["cells"]
            .as_array()
            .cloned()
            .ok_or_else(|| Error::data(path, "not a notebook: no `cells` list"))?;
        Ok(Notebook { cells })
    }

    fn text(cell: &Value, key: &str) -> String {
        match &cell[key] {
            Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        }
    }

    fn code_cells(&self) -> impl Iterator<Item = &Value> {
        self.cells.iter().filter(|c| c["cell_type"] == "code")
    }

    /// Every code cell executed, in order, with no error or stderr output.
    fn ran_cleanly(&self) -> Verdict {
        let mut last = 0;
        for (i, cell) in self
            .cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c["cell_type"] == "code")
        {
            let Some(count) = cell["execution_count"].as_u64() else {
                return Verdict::Missing(format!(
                    "cell {i} was not executed: restart and run all (`make report`)"
                ));
            };
            if count <= last {
                return Verdict::Missing(format!("cell {i} ran out of order (execution count {count} after {last}): restart and run all"));
            }
            last = count;
            let outputs = cell["outputs"].as_array().cloned().unwrap_or_default();
            if outputs
                .iter()
                .any(|o| o["output_type"] == "error" || o["name"] == "stderr")
            {
                return Verdict::Missing(format!("cell {i} has an error output"));
            }
        }
        Verdict::Met
    }

    /// A Markdown heading containing `title`, then text or outputs before the next heading.
    fn has_filled_section(&self, title: &str) -> bool {
        let title = title.to_lowercase();
        let is_heading = |c: &Value| {
            c["cell_type"] == "markdown" && Self::text(c, "source").trim_start().starts_with('#')
        };
        let Some(start) = self.cells.iter().position(|c| {
            is_heading(c)
                && Self::text(c, "source")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&title)
        }) else {
            return false;
        };
        let heading_body = Self::text(&self.cells[start], "source")
            .lines()
            .skip(1)
            .any(|l| !l.trim().is_empty());
        heading_body
            || self.cells[start + 1..]
                .iter()
                .take_while(|c| !is_heading(c))
                .any(|c| !Self::text(c, "source").trim().is_empty())
    }

    /// Whether question `label` (e.g. `D3`) is answered: a line starts with the label
    /// (bold or not, then `.` or `:`), and what follows it — the rest of the cells,
    /// blank lines skipped — begins with an answer: a cell's output, or a line that is
    /// not another question, a heading, a rule or a placeholder quote. A template's
    /// questions one after the other are therefore not answers of each other.
    fn answers(&self, label: &str) -> bool {
        let items = self.items();
        let Some(at) = items
            .iter()
            .position(|item| matches!(item, Item::Line(l) if question_label(l) == Some(label)))
        else {
            return false;
        };
        match items[at + 1..]
            .iter()
            .find(|item| !matches!(item, Item::Line(l) if l.trim().is_empty()))
        {
            Some(Item::Output) => true,
            Some(Item::Line(line)) => {
                let t = line.trim_start();
                question_label(t).is_none()
                    && !t.starts_with('#')
                    && !t.starts_with("---")
                    && !t.starts_with('>')
            }
            None => false,
        }
    }

    /// The notebook as Markdown lines and code outputs, in order.
    fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        for cell in &self.cells {
            if cell["cell_type"] == "markdown" {
                items.extend(
                    Self::text(cell, "source")
                        .lines()
                        .map(|l| Item::Line(l.to_string())),
                );
            } else if let Some(outputs) = cell["outputs"].as_array().filter(|o| !o.is_empty()) {
                // Markdown a cell renders (e.g. `Answers`) reads like the cells' own.
                for o in outputs {
                    let md = Self::text(&o["data"], "text/markdown");
                    items.extend(md.lines().map(|l| Item::Line(l.to_string())));
                }
                items.push(Item::Output);
            }
        }
        items
    }

    /// Whether any output's text or HTML contains `needle`.
    fn outputs_contain(&self, needle: &str) -> bool {
        self.code_cells()
            .flat_map(|c| c["outputs"].as_array().cloned().unwrap_or_default())
            .any(|o| {
                let data = &o["data"];
                ["text/plain", "text/html", "text/markdown"]
                    .iter()
                    .any(|k| Self::text(data, k).contains(needle))
                    || Self::text(&o, "text").contains(needle)
            })
    }
}
