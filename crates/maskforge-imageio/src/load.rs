use crate::budget::DecodeBudget;
use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Why an image could not be loaded. Each message is one line that names the
/// file, suitable for `failures.csv` and for the terminal.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read file: {source}")]
    Io {
        /// The image file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{path}: empty file (0 bytes)")]
    Empty {
        /// The image file.
        path: PathBuf,
    },
    /// The content is no image format the decoders know.
    #[error("{path}: not a recognised image format")]
    UnknownFormat {
        /// The image file.
        path: PathBuf,
    },
    /// The header declares more pixels than [`LoadLimits::max_pixels`].
    #[error("{path}: image is {width}x{height}, over the limit of {max_pixels} pixels (raise --max-pixels)")]
    TooLarge {
        /// The image file.
        path: PathBuf,
        /// Width its header declares.
        width: u32,
        /// Height its header declares.
        height: u32,
        /// The limit.
        max_pixels: u64,
    },
    /// A JPEG without its end-of-image marker.
    #[error("{path}: truncated JPEG: the data ends before the end-of-image marker")]
    Truncated {
        /// The image file.
        path: PathBuf,
    },
    /// The header declares more pixels than the compressed data can code
    /// (a cut-off or forged file): the decoder would fill the rest with grey.
    #[error(
        "{path}: truncated or corrupt {format}: {data_bytes} bytes of image data cannot hold the \
         {width}x{height} pixels its header declares (at least {needed_bytes} needed)"
    )]
    TooLittleData {
        /// The image file.
        path: PathBuf,
        /// The format, in words (`JPEG`, `PNG`...).
        format: String,
        /// Width its header declares.
        width: u32,
        /// Height its header declares.
        height: u32,
        /// Bytes of compressed image data in the file.
        data_bytes: u64,
        /// The least compressed bytes that could code that many pixels.
        needed_bytes: u64,
    },
    /// Decoding would take more memory than the limit derived from
    /// [`LoadLimits::max_pixels`].
    #[error(
        "{path}: decoding the {width}x{height} image takes {} MB, over the {} MB one image may take \
         ({DECODE_BYTES_PER_PIXEL} bytes per pixel of --max-pixels; raise --max-pixels)",
        mb(*bytes), mb(*max_bytes)
    )]
    DecodeTooLarge {
        /// The image file.
        path: PathBuf,
        /// Width its header declares.
        width: u32,
        /// Height its header declares.
        height: u32,
        /// Peak bytes the decode would hold.
        bytes: u64,
        /// The most one decode may hold.
        max_bytes: u64,
    },
    /// The pixel buffer could not be allocated.
    #[error("{path}: out of memory: cannot allocate the {} MB its pixels take", mb(*bytes))]
    OutOfMemory {
        /// The image file.
        path: PathBuf,
        /// Bytes asked for.
        bytes: u64,
    },
    /// The decoder failed (corrupt data, unsupported variant of the format).
    #[error("{path}: cannot decode {format}: {message}")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The format, in words.
        format: String,
        /// The decoder's message.
        message: String,
    },
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

impl LoadError {
    /// The image file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Io { path, .. }
            | LoadError::Empty { path }
            | LoadError::UnknownFormat { path }
            | LoadError::Truncated { path }
            | LoadError::TooLarge { path, .. }
            | LoadError::TooLittleData { path, .. }
            | LoadError::DecodeTooLarge { path, .. }
            | LoadError::OutOfMemory { path, .. }
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

/// The highest `--max-pixels` any stage accepts: one decoded image of that
/// size is 3 GB of RGB already, per worker.
pub const MAX_PIXELS_LIMIT: u64 = 1_000_000_000;

/// Bytes one decode may take per pixel of [`LoadLimits::max_pixels`]
/// ([`LoadLimits::max_decode_bytes`]).
pub const DECODE_BYTES_PER_PIXEL: u64 = 8;

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

impl LoadLimits {
    /// The most bytes one decode may hold at its peak (decoder buffers,
    /// conversion to RGB, rotation): [`DECODE_BYTES_PER_PIXEL`] per pixel of
    /// `max_pixels`, at least 64 MiB so small limits still decode small files.
    pub fn max_decode_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(DECODE_BYTES_PER_PIXEL).max(64 << 20)
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
    decode_rgb(path, &bytes, limits, None)
}

/// As [`load_rgb`], holding the bytes the decode takes from `budget` while
/// it runs: the workers of one run share one budget.
pub fn load_rgb_budgeted(path: &Path, limits: LoadLimits, budget: &DecodeBudget) -> Result<RgbImage, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.into(), source })?;
    decode_rgb(path, &bytes, limits, Some(budget))
}

