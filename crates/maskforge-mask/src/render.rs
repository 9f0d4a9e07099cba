//! Drawing a placed mask: piecewise-affine warp of the template through the
//! placement's mesh, feathered edges, lighting taken from the face, and the
//! photo's own look (softness, noise, colour).
//!
//! The mask is first rendered into a small premultiplied-RGBA layer covering
//! only the mask's bounding box (clipped to the image), then blurred by a
//! sub-pixel to a few-pixel Gaussian (anti-aliasing and feathering in one
//! step, correct for premultiplied colour; on a soft photo the same blur
//! softens the mask to match, see [`crate::photo`]), then composited.
//!
//! Compositing, per pixel of the layer (the shading gains are smooth, so
//! they are worked out on a grid of 2–3 px cells and read bilinearly; the
//! contact shadow likewise on a grid of a fraction of its width):
//!
//! * lighting: a smooth quadratic surface is fitted to the linear luminance
//!   of the skin under the mask (robustly, so lips, nostrils and beard do not
//!   pull it), and the mask's linear colour is multiplied by it relative to
//!   its mean, times an exposure factor from the skin's brightness — so side
//!   light shades the mask and a dim photo gets a dim mask (with photo
//!   matching, a dark photo dims it further, see `DARK_SKIN`);
//! * wrap shading: darker toward the sides and under the chin;
//! * relief: the template's pleats and seams, read as a height map (the art's
//!   luminance with a mid-grey mask colour), are lit from the light direction
//!   that the fit's linear terms give, as strongly as the skin's light is
//!   directional (so an evenly lit face keeps the art's own shading);
//! * photo colour: chroma scaled to the photo's colourfulness (exactly grey
//!   on a grey-scale photo), a partial colour cast, and seeded noise of the
//!   photo's sigma;
//! * contact shadow: the skin just outside the mask's edges is darkened where
//!   the fabric stands off the face (most along the top edge over the cheeks,
//!   least under the chin), offset away from the light.

use crate::colour::{linear_to_srgb_exact, srgb, Colour, Srgb};
use crate::geometry::Placement;
use crate::photo::{PhotoStats, LUMA};
use crate::raster::Edge;
use crate::template::{Template, TemplateError};
use crate::texture::Texture;
use image::{GrayImage, RgbImage};
use maskforge_face::Point;
use std::sync::{Arc, OnceLock};

/// What a face's mask looks like.
#[derive(Clone, Debug)]
pub struct MaskStyle {
    /// The template drawn.
    pub template: Arc<Template>,
    /// The colour its recolourable parts take.
    pub colour: Colour,
    /// Texture and its weight (0..1).
    pub texture: Option<(Arc<Texture>, f32)>,
}

/// Blending strengths (0: off, 1: full). All zero (and `feather` zero) is a
/// flat paste of the template art.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlendOptions {
    /// Lighting transfer from the skin under the mask (shading and exposure).
    pub lighting: f32,
    /// Darkening toward the sides and under the chin, where the mask turns away.
    pub wrap_shading: f32,
    /// Multiplier on the feather width (1 = default for the face size).
    pub feather: f32,
    /// Relief of pleats and seams lit from the face's own light direction,
    /// as strongly as the skin's light is directional (none when even).
    pub relief: f32,
    /// Contact shadow on the skin along the mask's edges (depth multiplier).
    pub shadow: f32,
    /// Matching the photo: blur to its softness, add its noise, follow its
    /// saturation (grey on grey-scale photos) and colour cast, and let a
    /// very dark photo dim the mask below the lighting's usual floor.
    pub photo_match: f32,
}

impl Default for BlendOptions {
    fn default() -> Self {
        BlendOptions { lighting: 1.0, wrap_shading: 1.0, feather: 1.0, relief: 1.0, shadow: 1.0, photo_match: 1.0 }
    }
}

/// The rendered mask before compositing: premultiplied RGBA in 0..1 over a
/// rectangle of the image.
pub struct MaskLayer {
    /// Left column of the rectangle in the image.
    pub x0: u32,
    /// Top row of the rectangle in the image.
    pub y0: u32,
    /// Width of the rectangle, pixels.
    pub width: u32,
    /// Height of the rectangle, pixels.
    pub height: u32,
    /// `width × height` premultiplied RGBA pixels, row-major.
    pub rgba: Vec<[f32; 4]>,
    /// Relief height map (the art's luminance with a mid-grey colour).
    relief: Option<ReliefGrid>,
}

impl MaskLayer {
    fn empty() -> Self {
        MaskLayer { x0: 0, y0: 0, width: 0, height: 0, rgba: Vec::new(), relief: None }
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

const WRAP_N: usize = 1024;
/// `u^2.2` for `u` in `0..=WRAP_MAX` (the wrap shading's profile).
const WRAP_MAX: f32 = 1.3;

/// The wrap shading's profile, tabulated: `WRAP_N + 1` values of `u^2.2`.
fn wrap_table() -> &'static [f32] {
    static T: OnceLock<Vec<f32>> = OnceLock::new();
    T.get_or_init(|| (0..=WRAP_N).map(|i| (i as f32 * WRAP_MAX / WRAP_N as f32).powf(2.2)).collect())
}

#[inline]
fn wrap_pow(wrap: &[f32], u: f32) -> f32 {
    let t = u.clamp(0.0, WRAP_MAX) * (WRAP_N as f32 / WRAP_MAX);
    let i = (t as usize).min(WRAP_N - 1);
    let f = t - i as f32;
    wrap[i] + (wrap[i + 1] - wrap[i]) * f
}

/// The mask's intrinsic softness (bilinear resampling), in pixels: a photo
/// softer than this gets a softer mask.
const MASK_SHARPNESS: f32 = 0.5;

/// Blur sigma of the layer: the feather, or the photo's softness when
/// matching a softer photo (capped for a few % of the face width).
fn layer_sigma(placement: &Placement, opts: &BlendOptions, stats: &PhotoStats) -> f32 {
    let feather = placement.feather_sigma() * opts.feather.max(0.0);
    let pm = opts.photo_match.clamp(0.0, 1.0);
    let photo = (stats.blur * stats.blur - MASK_SHARPNESS * MASK_SHARPNESS).max(0.0).sqrt();
    let photo = photo.min((0.02 * placement.face_width + 1.0).min(8.0));
    feather + pm * (photo - feather).max(0.0)
}

/// Draws a placed mask on `img`: estimates the photo's look (when
/// `opts.photo_match` > 0), renders the layer and composites it. `seed`
/// drives the added noise (the same seed gives the same bytes). Returns
/// the layer (for segmentation).
pub fn draw(
    img: &mut RgbImage,
    placement: &Placement,
    style: &MaskStyle,
    opts: &BlendOptions,
    seed: u64,
) -> Result<MaskLayer, TemplateError> {
    let stats = if opts.photo_match > 0.0 { PhotoStats::estimate(img, placement) } else { PhotoStats::NEUTRAL };
    let sigma = layer_sigma(placement, opts, &stats);
    let layer = rasterise(placement, style, img.width(), img.height(), sigma, opts.relief > 0.0)?;
    composite(img, &layer, placement, opts, &stats, seed);
    Ok(layer)
}

/// Grey level (0..255) of the mask colour at which the relief height is read.
const RELIEF_GREY: f32 = 160.0;

/// The relief height map: on a grid of `cell`-pixel cells over the layer
/// (2 px, or a 150th of the face width on large faces), sampled from the
/// art's pre-filtered level for the cell size (fabric speckle is not relief).
struct ReliefGrid {
    cell: u32,
    gw: usize,
    gh: usize,
    /// Height (0..1), or NaN where the art is transparent.
    height: Vec<f32>,
}

fn relief_cell(face_width: f32) -> u32 {
    ((face_width / 150.0).round() as u32).max(2)
}

/// Walks the grid points `(ox + (i + ½)·step, oy + (j + ½)·step)`, `i < gw`,
/// `j < gh`, that the mesh's triangles cover (the first triangle wins), and
/// calls `visit(grid index, template u, template v, state)` with the state
/// `per_triangle(template units per image pixel)` made for each triangle.
#[allow(clippy::too_many_arguments)]
fn walk_mesh<S>(
    mesh: &crate::geometry::Mesh,
    ox: f32,
    oy: f32,
    step: f32,
    gw: usize,
    gh: usize,
    mut per_triangle: impl FnMut(f32) -> S,
    mut visit: impl FnMut(usize, f32, f32, &S),
) {
    let mut written = vec![false; gw * gh];
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
        // Grid points whose centres lie within the triangle's bounding box.
        let range = |lo: f32, hi: f32, o: f32, n: usize| {
            let first = ((lo - o) / step - 0.5).ceil().max(0.0);
            let last = ((hi - o) / step - 0.5).floor().min(n as f32 - 1.0);
            (first as i64, last as i64)
        };
        let (imin, imax) = range(a.x.min(b.x).min(c.x), a.x.max(b.x).max(c.x), ox, gw);
        let (jmin, jmax) = range(a.y.min(b.y).min(c.y), a.y.max(b.y).max(c.y), oy, gh);
        if imin > imax || jmin > jmax {
            continue;
        }
        let state = per_triangle(units_per_px);
        let sign = det.signum();
        let edge = |p: Point, q: Point, x: f32, y: f32| sign * ((q.x - p.x) * (y - p.y) - (q.y - p.y) * (x - p.x));
        for j in jmin..=jmax {
            let yc = oy + (j as f32 + 0.5) * step;
            for i in imin..=imax {
                let xc = ox + (i as f32 + 0.5) * step;
                if edge(a, b, xc, yc) < -1e-3 || edge(b, c, xc, yc) < -1e-3 || edge(c, a, xc, yc) < -1e-3 {
                    continue;
                }
                let gi = j as usize * gw + i as usize;
                if written[gi] {
                    continue;
                }
                written[gi] = true;
                let (dx, dy) = (xc - a.x, yc - a.y);
                visit(gi, sa.x + m[0] * dx + m[1] * dy, sa.y + m[2] * dx + m[3] * dy, &state);
            }
        }
    }
}

