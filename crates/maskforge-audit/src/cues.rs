//! What an image file says besides its label: how it was encoded (format,
//! JPEG quality and chroma subsampling, EXIF and ICC blocks, size) and what
//! its pixels look like away from the mask (brightness, colour, sharpness,
//! noise). Pure: bytes and decoded pixels in, numbers out.

use image::{GrayImage, RgbImage};
use serde::Serialize;

/// File-level cues, read from the bytes without decoding the pixels.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FileCues {
    /// `jpeg`, `png`, `webp`, ... (by content).
    pub format: String,
    /// IJG quality (1–100) estimated from the luminance quantisation table.
    pub jpeg_quality: Option<f32>,
    /// `4:4:4`, `4:2:2`, `4:2:0`, `grey` or `HxV`.
    pub subsampling: Option<String>,
    /// Whether the file carries an EXIF block (JPEG APP1, PNG `eXIf`).
    pub exif: bool,
    /// Whether the file carries an ICC profile (JPEG APP2, PNG `iCCP`).
    pub icc: bool,
    /// Width in pixels, from the header (0 when unreadable).
    pub width: u32,
    /// Height in pixels, from the header (0 when unreadable).
    pub height: u32,
    /// File size in bytes.
    pub bytes: u64,
}

/// Pixel cues measured outside the region that may hold the label (the mask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PixelCues {
    /// Mean luma, 0–255.
    pub brightness: f32,
    /// Mean R−G: the red side of the colour cast.
    pub red_green: f32,
    /// Mean B−G: the blue side of the colour cast.
    pub blue_green: f32,
    /// Mean |Laplacian| of luma: edges and detail.
    pub sharpness: f32,
    /// Median |Laplacian| of luma: grain in flat areas (edges are the few).
    pub noise: f32,
}

/// IJG's standard luminance quantisation table (any order: only its sum is used).
const STD_LUMINANCE: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// The cues of a file's bytes; `format` is empty when the content is not an
/// image format `image` knows.
pub fn file_cues(bytes: &[u8]) -> FileCues {
    let format = image::guess_format(bytes).map(|f| format!("{f:?}").to_lowercase()).unwrap_or_default();
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((0, 0));
    let mut cues = FileCues { format, width, height, bytes: bytes.len() as u64, ..Default::default() };
    match cues.format.as_str() {
        "jpeg" => jpeg_cues(bytes, &mut cues),
        "png" => {
            cues.icc = png_has_chunk(bytes, b"iCCP");
            cues.exif = png_has_chunk(bytes, b"eXIf");
        }
        _ => {}
    }
    cues
}

/// Walks a JPEG's marker segments up to the first scan.
fn jpeg_cues(bytes: &[u8], cues: &mut FileCues) {
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF && bytes[i + 1] != 0xDA {
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        let Some(payload) = bytes.get(i + 4..i + 2 + len) else { break };
        match marker {
            0xDB => cues.jpeg_quality = cues.jpeg_quality.or_else(|| luminance_quality(payload)),
            0xC0..=0xC2 => cues.subsampling = subsampling(payload),
            0xE1 => cues.exif |= payload.starts_with(b"Exif\0"),
            0xE2 => cues.icc |= payload.starts_with(b"ICC_PROFILE\0"),
            _ => {}
        }
        i += 2 + len;
    }
}

/// The IJG quality whose scaled standard table has the sum of table 0.
fn luminance_quality(dqt: &[u8]) -> Option<f32> {
    let (&pq_tq, rest) = dqt.split_first()?;
    let (precision, table) = (pq_tq >> 4, pq_tq & 0x0F);
    if table != 0 {
        return None;
    }
    let sum: u32 = match precision {
        0 => rest.get(..64)?.iter().map(|&v| v as u32).sum(),
        _ => rest.get(..128)?.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum(),
    };
    let std: u32 = STD_LUMINANCE.iter().map(|&v| v as u32).sum();
    let scale = 100.0 * sum as f32 / std as f32;
    let quality = if scale <= 100.0 { (200.0 - scale) / 2.0 } else { 5000.0 / scale };
    Some(quality.clamp(1.0, 100.0).round())
}

