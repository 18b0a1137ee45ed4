//! What every result renders as in the notebook, at the bottom of the crate so that any
//! module may return one: HTML tables ([`Table`]), Markdown computed from results
//! ([`Markdown`]), and evcxr's rich-output protocol (`evcxr_emit`).
mod table;

pub use table::Table;

/// A paragraph of Markdown computed from results, so numbers in the report's prose come
/// from the runs instead of being typed; Jupyter renders it like a Markdown cell.
#[derive(Debug, Clone)]
pub struct Markdown(pub String);

impl Markdown {
    /// Jupyter's rich display (evcxr protocol).
    pub fn evcxr_display(&self) {
        evcxr_emit("text/markdown", &self.0);
    }
}

impl std::fmt::Display for Markdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Prints `content` in evcxr's rich-output protocol so Jupyter renders it as `mime`.
pub(crate) fn evcxr_emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}
