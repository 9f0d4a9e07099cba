//! Drawing a placed mask: piecewise-affine warp of the template through the
//! placement's mesh, feathered edges, and lighting taken from the face.
//!
//! The mask is first rendered into a small premultiplied-RGBA layer covering
//! only the mask's bounding box (clipped to the image), then blurred by a
//! sub-pixel to a few-pixel Gaussian (anti-aliasing and feathering in one
//! step, correct for premultiplied colour), then composited. Lighting: a
//! smooth quadratic surface is fitted to the linear luminance of the skin
//! under the mask (robustly, so lips, nostrils and beard do not pull it), and
//! the mask's linear colour is multiplied by it relative to its mean, times
//! an exposure factor from the skin's brightness — so side light shades the
//! mask and a dim photo gets a dim mask.

use crate::colour::Colour;
use crate::geometry::Placement;
use crate::raster::Edge;
use crate::template::{Template, TemplateError};
use crate::texture::Texture;
use image::{GrayImage, RgbImage};
use maskforge_face::Point;
use std::sync::{Arc, OnceLock};

/// What a face's mask looks like.
#[derive(Clone, Debug)]
pub struct MaskStyle {
    pub template: Arc<Template>,
    pub colour: Colour,
    /// Texture and its weight (0..1).
    pub texture: Option<(Arc<Texture>, f32)>,
}

/// Blending strengths (0: off, 1: full).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlendOptions {
    /// Lighting transfer from the skin under the mask.
    pub lighting: f32,
    /// Darkening toward the sides and under the chin, where the mask turns away.
    pub wrap_shading: f32,
    /// Multiplier on the feather width (1 = default for the face size).
    pub feather: f32,
}

impl Default for BlendOptions {
    fn default() -> Self {
        BlendOptions { lighting: 1.0, wrap_shading: 1.0, feather: 1.0 }
    }
}

/// The rendered mask before compositing: premultiplied RGBA in 0..1 over a
/// rectangle of the image.
pub struct MaskLayer {
    pub x0: u32,
    pub y0: u32,
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<[f32; 4]>,
}

impl MaskLayer {
    fn empty() -> Self {
        MaskLayer { x0: 0, y0: 0, width: 0, height: 0, rgba: Vec::new() }
    }

    /// Alpha at image pixel `(x, y)` (0 outside the layer).
    pub fn alpha_at(&self, x: u32, y: u32) -> f32 {
        if x < self.x0 || y < self.y0 || x >= self.x0 + self.width || y >= self.y0 + self.height {
            return 0.0;
        }
        self.rgba[((y - self.y0) * self.width + (x - self.x0)) as usize][3]
    }

    /// Marks pixels at least half covered by the mask (255) in `seg`.
    pub fn write_segmentation(&self, seg: &mut GrayImage) {
        for ly in 0..self.height {
            for lx in 0..self.width {
                let (x, y) = (self.x0 + lx, self.y0 + ly);
                if x < seg.width() && y < seg.height() && self.rgba[(ly * self.width + lx) as usize][3] >= 0.5 {
                    seg.put_pixel(x, y, image::Luma([255]));
                }
            }
        }
    }
}

fn srgb_to_linear_exact(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb_exact(c: f32) -> f32 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

const LUT_N: usize = 4096;

struct Luts {
    to_linear: Vec<f32>,
    to_srgb: Vec<f32>,
    u8_to_linear: [f32; 256],
}

fn luts() -> &'static Luts {
    static L: OnceLock<Luts> = OnceLock::new();
    L.get_or_init(|| {
        let to_linear = (0..LUT_N).map(|i| srgb_to_linear_exact(i as f32 / (LUT_N - 1) as f32)).collect();
        // sRGB from linear: the table is indexed by sqrt(linear) for precision in the shadows.
        let to_srgb = (0..LUT_N)
            .map(|i| {
                let s = i as f32 / (LUT_N - 1) as f32;
                linear_to_srgb_exact(s * s)
            })
            .collect();
        let mut u8_to_linear = [0.0; 256];
        for (i, v) in u8_to_linear.iter_mut().enumerate() {
            *v = srgb_to_linear_exact(i as f32 / 255.0);
        }
        Luts { to_linear, to_srgb, u8_to_linear }
    })
}

