//! Images as figures: grids of thumbnails with captions (SVG with embedded PNGs).
use super::{plot_err, Figure};
use crate::render::escape;
use crate::{Error, Result};
use base64::Engine;
use tch::{Kind, Tensor};

/// A grid of images with one caption each; pixels are upscaled without smoothing.
/// `images`: `[N, C, H, W]` with C = 1 or 3, `u8` or float in [0, 1].
pub fn image_grid(
    name: &str,
    images: &Tensor,
    captions: &[String],
    cols: usize,
    scale: u32,
) -> Result<Figure> {
    let size = images.size();
    if size.len() != 4 || !(size[1] == 1 || size[1] == 3) {
        return Err(Error::Shape {
            op: "image_grid",
            expected: "[N, 1|3, H, W]".into(),
            got: size,
        });
    }
    let (n, h, w) = (size[0] as usize, size[2] as u32, size[3] as u32);
    let cols = cols.max(1);
    // Cells at least ~20 characters wide, and tall enough for the longest caption.
    let lines = captions
        .iter()
        .map(|c| c.lines().count())
        .max()
        .unwrap_or(0) as u32;
    let (cell_w, cell_h) = ((w * scale + 12).max(124), h * scale + 10 + 12 * lines);
    let rows = n.div_ceil(cols);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        cols as u32 * cell_w,
        rows as u32 * cell_h
    );
    for i in 0..n {
        let (x, y) = (
            (i % cols) as u32 * cell_w + 6,
            (i / cols) as u32 * cell_h + 4,
        );
        let png = png_base64(&images.get(i as i64))?;
        svg += &format!(
            "<image x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,{png}\"/>\n",
            w * scale,
            h * scale
        );
        let caption = captions.get(i).map(String::as_str).unwrap_or("");
        for (line_no, line) in caption.lines().enumerate() {
            svg += &format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                x + w * scale / 2,
                y + h * scale + 13 + 12 * line_no as u32,
                escape(line)
            );
        }
    }
    svg += "</svg>\n";
    Ok(Figure::from_svg(name, svg))
}

/// Tiles `[N, C, H, W]` images into one `[C, rows·H, cols·W]` image (missing tiles black).
pub fn tile(images: &Tensor, cols: i64) -> Tensor {
    let s = images.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let rows = (n + cols - 1) / cols;
    let missing = rows * cols - n;
    let padded = if missing > 0 {
        Tensor::cat(
            &[
                images.shallow_clone(),
                Tensor::zeros([missing, c, h, w], (images.kind(), images.device())),
            ],
            0,
        )
    } else {
        images.shallow_clone()
    };
    padded
        .view([rows, cols, c, h, w])
        .permute([2, 0, 3, 1, 4])
        .reshape([c, rows * h, cols * w])
}

/// Encodes one `[C, H, W]` image as a base64 PNG (grey or RGB, 8 bits).
pub fn png_base64(image: &Tensor) -> Result<String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(png_bytes(image)?))
}

/// Encodes one `[C, H, W]` image (`u8`, or float in [0, 1]) as PNG bytes.
pub fn png_bytes(image: &Tensor) -> Result<Vec<u8>> {
    let size = image.size();
    if size.len() != 3 || !(size[0] == 1 || size[0] == 3) {
        return Err(Error::Shape {
            op: "png_bytes",
            expected: "[1|3, H, W]".into(),
            got: size,
        });
    }
    let pixels = if image.kind() == Kind::Uint8 {
        image.shallow_clone()
    } else {
        (image.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8)
    };
    let hwc = pixels.permute([1, 2, 0]).contiguous();
    let data = Vec::<u8>::try_from(&hwc.view([-1]))?;
    let color = if size[0] == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &data,
        size[2] as u32,
        size[1] as u32,
        color,
    )
    .map_err(plot_err("png"))?;
    Ok(out)
}

/// Encodes one RGB `[3, H, W]` photograph (`u8`) as a base64 JPEG of `quality`: aerial
/// and camera images embed in a figure at a fraction of their PNG size, where the lossless
/// PNG of [`png_base64`] is right for plots and thumbnails with flat colours.
pub fn jpeg_base64(image: &Tensor, quality: u8) -> Result<String> {
    let size = image.size();
    if size.len() != 3 || size[0] != 3 || image.kind() != Kind::Uint8 {
        return Err(Error::Shape {
            op: "jpeg_base64",
            expected: "[3, H, W] u8".into(),
            got: size,
        });
    }
    let data = Vec::<u8>::try_from(&image.permute([1, 2, 0]).contiguous().view([-1]))?;
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality),
        &data,
        size[2] as u32,
        size[1] as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(plot_err("jpeg"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn grid_embeds_one_png_per_image() -> Result<()> {
        let imgs = Tensor::zeros([3, 1, 4, 4], (Kind::Uint8, tch::Device::Cpu));
        let f = image_grid("g", &imgs, &["a".into(), "b<".into(), "c".into()], 2, 2)?;
        assert_eq!(f.svg.matches("data:image/png;base64,").count(), 3);
        assert!(f.svg.contains(">b&lt;<"));
        Ok(())
    }

    #[test]
    fn tiles_fill_rows_and_pad() {
        let imgs = Tensor::arange(3, (Kind::Float, tch::Device::Cpu)).view([3, 1, 1, 1]);
        let t = tile(&imgs, 2);
        assert_eq!(t.size(), vec![1, 2, 2]);
        assert_eq!(
            Vec::<f32>::try_from(t.view([-1])).unwrap(),
            vec![0.0, 1.0, 2.0, 0.0]
        );
    }

    #[test]
    fn png_round_trips_size() -> Result<()> {
        let img = Tensor::rand([3, 5, 7], (Kind::Float, tch::Device::Cpu));
        let bytes = png_bytes(&img)?;
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (7, 5));
        Ok(())
    }
}
