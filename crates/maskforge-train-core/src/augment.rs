//! Image → network input: the seeds' augmentations and normalisation.
//!
//! Training images go through one resampling pass that combines random
//! resized crop (or, on its own probability, a framing draw: see
//! [`AugmentConfig::framing`]), rotation and flips (an affine map from output to source
//! pixels, sampled bilinearly), then colour jitter, then normalisation into
//! a CHW `f32` buffer. Between the jitter and the normalisation come the
//! realism augmentations, each on its own probability, which make clean
//! synthetic masks look more like real photos: grey-scale, down-and-up
//! scaling, Gaussian blur, JPEG re-compression and, last, random erasing
//! (an occluder). Evaluation images get a centre square crop and an
//! antialiased resize. Both run on the loader's worker threads.
//!
//! Every draw comes from the item's `Rng` in a fixed order, and a
//! probability of 0 draws nothing: with the realism augmentations off, a
//! seed gives exactly the images it gave before they existed.

use crate::rng::Rng;
use image::imageops::FilterType;
use image::{Rgb32FImage, RgbImage};
use serde::{Deserialize, Serialize};

/// Random augmentations applied to training images (seed 000's
/// `RandomHorizontalFlip`, `RandomVerticalFlip`, `RandomRotation`,
/// `RandomResizedCrop`; seed 002's `ColorJitter`), and the realism
/// augmentations `grey`, `downscale`, `blur`, `jpeg` and `erase`.
///
/// The realism fields are `#[serde(default)]` *per field*, so a
/// `config.json` written before they existed reads them as 0 (off): a
/// resumed old run keeps the augmentations it started with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// Probability of a vertical flip (seed 000 used 0.5).
    pub vflip: f64,
    /// Rotation drawn uniformly from ±`rotate` degrees (seed 000: 135).
    pub rotate: f64,
    /// Random resized crop keeps this fraction of the area at least
    /// (seed 000: 0.85); 1.0 disables the crop.
    pub crop_scale: f64,
    /// Colour jitter: brightness, contrast and saturation factors drawn from
    /// [1 − j, 1 + j] (seed 002 jittered saturation over [0, 2]: 1.0).
    pub jitter: f64,
    /// Colour jitter of hue: the hue turned by a fraction of the colour
    /// circle drawn from [−h, h] (torchvision's `ColorJitter(hue=h)`, at most
    /// 0.5), after brightness, contrast and saturation. Masks come in any
    /// colour, and a model that has seen only the palette's may take a pink
    /// or green mask for skin.
    #[serde(default)]
    pub hue: f64,
    /// Probability of converting to grey-scale (ITU-R 601 luma, kept as
    /// three equal channels).
    #[serde(default)]
    pub grey: f64,
    /// Probability of a Gaussian blur; sigma drawn from 0.5–2 px at 224 px,
    /// scaled with the input size.
    #[serde(default)]
    pub blur: f64,
    /// Probability of JPEG re-compression, quality drawn from 30–90.
    #[serde(default)]
    pub jpeg: f64,
    /// Probability of scaling down by a factor drawn from 0.25–0.75 and
    /// back up (bilinear): a low-resolution photo.
    #[serde(default)]
    pub downscale: f64,
    /// Probability of random erasing (torchvision's `RandomErasing`): a
    /// rectangle of 2–20 % of the area, aspect ratio 0.3–3.3, filled with
    /// one random colour or with noise.
    #[serde(default)]
    pub erase: f64,
    /// Probability of a framing draw in place of the random resized crop: a
    /// square window of [`FRAMING_SIDE`] times the image's shorter side
    /// (log-uniform), placed off-centre and mostly lower, black outside the
    /// image (as face crops are padded). Below 1 the face fills the frame
    /// and the window cuts through the forehead or eyes; above 1 the face
    /// sits smaller and off-centre: the framings of real photos that a
    /// detector-centred crop never shows.
    #[serde(default)]
    pub framing: f64,
}

