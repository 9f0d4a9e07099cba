//! What the photo around a face looks like, so the mask can look the same:
//! its softness (lens blur, JPEG smoothing, upscaling), its noise, whether it
//! is grey-scale, how colourful it is and its colour cast.
//!
//! Everything is estimated from a subsampled grid over the mask's bounding
//! box widened by a quarter of the face width (about a thousand points
//! whatever the image size), before the mask is drawn:
//!
//! * softness: at the strongest edges (eyes, nostrils, lips, jaw line, hair;
//!   well above the noise), each moved to its gradient's peak, the squared
//!   gradient through a fine and a wider derivative of Gaussian. For a
//!   Gaussian-blurred edge their ratio depends only on the blur (within
//!   about 10% for sigma 0.5..4 on synthetic scenes). With too few edges the
//!   softness is unknown (0: no extra blur);
//! * noise: the median absolute response of Immerkær's 3×3 Laplacian-of-
//!   Laplacian (which cancels linear ramps and any `f(x) + g(y)`) per channel;
//!   features are a minority of the samples, so the median reads the noise;
//! * grey-scale: nearly every sample has `max − min ≤ 3`;
//! * colourfulness: median saturation of the skin under the mask;
//! * cast: grey-world, in linear light, over the samples around the mask
//!   that are not skin-coloured (background, hair, clothes, eyes). Skin is
//!   left out because its own colour would read as a warm cast.

use crate::geometry::Placement;
use image::RgbImage;
use maskforge_face::Point;

/// Photo statistics near one face (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhotoStats {
    /// Equivalent Gaussian sigma of the photo's softness, in pixels (0 when
    /// unknown: too few edges to tell).
    pub blur: f32,
    /// Noise sigma per channel, in 8-bit sRGB steps.
    pub noise: [f32; 3],
    /// The photo is grey-scale (R = G = B nearly everywhere).
    pub grey: bool,
    /// Multiplier on the mask's chroma, 0..1: 1 for a normally coloured
    /// photo, lower for a washed-out one.
    pub saturation: f32,
    /// Linear-light channel gains of the photo's colour cast, normalised to
    /// unit luminance (1, 1, 1 when neutral or unknown).
    pub cast: [f32; 3],
}

/// Luminance weights (Rec. 709) on linear RGB.
pub const LUMA: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Skin saturation, `(max − min) / max` in sRGB, at or above which a photo
/// counts as fully coloured (light skin is about 0.25, darker skin more).
const FULL_SATURATION: f32 = 0.20;

/// About how many points are sampled.
const SAMPLES: f32 = 1000.0;

/// The two derivative-of-Gaussian scales of the softness estimate, in
/// pixels: the pixel scale and a reblurred one.
const FINE: f32 = 0.7;
const REBLUR: f32 = 1.2;
const REBLUR_RADIUS: i32 = 4;

impl PhotoStats {
    /// Statistics that change nothing: sharp, noiseless, colour, no cast.
    pub const NEUTRAL: PhotoStats =
        PhotoStats { blur: 0.0, noise: [0.0; 3], grey: false, saturation: 1.0, cast: [1.0; 3] };

    /// Estimates the statistics from `img` around the placed mask.
    pub fn estimate(img: &RgbImage, placement: &Placement) -> PhotoStats {
        let Some(window) = SampleWindow::around(img, placement) else {
            return PhotoStats::NEUTRAL;
        };
        let mut samples = Samples::collect(img, placement, &window);
        if samples.n < 16 {
            return PhotoStats::NEUTRAL;
        }

        // Noise sigma from the median absolute residual (the kernel's gain on
        // white noise is 6; 0.6745 turns a median absolute value into sigma).
        let mut sigma = [0f32; 4];
        for (s, r) in sigma.iter_mut().zip(samples.residuals.iter_mut()) {
            *s = (median(r) / (0.6745 * 6.0)).min(40.0);
        }
        let noise = [sigma[0], sigma[1], sigma[2]];
        let blur = softness(&Pixels::of(img), &mut samples.candidates, samples.n, sigma[3]);

        let grey = samples.n_grey as f32 >= 0.95 * samples.n as f32;
        let (saturation, cast) = if grey {
            (0.0, [1.0; 3])
        } else if samples.skin_sat.len() < 8 {
            (1.0, [1.0; 3])
        } else {
            let sat = median(&mut samples.skin_sat);
            let mut rs: Vec<f32> = samples.skin_chroma.iter().map(|c| c.0).collect();
            let mut bs: Vec<f32> = samples.skin_chroma.iter().map(|c| c.1).collect();
            let skin = (median(&mut rs), median(&mut bs));
            ((sat / FULL_SATURATION).clamp(0.0, 1.0), grey_world(&samples.ring, skin))
        };
        PhotoStats { blur, noise, grey, saturation, cast }
    }
}