#[inline]
fn to_linear(l: &Luts, c: f32) -> f32 {
    l.to_linear[((c.clamp(0.0, 1.0) * (LUT_N - 1) as f32) + 0.5) as usize]
}

#[inline]
fn to_srgb(l: &Luts, lin: f32) -> f32 {
    l.to_srgb[((lin.clamp(0.0, 1.0).sqrt() * (LUT_N - 1) as f32) + 0.5) as usize]
}

/// Rasterises the warped template into a layer (not yet feathered).
pub fn warp_layer(
    placement: &Placement,
    style: &MaskStyle,
    img_w: u32,
    img_h: u32,
    opts: &BlendOptions,
) -> Result<MaskLayer, TemplateError> {
    let rendered = style.template.rendered()?;
    let mesh = &placement.mesh;
    let sigma = placement.feather_sigma() * opts.feather.max(0.0);
    let pad = (3.0 * sigma).ceil() + 2.0;
    let (mut minx, mut miny, mut maxx, mut maxy) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in &mesh.image {
        minx = minx.min(p.x);
        miny = miny.min(p.y);
        maxx = maxx.max(p.x);
        maxy = maxy.max(p.y);
    }
    if !(minx.is_finite() && miny.is_finite() && maxx.is_finite() && maxy.is_finite()) {
        return Ok(MaskLayer::empty());
    }
    let x0 = (minx - pad).floor().max(0.0);
    let y0 = (miny - pad).floor().max(0.0);
    let x1 = (maxx + pad).ceil().min(img_w as f32);
    let y1 = (maxy + pad).ceil().min(img_h as f32);
    if x1 <= x0 || y1 <= y0 {
        return Ok(MaskLayer::empty());
    }
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (lw, lh) = (x1 as u32 - x0, y1 as u32 - y0);
    let mut rgba = vec![[0f32; 4]; (lw * lh) as usize];
    let mut written = vec![false; (lw * lh) as usize];
    let base = [style.colour.0[0] as f32, style.colour.0[1] as f32, style.colour.0[2] as f32];

    for [ia, ib, ic] in mesh.triangles() {
        let (a, b, c) = (mesh.image[ia], mesh.image[ib], mesh.image[ic]);
        let (sa, sb, sc) = (mesh.template[ia], mesh.template[ib], mesh.template[ic]);
        let (d1, d2) = (Point::new(b.x - a.x, b.y - a.y), Point::new(c.x - a.x, c.y - a.y));
        let det = d1.x * d2.y - d1.y * d2.x;
        if det.abs() < 1e-4 {
            continue;
        }
        let (e1, e2) = (Point::new(sb.x - sa.x, sb.y - sa.y), Point::new(sc.x - sa.x, sc.y - sa.y));
        // Template coords = sa + [e1 e2]·inv([d1 d2])·(p − a).
        let inv = [d2.y / det, -d2.x / det, -d1.y / det, d1.x / det];
        let m = [
            e1.x * inv[0] + e2.x * inv[2],
            e1.x * inv[1] + e2.x * inv[3],
            e1.y * inv[0] + e2.y * inv[2],
            e1.y * inv[1] + e2.y * inv[3],
        ];
        let units_per_px = (m[0] * m[3] - m[1] * m[2]).abs().sqrt();
        let (level, lscale) = rendered.pixels.level_for(units_per_px * rendered.scale);
        let to_level = rendered.scale * lscale;

        let tminx = a.x.min(b.x).min(c.x).floor().max(x0 as f32) as i64;
        let tmaxx = a.x.max(b.x).max(c.x).ceil().min((x0 + lw) as f32) as i64;
        let tminy = a.y.min(b.y).min(c.y).floor().max(y0 as f32) as i64;
        let tmaxy = a.y.max(b.y).max(c.y).ceil().min((y0 + lh) as f32) as i64;
        let sign = det.signum();
        let edge = |p: Point, q: Point, x: f32, y: f32| sign * ((q.x - p.x) * (y - p.y) - (q.y - p.y) * (x - p.x));
        for py in tminy..tmaxy {
            let yc = py as f32 + 0.5;
            for px in tminx..tmaxx {
                let xc = px as f32 + 0.5;
                if edge(a, b, xc, yc) < -1e-3 || edge(b, c, xc, yc) < -1e-3 || edge(c, a, xc, yc) < -1e-3 {
                    continue;
                }
                let li = ((py as u32 - y0) * lw + (px as u32 - x0)) as usize;
                if written[li] {
                    continue;
                }
                written[li] = true;
                let (dx, dy) = (xc - a.x, yc - a.y);
                let u = sa.x + m[0] * dx + m[1] * dy;
                let v = sa.y + m[2] * dx + m[3] * dy;
                let t = level.sample(u * to_level, v * to_level, Edge::Zero);
                if t[4] <= 0.0 {
                    continue;
                }
                let colour = match &style.texture {
                    Some((tex, weight)) if *weight > 0.0 => tex.apply(base, u, v, units_per_px, *weight),
                    _ => base,
                };
                let mut out = [0f32; 4];
                for k in 0..3 {
                    out[k] = ((t[0] * colour[k] / 255.0 + t[k + 1]) / 255.0).clamp(0.0, 1.0);
                }
                out[3] = (t[4] / 255.0).clamp(0.0, 1.0);
                rgba[li] = out;
            }
        }
    }
    let mut layer = MaskLayer { x0, y0, width: lw, height: lh, rgba };
    blur_layer(&mut layer, sigma);
    Ok(layer)
}