/// As [`load_rgb`], for bytes already in memory; `path` is used in errors.
pub fn load_rgb_from_bytes(path: &Path, bytes: &[u8], limits: LoadLimits) -> Result<RgbImage, LoadError> {
    decode_rgb(path, bytes, limits, None)
}

/// Every check that can be made from the header and the file's structure
/// comes before the pixels are allocated: size, truncation, a header that
/// declares more pixels than the data can hold, the decode's peak memory.
fn decode_rgb(
    path: &Path,
    bytes: &[u8],
    limits: LoadLimits,
    budget: Option<&DecodeBudget>,
) -> Result<RgbImage, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: path.into() });
    }
    let format = image::guess_format(bytes).map_err(|_| LoadError::UnknownFormat { path: path.into() })?;
    let layout = Layout::of(format, bytes);
    // The JPEG decoder fills a cut-off image with grey and reports success;
    // PIL (and so a PyTorch data loader) raises "image file is truncated".
    // Such a file must not pass as a photo.
    if layout.truncated {
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
    // For the decoders that honour it; the estimate below covers all.
    lim.max_alloc = Some(limits.max_decode_bytes());
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (width, height) = decoder.dimensions();
    if (width as u64) * (height as u64) > limits.max_pixels {
        return Err(LoadError::TooLarge { path: path.into(), width, height, max_pixels: limits.max_pixels });
    }
    if width == 0 || height == 0 {
        return Err(LoadError::Decode { path: path.into(), format: fmt_name, message: "zero width or height".into() });
    }
    if let Some((data_bytes, needed_bytes)) = layout.too_little_data() {
        return Err(LoadError::TooLittleData {
            path: path.into(),
            format: fmt_name,
            width,
            height,
            data_bytes,
            needed_bytes,
        });
    }
    // A broken EXIF block is not worth losing the photo over: treat it as upright.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let bytes_needed = DecodeSize::of(&decoder, orientation, &layout, bytes.len()).peak_bytes();
    if bytes_needed > limits.max_decode_bytes() {
        let max_bytes = limits.max_decode_bytes();
        return Err(LoadError::DecodeTooLarge { path: path.into(), width, height, bytes: bytes_needed, max_bytes });
    }
    let _reservation = budget.map(|b| b.reserve(bytes_needed));
    let img = read_pixels(decoder, path, &decode_err)?;
    // RGB first, then the rotation: the rotated copy is made of 3-byte pixels.
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// What a decode allocates, from the header: `output` bytes of the
/// decoder's layout, `extra` bytes of its working planes and copy of the file.
struct DecodeSize {
    pixels: u64,
    output: u64,
    extra: u64,
    /// The output is already 8-bit RGB (no converted copy).
    rgb8: bool,
    /// The EXIF orientation turns the image by 90° (a rotated copy).
    rotated: bool,
}

impl DecodeSize {
    fn of(decoder: &impl ImageDecoder, orientation: Orientation, layout: &Layout, file_bytes: usize) -> DecodeSize {
        use Orientation::{Rotate270, Rotate270FlipH, Rotate90, Rotate90FlipH};
        let (w, h) = decoder.dimensions();
        DecodeSize {
            pixels: w as u64 * h as u64,
            output: decoder.total_bytes(),
            // The JPEG decoder keeps its own copy of the file.
            extra: layout.decoder_bytes.saturating_add(file_bytes as u64),
            rgb8: decoder.color_type() == ColorType::Rgb8,
            rotated: matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH),
        }
    }

    /// The most bytes held at once: the decoder's output with its working
    /// planes, then the output with its RGB copy, then the RGB image with
    /// its rotated copy.
    fn peak_bytes(&self) -> u64 {
        let decoding = self.output.saturating_add(self.extra);
        let converting = if self.rgb8 { 0 } else { self.output.saturating_add(3 * self.pixels) };
        let rotating = if self.rotated { 6 * self.pixels } else { 0 };
        decoding.max(converting).max(rotating)
    }
}

