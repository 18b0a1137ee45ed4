//! [`Figure`]: an SVG drawing that renders inline in the notebook (evcxr's display
//! protocol), survives `nbconvert --to html`, and saves itself to a run directory.
//! In the notebook a figure is shown as an `<img>` of its SVG as a data URL: JupyterLab
//! refuses `image/svg+xml` and inline `<svg>` in a notebook it has not signed (a fresh
//! clone, a handed-in report) but shows sanitised HTML, whose `<img>` may carry any URL
//! scheme; the raw SVG stays in the bundle for viewers that take it.
//! Charts are drawn with plotters' SVG backend; image grids are SVG with embedded PNGs.
mod charts;
mod images;
mod scatter;

pub use charts::{bars, confusion_heatmap, lines, Series};
pub use images::{image_grid, jpeg_base64, png_base64, png_bytes, tile};
pub use scatter::{scatter, Reference};

use crate::render::evcxr_emit;
use crate::{Error, Result};
use plotters::style::RGBColor;
use std::path::Path;

/// Colours for series, colour-blind safe (Okabe–Ito).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// A finished drawing, as SVG text.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Short name, used as the default file name when saved.
    pub name: String,
    /// The SVG document.
    pub svg: String,
}

impl Figure {
    /// Wraps an SVG document.
    pub fn from_svg(name: impl Into<String>, svg: String) -> Self {
        Figure {
            name: name.into(),
            svg,
        }
    }

    /// Saves the SVG to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::write_text_atomic(path.as_ref(), &self.svg)
    }

    /// Saves into `dir` as `<name>.svg` and returns the path.
    pub fn save_in(&self, dir: impl AsRef<Path>) -> Result<std::path::PathBuf> {
        let path = dir.as_ref().join(format!("{}.svg", self.name));
        self.save(&path)?;
        Ok(path)
    }

    /// The figure as an HTML `<img>` whose source is the SVG as a base64 data URL:
    /// shown by trusted and untrusted notebooks alike, vector at any zoom.
    pub fn img_html(&self) -> String {
        use base64::Engine;
        format!(
            "<img class=\"lab-figure\" alt=\"{}\" src=\"data:image/svg+xml;base64,{}\">",
            crate::render::escape(&self.name),
            base64::engine::general_purpose::STANDARD.encode(self.svg.as_bytes())
        )
    }

    /// evcxr's hook: one output bundle with the `<img>` (what Jupyter clients show) and
    /// the SVG itself.
    pub fn evcxr_display(&self) {
        evcxr_emit("text/html", &self.img_html());
        evcxr_emit("image/svg+xml", &self.svg);
    }
}

/// Maps a plotters drawing error to ours, naming the figure.
pub(crate) fn plot_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Plot {
        what: what.to_string(),
        reason: format!("{e:?}"),
    }
}

/// A file-name-safe version of a title.
pub(crate) fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_img_carries_the_svg_itself() {
        let f = Figure::from_svg("a<b", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>".into());
        let html = f.img_html();
        assert!(html.starts_with("<img class=\"lab-figure\" alt=\"a&lt;b\""));
        let b64 = html
            .split("base64,")
            .nth(1)
            .unwrap()
            .trim_end_matches("\">");
        let svg = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(String::from_utf8(svg).unwrap(), f.svg);
    }
}
