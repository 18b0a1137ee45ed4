//! Request bodies to model inputs: an image file (PNG or JPEG, any size) or a JSON batch
//! of pixel arrays, each turned into the `[C, H, W]` raw pixels (0..=255) the served
//! model was trained on. Every refusal is a [`RequestError`] with the HTTP status and a
//! sentence saying what was wrong and what is accepted.
use image::{ImageFormat, ImageReader, Limits};
use serde::Deserialize;
use std::io::Cursor;

/// Largest width or height accepted, in pixels (a 20000×20000 PNG header is refused
/// before any pixel buffer is allocated).
pub const MAX_SIDE: u32 = 8192;
/// Most memory the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 256 << 20;
/// Most images in one JSON batch.
pub const MAX_JSON_IMAGES: usize = 256;

/// A request the server refuses, with the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub message: String,
}

impl RequestError {
    pub fn new(status: u16, message: impl Into<String>) -> RequestError {
        RequestError {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// What one served input must be: channels and spatial size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub channels: u32,
    pub height: u32,
    pub width: u32,
}

impl InputSpec {
    /// Values per image, `C·H·W`.
    pub fn len(&self) -> usize {
        (self.channels * self.height * self.width) as usize
    }

    /// Never true for a model input; here for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decodes a PNG or JPEG file, converts it to the model's channels (grey or RGB) and
/// resizes it to the model's size with the filter the image-folder reader trains with
/// (triangle), as `[C, H, W]` bytes.
pub fn decode_image(bytes: &[u8], spec: InputSpec) -> Result<Vec<u8>, RequestError> {
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Ok(other) => {
            return Err(RequestError::new(
                415,
                format!("{other:?} images are not served; send a PNG or JPEG file"),
            ))
        }
        Err(_) => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(RequestError::new(
                415,
                format!(
                    "the body is not a PNG or JPEG file (first bytes: {}); send an image file, or JSON {{\"pixels\": [[…]]}} with Content-Type: application/json",
                    if head.is_empty() { "none".to_string() } else { head.join(" ") }
                ),
            ));
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => RequestError::new(
            413,
            format!("the image is too large to decode (at most {MAX_SIDE}×{MAX_SIDE} pixels): {e}"),
        ),
        other => RequestError::new(
            400,
            format!("the {format:?} file could not be decoded (truncated or corrupt?): {other}"),
        ),
    })?;
    Ok(crate::data::image_folder::to_pixels(
        img,
        spec.channels as usize,
        (spec.height, spec.width),
    ))
}

/// The JSON body of a batch request: raw pixel values 0..=255, one array per image,
/// flat (`C·H·W` numbers) or nested `[C][H][W]` (or `[H][W]` for one channel).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBatch {
    pub pixels: Vec<serde_json::Value>,
    /// How many classes to return per image (default 3).
    #[serde(default)]
    pub top_k: Option<usize>,
}

/// Parses a JSON batch into `[C, H, W]` byte images; a wrong count of values, a value
/// outside 0..=255 or a non-number names the image and what was expected.
pub fn decode_json(
    body: &[u8],
    spec: InputSpec,
) -> Result<(Vec<Vec<u8>>, Option<usize>), RequestError> {
    let batch: JsonBatch = serde_json::from_slice(body).map_err(|e| {
        RequestError::new(
            400,
            format!("malformed JSON ({e}); expected {{\"pixels\": [[…], …], \"top_k\": 3}} with {} values (0..255) per image", spec.len()),
        )
    })?;
    if batch.pixels.is_empty() || batch.pixels.len() > MAX_JSON_IMAGES {
        return Err(RequestError::new(
            422,
            format!(
                "`pixels` holds {} images; send 1 to {MAX_JSON_IMAGES}",
                batch.pixels.len()
            ),
        ));
    }
    let images = batch
        .pixels
        .iter()
        .enumerate()
        .map(|(i, value)| image_values(i, value, spec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((images, batch.top_k))
}

fn image_values(
    index: usize,
    value: &serde_json::Value,
    spec: InputSpec,
) -> Result<Vec<u8>, RequestError> {
    let mut out = Vec::with_capacity(spec.len());
    let shape = format!("{}×{}×{}", spec.channels, spec.height, spec.width);
    flatten_into(value, &mut out, spec.len()).map_err(|why| {
        RequestError::new(
            422,
            format!(
                "pixels[{index}]: {why}; expected {} values 0..255 ({shape}, flat or nested)",
                spec.len()
            ),
        )
    })?;
    if out.len() != spec.len() {
        return Err(RequestError::new(
            422,
            format!(
                "pixels[{index}] has {} values; the model takes {} ({shape})",
                out.len(),
                spec.len()
            ),
        ));
    }
    Ok(out)
}

/// Appends the numbers of a (nested) JSON array, refusing more than `cap` of them.
fn flatten_into(value: &serde_json::Value, out: &mut Vec<u8>, cap: usize) -> Result<(), String> {
    match value {
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| flatten_into(v, out, cap)),
        serde_json::Value::Number(n) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if !(0.0..=255.0).contains(&v) {
                return Err(format!("value {n} is outside 0..255"));
            }
            if out.len() == cap {
                return Err(format!("more than {cap} values"));
            }
            out.push(v.round() as u8);
            Ok(())
        }
        other => Err(format!("`{other}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREY: InputSpec = InputSpec {
        channels: 1,
        height: 4,
        width: 4,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 10 + y) as u8]));
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn a_png_of_another_size_is_resized_to_the_model_input() {
        let pixels = decode_image(&png(8, 8), GREY).unwrap();
        assert_eq!(pixels.len(), 16);
        let same = decode_image(&png(4, 4), GREY).unwrap();
        assert_eq!(
            same,
            (0..16)
                .map(|i| ((i % 4) * 10 + i / 4) as u8)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn non_images_and_truncated_files_are_refused_with_their_status() {
        assert_eq!(decode_image(b"hello world", GREY).unwrap_err().status, 415);
        let bytes = png(8, 8);
        let truncated = decode_image(&bytes[..bytes.len() / 2], GREY).unwrap_err();
        assert_eq!(truncated.status, 400, "{truncated}");
    }

    #[test]
    fn json_batches_take_flat_or_nested_arrays_and_name_the_bad_image() {
        let flat: Vec<u32> = (0..16).collect();
        let nested: Vec<Vec<u32>> = (0..4)
            .map(|r| (0..4).map(|c| r * 4 + c).collect())
            .collect();
        let body = serde_json::json!({"pixels": [flat, nested], "top_k": 2}).to_string();
        let (images, k) = decode_json(body.as_bytes(), GREY).unwrap();
        assert_eq!(images[0], images[1]);
        assert_eq!(k, Some(2));
        let short = serde_json::json!({"pixels": [[1, 2, 3]]}).to_string();
        let err = decode_json(short.as_bytes(), GREY).unwrap_err();
        assert!(
            err.status == 422 && err.message.contains("pixels[0] has 3 values"),
            "{err}"
        );
        let err = decode_json(b"{\"pixels\": [", GREY).unwrap_err();
        assert!(
            err.status == 400 && err.message.contains("malformed JSON"),
            "{err}"
        );
        let big = serde_json::json!({"pixels": [[300]]}).to_string();
        assert!(decode_json(big.as_bytes(), GREY)
            .unwrap_err()
            .message
            .contains("outside 0..255"));
    }
}