/// Decodes the pixels. The output buffer of the usual 8-bit layouts is
/// allocated fallibly: a failed allocation is an error naming the file,
/// not an abort of the process.
fn read_pixels(
    decoder: impl ImageDecoder,
    path: &Path,
    decode_err: &dyn Fn(image::ImageError) -> LoadError,
) -> Result<DynamicImage, LoadError> {
    let (w, h) = decoder.dimensions();
    let color = decoder.color_type();
    if !matches!(color, ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8) {
        // 16-bit and float layouts (rare): the decoder allocates, within the
        // bound checked before.
        return DynamicImage::from_decoder(decoder).map_err(decode_err);
    }
    let bytes = decoder.total_bytes();
    let oom = || LoadError::OutOfMemory { path: path.into(), bytes };
    let len = usize::try_from(bytes).map_err(|_| oom())?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| oom())?;
    buf.resize(len, 0u8);
    decoder.read_image(&mut buf).map_err(decode_err)?;
    let img = match color {
        ColorType::L8 => ImageBuffer::from_raw(w, h, buf).map(DynamicImage::ImageLuma8),
        ColorType::La8 => ImageBuffer::from_raw(w, h, buf).map(DynamicImage::ImageLumaA8),
        ColorType::Rgb8 => ImageBuffer::from_raw(w, h, buf).map(DynamicImage::ImageRgb8),
        _ => ImageBuffer::from_raw(w, h, buf).map(DynamicImage::ImageRgba8),
    };
    // The buffer was sized by the decoder's own dimensions and layout.
    img.ok_or_else(|| {
        let kind = image::error::ParameterErrorKind::DimensionMismatch;
        decode_err(image::ImageError::Parameter(image::error::ParameterError::from_kind(kind)))
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

/// `Some(reason)` when a JPEG's data runs out before its end-of-image
/// marker; `None` for anything else (what the walk does not understand is
/// left to the decoder).
pub fn jpeg_truncation(data: &[u8]) -> Option<String> {
    jpeg_layout(data).truncated.then(|| "truncated JPEG: the data ends before the end-of-image marker".to_string())
}

/// What a file's structure says before any pixel is decoded.
#[derive(Debug, Default)]
struct Layout {
    /// The data ends before the end of the image (JPEG's EOI marker).
    truncated: bool,
    /// Bytes of compressed pixel data: JPEG's entropy-coded scans, PNG's IDAT.
    data_bytes: u64,
    /// The fewest bytes of such data the declared size can be coded in
    /// (0: no bound known).
    min_data_bytes: u64,
    /// Bytes the decoder holds besides its output (JPEG's coefficient planes).
    decoder_bytes: u64,
}

impl Layout {
    fn of(format: ImageFormat, data: &[u8]) -> Layout {
        match format {
            ImageFormat::Jpeg => jpeg_layout(data),
            ImageFormat::Png => png_layout(data),
            _ => Layout::default(),
        }
    }

    /// `Some((data, needed))` when the data is too little for the header's size.
    fn too_little_data(&self) -> Option<(u64, u64)> {
        (self.data_bytes < self.min_data_bytes).then_some((self.data_bytes, self.min_data_bytes))
    }
}

/// A JPEG frame header (SOFn): size and each component's sampling factors.
struct Frame {
    width: u64,
    height: u64,
    /// Huffman coding (SOF0–3, 5–7): at least one bit per 8×8 block.
    /// Arithmetic coding has no such floor.
    huffman: bool,
    sampling: Vec<(u64, u64)>,
}

impl Frame {
    fn parse(marker: u8, body: &[u8]) -> Option<Frame> {
        let (head, rest) = body.split_first_chunk::<6>()?;
        let [_precision, h1, h0, w1, w0, n] = *head;
        let sampling = rest.chunks_exact(3).take(n as usize).map(|c| ((c[1] >> 4) as u64, (c[1] & 15) as u64));
        Some(Frame {
            width: u16::from_be_bytes([w1, w0]) as u64,
            height: u16::from_be_bytes([h1, h0]) as u64,
            huffman: marker <= 0xC7,
            sampling: sampling.collect(),
        })
    }

    /// The fewest bytes of entropy-coded data: every 8×8 block of the
    /// full-resolution component codes its DC value with at least one bit.
    fn min_data_bytes(&self) -> u64 {
        if !self.huffman {
            return 0;
        }
        (self.width.div_ceil(8) * self.height.div_ceil(8)).div_ceil(8)
    }

    /// Progressive and multi-scan JPEGs keep every component's coefficients
    /// (2 bytes each, whole MCUs) until the last scan.
    fn coefficient_bytes(&self) -> u64 {
        let hmax = self.sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1);
        let vmax = self.sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1);
        let (mcus_x, mcus_y) = (self.width.div_ceil(8 * hmax), self.height.div_ceil(8 * vmax));
        self.sampling.iter().map(|&(h, v)| mcus_x * h * mcus_y * v * 64 * 2).sum()
    }
}