fn rasterise(
    placement: &Placement,
    style: &MaskStyle,
    img_w: u32,
    img_h: u32,
    sigma: f32,
    with_relief: bool,
) -> Result<MaskLayer, TemplateError> {
    let rendered = style.template.rendered()?;
    let mesh = &placement.mesh;
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
    let (w, h) = (lw as usize, lh as usize);
    let mut rgba = vec![[0f32; 4]; w * h];
    let base = [style.colour.0[0] as f32, style.colour.0[1] as f32, style.colour.0[2] as f32];
    walk_mesh(
        mesh,
        x0 as f32,
        y0 as f32,
        1.0,
        w,
        h,
        |units_per_px| {
            let (level, lscale) = rendered.pixels.level_for(units_per_px * rendered.scale);
            (level, rendered.scale * lscale, units_per_px)
        },
        |li, u, v, &(level, to_level, units_per_px)| {
            let t = level.sample(u * to_level, v * to_level, Edge::Zero);
            if t[4] <= 0.0 {
                return;
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
        },
    );
    blur(&mut rgba, w, h, sigma);

    let relief = with_relief.then(|| {
        let cell = relief_cell(placement.face_width);
        let (gw, gh) = (lw.div_ceil(cell) as usize, lh.div_ceil(cell) as usize);
        let mut height = vec![f32::NAN; gw * gh];
        walk_mesh(
            mesh,
            x0 as f32,
            y0 as f32,
            cell as f32,
            gw,
            gh,
            |units_per_px| {
                let (level, lscale) = rendered.pixels.level_for(units_per_px * rendered.scale * cell.max(2) as f32);
                (level, rendered.scale * lscale)
            },
            |gi, u, v, &(level, to_level)| {
                let t = level.sample(u * to_level, v * to_level, Edge::Zero);
                if t[4] > 8.0 {
                    let lum = LUMA[0] * t[1] + LUMA[1] * t[2] + LUMA[2] * t[3];
                    height[gi] = (t[0] * RELIEF_GREY / 255.0 + lum) / t[4];
                }
            },
        );
        ReliefGrid { cell, gw, gh, height }
    });
    Ok(MaskLayer { x0, y0, width: lw, height: lh, rgba, relief })
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (2.5 * sigma).ceil() as i64;
    let k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable Gaussian blur of a `w`×`h` buffer; pixels beyond the edge count
/// as zero (the layer is padded, except where it was clipped by the image
/// border, where it does not matter). Each pass is a sum of shifted rows
/// (vectorises), limited to each row's non-zero span.
fn blur<const N: usize>(data: &mut [[f32; N]], w: usize, h: usize, sigma: f32) {
    if sigma < 0.05 || w == 0 || h == 0 {
        return;
    }
    let kernel = gaussian_kernel(sigma);
    let r = kernel.len() / 2;
    let nonzero = |p: &[f32; N]| p.iter().any(|&v| v != 0.0);
    let mut tmp = vec![[0f32; N]; data.len()];
    // Per row of `tmp`: the span of pixels that may be non-zero.
    let mut spans: Vec<Option<(usize, usize)>> = vec![None; h];
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        let Some(first) = row.iter().position(nonzero) else { continue };
        let last = row.iter().rposition(nonzero).unwrap_or(first);
        let out = tmp[y * w..(y + 1) * w].as_flattened_mut();
        let src = row.as_flattened();
        for (t, &kv) in kernel.iter().enumerate() {
            // out[x] += kv · src[x + t − r] for source pixels first..=last.
            let shift = r as isize - t as isize;
            let lo = (first as isize + shift).max(0);
            let hi = (last as isize + shift).min(w as isize - 1);
            if lo > hi {
                continue;
            }
            let (lo, hi, s0) = (lo as usize, hi as usize, (lo - shift) as usize);
            for (o, v) in out[lo * N..(hi + 1) * N].iter_mut().zip(&src[s0 * N..(s0 + hi + 1 - lo) * N]) {
                *o += kv * v;
            }
        }
        spans[y] = Some((first.saturating_sub(r), (last + r).min(w - 1)));
    }
    for y in 0..h {
        let out = data[y * w..(y + 1) * w].as_flattened_mut();
        out.fill(0.0);
        for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
            let Some((lo, hi)) = spans[yy] else { continue };
            let kv = kernel[yy + r - y];
            let src = tmp[yy * w..(yy + 1) * w].as_flattened();
            for (o, v) in out[lo * N..(hi + 1) * N].iter_mut().zip(&src[lo * N..(hi + 1) * N]) {
                *o += kv * v;
            }
        }
    }
}

/// `x.floor()` as an integer, without a libm call.
#[inline]
fn floor_i64(x: f32) -> i64 {
    let i = x as i64;
    if (i as f32) > x {
        i - 1
    } else {
        i
    }
}

/// The lighting under the mask: `relative(x, y)` (about 1 on average), an
/// overall exposure factor, and the skin's colour for telling skin apart.
struct Lighting {
    coef: [f32; 6],
    mean: f32,
    exposure: f32,
    centre: Point,
    /// `sin` and `cos` of `−roll` (image to face frame).
    sin: f32,
    cos: f32,
    norm: f32,
    /// Median `(R − B) / (R + G + B)` of the skin samples (sRGB).
    skin_rb: f32,
}

impl Lighting {
    fn flat() -> Lighting {
        Lighting {
            coef: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            mean: 1.0,
            exposure: 1.0,
            centre: Point::default(),
            sin: 0.0,
            cos: 1.0,
            norm: 1.0,
            skin_rb: f32::NAN,
        }
    }

    #[inline]
    fn features(&self, x: f32, y: f32) -> [f32; 6] {
        let (s, c) = (self.sin, self.cos);
        let (dx, dy) = (x - self.centre.x, y - self.centre.y);
        let u = (dx * c - dy * s) / self.norm;
        let v = (dx * s + dy * c) / self.norm;
        [1.0, u, v, u * u, v * v, u * v]
    }

    #[inline]
    fn relative(&self, x: f32, y: f32) -> f32 {
        let f = self.features(x, y);
        let val: f32 = f.iter().zip(&self.coef).map(|(a, b)| a * b).sum();
        (val / self.mean).clamp(0.35, 1.6)
    }

