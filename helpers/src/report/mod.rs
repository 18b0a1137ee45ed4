//! What the notebook shows: HTML tables ([`Table`]) and the environment ([`versions`]).
pub mod env;
pub mod table;

pub use env::{versions, Versions};
pub use table::Table;

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
