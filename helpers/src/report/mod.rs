//! The report's own pieces: prose computed from the runs ([`findings`]) or checked
//! against them ([`readings`]), the HTML index of a folder of runs ([`runs`]) and the
//! folders an assignment collects ([`handin`]) with its checklist ([`checklist`]), and TensorBoard captures
//! ([`tensorboard_shots`]). Tables and
//! Markdown are [`crate::render`]'s; the environment table is [`crate::backend::versions`].
pub mod answers;
pub mod checklist;
pub mod findings;
pub mod handin;
pub mod readings;
pub mod regression;
pub mod runs;
pub mod tensorboard_shots;

pub use crate::backend::{versions, Versions};
pub use crate::render::{Markdown, Table};