    /// Direction toward the light in the image plane (unit vector) and how
    /// directional the light is (0: even, 1: strong side light), from the
    /// fit's linear terms: the relative change of skin luminance per face
    /// width, 0.8 or more counting as fully directional.
    fn direction(&self) -> (Point, f32) {
        let (c1, c2) = (self.coef[1] / self.mean, self.coef[2] / self.mean);
        // d/dx and d/dy of the fit in image axes (u, v rotate the image by −roll).
        let gx = c1 * self.cos + c2 * self.sin;
        let gy = -c1 * self.sin + c2 * self.cos;
        let g = (gx * gx + gy * gy).sqrt();
        if !g.is_finite() || g < 1e-6 {
            return (Point::default(), 0.0);
        }
        (Point::new(gx / g, gy / g), (g / 0.8).min(1.0))
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

/// Linear luminance of the brighter skin (80th percentile) below which a
/// photo counts as dark rather than showing dark skin in good light (about
/// sRGB 70; very dark skin in good light reads about that): photo matching
/// lets the exposure fall below its usual floor there, as `DARK_POWER` of the
/// shortfall, so that a photo at a third of its brightness gets a white
/// mask near what the same light would give it (the exposure tends to
/// `p80 / 0.3`, the bare skin ratio, as the photo darkens).
const DARK_SKIN: f32 = 0.06;
const DARK_POWER: f32 = 1.5;

fn estimate_lighting(img: &RgbImage, layer: &MaskLayer, placement: &Placement, photo_match: f32) -> Lighting {
    let l = srgb();
    let mut light = Lighting::flat();
    light.centre = placement.centre;
    (light.sin, light.cos) = (-placement.roll).sin_cos();
    light.norm = placement.face_width.max(1.0);
    let area = (layer.width * layer.height) as f32;
    let step = ((area / 2500.0).sqrt().floor() as u32).max(1);
    let mut samples: Vec<(f32, f32, f32)> = Vec::new();
    let mut rb: Vec<f32> = Vec::new();
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
            rb.push((p[0] as f32 - p[2] as f32) / (p[0] as f32 + p[1] as f32 + p[2] as f32 + 1.0));
        }
    }
    if samples.len() < 24 {
        return light;
    }
    let mid = rb.len() / 2;
    light.skin_rb = *rb.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1;
    let mut lums: Vec<f32> = samples.iter().map(|s| s.2).collect();
    let i80 = (lums.len() * 4) / 5;
    let p80 = *lums.select_nth_unstable_by(i80, |a, b| a.total_cmp(b)).1;
    // A well-lit face reads about 0.3 linear at its brighter skin; a square
    // root keeps dark skin in good light from greying a white mask too much.
    // Below DARK_SKIN the photo is more likely dark than the skin, and the
    // exposure follows it down (so a white mask is not a bright blob).
    let dark = (p80 / DARK_SKIN).min(1.0).powf(DARK_POWER * photo_match.clamp(0.0, 1.0));
    light.exposure = ((p80 / 0.30).max(1e-4).sqrt().clamp(0.3, 1.1) * dark).max(0.02);

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
        let (exposure, skin_rb) = (light.exposure, light.skin_rb);
        return Lighting { exposure, skin_rb, ..Lighting::flat() };
    }
    light
}

/// Contact shadow width (Gaussian sigma) as a fraction of the face width.
const SHADOW_WIDTH: f32 = 0.02;
/// Darkening of the skin (linear light) per unit of blurred mask alpha: about
/// 25% just outside the edge, fading over a few % of the face width.
const SHADOW_DEPTH: f32 = 0.6;
/// Shadow weight along the bottom edge relative to the top edge.
const SHADOW_BOTTOM: f32 = 0.35;

fn shadow_sigma(placement: &Placement) -> f32 {
    (SHADOW_WIDTH * placement.face_width).max(0.7)
}

fn shadow_cell(sigma: f32) -> u32 {
    ((sigma / 1.5).floor() as u32).max(2)
}

/// How far (in pixels) beyond the mask layer's alpha the contact shadow can
/// reach: three shadow widths (the blur and its offset toward the light)
/// plus the coarse grid it is computed on.
pub fn shadow_reach(placement: &Placement) -> f32 {
    let sigma = shadow_sigma(placement);
    3.0 * sigma + 3.0 * shadow_cell(sigma) as f32 + 1.0
}

/// A coarse grid over a rectangle of the image, read bilinearly (zero
/// outside): cell `(i, j)` holds the value at the cell's centre.
struct CoarseGrid {
    x0: f32,
    y0: f32,
    cell: f32,
    gw: usize,
    gh: usize,
    data: Vec<[f32; 1]>,
}

impl CoarseGrid {
    #[inline]
    fn at(&self, i: i64, j: i64) -> f32 {
        if i < 0 || j < 0 || i >= self.gw as i64 || j >= self.gh as i64 {
            0.0
        } else {
            self.data[j as usize * self.gw + i as usize][0]
        }
    }

