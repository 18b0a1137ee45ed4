//! Charts drawn with plotters' SVG backend: bars, lines, heatmaps.
use super::{plot_err, slug, Figure, PALETTE};
use crate::Result;
use plotters::prelude::*;

/// Grouped vertical bars: one group per category, one bar per series.
/// `series`: (legend name, one value per category).
pub fn bars(
    title: &str,
    categories: &[String],
    series: &[(&str, Vec<f64>)],
    y_label: &str,
) -> Result<Figure> {
    let mut svg = String::new();
    let err = plot_err(title);
    {
        let root = SVGBackend::with_string(&mut svg, (820, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        // Bars start at 0 and may go negative; headroom above keeps the legend clear.
        let values = || {
            series
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .filter(|v| v.is_finite())
        };
        let y_max = values().fold(0.0f64, f64::max) * 1.25;
        let y_min = values().fold(0.0f64, f64::min) * 1.12;
        let y_max = if y_max > y_min { y_max } else { y_min + 1e-9 };
        let n = categories.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..n - 0.5, y_min..y_max)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories.len())
            .x_label_formatter(&|x| category_at(categories, *x))
            .y_label_formatter(&|v| tick_label(*v, y_max.abs().max(y_min.abs())))
            .y_desc(y_label)
            .draw()
            .map_err(&err)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (s, (name, values)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let left = |i: usize| i as f64 - 0.4 + s as f64 * width;
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    Rectangle::new(
                        [(left(i), 0.0), (left(i) + width * 0.95, v)],
                        color.filled(),
                    )
                }))
                .map_err(&err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(Figure::from_svg(slug(title), svg))
}

/// Tick text scaled to the axis: scientific below 0.01, no decimals above 100.
fn tick_label(v: f64, axis_max: f64) -> String {
    match axis_max.abs() {
        m if m < 0.01 => format!("{v:.1e}"),
        m if m >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

/// The category name at an integer axis position, or "" between categories.
fn category_at(categories: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    categories.get(i as usize).cloned().unwrap_or_default()
}

/// One named line of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Side-by-side line panels, each `(panel title, x label, series)`; all panels share one
/// figure so that e.g. loss, accuracy and LR read together.
pub fn lines(name: &str, panels: &[(&str, &str, Vec<Series>)]) -> Result<Figure> {
    let mut svg = String::new();
    let err = plot_err(name);
    {
        let width = 400 * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for ((title, x_label, series), area) in panels.iter().zip(areas.iter()) {
            draw_panel(area, title, x_label, series).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(Figure::from_svg(name, svg))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x0, x1) = pts().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = pts().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    let (x0, x1) = if x0 < x1 {
        (x0, x1)
    } else {
        (x0.min(0.0) - 0.5, x0.max(0.0) + 0.5)
    };
    let pad = ((y1 - y0) * 0.08).max(1e-9);
    let (y0, y1) = if y0 <= y1 {
        (y0 - pad, y1 + pad)
    } else {
        (0.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    // Whole-number x values (epochs) get whole-number ticks; y ticks follow the scale.
    let integer_x = series
        .iter()
        .flat_map(|s| s.points.iter())
        .all(|(x, _)| x.fract() == 0.0);
    let x_ticks = if integer_x {
        ((x1 - x0).round() as usize + 1).min(11)
    } else {
        10
    };
    let y_span = y1.abs().max(y0.abs());
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_labels(x_ticks)
        .x_label_formatter(&|v| {
            if integer_x {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .y_label_formatter(&|v| tick_label(*v, y_span))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        if points.len() <= 40 {
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 2, color.filled())),
            )?;
        }
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}

/// Confusion-matrix heatmap of `counts[true][predicted]`: colour = `shares` (each row
/// normalised by its true class), text = count.
pub fn confusion_heatmap(
    counts: &[Vec<u64>],
    shares: &[Vec<f64>],
    classes: &[String],
) -> Result<Figure> {
    use crate::render::escape;
    let k = classes.len();
    let (cell, left, top) = (46u32, 110u32, 40u32);
    let (w, h) = (left + cell * k as u32 + 20, top + cell * k as u32 + 100);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"16\" text-anchor=\"middle\">Confusion matrix (rows: true, columns: predicted)</text>\n",
        w / 2
    );
    let norm = shares;
    for (t, row) in counts.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let share = norm[t][p];
            // White → Okabe–Ito blue, by share of the row.
            let mix = |c: f64| (255.0 - (255.0 - c) * share).round() as u8;
            let (x, y) = (left + p as u32 * cell, top + t as u32 * cell);
            let text_color = if share > 0.55 { "white" } else { "black" };
            svg += &format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({},{},{})\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{text_color}\">{count}</text>\n",
                mix(0.0), mix(114.0), mix(178.0), x + cell / 2, y + cell / 2 + 4
            );
        }
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            left - 6,
            top + t as u32 * cell + cell / 2 + 4,
            escape(&classes[t])
        );
    }
    for (p, name) in classes.iter().enumerate() {
        let (x, y) = (left + p as u32 * cell + cell / 2, top + k as u32 * cell + 8);
        svg += &format!("<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" transform=\"rotate(-45 {x} {y})\">{}</text>\n", escape(name));
    }
    svg += "</svg>\n";
    Ok(Figure::from_svg("confusion_matrix", svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_render_categories_and_legend() -> Result<()> {
        let cats = vec!["Coat".to_string(), "Bag".to_string()];
        let f = bars(
            "Class balance",
            &cats,
            &[("train", vec![3.0, 5.0]), ("test", vec![1.0, 2.0])],
            "images",
        )?;
        assert!(
            f.svg.starts_with("<svg") && f.svg.contains("\nCoat\n") && f.svg.contains("\ntest\n"),
            "{}",
            f.svg
        );
        assert_eq!(f.name, "class_balance");
        Ok(())
    }

    #[test]
    fn lines_and_heatmap_render() -> Result<()> {
        let f = lines(
            "curves",
            &[(
                "loss",
                "epoch",
                vec![
                    Series::new("train", vec![(1.0, 0.5), (2.0, 0.3)]),
                    Series::new("val", vec![(1.0, 0.6), (2.0, f64::NAN)]),
                ],
            )],
        )?;
        assert!(
            f.svg.contains("\ntrain\n") && f.svg.contains("\nval\n"),
            "{}",
            f.svg
        );
        let c = crate::metrics::Confusion::new(&[0, 1, 1], &[0, 1, 0], 2);
        let h = confusion_heatmap(&c.counts, &c.row_normalized(), &["a".into(), "b".into()])?;
        assert_eq!(h.svg.matches("<rect x=").count(), 4);
        Ok(())
    }
}
