//! [`ServedModel`]: one trained run as the server uses it — the ONNX Runtime session that
//! answers predictions (or the tch model, when ONNX Runtime is not wanted or cannot run
//! it), the tch model that Grad-CAM and the drift monitor's embeddings need, the drift
//! detector fitted on the run's held-out images, and a few of them as demo samples.
use super::decode::InputSpec;
use crate::data::{ImageSet, Normalization};
use crate::deploy::onnx;
use crate::deploy::ort_runtime::{OrtModel, OrtOptions};
use crate::explain::{cam, overlay, CamMethod};
use crate::models::Model;
use crate::monitor::drift::{self, DriftDetector, DriftOptions, DriftReport};
use crate::monitor::retrain::model_version;
use crate::run::RunDir;
use crate::tasks::image::TrainedRun;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{Kind, Tensor};

/// Held-out images the drift reference is fitted on (fewer when the test set is small:
/// at most half of it, so that samples remain).
const REFERENCE_IMAGES: usize = 2000;
/// Seed of the reference split (as `lab drift`'s default).
const REFERENCE_SEED: u64 = 0;
/// ONNX Runtime for serving: two intra-op threads that sleep instead of spinning when
/// idle, so the HTTP threads get the cores between model runs.
const SERVING_ORT: OrtOptions = OrtOptions {
    optimization: crate::deploy::ort_runtime::Optimization::All,
    intra_threads: 2,
    inter_threads: 1,
    spinning: false,
};
/// Test images offered on the demo page.
const SAMPLES: usize = 8;

/// Which engine answers predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// ONNX Runtime when its library loads and the network exports; tch otherwise.
    Auto,
    /// ONNX Runtime, or an error.
    Ort,
    /// libtorch through tch.
    Tch,
}

impl Engine {
    /// Parses `auto`, `ort` or `tch`.
    pub fn parse(text: &str) -> Result<Engine> {
        match text {
            "auto" => Ok(Engine::Auto),
            "ort" | "onnxruntime" => Ok(Engine::Ort),
            "tch" | "libtorch" => Ok(Engine::Tch),
            other => Err(Error::Argument {
                name: "engine".into(),
                reason: format!("`{other}` is not one of auto, ort, tch"),
            }),
        }
    }
}

/// One test image offered on the demo page, with its true class.
#[derive(Debug, Clone)]
pub struct Sample {
    pub png: Vec<u8>,
    pub label: String,
}

/// Top classes of one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ranked {
    pub class: i64,
    pub label: String,
    pub probability: f64,
}

/// A Grad-CAM explanation of one image.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub class: i64,
    pub label: String,
    pub probability: f64,
    /// The input with the map blended over it, PNG.
    pub overlay_png: Vec<u8>,
    /// True when the map is zero everywhere: no location of the last convolutional block
    /// raises the class score (the overlay then shows only the input).
    pub empty: bool,
}

/// A trained run, ready to serve.
pub struct ServedModel {
    pub version: String,
    pub run: PathBuf,
    /// The run's state when loaded ([`TrainedRun::state_line`]) and what loading rebuilt
    /// or could not check: served models may be unfinished or older runs.
    pub run_state: String,
    pub load_notes: Vec<String>,
    pub classes: Vec<String>,
    pub spec: InputSpec,
    /// `ort` or `tch`, and why when `auto` fell back.
    pub engine: String,
    norm: Normalization,
    /// libtorch tensors may move between threads but not be shared: one user at a time
    /// (the tch engine, Grad-CAM, the drift tester).
    model: Mutex<Model>,
    ort: Option<Mutex<OrtModel>>,
    detector: DriftDetector,
    pub samples: Vec<Sample>,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel")
            .field("version", &self.version)
            .field("engine", &self.engine)
            .finish()
    }
}

impl ServedModel {
    /// Loads the run at `run` with the dataset its config names (the drift reference and
    /// the samples are its held-out test images, as `lab drift` draws them).
    pub fn load(run: &Path, engine: Engine, drift: &DriftOptions) -> Result<ServedModel> {
        let cfg = RunDir::at(run).config()?;
        let data = crate::data::load(&cfg.data, cfg.seed)?;
        let eval = match cfg.data.test_limit {
            0 => data.test.head(data.test.len()),
            n => data.test.head(n),
        };
        let (reference, pool) = ServedModel::split_held_out(&eval)?;
        let trained = TrainedRun::load(run, &data)?;
        ServedModel::from_trained(
            trained,
            data.classes.clone(),
            &reference,
            &pool,
            engine,
            drift,
        )
    }

    /// Held-out images split into the drift reference (up to 2 000, at most half) and the
    /// rest, as `lab drift` splits them.
    pub fn split_held_out(held_out: &ImageSet) -> Result<(ImageSet, ImageSet)> {
        let reference_size = REFERENCE_IMAGES.min(held_out.len() / 2);
        drift::split_reference(held_out, reference_size, REFERENCE_SEED)
    }