/// The grid the statistics are sampled on: every `step` pixels from
/// `(x0, y0) + step / 2` up to `(x1, y1)`, over the mask's bounding box
/// widened by a quarter of the face width, kept far enough inside the image
/// for the widest kernel.
struct SampleWindow {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    step: u32,
}

impl SampleWindow {
    /// `None` when too little of the face is in the image.
    fn around(img: &RgbImage, placement: &Placement) -> Option<SampleWindow> {
        let (mut minx, mut miny, mut maxx, mut maxy) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for p in &placement.mesh.image {
            minx = minx.min(p.x);
            miny = miny.min(p.y);
            maxx = maxx.max(p.x);
            maxy = maxy.max(p.y);
        }
        let margin = 0.25 * placement.face_width;
        let r = REBLUR_RADIUS as f32;
        let x0 = (minx - margin).max(r);
        let y0 = (miny - margin).max(r);
        let x1 = (maxx + margin).min(img.width() as f32 - r - 1.0);
        let y1 = (maxy + margin).min(img.height() as f32 - r - 1.0);
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) || x1 - x0 < 8.0 || y1 - y0 < 8.0 {
            return None;
        }
        let (x0, y0, x1, y1) = (x0 as u32, y0 as u32, x1 as u32, y1 as u32);
        let step = (((x1 - x0) as f32 * (y1 - y0) as f32 / SAMPLES).sqrt().ceil() as u32).max(1);
        Some(SampleWindow { x0, y0, x1, y1, step })
    }
}

/// An image's bytes, addressed by pixel.
struct Pixels<'a> {
    raw: &'a [u8],
    stride: usize,
    width: i64,
    height: i64,
}

