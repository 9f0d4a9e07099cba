//! Fabric textures and printed patterns laid over a mask's colour.
//!
//! Built-in textures are generated here (deterministically) and *modulate*
//! the colour: a weave darkens and lightens it around its mean. A texture
//! loaded from an image file is a *print*: it replaces the colour, blended by
//! the weight. Both tile in template coordinates, so they follow the warp.

use crate::raster::{Level, Pyramid};
use std::path::Path;
use std::sync::Arc;

/// How a texture combines with the mask colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextureMode {
    /// `colour · lerp(1, texel / mean, weight)`: fabric structure.
    Modulate,
    /// `lerp(colour, texel, weight)`: a printed pattern.
    Print,
}

/// Why a texture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TextureError {
    /// Neither a built-in name nor an existing file (the text as given).
    #[error("unknown texture {0:?}: use one of weave, knit, melange, none, or an image file path")]
    Unknown(String),
    /// The image file could not be read or decoded.
    #[error("cannot read texture image {}: {message}", path.display())]
    Image {
        /// The image file.
        path: std::path::PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// A tiling texture, built in or from an image file.
#[derive(Debug)]
pub struct Texture {
    /// The built-in name, or the image file's stem.
    pub name: String,
    /// How it combines with the mask colour.
    pub mode: TextureMode,
    /// Texel values, RGB.
    pub pixels: Pyramid<3>,
    /// Mean texel value per channel (0..255), for modulation.
    pub mean: [f32; 3],
    /// Template units covered by one tile (the base level's width).
    pub tile_units: f32,
}

/// Names of the built-in textures.
pub const BUILTIN_TEXTURES: &[&str] = &["weave", "knit", "melange"];

fn hash2(x: u32, y: u32, seed: u32) -> f32 {
    let mut h = x.wrapping_mul(0x8da6_b343) ^ y.wrapping_mul(0xd816_3841) ^ seed.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0xffff) as f32 / 65535.0
}

fn gray_level(size: u32, f: impl Fn(u32, u32) -> f32) -> Level<3> {
    let mut data = Vec::with_capacity((size * size) as usize);
    for y in 0..size {
        for x in 0..size {
            let v = (f(x, y).clamp(0.0, 1.0) * 255.0).round() as u8;
            data.push([v, v, v]);
        }
    }
    Level::new(size, size, data)
}

/// Plain weave: threads alternate over and under; each thread is rounded.
fn weave() -> Level<3> {
    const CELL: u32 = 8;
    gray_level(64, |x, y| {
        let (cx, cy) = (x / CELL, y / CELL);
        let (fx, fy) = (((x % CELL) as f32 + 0.5) / CELL as f32, ((y % CELL) as f32 + 0.5) / CELL as f32);
        let warp_on_top = (cx + cy) % 2 == 0;
        // The thread on top is lit across its width; the gap between threads is dark.
        let across = if warp_on_top { fx } else { fy };
        let along = if warp_on_top { fy } else { fx };
        let profile = (std::f32::consts::PI * across).sin().powf(0.6);
        let dip = 0.85 + 0.15 * (std::f32::consts::PI * along).sin();
        0.30 + 0.62 * profile * dip + 0.06 * hash2(x, y, 1)
    })
}

/// Jersey knit: columns of V-shaped loops.
fn knit() -> Level<3> {
    gray_level(64, |x, y| {
        let col = 8.0;
        let row = 8.0;
        let fx = (x as f32 + 0.5) % col / col; // 0..1 across a column
        let fy = (y as f32 + 0.5) % row / row;
        // Two slanted loop legs meet at the column centre: a V.
        let leg = if fx < 0.5 { (fx * 2.0 - fy).abs() } else { ((1.0 - fx) * 2.0 - fy).abs() };
        let v = 1.0 - (leg * 2.2).min(1.0);
        0.35 + 0.55 * v.powf(0.7) + 0.08 * hash2(x, y, 2)
    })
}

/// Heathered (melange) yarn: soft streaky noise.
fn melange() -> Level<3> {
    gray_level(128, |x, y| {
        // Value noise, stretched horizontally like spun fibres.
        let sample = |gx: f32, gy: f32, period: u32| {
            let (x0, y0) = (gx.floor(), gy.floor());
            let (tx, ty) = (gx - x0, gy - y0);
            let (xi, yi) = (x0 as u32 % period, y0 as u32 % period);
            let n = |a: u32, b: u32| hash2(a % period, b % period, 3);
            let s = |t: f32| t * t * (3.0 - 2.0 * t);
            let top = n(xi, yi) + (n(xi + 1, yi) - n(xi, yi)) * s(tx);
            let bot = n(xi, yi + 1) + (n(xi + 1, yi + 1) - n(xi, yi + 1)) * s(tx);
            top + (bot - top) * s(ty)
        };
        let v = 0.5 * sample(x as f32 / 16.0, y as f32 / 4.0, 8)
            + 0.3 * sample(x as f32 / 8.0, y as f32 / 2.0, 16)
            + 0.2 * hash2(x, y, 4);
        0.25 + 0.7 * v
    })
}