/// The framing window's side, relative to the image's shorter side.
/// Mostly closer: a wider frame can only add black (the crop holds no more of
/// the photo), so it stays a little wider at most.
pub const FRAMING_SIDE: (f64, f64) = (0.5, 1.15);
/// How far off-centre the window may sit, beyond what keeps a smaller window
/// inside the image, as a share of its side.
const FRAMING_SHIFT: f64 = 0.08;

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            hflip: 0.5,
            vflip: 0.0,
            rotate: 10.0,
            crop_scale: 0.85,
            // Strong: on `cargo xtask realcheck`, over five seeds, 0.7 took
            // real masked recall from 72% to 80% and balanced accuracy from
            // 85.6% to 89.1% (0.4: 76%, 87.7%); the rendered masks are
            // brighter, cleaner and more saturated than real ones in photos.
            jitter: 0.7,
            hue: 0.0,
            grey: 0.1,
            // Real faces in photos are often small and soft: with the jitter
            // at 0.7, blur and downscale at 0.3 (was 0.1) took realcheck's
            // real masked recall from 80.0% to 84.8% and balanced accuracy
            // from 89.1% to 90.2% over five seeds (real bare 98.1% -> 95.6%).
            blur: 0.3,
            jpeg: 0.2,
            downscale: 0.3,
            // Off: an occluder can hide the very region a label is about
            // (a nose over or under the mask), so erasing is opt-in.
            erase: 0.0,
            // Off: on `cargo xtask realcheck`, where `predict` frames the
            // real faces as `mask` framed the training crops, 0.5 cost 0.7
            // and 6.6 points of balanced accuracy over two seeds. It is for
            // models that meet other framings (close-ups, others' crops).
            framing: 0.0,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (training then sees the evaluation transform).
    pub fn none() -> Self {
        AugmentConfig {
            hflip: 0.0,
            vflip: 0.0,
            rotate: 0.0,
            crop_scale: 1.0,
            jitter: 0.0,
            hue: 0.0,
            grey: 0.0,
            blur: 0.0,
            jpeg: 0.0,
            downscale: 0.0,
            erase: 0.0,
            framing: 0.0,
        }
    }

    /// Whether every augmentation is off (training then sees exactly the
    /// evaluation transform).
    pub fn is_none(&self) -> bool {
        self.hflip <= 0.0
            && self.vflip <= 0.0
            && self.rotate == 0.0
            && self.crop_scale >= 1.0
            && self.jitter <= 0.0
            && self.hue <= 0.0
            && self.framing <= 0.0
            && self.realism().iter().all(|(_, p)| *p <= 0.0)
    }

    /// The realism augmentations' probabilities with their flags.
    fn realism(&self) -> [(&'static str, f64); 5] {
        [
            ("--grey", self.grey),
            ("--blur", self.blur),
            ("--jpeg", self.jpeg),
            ("--downscale", self.downscale),
            ("--erase", self.erase),
        ]
    }

    /// Checks the ranges; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        let flips = [("--hflip", self.hflip), ("--vflip", self.vflip), ("--framing", self.framing)];
        for (name, p) in flips.into_iter().chain(self.realism()) {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        if !(self.crop_scale > 0.0 && self.crop_scale <= 1.0) {
            return Err(format!("--crop-scale must be in (0, 1], got {}", self.crop_scale));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!("--jitter must be in [0, 1], got {}", self.jitter));
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(format!("--hue must be in [0, 0.5] (a fraction of the colour circle), got {}", self.hue));
        }
        if !(0.0..=180.0).contains(&self.rotate.abs()) {
            return Err(format!("--rotate must be within ±180 degrees, got {}", self.rotate));
        }
        Ok(())
    }
}

/// Per-channel normalisation `(x − mean) / std`, x in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Per channel R, G, B mean, in [0, 1].
    pub mean: [f32; 3],
    /// Per channel R, G, B standard deviation, above 0.
    pub std: [f32; 3],
}

impl Normalize {
    /// ImageNet's statistics, what torchvision's pretrained weights expect.
    pub const IMAGENET: Normalize = Normalize { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    /// No normalisation (seed 000 trained on plain `ToTensor` values).
    pub const IDENTITY: Normalize = Normalize { mean: [0.0; 3], std: [1.0; 3] };
}

/// Shrinks a large source so that its shorter side is at most `2 × size`
/// (antialiased): later bilinear sampling then never skips pixels, and the
/// per-pixel work no longer depends on the photo's resolution.
pub fn preshrink(img: RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let short = w.min(h);
    let limit = size.saturating_mul(2).max(1);
    if short <= limit {
        return img;
    }
    let s = limit as f64 / short as f64;
    let nw = ((w as f64 * s).round() as u32).max(1);
    let nh = ((h as f64 * s).round() as u32).max(1);
    image::imageops::resize(&img, nw, nh, FilterType::Triangle)
}

/// The evaluation view of an image: centre square crop, resized to
/// `size`×`size` with an antialiasing filter. Face crops are square already,
/// so for them this is a plain resize.
pub fn eval_view(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let side = w.min(h).max(1);
    let x0 = (w - side.min(w)) / 2;
    let y0 = (h - side.min(h)) / 2;
    let square = image::imageops::crop_imm(img, x0, y0, side.min(w), side.min(h)).to_image();
    if square.dimensions() == (size, size) {
        square
    } else {
        image::imageops::resize(&square, size, size, FilterType::Triangle)
    }
}

/// Writes `img` (already `size`×`size`) normalised into `out` as CHW.
pub fn to_chw(img: &RgbImage, norm: &Normalize, out: &mut [f32]) {
    let plane = (img.width() * img.height()) as usize;
    debug_assert_eq!(out.len(), 3 * plane);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * norm.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| norm.mean[c] / norm.std[c]);
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px.0[c] as f32 * scale[c] - shift[c];
        }
    }
}

/// The evaluation transform into a CHW buffer of `3 × size × size`.
pub fn eval_transform(img: &RgbImage, size: u32, norm: &Normalize, out: &mut [f32]) {
    to_chw(&eval_view(img, size), norm, out);
}

