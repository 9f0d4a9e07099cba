use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why an image could not be loaded. Each message is one line that names the
/// file, suitable for `failures.csv` and for the terminal.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read file: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: empty file (0 bytes)")]
    Empty { path: PathBuf },
    #[error("{path}: not a recognised image format")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: image is {width}x{height}, over the limit of {max_pixels} pixels (raise --max-pixels)")]
    TooLarge { path: PathBuf, width: u32, height: u32, max_pixels: u64 },
    #[error("{path}: truncated JPEG: the data ends before the end-of-image marker")]
    Truncated { path: PathBuf },
    #[error("{path}: cannot decode {format}: {message}")]
    Decode { path: PathBuf, format: String, message: String },
}

impl LoadError {
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Io { path, .. }
            | LoadError::Empty { path }
            | LoadError::UnknownFormat { path }
            | LoadError::Truncated { path }
            | LoadError::TooLarge { path, .. }
            | LoadError::Decode { path, .. } => path,
        }
    }

    /// The message without the leading path, for reports keyed by path.
    pub fn reason(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.path().display());
        full.strip_prefix(&prefix).map(str::to_owned).unwrap_or(full)
    }
}

/// Limits checked from the header, before pixels are allocated.
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    /// Largest width × height accepted (default 100 megapixels).
    pub max_pixels: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits { max_pixels: 100_000_000 }
    }
}

/// Reads and decodes `path` into upright 8-bit RGB.
///
/// The format is sniffed from the content, not the extension. Grayscale,
/// 16-bit, alpha and CMYK inputs are converted to RGB (alpha is dropped: faces
/// are judged on their colour). The EXIF orientation tag is applied, so phone
/// photos come out the way they are shown.
pub fn load_rgb(path: &Path, limits: LoadLimits) -> Result<RgbImage, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.into(), source })?;
    load_rgb_from_bytes(path, &bytes, limits)
}

/// As [`load_rgb`], for bytes already in memory; `path` is used in errors.
pub fn load_rgb_from_bytes(path: &Path, bytes: &[u8], limits: LoadLimits) -> Result<RgbImage, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: path.into() });
    }
    let format = image::guess_format(bytes).map_err(|_| LoadError::UnknownFormat { path: path.into() })?;
    // The JPEG decoder fills a cut-off image with grey and reports success;
    // PIL (and so a PyTorch data loader) raises "image file is truncated".
    // Such a file must not pass as a photo.
    if format == ImageFormat::Jpeg && jpeg_truncation(bytes).is_some() {
        return Err(LoadError::Truncated { path: path.into() });
    }
    let fmt_name = format!("{format:?}").to_uppercase();
    let decode_err = |e: image::ImageError| LoadError::Decode {
        path: path.into(),
        format: fmt_name.clone(),
        message: one_line(&e.to_string()),
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut lim = image::Limits::default();
    // The decoder's own allocation cap, a second guard behind our pixel check.
    lim.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    if (width as u64) * (height as u64) > limits.max_pixels {
        return Err(LoadError::TooLarge { path: path.into(), width, height, max_pixels: limits.max_pixels });
    }
    if width == 0 || height == 0 {
        return Err(LoadError::Decode { path: path.into(), format: fmt_name, message: "zero width or height".into() });
    }
    // A broken EXIF block is not worth losing the photo over: treat it as upright.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Encodes an RGB image in the format its extension names (JPEG at `quality`).
pub fn encode_image(img: &RgbImage, ext_path: &Path, jpeg_quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let format = ImageFormat::from_path(ext_path).unwrap_or(ImageFormat::Png);
    let mut out = Vec::with_capacity((img.width() * img.height()) as usize / 4);
    match format {
        ImageFormat::Jpeg => encode_jpeg(img, jpeg_quality, &mut out)?,
        ImageFormat::Png => {
            // Fast compression: outputs are datasets, written by the thousand.
            let enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            img.write_with_encoder(enc)?;
        }
        other => {
            img.write_to(&mut Cursor::new(&mut out), other)?;
        }
    }
    Ok(out)
}

/// Baseline JPEG with full-resolution colour (4:4:4, as `image`'s encoder
/// wrote), by the `jpeg-encoder` crate (about 1.8x the speed of
/// `image`'s encoder; its scalar code gives the same bytes on every CPU).
fn encode_jpeg(img: &RgbImage, quality: u8, out: &mut Vec<u8>) -> Result<(), image::ImageError> {
    let fail = |e: String| image::ImageError::Encoding(image::error::EncodingError::new(ImageFormat::Jpeg.into(), e));
    let (w, h) = (img.width(), img.height());
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(fail(format!("{w}x{h} is larger than JPEG's 65535x65535")));
    };
    let enc = jpeg_encoder::Encoder::new(out, quality.clamp(1, 100));
    enc.encode(img.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb).map_err(|e| fail(e.to_string()))
}