impl<'a> Pixels<'a> {
    fn of(img: &'a RgbImage) -> Pixels<'a> {
        let (width, height) = (img.width() as i64, img.height() as i64);
        Pixels { raw: img.as_raw(), stride: img.width() as usize * 3, width, height }
    }

    /// The index of pixel `(x, y)`'s first byte.
    #[inline]
    fn at(&self, x: i64, y: i64) -> usize {
        y as usize * self.stride + x as usize * 3
    }

    /// Luma ×256 (Rec. 601 weights in integers) of the pixel at byte `i`.
    #[inline]
    fn luma(&self, i: usize) -> f32 {
        let raw = self.raw;
        (77 * raw[i] as u32 + 150 * raw[i + 1] as u32 + 29 * raw[i + 2] as u32) as f32
    }

    /// Luma gradient over ±2 pixels at `(x, y)` (×256).
    #[inline]
    fn gradient(&self, x: i64, y: i64) -> (f32, f32) {
        let gx = 0.25 * (self.luma(self.at(x + 2, y)) - self.luma(self.at(x - 2, y)));
        let gy = 0.25 * (self.luma(self.at(x, y + 2)) - self.luma(self.at(x, y - 2)));
        (gx, gy)
    }

    /// Immerkær's noise kernel [1 −2 1; −2 4 −2; 1 −2 1] at `(x, y)`, per channel.
    #[inline]
    fn noise_residual(&self, x: i64, y: i64) -> [f32; 3] {
        let mut res = [0f32; 3];
        for (j, wy) in [(-1i64, 1f32), (0, -2.0), (1, 1.0)] {
            for (i, wx) in [(-1i64, 1f32), (0, -2.0), (1, 1.0)] {
                let q = self.at(x + i, y + j);
                let w = wx * wy;
                for k in 0..3 {
                    res[k] += w * self.raw[q + k] as f32;
                }
            }
        }
        res
    }
}

/// What the sampling pass gathers.
#[derive(Default)]
struct Samples {
    n: usize,
    /// Samples with `max − min ≤ 3`.
    n_grey: usize,
    /// Absolute noise residuals per channel, and of their luma.
    residuals: [Vec<f32>; 4],
    /// Saturation and `(R, B) / (R + G + B)` of the skin under the mask.
    skin_sat: Vec<f32>,
    skin_chroma: Vec<(f32, f32)>,
    /// The samples around the mask's core.
    ring: Vec<RingSample>,
    /// Softness candidates: (squared gradient, x, y, gx, gy).
    candidates: Vec<(f32, u32, u32, f32, f32)>,
}

impl Samples {
    fn collect(img: &RgbImage, placement: &Placement, w: &SampleWindow) -> Samples {
        let lin = &crate::colour::srgb().u8_to_linear;
        let px = Pixels::of(img);
        let raw = px.raw;
        let frame = placement.face_frame();
        let mut s = Samples::default();
        for y in (w.y0 + w.step / 2..w.y1).step_by(w.step as usize) {
            for x in (w.x0 + w.step / 2..w.x1).step_by(w.step as usize) {
                let (xi, yi) = (x as i64, y as i64);
                let c = px.at(xi, yi);
                let p = [raw[c], raw[c + 1], raw[c + 2]];
                s.n += 1;
                let (mx, mn) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
                s.n_grey += (mx - mn <= 3) as usize;
                let sum = p[0] as f32 + p[1] as f32 + p[2] as f32 + 1.0;
                let chroma = (p[0] as f32 / sum, p[2] as f32 / sum);

                // Inside the mask's core (skin under the mask), or around it.
                let f = frame.apply(Point::new(x as f32 + 0.5, y as f32 + 0.5));
                let half = if f.x < placement.mid_x { placement.half_right } else { placement.half_left };
                let inner =
                    f.y > placement.top_y && f.y < placement.bottom_y && (f.x - placement.mid_x).abs() < 0.7 * half;
                if inner {
                    s.skin_sat.push((mx - mn) as f32 / (mx as f32).max(8.0));
                    s.skin_chroma.push(chroma);
                } else {
                    let l = [lin[p[0] as usize], lin[p[1] as usize], lin[p[2] as usize]];
                    let saturation = (mx - mn) as f32 / (mx as f32).max(1.0);
                    s.ring.push(RingSample { linear: l, chroma, saturation, max: mx });
                }

                let res = px.noise_residual(xi, yi);
                for k in 0..3 {
                    s.residuals[k].push(res[k].abs());
                }
                s.residuals[3].push((0.299 * res[0] + 0.587 * res[1] + 0.114 * res[2]).abs());

                // Softness candidates: a gradient over ±2 pixels (so edges a
                // little off the sample are found too).
                let (gx, gy) = px.gradient(xi, yi);
                s.candidates.push((gx * gx + gy * gy, x, y, gx, gy));
            }
        }
        s
    }
}

/// Softness, at the strongest edges well above the noise (`noise`: the luma
/// noise sigma): each candidate moves to the gradient's peak across its
/// edge (the edge's centre), where the squared gradient through a
/// derivative of Gaussian of sigma `d` goes as 1 / (s² + d²) for an edge
/// blurred by `s`. Luma is ×256. Keeps only the candidates used.
fn softness(pixels: &Pixels, candidates: &mut Vec<(f32, u32, u32, f32, f32)>, n_samples: usize, noise: f32) -> f32 {
    let kernels = reblur_kernels();
    let noise_var = noise * noise * 65536.0;
    // Noise gives the candidates' gradient a mean square of σ²/4.
    let threshold = 2.25 * noise_var + 4.0 * 65536.0;
    candidates.retain(|c| c.0 > threshold);
    let keep = (n_samples * 3 / 20).max(40).min(candidates.len());
    if keep > 0 && keep < candidates.len() {
        candidates.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
        candidates.truncate(keep);
    }
    let (w, h) = (pixels.width, pixels.height);
    let (mut e1, mut e2) = (0f64, 0f64);
    let mut patch = [[0f32; 9]; 9];
    for &(g, x, y, gx, gy) in candidates.iter() {
        let norm = g.sqrt();
        let (ux, uy) = (gx / norm, gy / norm);
        let mut best = (f32::MIN, x as i64, y as i64);
        for t in [-3.0f32, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0] {
            let px = (x as i64 + (t * ux).round() as i64).clamp(4, w - 5);
            let py = (y as i64 + (t * uy).round() as i64).clamp(4, h - 5);
            let (gx, gy) = pixels.gradient(px, py);
            let g = gx * gx + gy * gy;
            if g > best.0 {
                best = (g, px, py);
            }
        }
        let (_, bx, by) = best;
        for (j, row) in patch.iter_mut().enumerate() {
            let base = pixels.at(bx - 4, by + j as i64 - 4);
            for (i, v) in row.iter_mut().enumerate() {
                *v = pixels.luma(base + 3 * i);
            }
        }
        e1 += kernels.fine.gradient_sq::<3>(&patch) as f64;
        e2 += kernels.coarse.gradient_sq::<4>(&patch) as f64;
    }
    let n = candidates.len() as f64;
    let e1c = e1 - n * (noise_var * kernels.fine.noise_gain) as f64;
    let e2c = e2 - n * (noise_var * kernels.coarse.noise_gain) as f64;
    if n >= 12.0 && e1c > 0.0 && e2c > 0.0 {
        blur_from_ratio((e1c / e2c) as f32)
    } else {
        0.0
    }
}

/// A sample around the mask, for the colour cast.
struct RingSample {
    linear: [f32; 3],
    /// `(R, B) / (R + G + B)` in sRGB.
    chroma: (f32, f32),
    /// `(max − min) / max` in sRGB.
    saturation: f32,
    max: u8,
}

/// Grey-world cast over the samples around the mask that are neither
/// skin-coloured nor strongly coloured (a red curtain is not a cast) nor
/// dark: their mean linear colour divided by its luminance. Neutral when
/// they are too few.
fn grey_world(ring: &[RingSample], skin: (f32, f32)) -> [f32; 3] {
    let mut sum = [0f64; 3];
    let mut n = 0usize;
    for r in ring {
        let skin_like = (r.chroma.0 - skin.0).abs() < 0.05 && (r.chroma.1 - skin.1).abs() < 0.05;
        if !skin_like && r.saturation < 0.45 && r.max >= 40 {
            for k in 0..3 {
                sum[k] += r.linear[k] as f64;
            }
            n += 1;
        }
    }
    if n < 32 || (n as f32) < 0.1 * ring.len() as f32 {
        return [1.0; 3];
    }
    let y: f64 = (0..3).map(|k| LUMA[k] as f64 * sum[k]).sum();
    if y <= n as f64 * 0.01 {
        return [1.0; 3];
    }
    [(sum[0] / y) as f32, (sum[1] / y) as f32, (sum[2] / y) as f32]
}

/// The median (reorders `v`); 0 for an empty slice.
fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

/// A separable derivative-of-Gaussian pair on a 9×9 patch.
struct Dog {
    /// Gaussian (sum 1) and its derivative (unit response to a unit ramp).
    smooth: [f32; 9],
    deriv: [f32; 9],
    /// Expected squared gradient magnitude of unit white noise through it.
    noise_gain: f32,
    /// Taps beyond this distance from the centre are negligible.
    radius: usize,
}

impl Dog {
    fn new(sigma: f32) -> Dog {
        let mut smooth = [0f32; 9];
        let mut deriv = [0f32; 9];
        for i in 0..9 {
            let x = (i as i32 - REBLUR_RADIUS) as f32;
            smooth[i] = (-x * x / (2.0 * sigma * sigma)).exp();
            deriv[i] = x * smooth[i];
        }
        let s: f32 = smooth.iter().sum();
        smooth.iter_mut().for_each(|v| *v /= s);
        // Applied as Σ k[i]·f(x + i − r), so the ramp f = x gives Σ k[i]·(i − r).
        let ramp: f32 = deriv.iter().enumerate().map(|(i, k)| k * (i as i32 - REBLUR_RADIUS) as f32).sum();
        deriv.iter_mut().for_each(|v| *v /= ramp);
        let sq = |k: &[f32; 9]| k.iter().map(|v| v * v).sum::<f32>();
        let radius = ((3.0 * sigma).ceil() as usize).min(4);
        Dog { smooth, deriv, noise_gain: 2.0 * sq(&deriv) * sq(&smooth), radius }
    }