/// The training transform into a CHW buffer of `3 × size × size`; all
/// random choices come from `rng`.
pub fn train_transform(
    img: &RgbImage,
    size: u32,
    aug: &AugmentConfig,
    norm: &Normalize,
    rng: &mut Rng,
    out: &mut [f32],
) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (cx, cy, cw, ch) = if rng.chance(aug.framing) {
        framing_window(w, h, rng)
    } else {
        random_resized_crop(w, h, aug.crop_scale, rng)
    };
    let hflip = rng.chance(aug.hflip);
    let vflip = rng.chance(aug.vflip);
    let angle = if aug.rotate != 0.0 { rng.uniform(-aug.rotate, aug.rotate).to_radians() } else { 0.0 };
    let (sin, cos) = angle.sin_cos();
    let jitter = |rng: &mut Rng| if aug.jitter > 0.0 { rng.uniform(1.0 - aug.jitter, 1.0 + aug.jitter) } else { 1.0 };
    let brightness = jitter(rng) as f32;
    let contrast = jitter(rng) as f32;
    let saturation = jitter(rng) as f32;
    let hue = if aug.hue > 0.0 { rng.uniform(-aug.hue, aug.hue) as f32 } else { 0.0 };

    let n = size as usize;
    let plane = n * n;
    // HWC floats in [0, 1] after the geometric part.
    let mut rgb = vec![0f32; 3 * plane];
    let src = img.as_raw();
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let fetch = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            0.0 // torchvision's rotation fill: black
        } else {
            src[((y * iw + x) * 3) as usize + c] as f32
        }
    };
    for v in 0..n {
        for u in 0..n {
            // Output pixel centre in [-0.5, 0.5], flipped, scaled to the crop,
            // rotated about the crop centre.
            let mut nx = (u as f64 + 0.5) / n as f64 - 0.5;
            let mut ny = (v as f64 + 0.5) / n as f64 - 0.5;
            if hflip {
                nx = -nx;
            }
            if vflip {
                ny = -ny;
            }
            let dx = nx * cw;
            let dy = ny * ch;
            let sx = cx + dx * cos - dy * sin - 0.5;
            let sy = cy + dx * sin + dy * cos - 0.5;
            let x0 = sx.floor();
            let y0 = sy.floor();
            let fx = (sx - x0) as f32;
            let fy = (sy - y0) as f32;
            let (x0, y0) = (x0 as i64, y0 as i64);
            let o = (v * n + u) * 3;
            for c in 0..3 {
                let top = fetch(x0, y0, c) * (1.0 - fx) + fetch(x0 + 1, y0, c) * fx;
                let bottom = fetch(x0, y0 + 1, c) * (1.0 - fx) + fetch(x0 + 1, y0 + 1, c) * fx;
                rgb[o + c] = (top * (1.0 - fy) + bottom * fy) / 255.0;
            }
        }
    }
    if brightness != 1.0 || contrast != 1.0 || saturation != 1.0 {
        color_jitter(&mut rgb, brightness, contrast, saturation);
    }
    if hue != 0.0 {
        rgb.chunks_exact_mut(3).for_each(|p| turn_hue(p, hue));
    }
    realism(&mut rgb, n, aug, rng);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / norm.std[c]);
    for i in 0..plane {
        for c in 0..3 {
            out[c * plane + i] = (rgb[i * 3 + c] - norm.mean[c]) * scale[c];
        }
    }
}

/// The realism augmentations on an `n`×`n` HWC buffer in [0, 1], in a
/// fixed order: grey-scale, down-and-up scaling, blur, JPEG, erasing. Each
/// draws its parameters only when it applies.
fn realism(rgb: &mut Vec<f32>, n: usize, aug: &AugmentConfig, rng: &mut Rng) {
    if rng.chance(aug.grey) {
        greyscale(rgb);
    }
    if rng.chance(aug.downscale) {
        let factor = rng.uniform(0.25, 0.75);
        down_up(rgb, n, factor);
    }
    if rng.chance(aug.blur) {
        let sigma = rng.uniform(0.5, 2.0) * n as f64 / 224.0;
        gaussian_blur(rgb, n, sigma as f32);
    }
    if rng.chance(aug.jpeg) {
        let quality = 30 + rng.below(61) as u8;
        jpeg_roundtrip(rgb, n, quality);
    }
    if rng.chance(aug.erase) {
        random_erase(rgb, n, rng);
    }
}

/// Grey-scale as torchvision's `Grayscale(3)`: luma in all three channels.
fn greyscale(rgb: &mut [f32]) {
    for p in rgb.chunks_exact_mut(3) {
        let g = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        p.fill(g);
    }
}

/// Scales the `n`×`n` image down by `factor` (antialiased) and back up
/// (bilinear).
fn down_up(rgb: &mut Vec<f32>, n: usize, factor: f64) {
    let m = ((n as f64 * factor).round() as u32).max(1);
    let side = n as u32;
    if rgb.len() != 3 * n * n {
        return;
    }
    let Some(img) = Rgb32FImage::from_raw(side, side, std::mem::take(rgb)) else {
        return; // unreachable: the length is checked above
    };
    let small = image::imageops::resize(&img, m, m, FilterType::Triangle);
    let back = image::imageops::resize(&small, side, side, FilterType::Triangle);
    *rgb = if back.dimensions() == (side, side) { back.into_raw() } else { img.into_raw() };
    for v in rgb.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
}