/// Separable Gaussian blur of the premultiplied layer (feathering).
fn blur_layer(layer: &mut MaskLayer, sigma: f32) {
    if sigma < 0.05 || layer.width == 0 || layer.height == 0 {
        return;
    }
    let r = (2.5 * sigma).ceil() as i64;
    let kernel: Vec<f32> = {
        let k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
        let s: f32 = k.iter().sum();
        k.into_iter().map(|v| v / s).collect()
    };
    let (w, h) = (layer.width as i64, layer.height as i64);
    let mut tmp = vec![[0f32; 4]; layer.rgba.len()];
    // Pixels beyond the layer edge count as transparent (the layer is padded,
    // except where it was clipped by the image border, where it does not matter).
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 4];
            for (ki, kv) in kernel.iter().enumerate() {
                let xx = x + ki as i64 - r;
                if xx < 0 || xx >= w {
                    continue;
                }
                let p = &layer.rgba[(y * w + xx) as usize];
                for c in 0..4 {
                    acc[c] += p[c] * kv;
                }
            }
            tmp[(y * w + x) as usize] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 4];
            for (ki, kv) in kernel.iter().enumerate() {
                let yy = y + ki as i64 - r;
                if yy < 0 || yy >= h {
                    continue;
                }
                let p = &tmp[(yy * w + x) as usize];
                for c in 0..4 {
                    acc[c] += p[c] * kv;
                }
            }
            layer.rgba[(y * w + x) as usize] = acc;
        }
    }
}

/// The lighting under the mask: `relative(x, y)` (about 1 on average) and
/// an overall exposure factor.
struct Lighting {
    coef: [f32; 6],
    mean: f32,
    exposure: f32,
    centre: Point,
    roll: f32,
    norm: f32,
}

impl Lighting {
    fn flat() -> Lighting {
        Lighting {
            coef: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            mean: 1.0,
            exposure: 1.0,
            centre: Point::default(),
            roll: 0.0,
            norm: 1.0,
        }
    }

