//! Are the maps faithful? Keep only the top-k % of pixels by CAM value (the rest set to
//! the dataset mean, 0 after normalisation) and measure the probability of the
//! explained class; do the same with a random region of the same size. A faithful map
//! keeps more of the model's confidence than chance does (after pytorch-grad-cam's
//! confidence-change metrics).
use super::gradcam::Cam;
use crate::models::Model;
use crate::render::Table;
use crate::rng::Rng;
use crate::Result;
use polars::prelude::Column;
use tch::{Kind, Tensor};

/// Confidence of the explained class: original, CAM region kept, random region kept.
#[derive(Debug, Clone)]
pub struct Faithfulness {
    pub original: Vec<f64>,
    pub cam_kept: Vec<f64>,
    pub random_kept: Vec<f64>,
    /// Share of pixels kept.
    pub keep: f64,
}

/// Measures `cam` (computed on `images`) keeping the top `keep` share of pixels.
pub fn faithfulness(
    model: &Model,
    images: &Tensor,
    cam: &Cam,
    keep: f64,
    seed: u64,
) -> Result<Faithfulness> {
    let (n, h, w) = (cam.maps.size()[0], cam.maps.size()[1], cam.maps.size()[2]);
    let k = ((h * w) as f64 * keep).round().max(1.0) as i64;
    let flat = cam.maps.view([n, h * w]);
    let top = flat.topk(k, 1, true, false).1;
    let cam_mask =
        Tensor::zeros([n, h * w], (Kind::Float, flat.device())).scatter_value(1, &top, 1.0);
    let mut rng = Rng::new(seed, 0xFA17);
    let random_rows: Vec<Tensor> = (0..n)
        .map(|_| {
            let mut order: Vec<i64> = (0..h * w).collect();
            rng.shuffle(&mut order);
            let chosen = Tensor::from_slice(&order[..k as usize]);
            Tensor::zeros([h * w], (Kind::Float, tch::Device::Cpu)).scatter_value(0, &chosen, 1.0)
        })
        .collect();
    let random_mask = Tensor::stack(&random_rows, 0).to_device(flat.device());
    let targets = Tensor::from_slice(&cam.targets)
        .to_device(images.device())
        .unsqueeze(1);
    let prob = |x: &Tensor| -> Result<Vec<f64>> {
        let p = tch::no_grad(|| {
            model
                .forward_t(x, false)
                .softmax(-1, Kind::Double)
                .gather(1, &targets, false)
                .squeeze_dim(1)
        });
        Ok(Vec::<f64>::try_from(p)?)
    };
    let masked = |m: &Tensor| images * m.view([n, 1, h, w]);
    Ok(Faithfulness {
        original: prob(images)?,
        cam_kept: prob(&masked(&cam_mask))?,
        random_kept: prob(&masked(&random_mask))?,
        keep,
    })
}

/// One row per measurement (e.g. several kept shares): images, mean confidences, and
/// Grad-CAM faithfulness of `model` on the first `n` images of `loader` at each of
/// `fractions` (share of pixels kept), against random regions drawn from `seed`.
pub fn on_first_images(
    model: &Model,
    loader: &crate::data::Loader,
    n: usize,
    fractions: &[f64],
    seed: u64,
) -> Result<Vec<Faithfulness>> {
    let probe: Vec<usize> = (0..n.min(loader.len())).collect();
    let images = loader.normalized(&probe);
    let cam = super::gradcam::cam(
        model,
        &images,
        None,
        None,
        super::gradcam::CamMethod::GradCam,
    )?;
    fractions
        .iter()
        .map(|&keep| faithfulness(model, &images, &cam, keep, seed))
        .collect()
}

/// how often the CAM region beats the random one.
pub fn summary_table(results: &[Faithfulness]) -> Result<Table> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let col = |name: &str, f: &dyn Fn(&Faithfulness) -> f64| {
        Column::new(name.into(), results.iter().map(f).collect::<Vec<_>>())
    };
    Table::from_columns(
        "Faithfulness: confidence in the explained class when only part of the image is kept",
        vec![
            col("pixels kept", &|r| r.keep),
            Column::new(
                "images".into(),
                results
                    .iter()
                    .map(|r| r.original.len() as u64)
                    .collect::<Vec<_>>(),
            ),
            col("mean p original", &|r| mean(&r.original)),
            col("mean p, CAM region", &|r| mean(&r.cam_kept)),
            col("mean p, random region", &|r| mean(&r.random_kept)),
            col("CAM beats random (share)", &|r| r.win_rate()),
        ],
    )
}

impl Faithfulness {
    /// Share of images where keeping the CAM region preserves more confidence than
    /// keeping a random region.
    pub fn win_rate(&self) -> f64 {
        let wins = self
            .cam_kept
            .iter()
            .zip(&self.random_kept)
            .filter(|(c, r)| c > r)
            .count();
        wins as f64 / self.cam_kept.len().max(1) as f64
    }

    /// One row per image, and a summary row of means.
    pub fn table(&self, labels: &[String]) -> Result<Table> {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut names = labels.to_vec();
        names.push("mean".into());
        let with_mean = |v: &[f64]| v.iter().copied().chain([mean(v)]).collect::<Vec<_>>();
        let mut beats: Vec<String> = self
            .cam_kept
            .iter()
            .zip(&self.random_kept)
            .map(|(c, r)| if c > r { "yes" } else { "no" }.to_string())
            .collect();
        beats.push(format!("{:.0} %", 100.0 * self.win_rate()));
        Table::from_columns(
            format!("Faithfulness: confidence kept with the top {:.0} % of pixels by CAM vs a random {:.0} %", self.keep * 100.0, self.keep * 100.0),
            vec![
                Column::new("image".into(), names),
                Column::new("p original".into(), with_mean(&self.original)),
                Column::new("p CAM region".into(), with_mean(&self.cam_kept)),
                Column::new("p random region".into(), with_mean(&self.random_kept)),
                Column::new("CAM beats random".into(), beats),
            ],
        )
    }
}
