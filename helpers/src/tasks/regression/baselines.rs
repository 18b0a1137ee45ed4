//! The baselines any regression model must beat, on the same test rows: the training
//! mean, ordinary least squares on the same inputs (closed form), and for a series the
//! persistence forecast (the value now, for every horizon).
use super::data::Prepared;
use super::evaluate::Evaluation;
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// Every example predicted as the training targets' mean.
pub fn mean_predictor(data: &Prepared) -> Evaluation {
    let mean = data.train.y.mean_dim(0, true, Kind::Float);
    let predicted = mean.expand([data.test.len() as i64, data.num_outputs() as i64], false);
    Evaluation::from_model_units(&predicted, &data.test, data)
}

/// Ordinary least squares with an intercept, fitted on the training rows by a QR solve
/// in f64 (`torch.linalg.lstsq`), then applied to the test rows.
pub fn least_squares(data: &Prepared) -> Result<Evaluation> {
    let with_bias = |x: &Tensor| {
        let x = x.to_kind(Kind::Double);
        Tensor::cat(&[x.ones_like().narrow(1, 0, 1), x], 1)
    };
    let a = with_bias(&data.train.x);
    let b = data.train.y.to_kind(Kind::Double);
    // gelsd (SVD) copes with collinear inputs — a full one-hot set beside the intercept —
    // by returning the minimum-norm least-squares solution.
    let (solution, _, _, _) = a.linalg_lstsq(&b, None, "gelsd");
    let predicted = with_bias(&data.test.x)
        .matmul(&solution)
        .to_kind(Kind::Float);
    Ok(Evaluation::from_model_units(&predicted, &data.test, data))
}

/// The value at the window's last hour as the forecast of every horizon.
pub fn persistence(data: &Prepared) -> Result<Evaluation> {
    let p = data
        .persistence
        .as_ref()
        .ok_or_else(|| Error::argument("data", "persistence needs a series (Prepared::series)"))?;
    Ok(Evaluation::from_model_units(p, &data.test, data))
}