    /// Squared gradient magnitude at the patch centre, over the `R` taps
    /// each side that matter.
    fn gradient_sq<const R: usize>(&self, patch: &[[f32; 9]; 9]) -> f32 {
        debug_assert!(R >= self.radius && R <= 4);
        let (mut gx, mut gy) = (0f32, 0f32);
        for (j, row) in patch.iter().enumerate().skip(4 - R).take(2 * R + 1) {
            let (mut sx, mut sy) = (0f32, 0f32);
            for i in 4 - R..=4 + R {
                sx += self.deriv[i] * row[i];
                sy += self.smooth[i] * row[i];
            }
            gx += self.smooth[j] * sx;
            gy += self.deriv[j] * sy;
        }
        gx * gx + gy * gy
    }
}

struct ReblurKernels {
    fine: Dog,
    coarse: Dog,
}

fn reblur_kernels() -> &'static ReblurKernels {
    static K: std::sync::OnceLock<ReblurKernels> = std::sync::OnceLock::new();
    K.get_or_init(|| ReblurKernels { fine: Dog::new(FINE), coarse: Dog::new(REBLUR) })
}

/// Blur sigma from the ratio of fine to reblurred squared gradient at edge
/// centres: `(s² + REBLUR² + c) / (s² + FINE² + c)` for a Gaussian-blurred
/// straight edge of sigma `s` (`c`: the pixel's own area and the centre's
/// sub-pixel offset, calibrated on synthetic edge scenes).
fn blur_from_ratio(ratio: f32) -> f32 {
    const C: f32 = 0.08;
    if ratio.is_nan() || ratio <= 1.0 {
        return 0.0;
    }
    let (a, b) = (FINE * FINE + C, REBLUR * REBLUR + C);
    // (s² + b) = q (s² + a)  →  s² = (b − q a) / (q − 1)
    ((b - ratio * a) / (ratio - 1.0)).max(0.0).sqrt().min(8.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geometry::tests::frontal_face;
    use crate::geometry::{place, MaskVariant};
    use crate::template::TemplateSet;
    use crate::Jitter;
    use image::Rgb;

    pub fn placement() -> Placement {
        let set = TemplateSet::builtin().unwrap();
        let t = set.get("surgical").unwrap();
        place(&frontal_face(), MaskVariant::Correct, &t.outline, &t.descriptor.fit, Jitter::default()).unwrap()
    }

    /// A 520×520 "photo": skin-coloured shapes with sharp edges over a
    /// background, area-sampled (3×3 supersampling), so it is as sharp as
    /// pixels allow.
    pub fn scene(seed: u64) -> RgbImage {
        let mut rng = crate::SplitMix64::new(seed);
        let shapes: Vec<(f32, f32, f32, [f32; 3])> = (0..60)
            .map(|_| {
                let (x, y, r) = (rng.range(0.0, 520.0), rng.range(0.0, 520.0), rng.range(4.0, 40.0));
                let v = rng.range(0.5, 1.2);
                (x, y, r, [170.0 * v, 125.0 * v, 100.0 * v])
            })
            .collect();
        RgbImage::from_fn(520, 520, |x, y| {
            let mut acc = [0f32; 3];
            for sy in 0..3 {
                for sx in 0..3 {
                    let (px, py) = (x as f32 + (sx as f32 + 0.5) / 3.0, y as f32 + (sy as f32 + 0.5) / 3.0);
                    let mut c = [160.0, 120.0, 95.0];
                    for (cx, cy, r, col) in &shapes {
                        if (px - cx) * (px - cx) + (py - cy) * (py - cy) < r * r {
                            c = *col;
                        }
                    }
                    for k in 0..3 {
                        acc[k] += c[k] / 9.0;
                    }
                }
            }
            Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8))
        })
    }

    pub fn add_noise(img: &RgbImage, sigma: f32, seed: u64) -> RgbImage {
        let mut rng = crate::SplitMix64::new(seed);
        let mut out = img.clone();
        for p in out.pixels_mut() {
            for k in 0..3 {
                // Box–Muller.
                let (u1, u2) = (rng.next_f32().max(1e-7), rng.next_f32());
                let n = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                p.0[k] = (p.0[k] as f32 + sigma * n).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    /// Smooth skin: a gentle gradient, no texture.
    pub fn smooth_skin() -> RgbImage {
        RgbImage::from_fn(520, 520, |x, y| {
            let t = (x + y) as f32 / 1040.0;
            Rgb([(165.0 + 20.0 * t) as u8, (122.0 + 12.0 * t) as u8, (98.0 + 8.0 * t) as u8])
        })
    }

    pub fn to_grey(img: &RgbImage) -> RgbImage {
        RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.get_pixel(x, y).0;
            let g = ((p[0] as u32 * 3 + p[1] as u32 * 6 + p[2] as u32) / 10) as u8;
            Rgb([g, g, g])
        })
    }

    #[test]
    fn softness_estimate_follows_gaussian_blur() {
        let p = placement();
        let img = scene(2);
        let sharp = PhotoStats::estimate(&img, &p).blur;
        assert!(sharp < 0.7, "sharp photo read as blur {sharp}");
        for sigma in [1.0f32, 2.0, 3.0] {
            let b = PhotoStats::estimate(&imageproc::filter::gaussian_blur_f32(&img, sigma), &p).blur;
            assert!((b - sigma).abs() < 0.25 * sigma, "blur {sigma} read as {b}");
        }
        // No edges: unknown, not "very blurred".
        assert_eq!(PhotoStats::estimate(&smooth_skin(), &p).blur, 0.0);
    }

    #[test]
    fn noise_estimate_reads_the_noise_not_the_features() {
        let p = placement();
        let clean = PhotoStats::estimate(&scene(3), &p).noise;
        assert!(clean.iter().all(|&s| s < 0.5), "clean scene read as noise {clean:?}");
        for sigma in [3.0f32, 8.0] {
            let n = PhotoStats::estimate(&add_noise(&scene(3), sigma, 11), &p).noise;
            assert!(n.iter().all(|&s| (s - sigma).abs() < 0.15 * sigma), "noise {sigma} read as {n:?}");
        }
    }

    #[test]
    fn grey_colourfulness_and_cast() {
        let p = placement();
        let colour = PhotoStats::estimate(&scene(2), &p);
        assert!(!colour.grey && colour.saturation == 1.0, "{colour:?}");
        assert!(colour.cast.iter().all(|&c| (c - 1.0).abs() < 0.02), "all-skin photo has no cast: {colour:?}");
        let grey = PhotoStats::estimate(&to_grey(&scene(2)), &p);
        assert!(grey.grey && grey.saturation == 0.0 && grey.cast == [1.0; 3], "{grey:?}");
        // Washed out: chroma at a quarter.
        let sc = scene(2);
        let faded = RgbImage::from_fn(520, 520, |x, y| {
            let p = sc.get_pixel(x, y).0;
            let m = (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0;
            Rgb(p.map(|v| (m + 0.25 * (v as f32 - m)).round() as u8))
        });
        let f = PhotoStats::estimate(&faded, &p);
        assert!(!f.grey && f.saturation > 0.2 && f.saturation < 0.8, "{f:?}");

        // A grey wall beside the face shows the light's colour; a red curtain does not.
        let with_wall = |wall: [u8; 3], gain: [f32; 3]| {
            let sc = scene(2);
            RgbImage::from_fn(520, 520, |x, y| {
                let p = if !(140..=380).contains(&x) { wall } else { sc.get_pixel(x, y).0 };
                Rgb([0, 1, 2].map(|k| (p[k] as f32 * gain[k]).round().min(255.0) as u8))
            })
        };
        let neutral = PhotoStats::estimate(&with_wall([128, 128, 128], [1.0; 3]), &p).cast;
        assert!(neutral.iter().all(|&c| (c - 1.0).abs() < 0.03), "{neutral:?}");
        let warm = PhotoStats::estimate(&with_wall([128, 128, 128], [1.15, 1.0, 0.75]), &p).cast;
        assert!(warm[0] > 1.1 && warm[2] < 0.8, "{warm:?}");
        let curtain = PhotoStats::estimate(&with_wall([150, 30, 30], [1.0; 3]), &p).cast;
        assert!(curtain.iter().all(|&c| (c - 1.0).abs() < 0.03), "{curtain:?}");
    }
}
