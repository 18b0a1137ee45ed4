//! Writing PyTorch checkpoint files: the zip layout `torch.save(state_dict, path)` writes
//! (see [`super::torch_file`] for the reading side), so that
//! `torch.load(path, weights_only=True)` returns an `OrderedDict` of tensors that
//! `load_state_dict(…, strict=True)` takes.
//!
//! `<archive>/data.pkl` is a protocol-2 pickle that only names globals the weights-only
//! unpickler allows (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, the
//! typed storage classes); each tensor's bytes are the entry `<archive>/data/<i>`,
//! stored uncompressed and aligned to 64 bytes as torch aligns them.
use super::pickle::op;
use crate::{Error, Result};
use std::io::{Cursor, Write};
use std::path::Path;
use tch::{Device, Kind, Tensor};
use zip::write::{FileOptions, ZipWriter};

/// Writes `tensors` (name → tensor, any device) as a PyTorch zip checkpoint at `path`,
/// atomically. Names are kept as given (tch's dotted paths are PyTorch's).
pub fn write_state_dict(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let archive = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && s.is_ascii())
        .unwrap_or("archive");
    let mut pickle = Pickle::default();
    let mut storages = Vec::with_capacity(tensors.len());
    pickle.global("collections", "OrderedDict");
    pickle.push(op::EMPTY_TUPLE);
    pickle.push(op::REDUCE);
    pickle.push(op::MARK);
    for (i, (name, tensor)) in tensors.iter().enumerate() {
        let tensor = tensor.to_device(Device::Cpu).contiguous();
        pickle.text(name);
        pickle.tensor(
            &tensor,
            &i.to_string(),
            storage_class(path, name, tensor.kind())?,
        );
        storages.push(raw_bytes(&tensor));
    }
    pickle.push(op::SETITEMS);
    pickle.push(op::STOP);
    let bytes = zip_archive(archive, &pickle.0, &storages)
        .map_err(|e| Error::data(path, format!("writing the PyTorch checkpoint: {e}")))?;
    crate::io::write_atomic(path, &bytes)
}

/// Writes the tensors of the safetensors file `from` as the PyTorch checkpoint `to`.
pub fn convert_safetensors(from: &Path, to: &Path) -> Result<()> {
    write_state_dict(to, &super::read_file(from)?)
}

/// The `torch.<X>Storage` class of a dtype.
fn storage_class(path: &Path, name: &str, kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Float => "FloatStorage",
        Kind::Double => "DoubleStorage",
        Kind::Half => "HalfStorage",
        Kind::BFloat16 => "BFloat16Storage",
        Kind::Int64 => "LongStorage",
        Kind::Int => "IntStorage",
        Kind::Int16 => "ShortStorage",
        Kind::Int8 => "CharStorage",
        Kind::Uint8 => "ByteStorage",
        Kind::Bool => "BoolStorage",
        other => {
            return Err(Error::data(
                path,
                format!(
                "tensor `{name}` has dtype {other:?}, which a PyTorch checkpoint here cannot hold"
            ),
            ))
        }
    })
}

/// The little-endian bytes of a contiguous CPU tensor.
fn raw_bytes(tensor: &Tensor) -> Vec<u8> {
    let numel = tensor.numel();
    let mut bytes = vec![0u8; numel * tensor.kind().elt_size_in_bytes()];
    if numel > 0 {
        tensor.copy_data_u8(&mut bytes, numel);
    }
    bytes
}

/// The zip file: `data.pkl`, the storages, `byteorder` and `version`, all stored.
fn zip_archive(
    archive: &str,
    pickle: &[u8],
    storages: &[Vec<u8>],
) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A fixed time stamp (1980-01-01, zip's epoch): the same weights give the same file.
    let stored = FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut entry = |name: String, bytes: &[u8]| -> zip::result::ZipResult<()> {
        zip.start_file_aligned(name, stored, 64)?;
        zip.write_all(bytes)?;
        Ok(())
    };
    entry(format!("{archive}/data.pkl"), pickle)?;
    entry(format!("{archive}/byteorder"), b"little")?;
    for (i, bytes) in storages.iter().enumerate() {
        entry(format!("{archive}/data/{i}"), bytes)?;
    }
    entry(format!("{archive}/version"), b"3\n")?;
    Ok(zip.finish()?.into_inner())
}

/// A protocol-2 pickle being written.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn push(&mut self, opcode: u8) {
        if self.0.is_empty() {
            self.0.extend([op::PROTO, 2]);
        }
        self.0.push(opcode);
    }

    fn global(&mut self, module: &str, name: &str) {
        self.push(op::GLOBAL);
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
    }

    fn text(&mut self, text: &str) {
        self.push(op::BINUNICODE);
        self.0.extend((text.len() as u32).to_le_bytes());
        self.0.extend(text.as_bytes());
    }

    fn int(&mut self, value: i64) {
        match i32::try_from(value) {
            Ok(v) => {
                self.push(op::BININT);
                self.0.extend(v.to_le_bytes());
            }
            Err(_) => {
                self.push(op::LONG1);
                self.0.push(8);
                self.0.extend(value.to_le_bytes());
            }
        }
    }

    fn int_tuple(&mut self, values: &[i64]) {
        if values.is_empty() {
            return self.push(op::EMPTY_TUPLE);
        }
        self.push(op::MARK);
        for &v in values {
            self.int(v);
        }
        self.push(op::TUPLE);
    }

    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, the storage
    /// a persistent id `('storage', torch.<class>, key, 'cpu', numel)`.
    fn tensor(&mut self, tensor: &Tensor, key: &str, class: &str) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.push(op::MARK);
        self.push(op::MARK);
        self.text("storage");
        self.global("torch", class);
        self.text(key);
        self.text("cpu");
        self.int(tensor.numel() as i64);
        self.push(op::TUPLE);
        self.push(op::BINPERSID);
        self.int(0);
        self.int_tuple(&tensor.size());
        self.int_tuple(&tensor.stride());
        self.push(op::NEWFALSE);
        self.global("collections", "OrderedDict");
        self.push(op::EMPTY_TUPLE);
        self.push(op::REDUCE);
        self.push(op::TUPLE);
        self.push(op::REDUCE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_checkpoints_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("best.pt");
        let tensors = vec![
            (
                "conv.weight".to_string(),
                Tensor::randn([4, 1, 3, 3], (Kind::Float, Device::Cpu)),
            ),
            (
                "bn.running_var".to_string(),
                Tensor::rand([4], (Kind::Double, Device::Cpu)),
            ),
            ("steps".to_string(), Tensor::from(7i64)),
            (
                "transposed".to_string(),
                Tensor::arange(6, (Kind::Int, Device::Cpu))
                    .view([2, 3])
                    .tr(),
            ),
            (
                "empty".to_string(),
                Tensor::zeros([0, 3], (Kind::Float, Device::Cpu)),
            ),
        ];
        write_state_dict(&path, &tensors).unwrap();
        let back = super::super::torch_file::read_state_dict(&path).unwrap();
        assert_eq!(back.len(), tensors.len());
        for ((name, want), (got_name, got)) in tensors.iter().zip(&back) {
            assert_eq!(name, got_name);
            assert_eq!(want.size(), got.size(), "{name}");
            assert_eq!(want.kind(), got.kind(), "{name}");
            assert!(want.equal(got), "{name}");
        }
    }
}