/// Encodes (by extension) and writes atomically.
pub fn save_rgb_atomic(img: &RgbImage, path: &Path, jpeg_quality: u8) -> std::io::Result<()> {
    let bytes = encode_image(img, path, jpeg_quality).map_err(std::io::Error::other)?;
    crate::write_atomic(path, &bytes)
}

/// Walks a JPEG's marker segments and entropy-coded scans; `Some(reason)`
/// when the data runs out before the EOI marker. Anything it does not
/// understand is left to the decoder (`None`), so it can only ever reject
/// files that really are cut short.
pub fn jpeg_truncation(data: &[u8]) -> Option<String> {
    if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let truncated = || Some("truncated JPEG: the data ends before the end-of-image marker".to_string());
    let mut i = 2;
    loop {
        if i >= data.len() {
            return truncated();
        }
        if data[i] != 0xFF {
            return None;
        }
        // Fill bytes: any number of 0xFF may precede a marker code.
        while i < data.len() && data[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = data.get(i) else { return truncated() };
        i += 1;
        match marker {
            0xD9 => return None,
            0x01 | 0xD0..=0xD7 => continue,
            0x00 => return None,
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (data.get(i), data.get(i + 1)) else { return truncated() };
        let len = u16::from_be_bytes([hi, lo]) as usize;
        if len < 2 {
            return None;
        }
        i += len;
        if marker != 0xDA {
            continue;
        }
        // Entropy-coded data: 0xFF 0x00 is a stuffed byte and 0xFF 0xD0–D7 a
        // restart marker; any other 0xFF pair starts the next marker.
        loop {
            let Some(off) = data.get(i..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) else {
                return truncated();
            };
            i += off;
            match data.get(i + 1) {
                None => return truncated(),
                Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                Some(_) => break,
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb};

    fn png_bytes<P: image::PixelWithColorType>(img: &ImageBuffer<P, Vec<P::Subpixel>>) -> Vec<u8>
    where
        [P::Subpixel]: image::EncodableLayout,
    {
        let mut v = Vec::new();
        img.write_to(&mut Cursor::new(&mut v), ImageFormat::Png).unwrap();
        v
    }

    #[test]
    fn grayscale_and_16_bit_become_rgb8() {
        let gray = ImageBuffer::from_pixel(4, 3, Luma([200u8]));
        let rgb = load_rgb_from_bytes(Path::new("g.png"), &png_bytes(&gray), LoadLimits::default()).unwrap();
        assert_eq!(rgb.dimensions(), (4, 3));
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([200, 200, 200]));

        let deep: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_pixel(2, 2, Rgb([65535u16, 0, 32896]));
        let rgb = load_rgb_from_bytes(Path::new("d.png"), &png_bytes(&deep), LoadLimits::default()).unwrap();
        assert_eq!(rgb.get_pixel(1, 1), &Rgb([255, 0, 128]));
    }

    #[test]
    fn empty_unknown_truncated_and_huge_are_errors_naming_the_file() {
        let p = Path::new("dir/x.jpg");
        let e = load_rgb_from_bytes(p, b"", LoadLimits::default()).unwrap_err();
        assert!(matches!(e, LoadError::Empty { .. }));
        assert!(e.to_string().starts_with("dir/x.jpg: "));

        let e = load_rgb_from_bytes(p, b"hello, not an image", LoadLimits::default()).unwrap_err();
        assert!(matches!(e, LoadError::UnknownFormat { .. }), "{e}");

        let img = ImageBuffer::from_pixel(64, 64, Rgb([1u8, 2, 3]));
        let full = png_bytes(&img);
        let e = load_rgb_from_bytes(p, &full[..full.len() / 2], LoadLimits::default()).unwrap_err();
        assert!(matches!(e, LoadError::Decode { .. }), "{e}");
        assert!(!e.to_string().contains('\n'));

        let jpeg = encode_image(&img, Path::new("a.jpg"), 90).unwrap();
        assert!(load_rgb_from_bytes(p, &jpeg, LoadLimits::default()).is_ok());
        let e = load_rgb_from_bytes(p, &jpeg[..jpeg.len() * 9 / 10], LoadLimits::default()).unwrap_err();
        assert!(matches!(e, LoadError::Truncated { .. }), "{e}");

        let e = load_rgb_from_bytes(p, &full, LoadLimits { max_pixels: 1000 }).unwrap_err();
        assert!(matches!(e, LoadError::TooLarge { width: 64, height: 64, .. }), "{e}");
        assert_eq!(e.reason(), "image is 64x64, over the limit of 1000 pixels (raise --max-pixels)");
    }
}