    /// Bilinear value at image point `(x, y)`.
    #[inline]
    fn sample(&self, x: f32, y: f32) -> f32 {
        let gx = (x - self.x0) / self.cell - 0.5;
        let gy = (y - self.y0) / self.cell - 0.5;
        if !(gx > -1.0 && gy > -1.0 && gx < self.gw as f32 && gy < self.gh as f32) {
            return 0.0;
        }
        let (ix, iy) = (floor_i64(gx), floor_i64(gy));
        let (fx, fy) = (gx - ix as f32, gy - iy as f32);
        let top = self.at(ix, iy) * (1.0 - fx) + self.at(ix + 1, iy) * fx;
        let bottom = self.at(ix, iy + 1) * (1.0 - fx) + self.at(ix + 1, iy + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Bilinear reads of a [`CoarseGrid`] along pixel rows `x0..x1`: the
/// horizontal positions are worked out once, each row's vertical blend once.
struct RowLerp {
    /// Per pixel: index into `row` of the cell on the left (shifted by one,
    /// so that `row[0]` is the zero left of the grid), and the blend.
    xi: Vec<u32>,
    xf: Vec<f32>,
    row: Vec<f32>,
}

impl RowLerp {
    fn new(grid: &CoarseGrid, x0: u32, x1: u32) -> RowLerp {
        let (mut xi, mut xf) = (Vec::new(), Vec::new());
        for x in x0..x1 {
            let gx = (x as f32 + 0.5 - grid.x0) / grid.cell - 0.5;
            let i = floor_i64(gx) as f32;
            if i < -1.0 || i >= grid.gw as f32 {
                xi.push(if i < -1.0 { 0 } else { grid.gw as u32 + 1 });
                xf.push(0.0);
            } else {
                xi.push((i + 1.0) as u32);
                xf.push(gx - i);
            }
        }
        RowLerp { xi, xf, row: vec![0.0; grid.gw + 3] }
    }

    /// Blends the grid rows around pixel row `y`; false when all zero.
    fn load(&mut self, grid: &CoarseGrid, y: u32) -> bool {
        let gy = (y as f32 + 0.5 - grid.y0) / grid.cell - 0.5;
        let j = floor_i64(gy);
        let fy = gy - j as f32;
        let gw = grid.gw;
        let row = |j: i64| (j >= 0 && j < grid.gh as i64).then(|| &grid.data[j as usize * gw..(j as usize + 1) * gw]);
        let out = &mut self.row[1..gw + 1];
        match (row(j), row(j + 1)) {
            (Some(a), Some(b)) => {
                for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                    *o = a[0] + (b[0] - a[0]) * fy;
                }
            }
            (Some(a), None) => out.iter_mut().zip(a).for_each(|(o, a)| *o = a[0] * (1.0 - fy)),
            (None, Some(b)) => out.iter_mut().zip(b).for_each(|(o, b)| *o = b[0] * fy),
            (None, None) => {
                out.fill(0.0);
                return false;
            }
        }
        out.iter().any(|&v| v != 0.0)
    }

    /// The value at the `k`-th pixel of the row.
    #[inline]
    fn get(&self, k: usize) -> f32 {
        let i = self.xi[k] as usize;
        let (a, b) = (self.row[i], self.row[i + 1]);
        a + (b - a) * self.xf[k]
    }
}

/// The contact shadow's darkening over the layer plus the shadow's reach:
/// the layer's alpha box-averaged onto a coarse grid and blurred by the
/// shadow width, read from a point shifted toward the light, times the
/// edge's weight there, the depth, and how skin-like the photo is in the
/// cell (so hair, background and clothes stay as they are).
struct ShadowMap {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
    strength: CoarseGrid,
}

impl ShadowMap {
    fn build(img: &RgbImage, layer: &MaskLayer, placement: &Placement, light: &Lighting, depth: f32) -> ShadowMap {
        let l = srgb();
        let sigma = shadow_sigma(placement);
        let cell = shadow_cell(sigma);
        let reach = shadow_reach(placement).ceil() as u32;
        let x0 = layer.x0.saturating_sub(reach);
        let y0 = layer.y0.saturating_sub(reach);
        let x1 = (layer.x0 + layer.width + reach).min(img.width());
        let y1 = (layer.y0 + layer.height + reach).min(img.height());
        let gw = (x1 - x0).div_ceil(cell) as usize;
        let gh = (y1 - y0).div_ceil(cell) as usize;
        let mut grid = vec![[0f32; 1]; gw * gh];
        let norm = 1.0 / (cell * cell) as f32;
        let gxs: Vec<usize> = (0..layer.width).map(|lx| ((layer.x0 + lx - x0) / cell) as usize).collect();
        for ly in 0..layer.height {
            let gy = ((layer.y0 + ly - y0) / cell) as usize;
            let row = &layer.rgba[(ly * layer.width) as usize..((ly + 1) * layer.width) as usize];
            let grow = &mut grid[gy * gw..(gy + 1) * gw];
            for (p, &gx) in row.iter().zip(&gxs) {
                grow[gx][0] += p[3] * norm;
            }
        }
        blur(&mut grid, gw, gh, sigma / cell as f32);
        let alpha = CoarseGrid { x0: x0 as f32, y0: y0 as f32, cell: cell as f32, gw, gh, data: grid };
        let (dir, strength) = light.direction();
        let shift = Point::new(dir.x * 0.5 * sigma * strength, dir.y * 0.5 * sigma * strength);
        let frame = placement.face_frame();
        let mut data = vec![[0f32; 1]; gw * gh];
        for j in 0..gh {
            for i in 0..gw {
                let xc = x0 as f32 + (i as f32 + 0.5) * cell as f32;
                let yc = y0 as f32 + (j as f32 + 0.5) * cell as f32;
                let occ = alpha.sample(xc + shift.x, yc + shift.y);
                if occ < 1e-4 {
                    continue;
                }
                let w = occ * shadow_position_weight(placement, frame.apply(Point::new(xc, yc))) * depth;
                if w < 1e-4 {
                    continue;
                }
                // The photo's mean colour over four points of the cell.
                let mut sum = [0u32; 3];
                for (fx, fy) in [(1, 1), (3, 1), (1, 3), (3, 3)] {
                    let px = (x0 + (i as u32 * cell) + fx * cell / 4).min(img.width() - 1);
                    let py = (y0 + (j as u32 * cell) + fy * cell / 4).min(img.height() - 1);
                    let p = img.get_pixel(px, py).0;
                    for k in 0..3 {
                        sum[k] += p[k] as u32;
                    }
                }
                let mean = sum.map(|v| ((v + 2) / 4) as u8);
                data[j * gw + i][0] = w * skin_likeness(l, light, mean, light.relative(xc, yc) * light.mean);
            }
        }
        ShadowMap { x0, y0, x1, y1, strength: CoarseGrid { data, ..alpha } }
    }
}

/// `SHADE[q][v]`: sRGB byte `v` darkened by `q / 256` in linear light.
const SHADE_LEVELS: usize = 160;

fn shade_table() -> &'static [[u8; 256]; SHADE_LEVELS] {
    static T: OnceLock<Box<[[u8; 256]; SHADE_LEVELS]>> = OnceLock::new();
    T.get_or_init(|| {
        let l = srgb();
        let mut t = Box::new([[0u8; 256]; SHADE_LEVELS]);
        for (q, row) in t.iter_mut().enumerate() {
            let f = 1.0 - q as f32 / 256.0;
            for (v, o) in row.iter_mut().enumerate() {
                *o = (linear_to_srgb_exact(l.u8_to_linear[v] * f) * 255.0 + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
        t
    })
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Where along the mask's edge a face-frame point lies, as a shadow weight:
/// full along the top edge over the cheeks, rising from none over the nose
/// bridge (the nose clip holds the mask there, and the top of the nose stays
/// as it is) along the sides of the nose; none over the middle of an edge
/// that crosses the lip or chin (nose-exposed and chin variants: it lies on
/// the skin, and the nostrils and mouth above it stay as they are); falling
/// to SHADOW_BOTTOM toward the bottom edge.
fn shadow_position_weight(placement: &Placement, f: Point) -> f32 {
    use crate::geometry::MaskVariant;
    let h = (placement.bottom_y - placement.top_y).max(1.0);
    let t = ((f.y - placement.top_y) / h).clamp(0.0, 1.0);
    let half = if f.x < placement.mid_x { placement.half_right } else { placement.half_left };
    let u = (f.x - placement.mid_x).abs() / half.max(1.0);
    let top = match placement.variant {
        MaskVariant::Correct | MaskVariant::ChinExposed => smoothstep(0.08, 0.35, u),
        MaskVariant::NoseExposed | MaskVariant::Chin => smoothstep(0.3, 0.55, u),
    };
    top + (SHADOW_BOTTOM - top) * t
}

/// How much a photo colour looks like the skin under the mask (0..1): its
/// luminance near what the lighting fit predicts there, its `(R − B) / sum`
/// near the skin's. Background, hair and clothes get no contact shadow.
#[inline]
fn skin_likeness(l: &Srgb, light: &Lighting, px: [u8; 3], predicted: f32) -> f32 {
    let skin_rb = light.skin_rb;
    if !skin_rb.is_finite() {
        return 1.0;
    }
    let lum = LUMA[0] * l.u8_to_linear[px[0] as usize]
        + LUMA[1] * l.u8_to_linear[px[1] as usize]
        + LUMA[2] * l.u8_to_linear[px[2] as usize];
    let r = lum / predicted.max(1e-4);
    let rb = (px[0] as f32 - px[2] as f32) / (px[0] as f32 + px[1] as f32 + px[2] as f32 + 1.0);
    ((r - 0.4) / 0.2).clamp(0.0, 1.0)
        * ((2.5 - r) / 0.9).clamp(0.0, 1.0)
        * ((0.1 - (rb - skin_rb).abs()) / 0.05).clamp(0.0, 1.0)
}

/// Relief gain per unit of `height gradient (per pixel) · light direction ·
/// face width`.
const RELIEF_GAIN: f32 = 0.008;
/// Most the relief may brighten or darken the mask.
const RELIEF_MAX: f32 = 0.25;

/// The relief's gain offset per relief cell: Lambert on the height map, so
/// slopes facing the light brighten and those facing away darken. Heights
/// missing next to a cell (the art's edge) fall back to one-sided slopes.
fn relief_gains(grid: &ReliefGrid, dir: Point, scale: f32) -> Vec<f32> {
    let (gw, gh) = (grid.gw, grid.gh);
    let h = &grid.height;
    let mut out = vec![0f32; gw * gh];
    let slope = |c: f32, lo: Option<f32>, hi: Option<f32>| -> f32 {
        let lo = lo.filter(|v| !v.is_nan());
        let hi = hi.filter(|v| !v.is_nan());
        match (lo, hi) {
            (Some(a), Some(b)) => 0.5 * (b - a),
            (Some(a), None) => c - a,
            (None, Some(b)) => b - c,
            (None, None) => 0.0,
        }
    };
    let per_px = scale / grid.cell as f32;
    for j in 0..gh {
        for i in 0..gw {
            let c = h[j * gw + i];
            if c.is_nan() {
                continue;
            }
            let hx = slope(c, (i > 0).then(|| h[j * gw + i - 1]), (i + 1 < gw).then(|| h[j * gw + i + 1]));
            let hy = slope(c, (j > 0).then(|| h[(j - 1) * gw + i]), (j + 1 < gh).then(|| h[(j + 1) * gw + i]));
            out[j * gw + i] = (-(hx * dir.x + hy * dir.y) * per_px).clamp(-RELIEF_MAX, RELIEF_MAX);
        }
    }
    out
}

/// Photo noise the mask already has (quantisation), in 8-bit steps.
const BASE_NOISE: f32 = 0.5;

/// Standard normal quantiles at `(i + ½) / 4096`: one 12-bit index a draw.
fn normal_table() -> &'static [f32; 4096] {
    static T: OnceLock<Box<[f32; 4096]>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Box::new([0f32; 4096]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = inverse_normal_cdf((i as f64 + 0.5) / 4096.0) as f32;
        }
        t
    })
}

/// Acklam's rational approximation (relative error < 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696_830_286_653_76,
        220.946_098_424_520_5,
        -275.928_510_446_968_7,
        138.357_751_867_269,
        -30.664_798_066_147_16,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -54.476_098_798_224_06,
        161.585_836_858_040_9,
        -155.698_979_859_886_6,
        66.801_311_887_719_72,
        -13.280_681_552_885_72,
    ];
    const C: [f64; 6] = [
        -0.007_784_894_002_430_293,
        -0.322_396_458_041_136_5,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [0.007_784_695_709_041_462, 0.322_467_129_070_039_8, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Composites a feathered layer onto the image with lighting, shading,
/// relief, contact shadow and the photo's look (`stats`; noise from `seed`).
fn composite(
    img: &mut RgbImage,
    layer: &MaskLayer,
    placement: &Placement,
    opts: &BlendOptions,
    stats: &PhotoStats,
    seed: u64,
) {
    if layer.width == 0 || layer.height == 0 {
        return;
    }
    let pm = opts.photo_match.clamp(0.0, 1.0);
    let relief_grid = layer.relief.as_ref().filter(|_| opts.relief > 0.0);
    let shadow_on = opts.shadow > 0.0;
    let light = if opts.lighting > 0.0 || relief_grid.is_some() || shadow_on {
        estimate_lighting(img, layer, placement, pm)
    } else {
        Lighting::flat()
    };
    let (gains, sheen) = shading_gains(layer, placement, opts, &light, relief_grid);
    let shadow = shadow_on.then(|| ShadowMap::build(img, layer, placement, &light, SHADOW_DEPTH * opts.shadow));
    blend(img, layer, (&gains, sheen.as_ref()), shadow.as_ref(), &PhotoLook::new(stats, pm), seed);
}

/// The shading gain (lighting × wrap × fold × relief) on a grid of relief
/// cells one cell wider than the layer, read bilinearly: it is smooth. With
/// a fold (a mask worn down), also the fold's sheen on the same grid: light
/// added in linear units, which shows on dark fabric where a gain cannot.
fn shading_gains(
    layer: &MaskLayer,
    placement: &Placement,
    opts: &BlendOptions,
    light: &Lighting,
    relief_grid: Option<&ReliefGrid>,
) -> (CoarseGrid, Option<CoarseGrid>) {
    let (light_dir, light_strength) = light.direction();
    let relief_scale = RELIEF_GAIN * opts.relief * light_strength * placement.face_width;
    let relief = relief_grid.filter(|_| relief_scale > 0.0).map(|g| (g, relief_gains(g, light_dir, relief_scale)));
    let wrap = wrap_table();
    let cell = relief_cell(placement.face_width);
    let (gw, gh) = (layer.width.div_ceil(cell) as usize + 2, layer.height.div_ceil(cell) as usize + 2);
    let (ox, oy) = (layer.x0 as f32 - cell as f32, layer.y0 as f32 - cell as f32);
    let frame = placement.face_frame();
    let h = placement.face_height.max(1.0);
    let fold = (opts.wrap_shading > 0.0).then(|| Fold::new(placement)).flatten();
    let mut data = vec![[1f32; 1]; gw * gh];
    let mut sheen = fold.as_ref().map(|_| vec![[0f32; 1]; gw * gh]);
    for j in 0..gh {
        let yc = oy + (j as f32 + 0.5) * cell as f32;
        for i in 0..gw {
            let xc = ox + (i as f32 + 0.5) * cell as f32;
            let mut gain = 1.0;
            if opts.lighting > 0.0 {
                let g = light.relative(xc, yc) * light.exposure;
                gain *= 1.0 + (g - 1.0) * opts.lighting;
            }
            if opts.wrap_shading > 0.0 {
                // Face-frame position: sides and the underside of the chin turn away.
                let f = frame.apply(Point::new(xc, yc));
                let half = if f.x < placement.mid_x { placement.half_right } else { placement.half_left };
                let u = (f.x - placement.mid_x).abs() / half;
                let under = ((f.y - (placement.bottom_y - 0.12 * h)) / (0.12 * h)).clamp(0.0, 1.0);
                let wrap = (1.0 - 0.28 * wrap_pow(wrap, u)) * (1.0 - 0.30 * under * under);
                gain *= 1.0 + (wrap - 1.0) * opts.wrap_shading;
                // A fold exists only with wrap shading on.
                if let (Some(fold), Some(sheen)) = (&fold, &mut sheen) {
                    let (fold_gain, fold_sheen) = fold.at(f);
                    // The sheen follows the light that falls there.
                    sheen[j * gw + i][0] = fold_sheen * gain * opts.wrap_shading;
                    gain *= 1.0 + (fold_gain - 1.0) * opts.wrap_shading;
                }
            }
            if let Some((g, r)) = &relief {
                if (1..=g.gw).contains(&i) && (1..=g.gh).contains(&j) {
                    gain *= 1.0 + r[(j - 1) * g.gw + i - 1];
                }
            }
            data[j * gw + i][0] = gain;
        }
    }
    let grid = |data| CoarseGrid { x0: ox, y0: oy, cell: cell as f32, gw, gh, data };
    (grid(data), sheen.map(grid))
}

/// The folds of a mask worn pulled down (nose exposed) or on the chin: the
/// fabric doubled over along the top edge (a band catching the light over a
/// dark crease) and, on the chin, the bunched fabric's creases below it. Real
/// pulled-down masks show these; a flat mask with a clean top edge across the
/// upper lip reads as a smaller mask worn correctly.
struct Fold {
    /// The top edge's face-frame y per `BIN` px column from `x0`.
    top: Vec<f32>,
    x0: f32,
    face_height: f32,
    /// (depth below the top edge in face heights, width, darkening) per crease.
    creases: &'static [(f32, f32, f32)],
}

/// Column width of [`Fold`]'s top-edge profile, in face-frame pixels.
const FOLD_BIN: f32 = 2.0;
/// The doubled-over band along the top edge: its depth (face heights) and gain.
const FOLD_BAND: (f32, f32) = (0.035, 1.12);
/// The band's sheen, linear light added at full lighting: folded fabric
/// catches a highlight along its edge, the fold one sees on a black mask.
const FOLD_SHEEN: f32 = 0.035;
const PULLED_DOWN_CREASES: [(f32, f32, f32); 1] = [(0.045, 0.012, 0.35)];
const CHIN_CREASES: [(f32, f32, f32); 3] = [(0.04, 0.011, 0.32), (0.10, 0.014, 0.22), (0.17, 0.016, 0.18)];

impl Fold {
    /// The folds of `placement`'s variant; `None` for a mask worn up.
    fn new(placement: &Placement) -> Option<Fold> {
        use crate::geometry::MaskVariant;
        let creases: &'static [(f32, f32, f32)] = match placement.variant {
            MaskVariant::NoseExposed => &PULLED_DOWN_CREASES,
            MaskVariant::Chin => &CHIN_CREASES,
            MaskVariant::Correct | MaskVariant::ChinExposed => return None,
        };
        let frame = placement.face_frame();
        let pts: Vec<Point> = placement.polygon.iter().map(|&p| frame.apply(p)).collect();
        let x0 = pts.iter().map(|p| p.x).fold(f32::INFINITY, f32::min);
        let x1 = pts.iter().map(|p| p.x).fold(f32::NEG_INFINITY, f32::max);
        if !(x0.is_finite() && x1 > x0) {
            return None;
        }
        let n = ((x1 - x0) / FOLD_BIN) as usize + 1;
        let mut top = vec![f32::INFINITY; n];
        // The outline's highest point per column, along each edge densely
        // enough that no column between two outline points is left out.
        for (a, b) in pts.iter().zip(pts.iter().cycle().skip(1)) {
            let steps = ((b.x - a.x).abs() / FOLD_BIN).ceil().max(1.0) as usize;
            for k in 0..=steps {
                let p = a.lerp(*b, k as f32 / steps as f32);
                let i = (((p.x - x0) / FOLD_BIN) as usize).min(n - 1);
                top[i] = top[i].min(p.y);
            }
        }
        Some(Fold { top, x0, face_height: placement.face_height.max(1.0), creases })
    }

    /// How far below the top edge face-frame point `f` lies, in face
    /// heights; `None` above the edge or beside the mask.
    fn depth(&self, f: Point) -> Option<f32> {
        let i = (f.x - self.x0) / FOLD_BIN;
        if i < 0.0 || i >= self.top.len() as f32 {
            return None;
        }
        let s = (f.y - self.top[i as usize]) / self.face_height;
        (s >= 0.0).then_some(s)
    }

    /// The doubled-over band's weight at depth `s`: 1 along the edge, 0 below it.
    fn band(s: f32) -> f32 {
        1.0 - smoothstep(0.7 * FOLD_BAND.0, FOLD_BAND.0, s)
    }

    /// The gain at face-frame point `f` (1: no fold there), and the light
    /// the fold's edge adds there (linear units, at full lighting).
    fn at(&self, f: Point) -> (f32, f32) {
        let Some(s) = self.depth(f) else { return (1.0, 0.0) };
        let band = Self::band(s);
        let crease = self.creases.iter().fold(1.0, |g, &(at, width, dark)| {
            let z = (s - at) / width;
            g * (1.0 - dark * (-0.5 * z * z).exp())
        });
        ((1.0 + (FOLD_BAND.1 - 1.0) * band) * crease, FOLD_SHEEN * band)
    }
}

/// The photo's look as applied to the mask: its chroma scale, a
/// luminance-preserving colour cast, grey-scale, and its noise.
struct PhotoLook {
    grey: bool,
    saturation: f32,
    cast: [f32; 3],
    /// Whether the saturation or the cast changes anything.
    recolour: bool,
    /// Noise sigma per channel, in 8-bit steps, beyond what the mask has.
    noise: [f32; 3],
    noisy: bool,
    normals: &'static [f32; 4096],
}

impl PhotoLook {
    /// The look of a photo with `stats`, matched to the degree `pm` (0..1).
    fn new(stats: &PhotoStats, pm: f32) -> PhotoLook {
        let grey = pm > 0.0 && stats.grey;
        let saturation = 1.0 + (stats.saturation.clamp(0.0, 1.0) - 1.0) * pm;
        let mut cast = [1f32; 3];
        for k in 0..3 {
            cast[k] = stats.cast[k].max(1e-3).powf(0.5 * pm).clamp(0.8, 1.25);
        }
        let cast_y: f32 = (0..3).map(|k| LUMA[k] * cast[k]).sum();
        cast.iter_mut().for_each(|c| *c /= cast_y);
        let recolour = !grey && (saturation != 1.0 || cast != [1.0; 3]);
        let mut noise = [0f32; 3];
        for k in 0..3 {
            noise[k] = (stats.noise[k] * stats.noise[k] - BASE_NOISE * BASE_NOISE).max(0.0).sqrt() * pm;
        }
        if grey {
            noise = [(noise[0] + noise[1] + noise[2]) / 3.0; 3];
        }
        let noisy = noise.iter().any(|&s| s > 0.05);
        PhotoLook { grey, saturation, cast, recolour, noise, noisy, normals: normal_table() }
    }

    /// The mask's linear colour, in the photo's look, of a layer pixel `p`
    /// (premultiplied by `alpha` > 0).
    #[inline]
    fn linear(&self, l: &Srgb, p: [f32; 4], alpha: f32) -> [f32; 3] {
        let mut lin = [0f32; 3];
        let inv_alpha = 1.0 / alpha;
        for k in 0..3 {
            lin[k] = l.to_linear(p[k] * inv_alpha);
        }
        if self.grey {
            lin = [LUMA[0] * lin[0] + LUMA[1] * lin[1] + LUMA[2] * lin[2]; 3];
        } else if self.recolour {
            let luma = LUMA[0] * lin[0] + LUMA[1] * lin[1] + LUMA[2] * lin[2];
            for k in 0..3 {
                lin[k] = (luma + self.saturation * (lin[k] - luma)) * self.cast[k];
            }
        }
        lin
    }

    /// Adds the photo's noise, seeded by `seed` and the pixel `(x, y)`, to
    /// the composited value `v` (8-bit scale) where the mask covers `a`.
    #[inline]
    fn add_noise(&self, v: &mut [f32; 3], a: f32, seed: u64, x: u32, y: u32) {
        let normals = self.normals;
        // One hash a pixel: a shared (luminance) draw and one per channel.
        let hsh = crate::rng::mix64(seed ^ ((y as u64) << 32 | x as u64));
        let common = normals[(hsh & 0xfff) as usize];
        for k in 0..3 {
            let n = if self.grey {
                common
            } else {
                0.77 * common + 0.64 * normals[((hsh >> (12 * (k + 1))) & 0xfff) as usize]
            };
            v[k] += a * self.noise[k] * n;
        }
    }
}

/// Blends the layer into the image over the layer and the contact shadow's
/// reach: shadow on the visible skin, the shaded mask in the photo's look
/// over it.
fn blend(
    img: &mut RgbImage,
    layer: &MaskLayer,
    (gains, sheen): (&CoarseGrid, Option<&CoarseGrid>),
    shadow: Option<&ShadowMap>,
    look: &PhotoLook,
    seed: u64,
) {
    let l = srgb();
    let shades = shade_table();
    let (rx0, ry0, rx1, ry1) = match shadow {
        Some(s) => (s.x0, s.y0, s.x1, s.y1),
        None => (layer.x0, layer.y0, layer.x0 + layer.width, layer.y0 + layer.height),
    };
    let (lw, lh) = (layer.width as usize, layer.height as usize);
    let stride = img.width() as usize * 3;
    let mut shadow_rows = shadow.map(|sm| RowLerp::new(&sm.strength, rx0, rx1));
    let mut gain_row = RowLerp::new(gains, rx0, rx1);
    let mut sheen_row = sheen.map(|g| (g, RowLerp::new(g, rx0, rx1)));
    let raw: &mut [u8] = img;
    for y in ry0..ry1 {
        let ly = y.wrapping_sub(layer.y0) as usize;
        let row_in = ly < lh;
        let mut shadow_row = false;
        if let (Some(sm), Some(strength)) = (shadow, &mut shadow_rows) {
            shadow_row = strength.load(&sm.strength, y);
        }
        if row_in {
            gain_row.load(gains, y);
            if let Some((g, row)) = &mut sheen_row {
                row.load(g, y);
            }
        }
        if !row_in && !shadow_row {
            continue;
        }
        for x in rx0..rx1 {
            let xi = (x - rx0) as usize;
            let lx = x.wrapping_sub(layer.x0) as usize;
            let (p, alpha) = if row_in && lx < lw {
                let p = layer.rgba[ly * lw + lx];
                (p, p[3])
            } else {
                ([0.0; 4], 0.0)
            };
            let pi = y as usize * stride + x as usize * 3;
            let px = [raw[pi], raw[pi + 1], raw[pi + 2]];

            // Contact shadow on the visible skin: `q / 256` darker.
            let mut q = 0;
            if let (true, Some(strength)) = (shadow_row && alpha < 0.999, &shadow_rows) {
                q = ((strength.get(xi) * 256.0 + 0.5) as usize).min(SHADE_LEVELS - 1);
            }
            if alpha <= 1.0 / 512.0 {
                if q > 0 {
                    for c in 0..3 {
                        raw[pi + c] = shades[q][px[c] as usize];
                    }
                }
                continue;
            }

            let gain = gain_row.get(xi);
            let add = sheen_row.as_ref().map_or(0.0, |(_, row)| row.get(xi));
            let lin = look.linear(l, p, alpha);
            let a = alpha.min(1.0);
            let mut v = [0f32; 3];
            for k in 0..3 {
                let lit = l.to_srgb(lin[k] * gain + add);
                let bg = shades[q][px[k] as usize] as f32 / 255.0;
                v[k] = (lit * a + bg * (1.0 - a)) * 255.0;
            }
            if look.noisy {
                look.add_noise(&mut v, a, seed, x, y);
            }
            if look.grey {
                v = [(v[0] + v[1] + v[2]) / 3.0; 3];
            }
            for k in 0..3 {
                raw[pi + k] = (v[k] + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    use crate::geometry::tests::frontal_face;
    use crate::geometry::{distance_to_polygon, point_in_polygon, MaskVariant};
    use crate::photo::tests::{add_noise, scene, smooth_skin, to_grey};
    use crate::{ColourChoice, SplitMix64, Synthesizer, TemplateSet, TextureChoice};

    fn synth(template: &str, colour: &str) -> Synthesizer {
        let mut s = Synthesizer::new(TemplateSet::builtin().unwrap()).unwrap();
        s.templates = TemplateSet::builtin().unwrap().select(&[template.to_string()]).unwrap();
        s.colour = ColourChoice::parse(colour).unwrap();
        s.texture = TextureChoice::None;
        s
    }

    /// Draws a mask on a copy of `photo` (frontal face, correct variant).
    fn masked(s: &Synthesizer, photo: &RgbImage, seed: u64) -> (RgbImage, Placement) {
        let mut img = photo.clone();
        let mut rng = SplitMix64::new(seed);
        let style = s.choose_style(&mut rng).unwrap();
        let p = s.apply(&mut img, &frontal_face(), MaskVariant::Correct, &style, &mut rng, None).unwrap();
        (img, p)
    }

    /// Pixels at least `inset` px inside the mask outline.
    fn inside(p: &Placement, w: u32, h: u32, inset: f32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let q = Point::new(x as f32 + 0.5, y as f32 + 0.5);
                if point_in_polygon(q, &p.polygon) && distance_to_polygon(q, &p.polygon) > inset {
                    out.push((x, y));
                }
            }
        }
        out
    }

    fn luma(p: [u8; 3]) -> f32 {
        0.2126 * p[0] as f32 + 0.7152 * p[1] as f32 + 0.0722 * p[2] as f32
    }

    fn mean_luma(img: &RgbImage, px: &[(u32, u32)]) -> f32 {
        px.iter().map(|&(x, y)| luma(img.get_pixel(x, y).0)).sum::<f32>() / px.len() as f32
    }

    /// Per-channel noise sigma over `px` (Immerkær residual, median absolute).
    fn residual_sigma(img: &RgbImage, px: &[(u32, u32)]) -> [f32; 3] {
        let mut out = [0f32; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let mut r: Vec<f32> = px
                .iter()
                .map(|&(x, y)| {
                    let mut acc = 0f32;
                    for (j, wy) in [(-1i32, 1f32), (0, -2.0), (1, 1.0)] {
                        for (i, wx) in [(-1i32, 1f32), (0, -2.0), (1, 1.0)] {
                            acc += wx * wy * img.get_pixel((x as i32 + i) as u32, (y as i32 + j) as u32).0[k] as f32;
                        }
                    }
                    acc.abs()
                })
                .collect();
            r.sort_by(|a, b| a.total_cmp(b));
            *o = r[r.len() / 2] / (0.6745 * 6.0);
        }
        out
    }

    /// Mean squared Laplacian of luma over `px` (high-frequency energy).
    fn hf_energy(img: &RgbImage, px: &[(u32, u32)]) -> f32 {
        let l = |x: u32, y: u32| luma(img.get_pixel(x, y).0);
        px.iter()
            .map(|&(x, y)| {
                let lap = 4.0 * l(x, y) - l(x - 1, y) - l(x + 1, y) - l(x, y - 1) - l(x, y + 1);
                lap * lap
            })
            .sum::<f32>()
            / px.len() as f32
    }

    #[test]
    fn dark_photo_gives_a_dim_mask() {
        let s = synth("surgical", "white");
        let normal = smooth_skin();
        let dark = RgbImage::from_fn(520, 520, |x, y| image::Rgb(normal.get_pixel(x, y).0.map(|v| v / 4)));
        let (on_normal, p) = masked(&s, &normal, 1);
        let (on_dark, _) = masked(&s, &dark, 1);
        let px = inside(&p, 520, 520, 4.0);
        let (mask_normal, mask_dark) = (mean_luma(&on_normal, &px), mean_luma(&on_dark, &px));
        let skin_dark = mean_luma(&dark, &px);
        // A white mask is brighter than skin under the same light, but on a dark
        // photo it stays within a small factor of the skin, far from white.
        assert!(
            mask_dark > 0.8 * skin_dark && mask_dark < 2.6 * skin_dark,
            "dark photo: mask {mask_dark} vs skin {skin_dark}"
        );
        assert!(mask_dark < 0.45 * mask_normal, "mask {mask_dark} on a dark photo vs {mask_normal} on a normal one");
    }

    #[test]
    fn mask_softness_follows_the_photo() {
        let s = synth("surgical", "surgicalblue");
        let sharp = scene(2);
        let soft = imageproc::filter::gaussian_blur_f32(&sharp, 3.0);
        let (on_sharp, p) = masked(&s, &sharp, 1);
        let (on_soft, _) = masked(&s, &soft, 1);
        let px = inside(&p, 520, 520, 6.0);
        let (e_sharp, e_soft) = (hf_energy(&on_sharp, &px), hf_energy(&on_soft, &px));
        assert!(e_soft < 0.25 * e_sharp, "high-frequency energy {e_soft} on a soft photo vs {e_sharp} on a sharp one");
        // Without photo matching the mask stays sharp on the soft photo.
        let mut flat = synth("surgical", "surgicalblue");
        flat.blend.photo_match = 0.0;
        let (unmatched, _) = masked(&flat, &soft, 1);
        assert!(hf_energy(&unmatched, &px) > 0.6 * e_sharp);
    }

    #[test]
    fn mask_noise_follows_the_photo() {
        let s = synth("surgical", "surgicalblue");
        let clean = smooth_skin();
        let noisy = add_noise(&clean, 8.0, 3);
        let (on_clean, p) = masked(&s, &clean, 1);
        let (on_noisy, _) = masked(&s, &noisy, 1);
        let px = inside(&p, 520, 520, 5.0);
        let base = residual_sigma(&on_clean, &px);
        assert!(base.iter().all(|&v| v < 1.0), "noise added on a clean photo: {base:?}");
        let got = residual_sigma(&on_noisy, &px);
        assert!(got.iter().all(|&v| (v - 8.0).abs() < 0.4 * 8.0), "mask noise {got:?} on a photo with sigma 8");
        // Seeded: the same stream gives the same bytes, another one other noise.
        assert_eq!(masked(&s, &noisy, 1).0.as_raw(), on_noisy.as_raw());
        assert_ne!(masked(&s, &noisy, 2).0.as_raw(), on_noisy.as_raw());
    }

    #[test]
    fn grey_photo_gives_a_grey_mask() {
        for (template, colour) in [("surgical", "surgicalblue"), ("cloth", "pink"), ("printed", "red")] {
            let mut s = synth(template, colour);
            s.texture = TextureChoice::TemplateDefault;
            let photo = add_noise(&to_grey(&scene(1)), 0.0, 1);
            let (img, _) = masked(&s, &photo, 5);
            for (x, y, p) in img.enumerate_pixels() {
                assert!(p[0] == p[1] && p[1] == p[2], "{template}: pixel ({x},{y}) is {p:?}");
            }
        }
    }

    #[test]
    fn colour_cast_tints_a_white_mask() {
        let s = synth("kn95", "white");
        let sc = scene(2);
        let with_cast = |gain: [f32; 3]| {
            RgbImage::from_fn(520, 520, |x, y| {
                let p = if !(140..=380).contains(&x) { [128, 128, 128] } else { sc.get_pixel(x, y).0 };
                image::Rgb([0, 1, 2].map(|k| (p[k] as f32 * gain[k]).round().min(255.0) as u8))
            })
        };
        let (neutral, p) = masked(&s, &with_cast([1.0; 3]), 1);
        let (warm, _) = masked(&s, &with_cast([1.15, 1.0, 0.75]), 1);
        let px = inside(&p, 520, 520, 4.0);
        let mean = |img: &RgbImage, k: usize| {
            px.iter().map(|&(x, y)| img.get_pixel(x, y).0[k] as f32).sum::<f32>() / px.len() as f32
        };
        let (nr, nb) = (mean(&neutral, 0), mean(&neutral, 2));
        let (wr, wb) = (mean(&warm, 0), mean(&warm, 2));
        assert!((nr - nb).abs() < 4.0, "neutral photo tinted the mask: R {nr} B {nb}");
        assert!(wr - wb > 12.0, "warm photo: mask R {wr} B {wb}");
    }

    /// Mean luma of the mask's middle columns (a fifth of its half width each
    /// side of the midline) per depth band `[a, b)` below its top edge, in face heights.
    fn luma_at_depth(img: &RgbImage, p: &Placement, bands: &[(f32, f32)]) -> Vec<f32> {
        let px = inside(p, img.width(), img.height(), 1.5);
        bands
            .iter()
            .map(|&(a, b)| {
                let sel: Vec<(u32, u32)> = px
                    .iter()
                    .copied()
                    .filter(|&(x, y)| {
                        let f = p.to_face(Point::new(x as f32 + 0.5, y as f32 + 0.5));
                        let s = (f.y - p.top_y) / p.face_height;
                        (f.x - p.mid_x).abs() < 0.2 * p.half_right.min(p.half_left) && (a..b).contains(&s)
                    })
                    .collect();
                assert!(sel.len() > 20, "band {a}..{b}: {} px", sel.len());
                mean_luma(img, &sel)
            })
            .collect()
    }

    #[test]
    fn a_mask_worn_down_shows_a_fold_under_its_top_edge_and_a_mask_worn_up_does_not() {
        let s = synth("surgical", "white");
        let photo = smooth_skin();
        let wear = |v: MaskVariant| {
            let mut img = photo.clone();
            let mut rng = SplitMix64::new(1);
            let style = s.choose_style(&mut rng).unwrap();
            let p = s.apply(&mut img, &frontal_face(), v, &style, &mut rng, None).unwrap();
            (img, p)
        };
        // The doubled-over band, the crease, the flat fabric below.
        let bands = [(0.008, 0.025), (0.038, 0.052), (0.12, 0.15)];
        for v in [MaskVariant::NoseExposed, MaskVariant::Chin] {
            let (img, p) = wear(v);
            let l = luma_at_depth(&img, &p, &bands);
            assert!(l[1] < 0.93 * l[0] && l[1] < 0.93 * l[2], "{v}: no crease under the top edge: {l:?}");
        }
        let (img, p) = wear(MaskVariant::Correct);
        let l = luma_at_depth(&img, &p, &bands);
        assert!(l[1] > 0.96 * l[0].min(l[2]), "correct: a crease on a mask worn up: {l:?}");
        // On black fabric a gain shows little: the fold's edge catches a sheen.
        let mut black = synth("surgical", "black");
        let band = |black: &Synthesizer| {
            let mut img = photo.clone();
            let mut rng = SplitMix64::new(1);
            let style = black.choose_style(&mut rng).unwrap();
            let p = black.apply(&mut img, &frontal_face(), MaskVariant::NoseExposed, &style, &mut rng, None).unwrap();
            luma_at_depth(&img, &p, &bands[..1])[0]
        };
        let with_fold = band(&black);
        black.blend.wrap_shading = 0.0;
        let flat = band(&black);
        assert!(with_fold > flat + 9.0, "black nose_exposed: no sheen along the fold: {with_fold} vs {flat} flat");
    }

    #[test]
    fn contact_shadow_darkens_the_skin_along_the_top_edge() {
        let mut s = synth("surgical", "white");
        let photo = smooth_skin();
        let (with, p) = masked(&s, &photo, 1);
        s.blend.shadow = 0.0;
        let (without, _) = masked(&s, &photo, 1);
        let sigma = shadow_sigma(&p);
        // Skin just above the top edge over the cheeks is darker.
        let (mut darker, mut n) = (0.0, 0);
        for (x, y, q) in with.enumerate_pixels() {
            let c = Point::new(x as f32 + 0.5, y as f32 + 0.5);
            let f = p.to_face(c);
            let half = if f.x < p.mid_x { p.half_right } else { p.half_left };
            let u = (f.x - p.mid_x).abs() / half;
            let d = distance_to_polygon(c, &p.polygon);
            if !point_in_polygon(c, &p.polygon)
                && f.y < p.top_y + 0.2 * p.face_height
                && (0.4..0.8).contains(&u)
                && d > 2.5
                && d < sigma
            {
                darker += luma(without.get_pixel(x, y).0) - luma(q.0);
                n += 1;
            }
        }
        assert!(
            n > 50 && darker / n as f32 > 5.0,
            "cheek skin above the edge darker by {} over {n} px",
            darker / n as f32
        );
        // Three shadow widths (plus its grid) beyond the mask, nothing changes.
        let hull = p.mesh.outline();
        let far = 3.0 * sigma + shadow_cell(sigma) as f32 + 2.5 * p.feather_sigma();
        for (x, y, q) in with.enumerate_pixels() {
            let c = Point::new(x as f32 + 0.5, y as f32 + 0.5);
            if !point_in_polygon(c, &hull) && distance_to_polygon(c, &hull) > far {
                assert_eq!(q, without.get_pixel(x, y), "({x},{y}) changed {far} px from the mask");
            }
        }
        // The eyes stay as they are.
        for i in 36..48 {
            let e = frontal_face().point(i);
            assert_eq!(with.get_pixel(e.x as u32, e.y as u32), without.get_pixel(e.x as u32, e.y as u32), "eye {i}");
        }
    }

    #[test]
    fn relief_is_lit_from_the_light_direction() {
        let s = synth("surgical", "white");
        let mut rng = SplitMix64::new(1);
        let style = s.choose_style(&mut rng).unwrap();
        let p = s.place(&frontal_face(), MaskVariant::Correct, &style, &mut rng).unwrap();
        let layer = rasterise(&p, &style, 520, 520, p.feather_sigma(), true).unwrap();
        let grid = layer.relief.as_ref().unwrap();
        let gains = |x: f32, y: f32| relief_gains(grid, Point::new(x, y), RELIEF_GAIN * p.face_width);
        // Side light catches the side seams, light from above or below the pleats;
        // opposite lights give opposite relief.
        for (a, b) in [(gains(-1.0, 0.0), gains(1.0, 0.0)), (gains(0.0, -1.0), gains(0.0, 1.0))] {
            let strong = a.iter().filter(|v| v.abs() > 0.02).count();
            assert!(strong > 40, "only {strong} cells with relief");
            assert!(a.iter().zip(&b).all(|(x, y)| (x + y).abs() < 1e-6));
        }
        // Evenly lit skin: (almost) no relief, so the mask looks as before.
        let mut flat = s.clone();
        flat.blend.relief = 0.0;
        let photo = RgbImage::from_pixel(520, 520, image::Rgb([170, 125, 100]));
        let (a, _) = masked(&s, &photo, 1);
        let (b, _) = masked(&flat, &photo, 1);
        let diff = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
        assert!(diff <= 1, "evenly lit relief changed a pixel by {diff}");
    }

    #[test]
    fn zero_options_paste_the_art_whatever_the_photo() {
        let mut s = synth("surgical", "surgicalblue");
        s.blend =
            BlendOptions { lighting: 0.0, wrap_shading: 0.0, feather: 0.0, relief: 0.0, shadow: 0.0, photo_match: 0.0 };
        let (a, p) = masked(&s, &smooth_skin(), 1);
        let dark_noisy = add_noise(&to_grey(&imageproc::filter::gaussian_blur_f32(&scene(1), 2.0)), 6.0, 2);
        let (b, _) = masked(&s, &dark_noisy, 1);
        for (x, y) in inside(&p, 520, 520, 2.0) {
            assert_eq!(a.get_pixel(x, y), b.get_pixel(x, y), "({x},{y})");
        }
    }

    /// Release-build timing: `cargo test -p maskforge-mask --release -- --ignored --nocapture apply_timing`.
    #[test]
    #[ignore]
    fn apply_timing() {
        use crate::geometry::tests::frontal_face;
        use crate::{MaskVariant, SplitMix64, Synthesizer, TemplateSet};
        let mut s = Synthesizer::new(TemplateSet::builtin().unwrap()).unwrap();
        s.templates = TemplateSet::builtin().unwrap().select(&["surgical".to_string()]).unwrap();
        let off = BlendOptions { relief: 0.0, shadow: 0.0, photo_match: 0.0, ..BlendOptions::default() };
        let sets = [
            ("new effects off", off),
            ("+relief", BlendOptions { relief: 1.0, ..off }),
            ("+shadow", BlendOptions { shadow: 1.0, ..off }),
            ("+photo_match", BlendOptions { photo_match: 1.0, ..off }),
            ("all on (default)", BlendOptions::default()),
        ];
        for (size, scale) in [(1024u32, 2.25f32), (120, 0.45)] {
            let c = size as f32 / 2.0;
            let lm = frontal_face().map(|p| Point::new(c + (p.x - 250.0) * scale, c + (p.y - 270.0) * scale));
            // Textured skin with a little noise (so photo matching adds some).
            let orig = RgbImage::from_fn(size, size, |x, y| {
                let n = (crate::rng::mix64((y as u64) << 32 | x as u64) % 9) as u8;
                image::Rgb([150 + (x % 7) as u8 * 3 + n, 110 + (y % 5) as u8 * 4 + n, 90 + n])
            });
            let mut rng = SplitMix64::new(3);
            let style = s.choose_style(&mut rng).unwrap();
            s.apply(&mut orig.clone(), &lm, MaskVariant::Correct, &style, &mut SplitMix64::new(7), None).unwrap();
            let n = 40;
            let p = s.place(&lm, MaskVariant::Correct, &style, &mut SplitMix64::new(7)).unwrap();
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(PhotoStats::estimate(&orig, &p));
            }
            println!("  photo estimate: {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / n as f64);
            // Rounds interleaved across the option sets; the best round of
            // each counts (the machine may be busy with other work).
            let mut best = [f64::MAX; 5];
            for _round in 0..8 {
                for (i, (_, blend)) in sets.iter().enumerate() {
                    s.blend = *blend;
                    let mut imgs: Vec<RgbImage> = (0..n).map(|_| orig.clone()).collect();
                    let t = std::time::Instant::now();
                    for img in imgs.iter_mut() {
                        s.apply(img, &lm, MaskVariant::Correct, &style, &mut SplitMix64::new(7), None).unwrap();
                    }
                    best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e3 / n as f64);
                }
            }
            for ((name, _), ms) in sets.iter().zip(best) {
                println!("{size}x{size} face {:.0}px, {name}: {ms:.3} ms/apply", 200.0 * scale);
            }
        }
    }
}
