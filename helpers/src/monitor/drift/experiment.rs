//! The detection-rate experiment: how often each test fires on clean windows (false
//! alarms) and on windows of each simulated shift and severity.
use super::*;

/// Settings of [`detection_experiment`].
#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    /// Images per production window.
    pub window: usize,
    /// Windows per shift and severity.
    pub repeats: usize,
    /// Clean windows for the false-alarm rate.
    pub clean_windows: usize,
    /// Reference images, drawn from the evaluation set; windows come from the rest.
    pub reference_size: usize,
    pub shifts: Vec<Shift>,
    pub severities: Vec<u8>,
    /// Drives the reference split, window draws, shifts and tests.
    pub seed: u64,
    pub detector: DriftOptions,
}

impl Default for ExperimentOptions {
    /// Sized for the notebook's default profile: 35 s on an idle 2-core CPU with the
    /// Fashion-MNIST CNN (up to twice that when other work shares the cores) — 6 shifts ×
    /// 5 severities × 10 windows of 200 images, each embedded and tested (≈ 0.09 s a
    /// window), plus 200 clean windows, which reuse the pool's embeddings computed once and
    /// cost only the tests (≈ 0.045 s a window). Detection rates come in steps of 1/10;
    /// `repeats: 20` halves the step and doubles the time. The reference
    /// (2 000 images) is ten times a window, so that every window is compared with nearly
    /// the same reference distribution: with a small reference, the one fixed sample all
    /// windows meet can, by chance, sit off the true distribution and raise the false-alarm
    /// rate of every window it is compared with.
    fn default() -> Self {
        ExperimentOptions {
            window: 200,
            repeats: 10,
            clean_windows: 200,
            reference_size: 2000,
            shifts: Shift::all(),
            severities: (1..=shifts::MAX_SEVERITY).collect(),
            seed: 0,
            detector: DriftOptions::default(),
        }
    }
}

/// Detection rates of one shift at one severity (severity 0: clean windows).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRow {
    /// Shift name, `clean` for the false-alarm row.
    pub shift: String,
    pub severity: u8,
    /// The shift's parameter at this severity (NaN for clean windows).
    pub parameter: f64,
    /// Windows tested.
    pub windows: usize,
    /// The model's accuracy on these windows' images.
    pub accuracy: f64,
    /// Share of windows flagged, per method in [`Method::ALL`] order.
    pub rates: [f64; 3],
}

/// The outcome of [`detection_experiment`].
#[derive(Debug, Clone)]
pub struct DetectionResults {
    /// The clean row first, then one row per shift and severity.
    pub rows: Vec<DetectionRow>,
    pub window: usize,
    pub alpha: f64,
    /// Wall time of the whole experiment.
    pub seconds: f64,
}

impl DetectionResults {
    /// The false-alarm row (clean windows).
    pub fn clean(&self) -> Option<&DetectionRow> {
        self.rows.iter().find(|r| r.severity == 0)
    }

    /// False-alarm rate of `method` on clean windows.
    pub fn false_alarm_rate(&self, method: Method) -> Option<f64> {
        let index = Method::ALL.iter().position(|&m| m == method)?;
        self.clean().map(|r| r.rates[index])
    }

