//! Scatter plots of many points (predicted against true values, residuals), with a
//! reference line: y = x (a perfect prediction) or y = 0 (no residual).
use super::{plot_err, Figure, PALETTE};
use crate::Result;
use plotters::prelude::*;

/// The line drawn under the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// y = x.
    Identity,
    /// y = 0.
    Zero,
}

/// Points, with axes, a reference line and a title. At most `MAX_POINTS` are drawn
/// (every k-th), so an SVG of a large test set stays small.
pub fn scatter(
    title: &str,
    axes: (&str, &str),
    points: &[(f64, f64)],
    reference: Reference,
) -> Result<Figure> {
    const MAX_POINTS: usize = 2500;
    let err = plot_err(title);
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let step = finite.len().div_ceil(MAX_POINTS).max(1);
    let shown: Vec<(f64, f64)> = finite.iter().copied().step_by(step).collect();
    let (x0, x1, y0, y1) = bounds(&finite, reference);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .draw()
            .map_err(&err)?;
        let line = match reference {
            Reference::Identity => vec![(x0.max(y0), x0.max(y0)), (x1.min(y1), x1.min(y1))],
            Reference::Zero => vec![(x0, 0.0), (x1, 0.0)],
        };
        chart
            .draw_series(LineSeries::new(line, BLACK.stroke_width(1)))
            .map_err(&err)?;
        let color = PALETTE[0].mix(0.35);
        chart
            .draw_series(shown.into_iter().map(|p| Circle::new(p, 2, color.filled())))
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(Figure::from_svg(super::slug(title), svg))
}

/// Axis ranges holding every point and the reference line, padded by 4 %.
fn bounds(points: &[(f64, f64)], reference: Reference) -> (f64, f64, f64, f64) {
    let fold = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .map(f)
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)))
    };
    let (mut x0, mut x1) = fold(|p| p.0);
    let (mut y0, mut y1) = fold(|p| p.1);
    if points.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if reference == Reference::Zero {
        (y0, y1) = (y0.min(0.0), y1.max(0.0));
    }
    let pad = |a: f64, b: f64| ((b - a) * 0.04).max(1e-9);
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    (x0 - px, x1 + px, y0 - py, y1 + py)
}
