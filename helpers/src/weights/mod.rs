//! Pretrained weights: reading PyTorch checkpoint files safely and loading state_dicts
//! into the library's models by name.
pub mod pickle;
pub mod torch_file;