    /// Every row, detection rates per method.
    pub fn table(&self) -> Result<Table> {
        use polars::prelude::Column;
        let rows = &self.rows;
        let mut columns = vec![
            Column::new(
                "shift".into(),
                rows.iter().map(|r| r.shift.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "severity".into(),
                rows.iter().map(|r| r.severity as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                "parameter".into(),
                rows.iter().map(|r| r.parameter).collect::<Vec<_>>(),
            ),
            Column::new(
                "windows".into(),
                rows.iter().map(|r| r.windows as u64).collect::<Vec<_>>(),
            ),
            Column::new(
                "accuracy".into(),
                rows.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
            ),
        ];
        for (i, m) in Method::ALL.iter().enumerate() {
            columns.push(Column::new(
                m.name().into(),
                rows.iter().map(|r| r.rates[i]).collect::<Vec<_>>(),
            ));
        }
        Table::from_columns(
            format!(
                "Detection rate per method (windows of {}, α = {}; severity 0 = clean windows: false-alarm rate; {:.0} s)",
                self.window, self.alpha, self.seconds
            ),
            columns,
        )
    }

    /// One panel per method (detection rate vs severity, one line per shift, severity 0
    /// = the false-alarm rate on clean windows, a flat line at α) and one of the model's
    /// accuracy.
    pub fn figure(&self) -> Result<Figure> {
        let clean = self.clean();
        let shift_names: Vec<&str> =
            self.rows
                .iter()
                .filter(|r| r.severity > 0)
                .fold(Vec::new(), |mut names, r| {
                    if !names.contains(&r.shift.as_str()) {
                        names.push(r.shift.as_str());
                    }
                    names
                });
        let series = |value: &dyn Fn(&DetectionRow) -> f64| -> Vec<Series> {
            shift_names
                .iter()
                .map(|&name| {
                    let points = clean
                        .into_iter()
                        .chain(self.rows.iter().filter(|r| r.shift == name))
                        .map(|r| (r.severity as f64, value(r)))
                        .collect();
                    Series::new(name, points)
                })
                .collect()
        };
        let mut panels: Vec<(&str, &str, Vec<Series>)> = Method::ALL
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let title = match m {
                    Method::Ks => "KS on embeddings: detection rate",
                    Method::Mmd => "MMD on embeddings: detection rate",
                    Method::ChiSquare => "χ² on predictions: detection rate",
                };
                let mut lines = series(&|r: &DetectionRow| r.rates[i]);
                let top = self.rows.iter().map(|r| r.severity).max().unwrap_or(1) as f64;
                lines.push(Series::new(
                    format!("α = {}", self.alpha),
                    vec![(0.0, self.alpha), (top, self.alpha)],
                ));
                (title, "severity", lines)
            })
            .collect();
        panels.push(("model accuracy", "severity", series(&|r| r.accuracy)));
        plot::lines("drift_detection", &panels)
    }
}

/// Splits `set` at random into a reference part of `reference_size` examples and the
/// rest (the pool production windows are drawn from), disjoint.
pub fn split_reference(
    set: &ImageSet,
    reference_size: usize,
    seed: u64,
) -> Result<(ImageSet, ImageSet)> {
    if reference_size >= set.len() {
        return Err(Error::config(
            "drift.reference_size",
            format!(
                "{reference_size} reference images leave none of the {} for windows",
                set.len()
            ),
        ));
    }
    let mut order: Vec<i64> = (0..set.len() as i64).collect();
    Rng::new(seed, 0x5245_4645).shuffle(&mut order);
    let (reference, pool) = order.split_at(reference_size);
    Ok((set.select(reference), set.select(pool)))
}

/// Positions of window `index`: `size` of `0..pool_len` drawn without replacement.
pub fn window_indices(pool_len: usize, size: usize, seed: u64, index: u64) -> Result<Vec<usize>> {
    if size > pool_len {
        return Err(Error::config(
            "drift.window",
            format!("a window of {size} images needs a pool at least that large, got {pool_len}"),
        ));
    }
    let mut order: Vec<usize> = (0..pool_len).collect();
    let mut rng = Rng::new(seed, 0x5749_4E00 + index);
    // A partial Fisher–Yates shuffle: only the first `size` positions are needed.
    for i in 0..size {
        let j = i + rng.below(pool_len - i);
        order.swap(i, j);
    }
    order.truncate(size);
    Ok(order)
}

/// The examples of `pool` at [`window_indices`].
pub fn draw_window(pool: &ImageSet, size: usize, seed: u64, index: u64) -> Result<ImageSet> {
    let indices = window_indices(pool.len(), size, seed, index)?;
    Ok(pool.select(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>()))
}