    fn features(&self, x: f32, y: f32) -> [f32; 6] {
        let (s, c) = (-self.roll).sin_cos();
        let (dx, dy) = (x - self.centre.x, y - self.centre.y);
        let u = (dx * c - dy * s) / self.norm;
        let v = (dx * s + dy * c) / self.norm;
        [1.0, u, v, u * u, v * v, u * v]
    }

    fn relative(&self, x: f32, y: f32) -> f32 {
        let f = self.features(x, y);
        let val: f32 = f.iter().zip(&self.coef).map(|(a, b)| a * b).sum();
        (val / self.mean).clamp(0.35, 1.6)
    }
}

/// Solves the 6×6 normal equations (Gaussian elimination, partial pivoting).
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let piv = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for row in col + 1..6 {
            let f = a[row][col] / a[col][col];
            for k in col..6 {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0f64; 6];
    for row in (0..6).rev() {
        let mut s = b[row];
        for k in row + 1..6 {
            s -= a[row][k] * x[k];
        }
        x[row] = s / a[row][row];
    }
    Some(x)
}

fn estimate_lighting(img: &RgbImage, layer: &MaskLayer, placement: &Placement) -> Lighting {
    let l = luts();
    let mut light = Lighting::flat();
    light.centre = placement.centre;
    light.roll = placement.roll;
    light.norm = placement.face_width.max(1.0);
    let area = (layer.width * layer.height) as f32;
    let step = ((area / 2500.0).sqrt().floor() as u32).max(1);
    let mut samples: Vec<(f32, f32, f32)> = Vec::new();
    for ly in (0..layer.height).step_by(step as usize) {
        for lx in (0..layer.width).step_by(step as usize) {
            if layer.rgba[(ly * layer.width + lx) as usize][3] < 0.9 {
                continue;
            }
            let (x, y) = (layer.x0 + lx, layer.y0 + ly);
            let p = img.get_pixel(x, y).0;
            let lum = 0.2126 * l.u8_to_linear[p[0] as usize]
                + 0.7152 * l.u8_to_linear[p[1] as usize]
                + 0.0722 * l.u8_to_linear[p[2] as usize];
            samples.push((x as f32 + 0.5, y as f32 + 0.5, lum));
        }
    }
    if samples.len() < 24 {
        return light;
    }
    let mut sorted: Vec<f32> = samples.iter().map(|s| s.2).collect();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let p80 = sorted[(sorted.len() * 4) / 5];
    // A well-lit face reads about 0.3 linear at its brighter skin; a square
    // root keeps dark skin in good light from greying a white mask too much.
    light.exposure = (p80 / 0.30).max(1e-4).sqrt().clamp(0.3, 1.1);

    // Robust quadratic fit: fit, drop samples far below (lips, nostrils,
    // beard, shadows of features) or above (specular highlights), refit.
    let mut keep: Vec<bool> = vec![true; samples.len()];
    let mut coef = [0f64; 6];
    for pass in 0..2 {
        let mut ata = [[0f64; 6]; 6];
        let mut atb = [0f64; 6];
        let mut n = 0;
        for (s, k) in samples.iter().zip(&keep) {
            if !k {
                continue;
            }
            let f = light.features(s.0, s.1);
            for i in 0..6 {
                for j in 0..6 {
                    ata[i][j] += (f[i] * f[j]) as f64;
                }
                atb[i] += (f[i] * s.2) as f64;
            }
            n += 1;
        }
        // Light ridge regularisation on the curvature terms keeps small or
        // patchy samples from producing wild surfaces.
        for (i, row) in ata.iter_mut().enumerate().skip(1) {
            row[i] += n as f64 * if i >= 3 { 0.02 } else { 0.002 };
        }
        match solve6(ata, atb) {
            Some(c) => coef = c,
            None => return light,
        }
        if pass == 0 {
            let res: Vec<f32> = samples
                .iter()
                .map(|s| {
                    let f = light.features(s.0, s.1);
                    s.2 - f.iter().zip(&coef).map(|(a, b)| a * *b as f32).sum::<f32>()
                })
                .collect();
            let sd = (res.iter().map(|r| r * r).sum::<f32>() / res.len() as f32).sqrt();
            for (k, r) in keep.iter_mut().zip(&res) {
                *k = *r > -0.8 * sd && *r < 2.0 * sd;
            }
        }
    }
    light.coef = coef.map(|c| c as f32);
    let mut mean = 0.0;
    let mut n = 0.0;
    for (s, k) in samples.iter().zip(&keep) {
        if *k {
            let f = light.features(s.0, s.1);
            mean += f.iter().zip(&light.coef).map(|(a, b)| a * b).sum::<f32>();
            n += 1.0;
        }
    }
    light.mean = if n > 0.0 && mean > 0.0 { mean / n } else { 1.0 };
    if !light.mean.is_finite() || light.mean <= 1e-4 {
        return Lighting::flat();
    }
    light
}

