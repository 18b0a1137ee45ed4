//! A TensorBoard event-file writer — scalars, images and hyper-parameters (the hparams
//! plugin) — so `tensorboard --logdir saved_models` shows every run's curves and
//! compares runs by their settings. No maintained Rust writer exists; the format is small:
//! TFRecord frames (u64 length, masked CRC-32C of it, the record, masked CRC-32C of it)
//! around `Event` protobufs (tensorflow/core/util/event.proto), encoded by hand here.
use crate::io::protobuf::{put_bytes, put_double, put_float, put_varint_field};
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
        self.write_summary(step, &val)
    }

    /// Logs an image (`[C, H, W]`, C = 1 or 3, `u8` or float in [0, 1]) as PNG.
    pub fn image(&mut self, tag: &str, step: i64, image: &tch::Tensor) -> Result<()> {
        let size = image.size();
        let png = crate::plot::png_bytes(image)?;
        let mut img = Vec::new();
        put_varint_field(&mut img, 1, size[1] as u64);
        put_varint_field(&mut img, 2, size[2] as u64);
        put_varint_field(&mut img, 3, size[0] as u64); // colorspace: 1 grey, 3 RGB
        put_bytes(&mut img, 4, &png);
        let mut val = Vec::new();
        put_bytes(&mut val, 1, tag.as_bytes());
        put_bytes(&mut val, 4, &img);
        self.write_summary(step, &val)
    }

    /// Records the run's hyper-parameters for TensorBoard's HPARAMS tab (a session
    /// start of the hparams plugin; the run's scalars are its metrics).
    pub fn hparams(&mut self, hparams: &[(String, HParam)]) -> Result<()> {
        let mut start = Vec::new();
        for (name, value) in hparams {
            let mut v = Vec::new();
            match value {
                HParam::Number(x) => put_double(&mut v, 2, *x),
                HParam::Text(t) => put_bytes(&mut v, 3, t.as_bytes()),
                HParam::Bool(b) => put_varint_field(&mut v, 4, u64::from(*b)),
            }
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, name.as_bytes());
            put_bytes(&mut entry, 2, &v);
            put_bytes(&mut start, 1, &entry);
        }
        put_double(&mut start, 5, wall_time());
        self.hparams_summary("_hparams_/session_start_info", 3, &start)
    }

    /// Marks the hparams session finished (`success`) or failed.
    pub fn hparams_end(&mut self, success: bool) -> Result<()> {
        let mut end = Vec::new();
        put_varint_field(&mut end, 1, if success { 1 } else { 2 }); // STATUS_SUCCESS / STATUS_FAILURE
        put_double(&mut end, 2, wall_time());
        self.hparams_summary("_hparams_/session_end_info", 4, &end)
    }

    /// A summary value carrying HParamsPluginData{version 0, <field> = payload}, with
    /// the plugin's metadata and the null tensor TensorBoard's own writer attaches.
    fn hparams_summary(&mut self, tag: &str, field: u64, payload: &[u8]) -> Result<()> {
        let mut content = Vec::new();
        put_varint_field(&mut content, 1, 0);
        put_bytes(&mut content, field, payload);
        let mut plugin = Vec::new();
        put_bytes(&mut plugin, 1, b"hparams");
        put_bytes(&mut plugin, 2, &content);
        let mut metadata = Vec::new();
        put_bytes(&mut metadata, 1, &plugin);
        let mut tensor = Vec::new();
        put_varint_field(&mut tensor, 1, 1); // DT_FLOAT
        put_bytes(&mut tensor, 2, &[]); // scalar shape
        put_bytes(&mut tensor, 5, &0f32.to_le_bytes()); // float_val [0.0], packed
        let mut val = Vec::new();
        put_bytes(&mut val, 1, tag.as_bytes());
        put_bytes(&mut val, 8, &tensor);
        put_bytes(&mut val, 9, &metadata);
        self.write_summary(0, &val)
    }

    fn write_summary(&mut self, step: i64, value: &[u8]) -> Result<()> {
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, value);
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

/// A hyper-parameter value, as TensorBoard's hparams plugin types them.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl HParam {
    /// A config value as a hyper-parameter (arrays and tables as their TOML text).
    pub fn from_toml(v: toml::Value) -> HParam {
        match v {
            toml::Value::Float(x) => HParam::Number(x),
            toml::Value::Integer(i) => HParam::Number(i as f64),
            toml::Value::Boolean(b) => HParam::Bool(b),
            toml::Value::String(s) => HParam::Text(s),
            other => HParam::Text(other.to_string()),
        }
    }
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
