//! Image → network input: the seeds' augmentations and normalisation.
//!
//! Training images go through one resampling pass that combines random
//! resized crop, rotation and flips (an affine map from output to source
//! pixels, sampled bilinearly), then colour jitter, then normalisation into
//! a CHW `f32` buffer. Evaluation images get a centre square crop and an
//! antialiased resize. Both run on the loader's worker threads.

use crate::rng::Rng;
use image::imageops::FilterType;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Random augmentations applied to training images (seed 000's
/// `RandomHorizontalFlip`, `RandomVerticalFlip`, `RandomRotation`,
/// `RandomResizedCrop`; seed 002's `ColorJitter`).
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
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig { hflip: 0.5, vflip: 0.0, rotate: 10.0, crop_scale: 0.85, jitter: 0.1 }
    }
}

impl AugmentConfig {
    /// No augmentation at all (training then sees the evaluation transform).
    pub fn none() -> Self {
        AugmentConfig { hflip: 0.0, vflip: 0.0, rotate: 0.0, crop_scale: 1.0, jitter: 0.0 }
    }

    pub fn is_none(&self) -> bool {
        self.hflip <= 0.0 && self.vflip <= 0.0 && self.rotate == 0.0 && self.crop_scale >= 1.0 && self.jitter <= 0.0
    }

    /// Checks the ranges; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [("--hflip", self.hflip), ("--vflip", self.vflip)] {
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
        if !(0.0..=180.0).contains(&self.rotate.abs()) {
            return Err(format!("--rotate must be within ±180 degrees, got {}", self.rotate));
        }
        Ok(())
    }
}

/// Per-channel normalisation `(x − mean) / std`, x in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: [f32; 3],
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
    let (cx, cy, cw, ch) = random_resized_crop(w, h, aug.crop_scale, rng);
    let hflip = rng.chance(aug.hflip);
    let vflip = rng.chance(aug.vflip);
    let angle = if aug.rotate != 0.0 { rng.uniform(-aug.rotate, aug.rotate).to_radians() } else { 0.0 };
    let (sin, cos) = angle.sin_cos();
    let jitter = |rng: &mut Rng| if aug.jitter > 0.0 { rng.uniform(1.0 - aug.jitter, 1.0 + aug.jitter) } else { 1.0 };
    let brightness = jitter(rng) as f32;
    let contrast = jitter(rng) as f32;
    let saturation = jitter(rng) as f32;

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
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / norm.std[c]);
    for i in 0..plane {
        for c in 0..3 {
            out[c * plane + i] = (rgb[i * 3 + c] - norm.mean[c]) * scale[c];
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

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

        let all = AugmentConfig { hflip: 0.5, vflip: 0.5, rotate: 30.0, crop_scale: 0.5, jitter: 0.4 };
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
    }
}