/// Composites a feathered layer onto the image with lighting and shading.
pub fn composite(img: &mut RgbImage, layer: &MaskLayer, placement: &Placement, opts: &BlendOptions) {
    if layer.width == 0 || layer.height == 0 {
        return;
    }
    let l = luts();
    let light = if opts.lighting > 0.0 { estimate_lighting(img, layer, placement) } else { Lighting::flat() };
    let (s, c) = (-placement.roll).sin_cos();
    let h = placement.face_height.max(1.0);
    for ly in 0..layer.height {
        let y = layer.y0 + ly;
        for lx in 0..layer.width {
            let p = layer.rgba[(ly * layer.width + lx) as usize];
            let alpha = p[3];
            if alpha <= 1.0 / 512.0 {
                continue;
            }
            let x = layer.x0 + lx;
            let (xc, yc) = (x as f32 + 0.5, y as f32 + 0.5);
            let mut gain = 1.0;
            if opts.lighting > 0.0 {
                let g = light.relative(xc, yc) * light.exposure;
                gain *= 1.0 + (g - 1.0) * opts.lighting;
            }
            if opts.wrap_shading > 0.0 {
                // Face-frame position: sides and the underside of the chin turn away.
                let (dx, dy) = (xc - placement.centre.x, yc - placement.centre.y);
                let fx = placement.centre.x + dx * c - dy * s;
                let fy = placement.centre.y + dx * s + dy * c;
                let half = if fx < placement.mid_x { placement.half_right } else { placement.half_left };
                let u = ((fx - placement.mid_x).abs() / half).min(1.3);
                let under = ((fy - (placement.bottom_y - 0.12 * h)) / (0.12 * h)).clamp(0.0, 1.0);
                let wrap = (1.0 - 0.28 * u.powf(2.2)) * (1.0 - 0.30 * under * under);
                gain *= 1.0 + (wrap - 1.0) * opts.wrap_shading;
            }
            let px = img.get_pixel_mut(x, y);
            for k in 0..3 {
                let col = (p[k] / alpha).clamp(0.0, 1.0);
                let lit = to_srgb(l, to_linear(l, col) * gain);
                let bg = px.0[k] as f32 / 255.0;
                let v = lit * alpha.min(1.0) + bg * (1.0 - alpha.min(1.0));
                px.0[k] = (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luts_round_trip() {
        let l = luts();
        for i in 0..=255u32 {
            let c = i as f32 / 255.0;
            let back = to_srgb(l, to_linear(l, c));
            assert!((back - c).abs() < 1.5 / 255.0, "{i}: {back}");
        }
    }

    #[test]
    fn solve6_solves_identity_systems() {
        let mut a = [[0f64; 6]; 6];
        for (i, row) in a.iter_mut().enumerate() {
            row[i] = 2.0;
        }
        let x = solve6(a, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]).unwrap();
        assert_eq!(x, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(solve6([[0.0; 6]; 6], [1.0; 6]).is_none());
    }
}