/// Separable Gaussian blur with edge clamping; the kernel reaches 3 sigma.
fn gaussian_blur(rgb: &mut [f32], n: usize, sigma: f32) {
    if n == 0 || sigma <= 0.0 {
        return;
    }
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let mut kernel: Vec<f32> = (-radius..=radius).map(|i| (-((i * i) as f32) / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let last = n as i64 - 1;
    let mut tmp = vec![0f32; rgb.len()];
    // Horizontal pass into tmp, vertical pass back.
    for y in 0..n {
        for x in 0..n {
            let mut acc = [0f32; 3];
            for (k, w) in kernel.iter().enumerate() {
                let sx = (x as i64 + k as i64 - radius).clamp(0, last) as usize;
                let o = (y * n + sx) * 3;
                for c in 0..3 {
                    acc[c] += w * rgb[o + c];
                }
            }
            tmp[(y * n + x) * 3..][..3].copy_from_slice(&acc);
        }
    }
    for y in 0..n {
        for x in 0..n {
            let mut acc = [0f32; 3];
            for (k, w) in kernel.iter().enumerate() {
                let sy = (y as i64 + k as i64 - radius).clamp(0, last) as usize;
                let o = (sy * n + x) * 3;
                for c in 0..3 {
                    acc[c] += w * tmp[o + c];
                }
            }
            for c in 0..3 {
                rgb[(y * n + x) * 3 + c] = acc[c].clamp(0.0, 1.0);
            }
        }
    }
}

/// Encodes the image as a JPEG of `quality` in memory and decodes it again.
/// Should either step fail (it does not for a valid buffer), the image is
/// left as it was.
fn jpeg_roundtrip(rgb: &mut [f32], n: usize, quality: u8) {
    use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
    use image::{ExtendedColorType, ImageDecoder};
    let bytes: Vec<u8> = rgb.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
    let mut encoded = Vec::new();
    let side = n as u32;
    if JpegEncoder::new_with_quality(&mut encoded, quality).encode(&bytes, side, side, ExtendedColorType::Rgb8).is_err()
    {
        return;
    }
    let Ok(decoder) = JpegDecoder::new(std::io::Cursor::new(&encoded)) else {
        return;
    };
    if decoder.dimensions() != (side, side) || decoder.color_type() != image::ColorType::Rgb8 {
        return;
    }
    let mut decoded = vec![0u8; bytes.len()];
    if decoder.read_image(&mut decoded).is_ok() {
        for (v, b) in rgb.iter_mut().zip(&decoded) {
            *v = *b as f32 / 255.0;
        }
    }
}

/// torchvision's `RandomErasing` with area 2–20 % and aspect ratio 0.3–3.3
/// (log-uniform), ten tries for a box that fits; filled with one random
/// colour or, as often, with per-pixel noise.
fn random_erase(rgb: &mut [f32], n: usize, rng: &mut Rng) {
    let area = (n * n) as f64;
    let (lo, hi) = (0.3f64.ln(), 3.3f64.ln());
    for _ in 0..10 {
        let target = area * rng.uniform(0.02, 0.2);
        let ratio = rng.uniform(lo, hi).exp();
        let h = (target * ratio).sqrt().round() as usize;
        let w = (target / ratio).sqrt().round() as usize;
        if h == 0 || w == 0 || h >= n || w >= n {
            continue;
        }
        let top = rng.below(n - h + 1);
        let left = rng.below(n - w + 1);
        let colour = if rng.chance(0.5) { Some([rng.unit(), rng.unit(), rng.unit()].map(|v| v as f32)) } else { None };
        for y in top..top + h {
            for x in left..left + w {
                let p = &mut rgb[(y * n + x) * 3..][..3];
                match colour {
                    Some(c) => p.copy_from_slice(&c),
                    None => p.iter_mut().for_each(|v| *v = rng.unit() as f32),
                }
            }
        }
        return;
    }
}

/// torchvision's `RandomResizedCrop` box: area fraction in [scale, 1],
/// aspect ratio log-uniform in [3/4, 4/3], ten tries, else the central
/// square. Returns centre and size `(cx, cy, w, h)` in source pixels.
fn random_resized_crop(w: f64, h: f64, scale: f64, rng: &mut Rng) -> (f64, f64, f64, f64) {
    if scale < 1.0 {
        let area = w * h;
        let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
        for _ in 0..10 {
            let target = area * rng.uniform(scale, 1.0);
            let ratio = rng.uniform(lo, hi).exp();
            let cw = (target * ratio).sqrt();
            let ch = (target / ratio).sqrt();
            if cw <= w && ch <= h {
                let x = rng.uniform(0.0, w - cw + f64::EPSILON);
                let y = rng.uniform(0.0, h - ch + f64::EPSILON);
                return (x + cw / 2.0, y + ch / 2.0, cw, ch);
            }
        }
    }
    let side = w.min(h);
    (w / 2.0, h / 2.0, side, side)
}

/// A framing draw ([`AugmentConfig::framing`]): a square of side
/// `s · min(w, h)`, `s` log-uniform in [`FRAMING_SIDE`]. Across, its centre
/// moves by up to half the slack between window and image plus
/// [`FRAMING_SHIFT`] of its side; down, by as much, but up by only
/// [`FRAMING_SHIFT`]: a close framing of a masked face keeps the mask and
/// cuts through the forehead or eyes, as real close-ups do. Returns
/// `(cx, cy, side, side)`.
fn framing_window(w: f64, h: f64, rng: &mut Rng) -> (f64, f64, f64, f64) {
    let (lo, hi) = FRAMING_SIDE;
    let side = w.min(h) * rng.uniform(lo.ln(), hi.ln()).exp();
    let reach = |extent: f64| (extent - side).abs() / 2.0 + FRAMING_SHIFT * side;
    let cx = w / 2.0 + rng.uniform(-reach(w), reach(w));
    let cy = h / 2.0 + rng.uniform(-FRAMING_SHIFT * side, reach(h));
    (cx, cy, side, side)
}

/// Brightness, contrast (about the mean grey level) and saturation (about
/// each pixel's grey level), as torchvision's `ColorJitter` defines them,
/// in a fixed order; values stay in [0, 1].
fn color_jitter(rgb: &mut [f32], brightness: f32, contrast: f32, saturation: f32) {
    let grey = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    for p in rgb.chunks_exact_mut(3) {
        for v in p.iter_mut() {
            *v = (*v * brightness).clamp(0.0, 1.0);
        }
    }
    if contrast != 1.0 {
        let n = (rgb.len() / 3).max(1) as f32;
        let mean = rgb.chunks_exact(3).map(grey).sum::<f32>() / n;
        for v in rgb.iter_mut() {
            *v = ((*v - mean) * contrast + mean).clamp(0.0, 1.0);
        }
    }
    if saturation != 1.0 {
        for p in rgb.chunks_exact_mut(3) {
            let g = grey(p);
            for v in p.iter_mut() {
                *v = ((*v - g) * saturation + g).clamp(0.0, 1.0);
            }
        }
    }
}

/// Turns the hue of one RGB pixel (in [0, 1]) by `turn` of the colour
/// circle in HSV, keeping its value and saturation (torchvision's
/// `adjust_hue`); greys stay as they are.
fn turn_hue(p: &mut [f32], turn: f32) {
    let (r, g, b) = (p[0], p[1], p[2]);
    let max = r.max(g).max(b);
    let chroma = max - r.min(g).min(b);
    if chroma <= 0.0 {
        return;
    }
    let h = if max == r {
        ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        (b - r) / chroma + 2.0
    } else {
        (r - g) / chroma + 4.0
    };
    let h = (h + 6.0 * turn).rem_euclid(6.0);
    let x = chroma * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r1, g1, b1) = match h as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = max - chroma;
    p[0] = (r1 + m).clamp(0.0, 1.0);
    p[1] = (g1 + m).clamp(0.0, 1.0);
    p[2] = (b1 + m).clamp(0.0, 1.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn hue_turns_colours_around_the_circle_and_leaves_greys() {
        let turned = |rgb: [f32; 3], t: f32| {
            let mut p = rgb;
            turn_hue(&mut p, t);
            p
        };
        let near = |a: [f32; 3], b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(near(turned([1.0, 0.0, 0.0], 1.0 / 3.0), [0.0, 1.0, 0.0]));
        assert!(near(turned([1.0, 0.0, 0.0], -1.0 / 3.0), [0.0, 0.0, 1.0]));
        assert!(near(turned([0.4, 0.4, 0.4], 0.25), [0.4, 0.4, 0.4]));
        // A pink turned half-way round: the same value and saturation, a green.
        let pink = [238.0 / 255.0, 170.0 / 255.0, 190.0 / 255.0];
        let green = turned(pink, 0.5);
        let max = |p: [f32; 3]| p.iter().copied().fold(f32::MIN, f32::max);
        let min = |p: [f32; 3]| p.iter().copied().fold(f32::MAX, f32::min);
        assert!((max(green) - max(pink)).abs() < 1e-5 && (min(green) - min(pink)).abs() < 1e-5, "{green:?}");
        assert!(green[1] > green[0] && green[1] > green[2], "{green:?}");
        assert!(near(turned(turned(pink, 0.2), -0.2), pink));
        // Off (0) draws nothing: the images of a seed stay as they were.
        let img = gradient(24, 24);
        let run = |aug: &AugmentConfig| {
            let mut out = vec![0f32; 3 * 16 * 16];
            let mut rng = Rng::new(7);
            train_transform(&img, 16, aug, &Normalize::IDENTITY, &mut rng, &mut out);
            (out, rng.below(1_000_000))
        };
        let base = AugmentConfig::default();
        assert_eq!(run(&base), run(&AugmentConfig { hue: 0.0, ..base.clone() }));
        assert_ne!(run(&base).0, run(&AugmentConfig { hue: 0.3, ..base.clone() }).0);
        assert!(AugmentConfig { hue: 0.6, ..base.clone() }.validate().unwrap_err().contains("--hue"));
        assert!(!AugmentConfig { hue: 0.1, ..AugmentConfig::none() }.is_none());
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128]))
    }

    #[test]
    fn identity_augmentation_matches_a_plain_resample() {
        // No augmentation on an image already at the target size is the
        // identity (bilinear sampling at pixel centres).
        let img = gradient(16, 16);
        let mut a = vec![0f32; 3 * 16 * 16];
        let mut b = vec![0f32; 3 * 16 * 16];
        train_transform(&img, 16, &AugmentConfig::none(), &Normalize::IDENTITY, &mut Rng::new(1), &mut a);
        eval_transform(&img, 16, &Normalize::IDENTITY, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn hflip_mirrors_and_seed_repeats() {
        let img = gradient(8, 8);
        let aug = AugmentConfig { hflip: 1.0, ..AugmentConfig::none() };
        let mut out = vec![0f32; 3 * 64];
        train_transform(&img, 8, &aug, &Normalize::IDENTITY, &mut Rng::new(1), &mut out);
        // Red grows with x in the source, so it must fall with x after the flip.
        assert!(out[0] > out[7]);
        assert!((out[0] - img.get_pixel(7, 0).0[0] as f32 / 255.0).abs() < 1e-5);

        let all = AugmentConfig {
            hflip: 0.5,
            vflip: 0.5,
            rotate: 30.0,
            crop_scale: 0.5,
            jitter: 0.4,
            ..AugmentConfig::none()
        };
        let mut a = vec![0f32; 3 * 64];
        let mut b = vec![0f32; 3 * 64];
        train_transform(&img, 8, &all, &Normalize::IMAGENET, &mut Rng::derive(3, 1, 2), &mut a);
        train_transform(&img, 8, &all, &Normalize::IMAGENET, &mut Rng::derive(3, 1, 2), &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn normalisation_and_eval_view() {
        let img = RgbImage::from_pixel(40, 20, Rgb([255, 0, 51]));
        let v = eval_view(&img, 10);
        assert_eq!(v.dimensions(), (10, 10));
        let norm = Normalize { mean: [0.5, 0.5, 0.2], std: [0.5, 0.25, 0.1] };
        let mut out = vec![0f32; 300];
        eval_transform(&img, 10, &norm, &mut out);
        assert!((out[0] - 1.0).abs() < 1e-5);
        assert!((out[100] + 2.0).abs() < 1e-5);
        assert!((out[200] - 0.0).abs() < 1e-5);
        assert_eq!(preshrink(gradient(1000, 500), 100).dimensions(), (400, 200));
        assert_eq!(preshrink(gradient(100, 50), 100).dimensions(), (100, 50));
    }

    #[test]
    fn validate_names_the_flag() {
        let bad = AugmentConfig { hflip: 1.5, ..AugmentConfig::default() };
        assert!(bad.validate().unwrap_err().contains("--hflip"));
        assert!(AugmentConfig::default().validate().is_ok());
        assert!(AugmentConfig::none().is_none());
        for flag in ["--grey", "--blur", "--jpeg", "--downscale", "--erase"] {
            for p in [-0.1, 1.5, f64::NAN] {
                let mut a = AugmentConfig::none();
                match flag {
                    "--grey" => a.grey = p,
                    "--blur" => a.blur = p,
                    "--jpeg" => a.jpeg = p,
                    "--downscale" => a.downscale = p,
                    _ => a.erase = p,
                }
                let err = a.validate().unwrap_err();
                assert!(err.contains(flag) && err.contains("[0, 1]"), "{err}");
            }
            let mut a = AugmentConfig::none();
            match flag {
                "--grey" => a.grey = 0.3,
                "--blur" => a.blur = 0.3,
                "--jpeg" => a.jpeg = 0.3,
                "--downscale" => a.downscale = 0.3,
                _ => a.erase = 0.3,
            }
            assert!(a.validate().is_ok());
            assert!(!a.is_none(), "{flag} on is an augmentation");
        }
    }

    /// The training transform of one image with a fixed seed, hashed.
    fn transform_hash(aug: &AugmentConfig) -> u64 {
        let img = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, ((x * y) % 256) as u8]));
        let mut out = vec![0f32; 3 * 24 * 24];
        train_transform(&img, 24, aug, &Normalize::IMAGENET, &mut Rng::derive(42, 1, 2), &mut out);
        let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
        maskforge_rng::stable_hash(&bytes)
    }

    /// The defaults before `--jitter` went from 0.1 to 0.7 (and `--blur`,
    /// `--downscale` from 0.1 to 0.3): the pinned
    /// hashes below were computed with them (runs stored with 0.1 resume
    /// with it, bit for bit).
    fn earlier_default() -> AugmentConfig {
        AugmentConfig { jitter: 0.1, blur: 0.1, downscale: 0.1, ..AugmentConfig::default() }
    }

    fn realism_off(aug: AugmentConfig) -> AugmentConfig {
        AugmentConfig { grey: 0.0, blur: 0.0, jpeg: 0.0, downscale: 0.0, erase: 0.0, ..aug }
    }

    /// Literal hashes computed with the transform as it was before the
    /// realism augmentations existed: with them at 0 nothing is drawn, so
    /// every seeded run of that version sees the same images.
    #[test]
    fn realism_off_is_bit_identical_to_the_earlier_transform() {
        assert_eq!(transform_hash(&realism_off(earlier_default())), 0xf24a_032a_0bd9_59e2);
        let all = AugmentConfig {
            hflip: 0.5,
            vflip: 0.5,
            rotate: 30.0,
            crop_scale: 0.5,
            jitter: 0.4,
            ..AugmentConfig::none()
        };
        assert_eq!(transform_hash(&all), 0xe409_644c_4820_8403);
    }

    /// Only one realism augmentation on, always.
    fn only(f: impl FnOnce(&mut AugmentConfig)) -> AugmentConfig {
        let mut a = AugmentConfig::none();
        f(&mut a);
        a
    }

    /// The train transform with identity normalisation, as HWC pixels in [0, 1].
    fn run(img: &RgbImage, aug: &AugmentConfig, seed: u64) -> Vec<[f32; 3]> {
        let n = img.width() as usize;
        let plane = n * n;
        let mut out = vec![0f32; 3 * plane];
        train_transform(img, n as u32, aug, &Normalize::IDENTITY, &mut Rng::derive(seed, 0, 0), &mut out);
        (0..plane).map(|i| [out[i], out[plane + i], out[2 * plane + i]]).collect()
    }

    /// Sum of squared differences between horizontal and vertical neighbours.
    fn high_freq(px: &[[f32; 3]], n: usize) -> f32 {
        let d = |a: &[f32; 3], b: &[f32; 3]| a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum::<f32>();
        let mut e = 0.0;
        for y in 0..n {
            for x in 0..n {
                let p = &px[y * n + x];
                if x + 1 < n {
                    e += d(p, &px[y * n + x + 1]);
                }
                if y + 1 < n {
                    e += d(p, &px[(y + 1) * n + x]);
                }
            }
        }
        e
    }

    fn checker(n: u32, cell: u32) -> RgbImage {
        RgbImage::from_fn(n, n, |x, y| {
            if (x / cell + y / cell).is_multiple_of(2) {
                Rgb([230, 40, 90])
            } else {
                Rgb([20, 200, 160])
            }
        })
    }

    /// Framing draws magnify and shrink the face and move it off-centre: a
    /// white disc in the middle of a grey frame changes its area and centre,
    /// and a shrunk frame shows black outside the image.
    #[test]
    fn framing_zooms_in_and_out_and_moves_the_face() {
        let n = 64u32;
        let disc = RgbImage::from_fn(n, n, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - 32.0, y as f32 + 0.5 - 32.0);
            if dx * dx + dy * dy < 16.0 * 16.0 {
                Rgb([255, 255, 255])
            } else {
                Rgb([128, 128, 128])
            }
        });
        let plain_area = run(&disc, &AugmentConfig::none(), 0).iter().filter(|p| p[0] > 0.75).count() as f64;
        let (mut bigger, mut smaller, mut padded, mut moved) = (0, 0, 0, 0);
        for seed in 0..64 {
            let px = run(&disc, &only(|a| a.framing = 1.0), seed);
            let white: Vec<usize> = (0..px.len()).filter(|&i| px[i][0] > 0.75).collect();
            let ratio = white.len() as f64 / plain_area;
            // Area scales with 1/side²: side in [0.5, 1.15] gives [0.76, 4]
            // (less where the window's edge cuts the disc).
            assert!(ratio <= 4.3, "seed {seed}: disc area ratio {ratio}");
            bigger += usize::from(ratio > 1.5);
            smaller += usize::from(ratio < 0.9);
            padded += usize::from(px.iter().any(|p| p[0] < 0.05));
            let cx = white.iter().map(|&i| (i % n as usize) as f64).sum::<f64>() / white.len().max(1) as f64;
            moved += usize::from((cx + 0.5 - 32.0).abs() > 3.0);
        }
        assert!(bigger >= 8 && smaller >= 8 && padded >= 8 && moved >= 16, "{bigger} {smaller} {padded} {moved}");
        // A probability of 0 draws nothing: the plain transform, bit for bit.
        let seeded = |framing| run(&disc, &AugmentConfig { framing, ..AugmentConfig::default() }, 7);
        assert_eq!(seeded(0.0), run(&disc, &AugmentConfig::default(), 7));
        assert_ne!(seeded(1.0), seeded(0.0));
    }

    #[test]
    fn grey_makes_channels_equal() {
        let img = gradient(32, 32);
        let px = run(&img, &only(|a| a.grey = 1.0), 1);
        assert!(px.iter().all(|p| p[0] == p[1] && p[1] == p[2]));
        // The luma of a pure colour.
        let red = run(&RgbImage::from_pixel(8, 8, Rgb([255, 0, 0])), &only(|a| a.grey = 1.0), 1);
        assert!((red[0][0] - 0.299).abs() < 1e-5, "{:?}", red[0]);
    }

    #[test]
    fn blur_and_downscale_remove_high_frequencies() {
        // Blur: sigma is relative to the size, so test at 224 px.
        let img = checker(224, 2);
        let sharp = high_freq(&run(&img, &AugmentConfig::none(), 1), 224);
        for seed in 0..3 {
            let blurred = high_freq(&run(&img, &only(|a| a.blur = 1.0), seed), 224);
            assert!(blurred < sharp * 0.5, "blur: {blurred} vs {sharp}");
        }
        let img = checker(32, 2);
        let sharp = high_freq(&run(&img, &AugmentConfig::none(), 1), 32);
        for seed in 0..3 {
            let px = run(&img, &only(|a| a.downscale = 1.0), seed);
            assert!(high_freq(&px, 32) < sharp * 0.5, "downscale: {} vs {sharp}", high_freq(&px, 32));
            assert!(px.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
        }
        // A flat image stays flat.
        let flat = RgbImage::from_pixel(32, 32, Rgb([100, 150, 200]));
        let px = run(&flat, &only(|a| (a.blur, a.downscale) = (1.0, 1.0)), 2);
        assert!(px.iter().all(|p| (p[1] - 150.0 / 255.0).abs() < 1e-4), "{:?}", px[0]);
    }

    #[test]
    fn jpeg_changes_pixels_but_keeps_the_colour() {
        let img = RgbImage::from_fn(64, 64, |x, y| {
            Rgb([(x * 4) as u8, (y * 4) as u8, if (x / 3 + y / 5).is_multiple_of(2) { 200 } else { 60 }])
        });
        let before = run(&img, &AugmentConfig::none(), 1);
        for seed in 0..3 {
            let after = run(&img, &only(|a| a.jpeg = 1.0), seed);
            let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            assert!(changed > before.len() / 4, "only {changed} pixels changed");
            for c in 0..3 {
                let mean = |px: &[[f32; 3]]| px.iter().map(|p| p[c]).sum::<f32>() / px.len() as f32;
                assert!((mean(&before) - mean(&after)).abs() < 0.02, "channel {c}");
            }
        }
    }

    #[test]
    fn erase_replaces_one_rectangle() {
        let n = 32usize;
        let img = RgbImage::from_pixel(n as u32, n as u32, Rgb([128, 128, 128]));
        let mut erased_any = 0;
        for seed in 0..20 {
            let px = run(&img, &only(|a| a.erase = 1.0), seed);
            let changed: Vec<(usize, usize)> = (0..n * n)
                .filter(|&i| px[i].iter().any(|v| (v - 128.0 / 255.0).abs() > 1e-6))
                .map(|i| (i % n, i / n))
                .collect();
            if changed.is_empty() {
                continue; // ten tries found no box that fits (rare)
            }
            erased_any += 1;
            let (x0, x1) = (changed.iter().map(|p| p.0).min().unwrap(), changed.iter().map(|p| p.0).max().unwrap());
            let (y0, y1) = (changed.iter().map(|p| p.1).min().unwrap(), changed.iter().map(|p| p.1).max().unwrap());
            let boxed = (x1 - x0 + 1) * (y1 - y0 + 1);
            assert_eq!(boxed, changed.len(), "seed {seed}: not a filled rectangle");
            let fraction = boxed as f64 / (n * n) as f64;
            // 2–20 % of the area, give or take the rounding of the sides.
            assert!((0.012..=0.24).contains(&fraction), "seed {seed}: {fraction}");
            let aspect = (y1 - y0 + 1) as f64 / (x1 - x0 + 1) as f64;
            assert!((0.2..=5.0).contains(&aspect), "seed {seed}: aspect {aspect}");
        }
        assert!(erased_any >= 18, "{erased_any}");
    }

    #[test]
    fn realism_repeats_for_a_seed() {
        let img = gradient(48, 40);
        let all =
            AugmentConfig { grey: 0.5, blur: 0.5, jpeg: 0.5, downscale: 0.5, erase: 0.5, ..AugmentConfig::default() };
        let mut differs = false;
        for seed in 0..6 {
            let a = run(&img, &all, seed);
            assert_eq!(a, run(&img, &all, seed));
            differs |= a != run(&img, &all, seed + 100);
        }
        assert!(differs);
        // Pinned with JPEG off (its decoder's arithmetic is the image crate's).
        let no_jpeg = AugmentConfig { grey: 1.0, blur: 1.0, downscale: 1.0, erase: 1.0, ..earlier_default() };
        assert_eq!(transform_hash(&no_jpeg), 0x1a8a_38fb_466d_7313);
    }

    #[test]
    fn older_config_json_reads_realism_as_off() {
        let old = r#"{"hflip":0.5,"vflip":0.0,"rotate":10.0,"crop_scale":0.85,"jitter":0.1}"#;
        let a: AugmentConfig = serde_json::from_str(old).unwrap();
        assert_eq!(a, realism_off(earlier_default()));
        let text = serde_json::to_string(&AugmentConfig::default()).unwrap();
        assert!(text.contains("\"jpeg\":0.2") && text.contains("\"erase\":0.0"), "{text}");
        assert_eq!(serde_json::from_str::<AugmentConfig>(&text).unwrap(), AugmentConfig::default());
    }
}