/// Walks a JPEG's marker segments and entropy-coded scans. What it does not
/// understand is left to the decoder: then only the whole file counts as
/// pixel data, so it can only ever reject files that really are cut short
/// or declare more than they hold.
fn jpeg_layout(data: &[u8]) -> Layout {
    let mut layout = Layout::default();
    if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return layout;
    }
    let (mut frame, mut scans, mut i) = (None, 0u32, 2);
    let complete = 'walk: loop {
        if i >= data.len() {
            layout.truncated = true;
            break false;
        }
        if data[i] != 0xFF {
            break false;
        }
        // Fill bytes: any number of 0xFF may precede a marker code.
        while i < data.len() && data[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = data.get(i) else {
            layout.truncated = true;
            break false;
        };
        i += 1;
        match marker {
            0xD9 => break true,
            0x01 | 0xD0..=0xD7 => continue,
            0x00 => break false,
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (data.get(i), data.get(i + 1)) else {
            layout.truncated = true;
            break false;
        };
        let len = u16::from_be_bytes([hi, lo]) as usize;
        if len < 2 {
            break false;
        }
        // SOF0–15 but DHT (C4), JPG (C8) and DAC (CC).
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            frame = data.get(i + 2..(i + len).min(data.len())).and_then(|body| Frame::parse(marker, body));
        }
        i += len;
        if marker != 0xDA {
            continue;
        }
        scans += 1;
        let start = i.min(data.len());
        // Entropy-coded data: 0xFF 0x00 is a stuffed byte and 0xFF 0xD0–D7 a
        // restart marker; any other 0xFF pair starts the next marker.
        loop {
            let Some(off) = data.get(i..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) else {
                layout.truncated = true;
                break 'walk false;
            };
            i += off;
            match data.get(i + 1) {
                None => {
                    layout.truncated = true;
                    break 'walk false;
                }
                Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                Some(_) => break,
            }
        }
        layout.data_bytes += (i - start) as u64;
    };
    if !complete {
        layout.data_bytes = data.len() as u64;
    }
    if let Some(f) = frame {
        layout.min_data_bytes = f.min_data_bytes();
        layout.decoder_bytes = if scans > 1 { f.coefficient_bytes() } else { 0 };
    }
    layout
}