fn mean_of(level: &Level<3>) -> [f32; 3] {
    let mut acc = [0f64; 3];
    for p in &level.data {
        for k in 0..3 {
            acc[k] += p[k] as f64;
        }
    }
    let n = level.data.len().max(1) as f64;
    [(acc[0] / n) as f32, (acc[1] / n) as f32, (acc[2] / n) as f32]
}

impl Texture {
    /// A built-in texture by name (`weave`, `knit`, `melange`).
    pub fn builtin(name: &str) -> Result<Texture, TextureError> {
        let (level, tile_units) = match name {
            "weave" => (weave(), 14.0),
            "knit" => (knit(), 18.0),
            "melange" => (melange(), 60.0),
            other => return Err(TextureError::Unknown(other.to_string())),
        };
        let mean = mean_of(&level);
        Ok(Texture {
            name: name.to_string(),
            mode: TextureMode::Modulate,
            pixels: Pyramid::build(level),
            mean,
            tile_units,
        })
    }

    /// A printed pattern from an image file; one tile spans `tile_units`
    /// template units (a quarter of a typical template's width by default).
    pub fn from_image(path: &Path, tile_units: Option<f32>) -> Result<Texture, TextureError> {
        let img = image::open(path)
            .map_err(|e| TextureError::Image { path: path.to_path_buf(), message: e.to_string() })?
            .to_rgb8();
        let data = img.pixels().map(|p| p.0).collect();
        let level = Level::new(img.width(), img.height(), data);
        let mean = mean_of(&level);
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "texture".into());
        Ok(Texture {
            name,
            mode: TextureMode::Print,
            pixels: Pyramid::build(level),
            mean,
            tile_units: tile_units.unwrap_or(120.0).max(1.0),
        })
    }

    /// A built-in name or an image path.
    pub fn load(spec: &str) -> Result<Arc<Texture>, TextureError> {
        if BUILTIN_TEXTURES.contains(&spec) {
            return Texture::builtin(spec).map(Arc::new);
        }
        let p = Path::new(spec);
        if p.is_file() {
            return Texture::from_image(p, None).map(Arc::new);
        }
        Err(TextureError::Unknown(spec.to_string()))
    }

    /// Applies the texture at template coordinates `(u, v)` to colour `c`
    /// (0..255), where one output pixel spans `units_per_px` template units.
    #[inline]
    pub fn apply(&self, c: [f32; 3], u: f32, v: f32, units_per_px: f32, weight: f32) -> [f32; 3] {
        let base_w = self.pixels.base().width as f32;
        let px_per_unit = base_w / self.tile_units;
        let (level, s) = self.pixels.level_for(units_per_px * px_per_unit);
        let t = level.sample(u * px_per_unit * s, v * px_per_unit * s, crate::raster::Edge::Repeat);
        let mut out = [0.0; 3];
        match self.mode {
            TextureMode::Modulate => {
                for k in 0..3 {
                    let rel = t[k] / self.mean[k].max(1.0);
                    out[k] = c[k] * (1.0 + (rel - 1.0) * weight);
                }
            }
            TextureMode::Print => {
                for k in 0..3 {
                    out[k] = c[k] + (t[k] - c[k]) * weight;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_have_structure_and_unit_mean_modulation() {
        for name in BUILTIN_TEXTURES {
            let t = Texture::builtin(name).unwrap();
            let base = t.pixels.base();
            let min = base.data.iter().map(|p| p[0]).min().unwrap();
            let max = base.data.iter().map(|p| p[0]).max().unwrap();
            assert!(max - min > 80, "{name} is too flat: {min}..{max}");
            // Averaged over a tile, modulation keeps the colour.
            let mut acc = 0.0;
            let n = 32;
            for y in 0..n {
                for x in 0..n {
                    let u = (x as f32 + 0.5) / n as f32 * t.tile_units;
                    let v = (y as f32 + 0.5) / n as f32 * t.tile_units;
                    acc += t.apply([100.0; 3], u, v, 0.01, 1.0)[0];
                }
            }
            let mean = acc / (n * n) as f32;
            assert!((mean - 100.0).abs() < 8.0, "{name}: mean {mean}");
        }
        assert!(matches!(Texture::load("plaid"), Err(TextureError::Unknown(_))));
    }
}
