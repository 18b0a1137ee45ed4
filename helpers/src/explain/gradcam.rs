//! Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhyay et al., 2018), as in
//! pytorch-grad-cam: the gradient of the target class score with respect to a
//! convolutional block's activations weights those activations; the weighted sum
//! through a ReLU, upsampled to the input and scaled to [0, 1], is the map.
//!
//! No hooks: the model is split at the target layer, the activations become a fresh
//! leaf tensor, and only they receive gradients (parameters' `.grad` stay untouched,
//! so nothing leaks from one call to the next).
use crate::models::{Layer, Model};
use crate::{Error, Result};
use tch::{Kind, Tensor};

/// How activations are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamMethod {
    /// Mean gradient per channel.
    GradCam,
    /// Positive gradients weighted by second- and third-order terms.
    GradCamPlusPlus,
}

/// Class activation maps for a batch.
#[derive(Debug)]
pub struct Cam {
    /// `[N, H, W]` maps upsampled to the input size, each scaled to [0, 1].
    pub maps: Tensor,
    /// `[N, h, w]` maps at the target layer's resolution, before upsampling and scaling.
    pub raw: Tensor,
    /// Class explained for each image.
    pub targets: Vec<i64>,
    /// Softmax probability of the target class.
    pub probs: Vec<f64>,
    /// Name of the layer whose activations were used.
    pub layer: String,
}

/// Maps for `images` (`[N, C, H, W]`, normalised as the model expects). `targets`:
/// the class to explain per image (`None`: the predicted class). `layer`: the name of
/// the layer whose output to use (`None`: the end of the last convolutional block).
pub fn cam(
    model: &Model,
    images: &Tensor,
    targets: Option<&[i64]>,
    layer: Option<&str>,
    method: CamMethod,
) -> Result<Cam> {
    let split = target_layer(model, layer)?;
    let feats = tch::no_grad(|| model.features_upto(images, split))
        .detach()
        .set_requires_grad(true);
    let logits = model.head_from(&feats, split);
    let targets: Vec<i64> = match targets {
        Some(t) if t.len() as i64 == images.size()[0] => t.to_vec(),
        Some(t) => {
            return Err(Error::Shape {
                op: "cam targets",
                expected: format!("{} targets", images.size()[0]),
                got: vec![t.len() as i64],
            })
        }
        None => Vec::<i64>::try_from(logits.argmax(-1, false))?,
    };
    let index = Tensor::from_slice(&targets)
        .to_device(logits.device())
        .unsqueeze(1);
    let score = logits.gather(1, &index, false).sum(Kind::Float);
    let grads = Tensor::run_backward(&[&score], &[&feats], false, false).remove(0);
    let feats = feats.detach();
    let weights = match method {
        CamMethod::GradCam => grads.mean_dim([2i64, 3].as_slice(), true, Kind::Float),
        CamMethod::GradCamPlusPlus => plus_plus_weights(&feats, &grads),
    };
    let raw = (&feats * weights)
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        .relu();
    let probs = Vec::<f64>::try_from(
        logits
            .detach()
            .softmax(-1, Kind::Double)
            .gather(1, &index, false)
            .squeeze_dim(1),
    )?;
    let [_, h, w] = model.input_shape;
    Ok(Cam {
        maps: upsample_and_scale(&raw, h, w),
        raw,
        targets,
        probs,
        layer: model.layers[split].0.clone(),
    })
}

/// Grad-CAM++ channel weights `[N, K, 1, 1]`, as pytorch-grad-cam computes them.
fn plus_plus_weights(feats: &Tensor, grads: &Tensor) -> Tensor {
    let g2 = grads.square();
    let g3 = &g2 * grads;
    let sum_a = feats.sum_dim_intlist([2i64, 3].as_slice(), true, Kind::Float);
    let denom = &g2 * 2.0 + sum_a * &g3;
    let alpha = &g2 / denom.where_scalarother(&denom.ne(0.0), 1e-7);
    let alpha = alpha.where_scalarother(&grads.ne(0.0), 0.0);
    (grads.relu() * alpha).sum_dim_intlist([2i64, 3].as_slice(), true, Kind::Float)
}

/// Bilinear upsampling to `h × w`, then each map scaled to [0, 1] (min to 0, max to 1).
fn upsample_and_scale(raw: &Tensor, h: i64, w: i64) -> Tensor {
    let up = raw
        .unsqueeze(1)
        .upsample_bilinear2d([h, w], false, None, None)
        .squeeze_dim(1);
    let n = up.size()[0];
    let flat = up.view([n, -1]);
    let min = flat.min_dim(1, true).0;
    let shifted = &flat - min;
    let max = shifted.max_dim(1, true).0;
    (shifted / (max + 1e-7)).view([n, h, w])
}

/// Index of the layer to split at: the named one, or the end of the last convolutional
/// block. A model without convolutions has no spatial map to explain.
fn target_layer(model: &Model, name: Option<&str>) -> Result<usize> {
    match name {
        Some(n) => model
            .layers
            .iter()
            .position(|(ln, _)| ln == n)
            .ok_or_else(|| {
                let names: Vec<&str> = model.layers.iter().map(|(n, _)| n.as_str()).collect();
                Error::config(
                    "target layer",
                    format!("no layer named `{n}`; layers: {names:?}"),
                )
            }),
        None => {
            let has_conv = model.layers[..=model.features_end]
                .iter()
                .any(|(_, l)| matches!(l, Layer::Conv(_)));
            if has_conv {
                Ok(model.features_end)
            } else {
                Err(Error::config("target layer", "the model has no convolutional layer to choose automatically; name a layer with a spatial output"))
            }
        }
    }
}
