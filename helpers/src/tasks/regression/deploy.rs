//! A tabular run deployed as one ONNX file (preprocessing inside, see
//! [`super::onnx`]) and checked by the real tools: the ONNX checker and
//! ONNX Runtime on the raw test rows, against the predictions tch made
//! ([`crate::deploy::check::check_named`]).
use super::data::Prepared;
use super::evaluate::Evaluation;
use super::fit::TrainedRegression;
use super::onnx as tabular;
use crate::data::tabular::Column;
use crate::deploy::check::{check_named, OnnxCheck};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Exports `run` to `<run>/model.onnx` and checks it on `data`'s raw test rows;
/// `scripts` is the repository's `scripts/` folder.
pub fn export_checked(
    run: &TrainedRegression,
    data: &Prepared,
    scripts: &Path,
) -> Result<OnnxCheck> {
    let (pre, frame) = data
        .tabular
        .as_ref()
        .ok_or_else(|| Error::argument("data", "ONNX export with preprocessing needs a table"))?;
    let path = run.run.file("model.onnx");
    tabular::export(&run.net, pre, &data.targets, &path)?;
    let mut inputs = serde_json::Map::new();
    let numeric: Vec<&[Option<f64>]> = pre
        .numeric
        .iter()
        .map(|f| frame.numeric(&f.name))
        .collect::<Result<_>>()?;
    let rows: Vec<Vec<Option<f64>>> = (0..frame.height())
        .map(|r| numeric.iter().map(|c| c[r]).collect())
        .collect();
    inputs.insert(
        "numeric".into(),
        serde_json::to_value(rows).expect("serialises"),
    );
    for c in &pre.categorical {
        let Column::Categorical(values) = frame.column(&c.name)? else {
            return Err(Error::data(
                &frame.source,
                format!("column `{}` is not categorical", c.name),
            ));
        };
        let cells: Vec<String> = values
            .iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect();
        inputs.insert(
            c.name.clone(),
            serde_json::to_value(cells).expect("serialises"),
        );
    }
    let expected = Evaluation::of(&run.net, &data.test, data, 4096);
    let by_row: Vec<Vec<f64>> = (0..frame.height())
        .map(|r| expected.predicted.iter().map(|p| p[r]).collect())
        .collect();
    let what = "raw rows in, dollars out";
    check_named(
        &path,
        &serde_json::Value::Object(inputs),
        &by_row,
        scripts,
        what,
    )
}

/// What [`predict_csv`] did.
#[derive(Debug, Clone)]
pub struct PredictionReport {
    pub rows: usize,
    pub out: PathBuf,
    /// Missing numeric cells filled with the training median, per column.
    pub imputed: Vec<(String, usize)>,
    /// Unseen or missing categories encoded as all zeros, per column.
    pub unknown_categories: Vec<(String, usize)>,
}

/// Predicts every row of `csv` with the run at `run_dir` (its saved preprocessing and best
/// weights; no training data needed) and writes the rows with a `predicted_<output>`
/// column per output to `out`. A target column in `csv` is ignored.
pub fn predict_csv(run_dir: &Path, csv: &Path, out: &Path) -> Result<PredictionReport> {
    use super::config::RegressionConfig;
    use super::fit::{DataAbout, CONFIG_FILE, DATA_FILE};
    use super::model::Net;
    use crate::data::tabular::{Frame, Preprocessor};
    let run = crate::run::RunDir::at(run_dir);
    run.scorable(CONFIG_FILE, &crate::run::Retrain::FIT)?;
    let cfg = RegressionConfig::from_toml_file(&run.file(CONFIG_FILE))
        .map_err(|e| e.with_hint("not a regression run directory (train one first)"))?;
    let about: DataAbout = crate::io::read_json(&run.file(DATA_FILE))?;
    let pre: Preprocessor = crate::io::read_json(&run.file("preprocess.json"))
        .map_err(|e| e.with_hint("only a tabular run predicts from CSV rows"))?;
    let net = Net::new(
        &cfg.net,
        about.input_shape,
        about.outputs.len() as i64,
        tch::Device::Cpu,
    )?;
    crate::io::tensors::load_named(&net.weights(), &run.best_checkpoint())?;
    let categorical: Vec<&str> = pre.categorical.iter().map(|c| c.name.as_str()).collect();
    let frame = Frame::read(csv, &categorical)?;
    let mut features = pre.clone();
    features.target.name = String::new(); // no column has this name: targets are not read
    let t = features.transform(&frame)?;
    let x = tch::Tensor::from_slice(&t.x).view([t.rows as i64, t.width as i64]);
    let predicted = net.predict(&x, 4096);
    let mut header = frame.names.clone();
    header.extend(about.outputs.iter().map(|o| format!("predicted_{o}")));
    let records = crate::io::csv::read(csv, 0)?;
    let rows: Vec<Vec<String>> = records
        .rows
        .into_iter()
        .enumerate()
        .map(|(r, mut fields)| {
            for (j, transform) in about.target_transforms.iter().enumerate() {
                let z = predicted.double_value(&[r as i64, j as i64]);
                fields.push(format!("{}", transform.invert(z)));
            }
            fields
        })
        .collect();
    crate::io::csv::write(out, &header, &rows)?;
    Ok(PredictionReport {
        rows: t.rows,
        out: out.to_path_buf(),
        imputed: t.imputed,
        unknown_categories: t.unknown_categories,
    })
}