    /// Serves `trained`, whose classes are `classes`: the drift detector is fitted on
    /// `reference` and the demo page offers the first images of `samples` (raw images the
    /// run never trained on).
    pub fn from_trained(
        trained: TrainedRun,
        classes: Vec<String>,
        reference: &ImageSet,
        samples: &ImageSet,
        engine: Engine,
        drift: &DriftOptions,
    ) -> Result<ServedModel> {
        let version = model_version(&trained.run.path)?;
        let (run_state, load_notes) = (trained.state_line(), trained.notes.clone());
        let norm = trained.loaders.norm.clone();
        let model = trained.model;
        let detector = DriftDetector::fit_images(&model, &norm, &reference.images, drift.clone())?;
        let (ort, engine) = open_engine(&model, engine)?;
        let [c, h, w] = model.input_shape;
        let samples = demo_samples(samples, &classes)?;
        Ok(ServedModel {
            version,
            run: trained.run.path.clone(),
            run_state,
            load_notes,
            classes,
            spec: InputSpec {
                channels: c as u32,
                height: h as u32,
                width: w as u32,
            },
            engine,
            norm,
            model: Mutex::new(model),
            ort: ort.map(Mutex::new),
            detector,
            samples,
        })
    }

    /// Class probabilities `[N, classes]` (CPU f32) of raw images `[N, C, H, W]` (0..=255).
    pub fn probabilities(&self, raw: &Tensor) -> Result<Tensor> {
        let x = self.norm.normalize(raw);
        let logits = match &self.ort {
            Some(session) => session.lock().unwrap_or_else(|e| e.into_inner()).run(&x)?,
            None => {
                let model = self.tch_model();
                tch::no_grad(|| model.forward_t(&x.to_device(model.device()), false))
            }
        };
        if logits.isfinite().all().int64_value(&[]) == 0 {
            return Err(Error::data(
                &self.run,
                "the served model's logits hold NaN or infinity (weights or input not finite)",
            ));
        }
        Ok(logits.to_device(tch::Device::Cpu).softmax(-1, Kind::Float))
    }

    /// The `k` most probable classes of each row of `probs`.
    pub fn top_k(&self, probs: &Tensor, k: usize) -> Result<Vec<Vec<Ranked>>> {
        let k = k.clamp(1, self.classes.len()) as i64;
        let (values, indices) = probs.topk(k, -1, true, true);
        let values = Vec::<f32>::try_from(values.contiguous().view([-1]))?;
        let indices = Vec::<i64>::try_from(indices.contiguous().view([-1]))?;
        Ok(values
            .chunks(k as usize)
            .zip(indices.chunks(k as usize))
            .map(|(v, i)| {
                v.iter()
                    .zip(i)
                    .map(|(&p, &c)| Ranked {
                        class: c,
                        label: self.classes[c as usize].clone(),
                        probability: f64::from(p),
                    })
                    .collect()
            })
            .collect())
    }

    /// Grad-CAM of the predicted class of one raw image `[C, H, W]`.
    pub fn explain(&self, raw: &Tensor) -> Result<Explanation> {
        let model = self.tch_model();
        let x = self
            .norm
            .normalize(&raw.unsqueeze(0))
            .to_device(model.device());
        let maps = cam(&model, &x, None, None, CamMethod::GradCam)?;
        let blended = overlay::blend(&x.get(0), &maps.maps.get(0), &self.norm, 0.5);
        let class = maps.targets[0];
        let empty = maps.raw.max().double_value(&[]) <= 0.0;
        Ok(Explanation {
            class,
            label: self.classes[class as usize].clone(),
            probability: maps.probs[0],
            overlay_png: crate::plot::png_bytes(&blended.to_device(tch::Device::Cpu))?,
            empty,
        })
    }

    /// The drift tests of a window of raw images against this model's reference.
    pub fn drift(&self, window: &Tensor, seed: u64) -> Result<DriftReport> {
        self.detector
            .test_images(&self.tch_model(), &self.norm, window, seed)
    }

    fn tch_model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Images in the drift reference.
    pub fn reference_len(&self) -> usize {
        self.detector.reference_len()
    }
}

/// The ONNX Runtime session for `model` (exported in memory) as `engine` asks, and the
/// engine's description.
fn open_engine(model: &Model, engine: Engine) -> Result<(Option<OrtModel>, String)> {
    if engine == Engine::Tch {
        return Ok((None, "tch".into()));
    }
    let session =
        onnx::to_onnx_bytes(model).and_then(|bytes| OrtModel::from_bytes(&bytes, &SERVING_ORT));
    match (session, engine) {
        (Ok(s), _) => Ok((Some(s), "ort".into())),
        (Err(e), Engine::Auto) => Ok((None, format!("tch (ONNX Runtime unavailable: {e})"))),
        (Err(e), _) => Err(e),
    }
}

/// The first [`SAMPLES`] images of `pool` as PNG files with their labels.
fn demo_samples(pool: &ImageSet, classes: &[String]) -> Result<Vec<Sample>> {
    let labels = pool.label_vec();
    (0..SAMPLES.min(pool.len()))
        .map(|i| {
            Ok(Sample {
                png: crate::plot::png_bytes(&pool.images.get(i as i64).to_kind(Kind::Uint8))?,
                label: classes.get(labels[i] as usize).cloned().unwrap_or_default(),
            })
        })
        .collect()
}