/// For each shift × severity, `repeats` windows of `window` images drawn from `eval_set`
/// (after setting `reference_size` of them aside as the detector's reference) are
/// shifted and tested; plus `clean_windows` unshifted windows for the false-alarm rate.
/// Window `r` uses the same images for every shift and severity (common random numbers:
/// the curves differ by the shift only).
pub fn detection_experiment(
    model: &Model,
    norm: &Normalization,
    eval_set: &ImageSet,
    options: &ExperimentOptions,
) -> Result<DetectionResults> {
    let started = Instant::now();
    let (reference, pool) = split_reference(eval_set, options.reference_size, options.seed)?;
    let detector =
        DriftDetector::fit_images(model, norm, &reference.images, options.detector.clone())?;
    let mut rows = vec![clean_row(model, norm, &detector, &pool, options)?];
    for shift in &options.shifts {
        for &severity in &options.severities {
            rows.push(shifted_row(
                model, norm, &detector, &pool, shift, severity, options,
            )?);
        }
    }
    Ok(DetectionResults {
        rows,
        window: options.window,
        alpha: options.detector.alpha,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Detection counts and accuracy accumulated over windows.
#[derive(Default)]
struct Tally {
    windows: usize,
    flagged: [usize; 3],
    correct: usize,
    images: usize,
}

impl Tally {
    /// Tests one window, given the model's outputs on it and its labels.
    fn add(
        &mut self,
        detector: &DriftDetector,
        outputs: &ModelOutputs,
        labels: &[i64],
        seed: u64,
    ) -> Result<()> {
        let num_classes = detector.num_classes();
        let report = detector.test(&Window::from_outputs(outputs, num_classes)?, seed)?;
        for (count, verdict) in self.flagged.iter_mut().zip(report.verdicts()) {
            *count += verdict.drift as usize;
        }
        self.correct += labels
            .iter()
            .zip(&outputs.predictions)
            .filter(|(a, b)| a == b)
            .count();
        self.images += labels.len();
        self.windows += 1;
        Ok(())
    }

    fn row(&self, shift: String, severity: u8, parameter: f64) -> DetectionRow {
        let n = self.windows.max(1) as f64;
        DetectionRow {
            shift,
            severity,
            parameter,
            windows: self.windows,
            accuracy: self.correct as f64 / self.images.max(1) as f64,
            rates: self.flagged.map(|f| f as f64 / n),
        }
    }
}

/// Seed of window `index`'s test (and shift), derived from the experiment's seed.
fn window_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed, 0x5345_4544 + index).next_u64()
}

/// Clean windows are rows of the pool's outputs, computed once: the model sees each
/// image alone (evaluation mode), so a window's outputs do not depend on its batch.
fn clean_row(
    model: &Model,
    norm: &Normalization,
    detector: &DriftDetector,
    pool: &ImageSet,
    options: &ExperimentOptions,
) -> Result<DetectionRow> {
    let mut tally = Tally::default();
    if options.clean_windows > 0 {
        let outputs = model_outputs(model, norm, &pool.images)?;
        let labels = pool.label_vec();
        for r in 0..options.clean_windows as u64 {
            let idx = window_indices(pool.len(), options.window, options.seed, r)?;
            let window_labels: Vec<i64> = idx.iter().map(|&i| labels[i]).collect();
            tally.add(
                detector,
                &outputs.select(&idx)?,
                &window_labels,
                window_seed(options.seed, r),
            )?;
        }
    }
    Ok(tally.row("clean".into(), 0, f64::NAN))
}

fn shifted_row(
    model: &Model,
    norm: &Normalization,
    detector: &DriftDetector,
    pool: &ImageSet,
    shift: &Shift,
    severity: u8,
    options: &ExperimentOptions,
) -> Result<DetectionRow> {
    let mut tally = Tally::default();
    for r in 0..options.repeats as u64 {
        let seed = window_seed(options.seed, r);
        let set = match shift {
            Shift::ClassPrior { dominant } => {
                shifts::prior_shift(pool, dominant, severity, options.window, seed)?
            }
            _ => shifts::apply(
                &draw_window(pool, options.window, options.seed, r)?,
                shift,
                severity,
                seed,
            )?,
        };
        let outputs = model_outputs(model, norm, &set.images)?;
        tally.add(detector, &outputs, &set.label_vec(), seed)?;
    }
    Ok(tally.row(shift.name(), severity, shift.parameter(severity)?))
}
