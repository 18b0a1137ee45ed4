//! Heatmap overlays: a CAM coloured with a perceptual colour map (inferno-like, dark to
//! bright), blended over the grey or colour input.
use crate::data::Normalization;
use crate::plot::{self, Figure};
use crate::Result;
use tch::{Kind, Tensor};

/// Anchors of the colour map, from 0 (dark purple) to 1 (pale yellow).
const COLORMAP: [[f64; 3]; 5] = [
    [0.0, 0.0, 0.02],
    [0.34, 0.06, 0.43],
    [0.73, 0.21, 0.33],
    [0.98, 0.55, 0.04],
    [0.99, 1.0, 0.64],
];

/// `[3, H, W]` colours for a `[H, W]` map in [0, 1].
pub fn colorize(map: &Tensor) -> Tensor {
    let m = map.clamp(0.0, 1.0) * (COLORMAP.len() - 1) as f64;
    let lo = m.floor().clamp(0.0, (COLORMAP.len() - 2) as f64);
    let frac = &m - &lo;
    let lo_idx = lo.to_kind(Kind::Int64);
    let channels: Vec<Tensor> = (0..3)
        .map(|c| {
            let table =
                Tensor::from_slice(&COLORMAP.map(|rgb| rgb[c] as f32)).to_device(map.device());
            let a = table.index_select(0, &lo_idx.view([-1])).view_as(map);
            let b = table
                .index_select(0, &(&lo_idx + 1).view([-1]))
                .view_as(map);
            &a + (b - &a) * &frac
        })
        .collect();
    Tensor::stack(&channels, 0)
}

/// The input image (`[C, H, W]`, normalised) as RGB floats in [0, 1] (grey repeated).
fn display_rgb(image: &Tensor, norm: &Normalization) -> Tensor {
    let pixels = norm
        .denormalize(&image.unsqueeze(0))
        .squeeze_dim(0)
        .to_kind(Kind::Float);
    if pixels.size()[0] == 1 {
        pixels.repeat([3, 1, 1])
    } else {
        pixels
    }
}

/// The input image (`[C, H, W]`, normalised) with the map blended over it at `alpha`.
pub fn blend(image: &Tensor, map: &Tensor, norm: &Normalization, alpha: f64) -> Tensor {
    (display_rgb(image, norm) * (1.0 - alpha) + colorize(map) * alpha).clamp(0.0, 1.0)
}

/// A grid: each input next to its overlay, captioned by the caller.
pub fn overlay_grid(
    name: &str,
    images: &Tensor,
    maps: &Tensor,
    norm: &Normalization,
    captions: &[String],
    pairs_per_row: usize,
) -> Result<Figure> {
    let n = images.size()[0];
    let mut tiles = Vec::new();
    let mut texts = Vec::new();
    for i in 0..n {
        tiles.push(display_rgb(&images.get(i), norm));
        tiles.push(blend(&images.get(i), &maps.get(i), norm, 0.5));
        texts.push(captions.get(i as usize).cloned().unwrap_or_default());
        texts.push("Grad-CAM".into());
    }
    plot::image_grid(
        name,
        &Tensor::stack(&tiles, 0),
        &texts,
        2 * pairs_per_row,
        3,
    )
}