/// Sums a PNG's IDAT chunks (as far as the file goes) against the fewest
/// bytes deflate can code the declared rows in: it compresses at most about
/// 1032:1.
fn png_layout(data: &[u8]) -> Layout {
    const DEFLATE_MAX_RATIO: u64 = 1032;
    let mut layout = Layout::default();
    let (mut header, mut i) = (None, 8usize);
    while let Some(chunk) = data.get(i..i + 8) {
        let len = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize;
        let body = &data[i + 8..];
        match &chunk[4..8] {
            b"IHDR" if body.len() >= 13 => header = Some(body[..13].to_vec()),
            b"IDAT" => layout.data_bytes += len.min(body.len()) as u64,
            b"IEND" => break,
            _ => {}
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    let Some(h) = header else { return layout };
    let (width, height) =
        (u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64, u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as u64);
    let channels = match h[9] {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return layout,
    };
    // Each row: a filter byte and its packed samples (interlacing only adds).
    let row = 1 + (width * channels * h[8] as u64).div_ceil(8);
    layout.min_data_bytes = row.saturating_mul(height) / DEFLATE_MAX_RATIO;
    layout
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Width and height of an image as shown (EXIF orientation applied), from
/// its header alone (no pixels decoded): the frame of the boxes that `mask
/// --labels` writes and detectors see. A broken EXIF block reads as
/// upright, as [`load_rgb`] reads it.
pub fn upright_size(path: &Path) -> Result<(u32, u32), String> {
    let reader = image::ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    use image::metadata::Orientation;
    Ok(match decoder.orientation().unwrap_or(Orientation::NoTransforms) {
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH => {
            (h, w)
        }
        _ => (w, h),
    })
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

    /// A real JPEG of `w`x`h` whose SOF0 is patched to declare `dw`x`dh`:
    /// an EOI marker, far too little data.
    fn lying_jpeg(w: u32, h: u32, dw: u16, dh: u16) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8]));
        let mut bytes = encode_image(&img, Path::new("a.jpg"), 75).unwrap();
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&dh.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&dw.to_be_bytes());
        bytes
    }

    #[test]
    fn a_jpeg_declaring_more_pixels_than_its_data_holds_is_refused_before_decoding() {
        let p = Path::new("dir/lie.jpg");
        let lie = lying_jpeg(160, 200, 10000, 10000);
        assert!(lie.len() < 30_000 && jpeg_truncation(&lie).is_none());
        let e = load_rgb_from_bytes(p, &lie, LoadLimits::default()).unwrap_err();
        assert!(
            matches!(e, LoadError::TooLittleData { width: 10000, height: 10000, needed_bytes: 195_313, .. }),
            "{e}"
        );
        assert!(e.to_string().starts_with("dir/lie.jpg: truncated or corrupt JPEG: "), "{e}");
        assert!(e.reason().contains("cannot hold the 10000x10000 pixels its header declares"), "{e}");
        assert!(!e.to_string().contains('\n'));
        // Under the highest limit too, and over it the pixel limit speaks first.
        let top = LoadLimits { max_pixels: MAX_PIXELS_LIMIT };
        let e = load_rgb_from_bytes(p, &lying_jpeg(160, 200, 30000, 30000), top).unwrap_err();
        assert!(matches!(e, LoadError::TooLittleData { width: 30000, .. }), "{e}");
        let e = load_rgb_from_bytes(p, &lying_jpeg(160, 200, 65535, 65535), top).unwrap_err();
        assert!(matches!(e, LoadError::TooLarge { width: 65535, .. }), "{e}");
        // The file's own size, and a little more, still decodes.
        assert!(load_rgb_from_bytes(p, &lying_jpeg(160, 200, 160, 200), LoadLimits::default()).is_ok());
        assert!(load_rgb_from_bytes(p, &lying_jpeg(160, 200, 320, 400), LoadLimits::default()).is_ok());
    }

    #[test]
    fn honest_images_of_very_little_data_still_decode() {
        // A flat grey JPEG is about the least data per block an encoder writes.
        let flat = ImageBuffer::from_pixel(2000, 1500, Rgb([128u8, 128, 128]));
        let jpeg = encode_image(&flat, Path::new("a.jpg"), 50).unwrap();
        let layout = jpeg_layout(&jpeg);
        assert!(layout.data_bytes >= layout.min_data_bytes * 4, "{layout:?}");
        assert_eq!(
            load_rgb_from_bytes(Path::new("f.jpg"), &jpeg, LoadLimits::default()).unwrap().dimensions(),
            (2000, 1500)
        );
        let png = png_bytes(&flat);
        let layout = png_layout(&png);
        assert!(layout.min_data_bytes > 0 && layout.data_bytes >= layout.min_data_bytes, "{layout:?}");
        assert!(load_rgb_from_bytes(Path::new("f.png"), &png, LoadLimits::default()).is_ok());
    }

    #[test]
    fn a_png_declaring_more_rows_than_its_data_holds_is_refused() {
        let img = ImageBuffer::from_pixel(64, 64, Rgb([1u8, 2, 3]));
        let mut png = png_bytes(&img);
        // IHDR is the first chunk: length, type, width, height, ..., CRC.
        png[16..20].copy_from_slice(&10000u32.to_be_bytes());
        png[20..24].copy_from_slice(&10000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = load_rgb_from_bytes(Path::new("x.png"), &png, LoadLimits::default()).unwrap_err();
        // Rows of a filter byte and 30000 sample bytes, deflated at most 1032:1.
        assert!(matches!(e, LoadError::TooLittleData { width: 10000, needed_bytes: 290_707, .. }), "{e}");
        assert!(e.reason().starts_with("truncated or corrupt PNG: "), "{e}");
    }

    #[test]
    fn a_decode_over_the_per_image_bound_is_an_error_naming_the_file() {
        let limits = LoadLimits { max_pixels: 1000 };
        assert_eq!(limits.max_decode_bytes(), 64 << 20);
        assert_eq!(LoadLimits { max_pixels: MAX_PIXELS_LIMIT }.max_decode_bytes(), 8_000_000_000);
        // 16-bit RGBA: 8 bytes a pixel out of the decoder, 3 more for RGB.
        let deep: ImageBuffer<image::Rgba<u16>, Vec<u16>> = ImageBuffer::from_pixel(2500, 2500, image::Rgba([9u16; 4]));
        let limits = LoadLimits { max_pixels: 2500 * 2500 };
        let e = load_rgb_from_bytes(Path::new("deep.png"), &png_bytes(&deep), limits).unwrap_err();
        assert!(matches!(e, LoadError::DecodeTooLarge { bytes: 68_750_000, max_bytes: 67_108_864, .. }), "{e}");
        assert!(e.to_string().starts_with("deep.png: decoding the 2500x2500 image takes 68.8 MB"), "{e}");
        let size = |rgb8, rotated| DecodeSize { pixels: 100, output: 300, extra: 50, rgb8, rotated }.peak_bytes();
        assert_eq!((size(true, false), size(false, false), size(true, true)), (350, 600, 600));
    }

    #[test]
    fn multi_scan_jpegs_count_their_coefficient_planes() {
        // 4:2:0: luma in 2x2 blocks per MCU, two chroma planes at half size.
        let f = Frame { width: 100, height: 60, huffman: true, sampling: vec![(2, 2), (1, 1), (1, 1)] };
        let (mcus_x, mcus_y) = (7, 4);
        assert_eq!(f.coefficient_bytes(), mcus_x * mcus_y * (4 + 1 + 1) * 128);
        assert_eq!(f.min_data_bytes(), (13u64 * 8).div_ceil(8));
        let arithmetic = Frame { huffman: false, ..f };
        assert_eq!(arithmetic.min_data_bytes(), 0);
        // A baseline JPEG has one scan: no planes.
        let jpeg = lying_jpeg(16, 16, 16, 16);
        assert_eq!(jpeg_layout(&jpeg).decoder_bytes, 0);
    }
}
