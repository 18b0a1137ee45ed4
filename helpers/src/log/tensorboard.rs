//! A TensorBoard event-file writer (scalars), so `tensorboard --logdir saved_models`
//! shows every run's curves. No maintained Rust writer exists; the format is small:
//! TFRecord frames (u64 length, masked CRC-32C of it, the record, masked CRC-32C of it)
//! around `Event` protobufs (tensorflow/core/util/event.proto), encoded by hand here.
use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends scalar summaries to one `events.out.tfevents.*` file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Creates a new event file in `dir` (created if needed) and writes its header event.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let now = wall_time();
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            now as u64,
            std::process::id()
        ));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = EventWriter { path, file };
        let mut event = Vec::new();
        put_double(&mut event, 1, now);
        put_bytes(&mut event, 3, b"brain.Event:2");
        w.write_record(&event)?;
        Ok(w)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs `value` under `tag` (e.g. `loss/train`) at `step`.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        let mut val = Vec::new();
        put_bytes(&mut val, 1, tag.as_bytes());
        put_float(&mut val, 2, value as f32);
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &val);
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step as u64);
        put_bytes(&mut event, 5, &summary);
        self.write_record(&event)
    }

    /// Flushes to disk (TensorBoard reads the file while it grows).
    pub fn flush(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let mut frame = Vec::with_capacity(data.len() + 16);
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&masked_crc(&len).to_le_bytes());
        frame.extend_from_slice(data);
        frame.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file
            .write_all(&frame)
            .map_err(|e| Error::io(&self.path, e))
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// Protobuf wire format: key = field << 3 | wire type (0 varint, 1 fixed64, 2 bytes, 5 fixed32).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_varint(out, field << 3 | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_float(out: &mut Vec<u8>, field: u64, v: f32) {
    put_varint(out, field << 3 | 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli), bitwise; records are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's masking of CRCs (so that CRCs of CRCs stay well distributed).
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn frames_are_well_formed() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path())?;
        w.scalar("loss/train", 3, 0.5)?;
        w.flush()?;
        let bytes = std::fs::read(w.path()).unwrap();
        let mut pos = 0;
        let mut records = 0;
        while pos < bytes.len() {
            let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()),
                masked_crc(&bytes[pos..pos + 8])
            );
            let data = &bytes[pos + 12..pos + 12 + len];
            assert_eq!(
                u32::from_le_bytes(bytes[pos + 12 + len..pos + 16 + len].try_into().unwrap()),
                masked_crc(data)
            );
            pos += 16 + len;
            records += 1;
        }
        assert_eq!(records, 2);
        assert!(bytes.windows(10).any(|w| w == b"loss/train"));
        Ok(())
    }
}
