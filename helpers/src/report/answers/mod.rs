//! Answers to the report template's numbered questions (D1–D11 on the data, M0–M9 on the
//! model) computed from a finished run, its data and its sweeps: every figure is read
//! from the run directory or recomputed with the run's seed (baselines, initial loss,
//! the overfit subset, the LR range test), and every verdict ("balanced", "overfits
//! after epoch k", "within sampling error") follows from those figures by a stated rule,
//! so an answer never outlives the run it describes.
mod data;
mod model;
mod sweeps;

use crate::data::Dataset;
use crate::experiment::RunSummary;
use crate::render::{Markdown, Table};
use crate::tasks::image::TrainedRun;
use crate::Result;
use polars::prelude::Column;

/// Training images of the overfit check (the notebook's sanity section uses the same).
pub const OVERFIT_SUBSET: usize = 256;

/// What the answers are computed from.
pub struct Evidence<'a> {
    pub data: &'a Dataset,
    /// The final run (its config, split, best weights, history and test metrics).
    pub run: &'a TrainedRun,
    /// The grid search's finished points; empty when it was not run.
    pub grid: &'a [RunSummary],
    /// The ablation's finished variants (the base first); empty when not run.
    pub ablations: &'a [RunSummary],
    /// Epochs of the overfit check and steps of the LR range test.
    pub overfit_epochs: usize,
    pub lr_find_steps: usize,
}

/// One numbered question and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `D1` … `D11`, `M0` … `M9`.
    pub label: &'static str,
    /// The question, in short.
    pub question: &'static str,
    pub answer: String,
    /// Where the figures come from.
    pub source: String,
}

/// The answers, in the template's order.
#[derive(Debug, Clone)]
pub struct Answers(pub Vec<Answer>);

impl Answers {
    /// Computes every answer (a few seconds of training: the overfit subset and the LR
    /// range test run again with the run's seed).
    pub fn compute(e: &Evidence) -> Result<Answers> {
        let mut all = data::answers(e);
        all.extend(model::answers(e)?);
        Ok(Answers(all))
    }

    /// The answer to `label`, if there is one.
    pub fn get(&self, label: &str) -> Option<&Answer> {
        self.0.iter().find(|a| a.label == label)
    }

    /// A (question, answer, source) table.
    pub fn table(&self) -> Result<Table> {
        let col = |name: &str, f: fn(&Answer) -> String| {
            Column::new(name.into(), self.0.iter().map(f).collect::<Vec<_>>())
        };
        Table::from_columns(
            "Answers to the numbered questions, from the runs",
            vec![
                col("question", |a| format!("{} {}", a.label, a.question)),
                col("answer", |a| a.answer.clone()),
                col("from", |a| a.source.clone()),
            ],
        )
    }

    /// The answers as Markdown, one `**label.**` paragraph each (the template's form).
    pub fn markdown(&self) -> String {
        self.0
            .iter()
            .map(|a| {
                format!(
                    "**{}.** {}\n\n{}\n\n_From: {}_\n",
                    a.label, a.question, a.answer, a.source
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// evcxr's hook: shows the Markdown (which `lab check --assignment report` reads as
    /// the answers under each label).
    pub fn evcxr_display(&self) {
        Markdown(self.markdown()).evcxr_display();
    }
}

pub(super) fn answer(
    label: &'static str,
    question: &'static str,
    answer: String,
    source: &str,
) -> Answer {
    Answer {
        label,
        question,
        answer,
        source: source.to_string(),
    }
}
