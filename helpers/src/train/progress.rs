//! Progress reporting from the training loop: the notebook prints one line per epoch,
//! the CLI draws a progress bar; tests stay silent.
use super::trainer::StepInfo;
use super::EpochRecord;

/// Receives progress from a training run (through [`super::callbacks::ReportProgress`]).
pub trait Progress {
    fn on_step(&mut self, _info: &StepInfo) {}
    fn on_epoch(&mut self, _record: &EpochRecord, _epochs: usize) {}
    fn on_message(&mut self, _text: &str) {}
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Progress for Silent {}

/// Prints one fixed-width line per epoch (works in Jupyter, where bars do not).
#[derive(Debug, Default)]
pub struct PrintEpochs;

impl Progress for PrintEpochs {
    fn on_epoch(&mut self, r: &EpochRecord, epochs: usize) {
        println!("{}", epoch_line(r, epochs));
    }
    fn on_message(&mut self, text: &str) {
        println!("{text}");
    }
}

/// [`PrintEpochs`] with the task's own words for the score and the examples.
#[derive(Debug, Clone, Copy)]
pub struct PrintScores {
    pub score: &'static str,
    pub examples: &'static str,
}

impl PrintScores {
    /// Regression: the score is −MSE on training batches and −RMSE on validation
    /// (standardised units), examples are rows.
    pub fn regression() -> PrintScores {
        PrintScores {
            score: "score",
            examples: "rows",
        }
    }
}

impl PrintScores {
    /// Text classification: accuracy, examples are texts.
    pub fn text() -> PrintScores {
        PrintScores {
            score: "acc",
            examples: "texts",
        }
    }
}

impl PrintScores {
    /// Detection: the training score is the share of box centres the heatmap scores
    /// above ½, the validation score mAP@0.5; examples are tiles.
    pub fn detection() -> PrintScores {
        PrintScores {
            score: "score",
            examples: "tiles",
        }
    }
}

impl Progress for PrintScores {
    fn on_epoch(&mut self, r: &EpochRecord, epochs: usize) {
        println!("{}", epoch_line_with(r, epochs, *self));
    }
    fn on_message(&mut self, text: &str) {
        println!("{text}");
    }
}

/// `epoch  3/10  train loss 0.3121 acc 0.8874 | val loss 0.2950 acc 0.8920 | lr 2.1e-3 | 61.2 s  884 img/s`
pub fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    epoch_line_with(
        r,
        epochs,
        PrintScores {
            score: "acc",
            examples: "img",
        },
    )
}

fn epoch_line_with(r: &EpochRecord, epochs: usize, words: PrintScores) -> String {
    let PrintScores {
        score: s,
        examples: e,
    } = words;
    format!(
        "epoch {:>2}/{epochs:<2} train loss {:.4} {s} {:.4} | val loss {:.4} {s} {:.4} | lr {:.1e} | {:>5.1} s {:>6.0} {e}/s",
        r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.lr, r.seconds, r.images_per_sec
    )
}