/// The chroma subsampling a frame header declares.
fn subsampling(sof: &[u8]) -> Option<String> {
    let components = *sof.get(5)? as usize;
    let factors: Vec<(u8, u8)> =
        (0..components).filter_map(|c| sof.get(6 + 3 * c + 1)).map(|&hv| (hv >> 4, hv & 0x0F)).collect();
    Some(match factors.as_slice() {
        [_] => "grey".into(),
        [y, rest @ ..] if rest.iter().all(|c| c == y) => "4:4:4".into(),
        [(2, 1), rest @ ..] if rest.iter().all(|&c| c == (1, 1)) => "4:2:2".into(),
        [(2, 2), rest @ ..] if rest.iter().all(|&c| c == (1, 1)) => "4:2:0".into(),
        [(h, v), ..] => format!("{h}x{v}"),
        [] => return None,
    })
}

fn png_has_chunk(bytes: &[u8], kind: &[u8; 4]) -> bool {
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
        let name = &bytes[i + 4..i + 8];
        if name == kind {
            return true;
        }
        if name == b"IDAT" {
            return false;
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    false
}

/// Pixel cues of `img` over the pixels where `keep` is non-zero.
pub fn pixel_cues(img: &RgbImage, keep: &GrayImage) -> PixelCues {
    let luma = image::imageops::grayscale(img);
    let (w, h) = img.dimensions();
    let (mut n, mut sums) = (0f64, [0f64; 3]);
    let mut laplacian: Vec<f32> = Vec::new();
    for (x, y, p) in img.enumerate_pixels() {
        if keep.get_pixel(x, y).0[0] == 0 {
            continue;
        }
        n += 1.0;
        let [r, g, b] = p.0.map(f64::from);
        sums[0] += 0.299 * r + 0.587 * g + 0.114 * b;
        sums[1] += r - g;
        sums[2] += b - g;
        if x > 0 && y > 0 && x + 1 < w && y + 1 < h {
            let l = |dx: i32, dy: i32| luma.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32).0[0] as f32;
            laplacian.push((4.0 * l(0, 0) - l(-1, 0) - l(1, 0) - l(0, -1) - l(0, 1)).abs());
        }
    }
    if n == 0.0 {
        return PixelCues::default();
    }
    let sharpness = laplacian.iter().sum::<f32>() / laplacian.len().max(1) as f32;
    laplacian.sort_by(f32::total_cmp);
    let noise = laplacian.get(laplacian.len() / 2).copied().unwrap_or(0.0);
    let mean = |s: f64| (s / n) as f32;
    PixelCues { brightness: mean(sums[0]), red_green: mean(sums[1]), blue_green: mean(sums[2]), sharpness, noise }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(quality: u8, img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(img).unwrap();
        out
    }

    #[test]
    fn jpeg_quality_and_subsampling_are_read_from_the_header() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 90]));
        for q in [50u8, 75, 90] {
            let cues = file_cues(&jpeg(q, &img));
            assert_eq!(cues.format, "jpeg");
            assert_eq!(cues.jpeg_quality, Some(q as f32), "quality {q}");
            assert_eq!((cues.width, cues.height), (64, 48));
            assert!(!cues.exif && !cues.icc);
        }
        // `image`'s encoder keeps full-resolution colour.
        assert_eq!(file_cues(&jpeg(80, &img)).subsampling.as_deref(), Some("4:4:4"));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let cues = file_cues(&png);
        assert_eq!((cues.format.as_str(), cues.jpeg_quality, cues.subsampling), ("png", None, None));
    }

    #[test]
    fn pixel_cues_skip_the_blanked_region() {
        let img =
            RgbImage::from_fn(40, 40, |x, _| if x < 20 { image::Rgb([200, 100, 50]) } else { image::Rgb([0; 3]) });
        let left = GrayImage::from_fn(40, 40, |x, _| image::Luma([if x < 20 { 255 } else { 0 }]));
        let c = pixel_cues(&img, &left);
        assert!((c.red_green - 100.0).abs() < 1e-3 && (c.blue_green + 50.0).abs() < 1e-3, "{c:?}");
        assert_eq!(c.noise, 0.0);
    }
}
