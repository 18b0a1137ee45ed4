//! Error analysis: the examples the model is most wrong about (highest loss), and the
//! misclassified ones with their Grad-CAM maps, ready for a written reading.
use super::gradcam::{cam, CamMethod};
use super::overlay::overlay_grid;
use crate::data::Loader;
use crate::evaluate::Predictions;
use crate::models::Model;
use crate::plot::{self, Figure};
use crate::Result;

/// Indices of the `n` examples with the highest loss, highest first.
pub fn top_loss_indices(preds: &Predictions, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..preds.losses.len()).collect();
    idx.sort_by(|&a, &b| preds.losses[b].total_cmp(&preds.losses[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

/// Indices of the first `n` misclassified examples, in loader order.
pub fn misclassified_indices(preds: &Predictions, n: usize) -> Vec<usize> {
    (0..preds.labels.len())
        .filter(|&i| preds.labels[i] != preds.preds[i])
        .take(n)
        .collect()
}

fn caption(preds: &Predictions, classes: &[String], i: usize) -> String {
    let (t, p) = (preds.labels[i] as usize, preds.preds[i] as usize);
    let p_true = preds.probs.double_value(&[i as i64, t as i64]);
    format!(
        "#{i} {}\n→ {}\nloss {:.2}\np(true) {p_true:.2}",
        classes[t], classes[p], preds.losses[i]
    )
}

/// Grid of the `n` highest-loss examples: true → predicted, loss, probability of the
/// true class.
pub fn top_losses(
    preds: &Predictions,
    loader: &Loader,
    classes: &[String],
    n: usize,
) -> Result<Figure> {
    let idx = top_loss_indices(preds, n);
    let captions: Vec<String> = idx.iter().map(|&i| caption(preds, classes, i)).collect();
    plot::image_grid("top_losses", &loader.images(&idx), &captions, 8, 3)
}

/// The first `n` misclassified examples, each beside the Grad-CAM of the predicted class.
pub fn misclassified_with_cam(
    model: &Model,
    preds: &Predictions,
    loader: &Loader,
    classes: &[String],
    n: usize,
) -> Result<Figure> {
    let idx = misclassified_indices(preds, n);
    let images = loader.normalized(&idx);
    let maps = cam(model, &images, None, None, CamMethod::GradCam)?;
    let captions: Vec<String> = idx.iter().map(|&i| caption(preds, classes, i)).collect();
    overlay_grid(
        "misclassified_gradcam",
        &images,
        &maps.maps,
        &loader.norm,
        &captions,
        3,
    )
}

/// Grad-CAM (or Grad-CAM++) of the examples at `idx` for their predicted class, each
/// beside its input, captioned "true → predicted (probability)". With `save_dir`, each
/// overlay is also written there as `<index>_overlay.png`.
pub fn gradcam_gallery(
    model: &Model,
    preds: &Predictions,
    loader: &Loader,
    classes: &[String],
    idx: &[usize],
    method: CamMethod,
    save_dir: Option<&std::path::Path>,
) -> Result<Figure> {
    let images = loader.normalized(idx);
    let maps = cam(model, &images, None, None, method)?;
    if let Some(dir) = save_dir {
        for (n, &i) in idx.iter().enumerate() {
            let blended = super::overlay::blend(
                &images.get(n as i64),
                &maps.maps.get(n as i64),
                &loader.norm,
                0.5,
            );
            crate::io::write_atomic(
                &dir.join(format!("{i}_overlay.png")),
                &plot::png_bytes(&blended)?,
            )?;
        }
    }
    let captions: Vec<String> = idx
        .iter()
        .zip(&maps.probs)
        .map(|(&i, p)| {
            format!(
                "#{i} {}\n→ {} ({p:.2})",
                classes[preds.labels[i] as usize], classes[preds.preds[i] as usize]
            )
        })
        .collect();
    let name = if method == CamMethod::GradCam {
        "gradcam_gallery"
    } else {
        "gradcam_pp_gallery"
    };
    overlay_grid(name, &images, &maps.maps, &loader.norm, &captions, 4)
}
