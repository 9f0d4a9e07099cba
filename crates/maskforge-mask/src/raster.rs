//! Small multi-channel 8-bit rasters with mip pyramids and bilinear sampling,
//! for mask templates and textures. A mask drawn at 1024 px and shown at
//! 150 px must be sampled from a pre-filtered level, or pleats alias into
//! moiré; picking the level from the warp's scale avoids that cheaply.

/// One level: `width`×`height` pixels of `N` channels.
#[derive(Clone, Debug)]
pub struct Level<const N: usize> {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// `width × height` pixels, row-major.
    pub data: Vec<[u8; N]>,
}

/// How samples outside the level are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Zero outside (transparent, for templates).
    Zero,
    /// Tiled (for textures).
    Repeat,
}

impl<const N: usize> Level<N> {
    /// A level of `width × height` pixels; `data` must hold exactly that many.
    pub fn new(width: u32, height: u32, data: Vec<[u8; N]>) -> Self {
        debug_assert_eq!(data.len(), width as usize * height as usize);
        Level { width, height, data }
    }

    #[inline]
    fn texel(&self, x: i64, y: i64, edge: Edge) -> [f32; N] {
        let (w, h) = (self.width as i64, self.height as i64);
        let (x, y) = match edge {
            Edge::Zero => {
                if x < 0 || y < 0 || x >= w || y >= h {
                    return [0.0; N];
                }
                (x, y)
            }
            Edge::Repeat => (x.rem_euclid(w), y.rem_euclid(h)),
        };
        let p = &self.data[(y * w + x) as usize];
        let mut out = [0.0; N];
        for k in 0..N {
            out[k] = p[k] as f32;
        }
        out
    }

    /// Bilinear sample at continuous coordinates (pixel centres at `i + 0.5`).
    #[inline]
    pub fn sample(&self, x: f32, y: f32, edge: Edge) -> [f32; N] {
        if self.width == 0 || self.height == 0 || !x.is_finite() || !y.is_finite() {
            return [0.0; N];
        }
        let fx = x - 0.5;
        let fy = y - 0.5;
        // Far outside a zero-edged level: skip the four lookups.
        if edge == Edge::Zero && (fx < -1.0 || fy < -1.0 || fx > self.width as f32 || fy > self.height as f32) {
            return [0.0; N];
        }
        let x0 = fx.floor();
        let y0 = fy.floor();
        let tx = fx - x0;
        let ty = fy - y0;
        let (xi, yi) = (x0 as i64, y0 as i64);
        let p00 = self.texel(xi, yi, edge);
        let p10 = self.texel(xi + 1, yi, edge);
        let p01 = self.texel(xi, yi + 1, edge);
        let p11 = self.texel(xi + 1, yi + 1, edge);
        let mut out = [0.0; N];
        for k in 0..N {
            let top = p00[k] + (p10[k] - p00[k]) * tx;
            let bottom = p01[k] + (p11[k] - p01[k]) * tx;
            out[k] = top + (bottom - top) * ty;
        }
        out
    }

    /// Half-size level by 2×2 averaging (values are premultiplied where it matters).
    fn half(&self) -> Level<N> {
        let w = (self.width / 2).max(1);
        let h = (self.height / 2).max(1);
        let mut data = vec![[0u8; N]; w as usize * h as usize];
        let sw = self.width as usize;
        for y in 0..h as usize {
            for x in 0..w as usize {
                let xs = [(2 * x).min(sw - 1), (2 * x + 1).min(sw - 1)];
                let ys = [(2 * y).min(self.height as usize - 1), (2 * y + 1).min(self.height as usize - 1)];
                let mut acc = [0u32; N];
                for &yy in &ys {
                    for &xx in &xs {
                        let p = &self.data[yy * sw + xx];
                        for k in 0..N {
                            acc[k] += p[k] as u32;
                        }
                    }
                }
                let mut o = [0u8; N];
                for k in 0..N {
                    o[k] = ((acc[k] + 2) / 4) as u8;
                }
                data[y * w as usize + x] = o;
            }
        }
        Level { width: w, height: h, data }
    }
}

/// A mip pyramid: level 0 is full size, each next one half the size.
#[derive(Clone, Debug)]
pub struct Pyramid<const N: usize> {
    /// Full size first, then halved until a side is under 8 (10 levels at most).
    pub levels: Vec<Level<N>>,
}

impl<const N: usize> Pyramid<N> {
    /// The pyramid of `base`, each level box-filtered from the one before.
    pub fn build(base: Level<N>) -> Self {
        let mut levels = vec![base];
        while let Some(last) = levels.last() {
            if last.width.min(last.height) < 8 || levels.len() >= 10 {
                break;
            }
            let next = last.half();
            levels.push(next);
        }
        Pyramid { levels }
    }

    /// Level 0, full size.
    pub fn base(&self) -> &Level<N> {
        &self.levels[0]
    }

    /// The level to sample when one output pixel spans `footprint` base
    /// pixels, and the scale from base to that level's pixel coordinates.
    pub fn level_for(&self, footprint: f32) -> (&Level<N>, f32) {
        let lod = if footprint.is_finite() && footprint > 1.0 { footprint.log2().floor() as usize } else { 0 };
        let i = lod.min(self.levels.len() - 1);
        let lvl = &self.levels[i];
        (lvl, lvl.width as f32 / self.levels[0].width.max(1) as f32)
    }
}

/// Longest side, in pixels, that templates are rasterised at.
pub const RENDER_SIZE: u32 = 1024;

/// Template pixels: premultiplied `[m, a_r, a_g, a_b, alpha]` where a pixel
/// of colour `c` is `m·c/255 + a` (see [`crate::template`]).
pub type TemplatePixels = Pyramid<5>;

/// A rasterised template (rendered by [`crate::template`], kept on disk by
/// [`crate::raster_cache`]).
pub struct RenderedTemplate {
    /// The raster and its mip levels.
    pub pixels: TemplatePixels,
    /// Raster pixels per template unit.
    pub scale: f32,
    /// Whether any pixel takes the mask colour.
    pub recolourable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_and_edges() {
        let l = Level::<1>::new(2, 1, vec![[0], [100]]);
        assert_eq!(l.sample(0.5, 0.5, Edge::Zero)[0], 0.0);
        assert_eq!(l.sample(1.5, 0.5, Edge::Zero)[0], 100.0);
        assert!((l.sample(1.0, 0.5, Edge::Zero)[0] - 50.0).abs() < 1e-4);
        assert_eq!(l.sample(-5.0, 0.5, Edge::Zero)[0], 0.0);
        assert_eq!(l.sample(2.5, 0.5, Edge::Repeat)[0], 0.0);
        assert_eq!(l.sample(f32::NAN, 0.5, Edge::Repeat)[0], 0.0);
    }

    #[test]
    fn pyramid_halves_and_picks_levels() {
        let p = Pyramid::build(Level::<1>::new(64, 32, vec![[200]; 64 * 32]));
        assert_eq!(p.levels[1].width, 32);
        assert_eq!(p.levels.last().unwrap().height, 4);
        assert!(p.levels.iter().all(|l| l.data.iter().all(|v| v[0] == 200)));
        let (l, s) = p.level_for(4.5);
        assert_eq!(l.width, 16);
        assert!((s - 0.25).abs() < 1e-6);
        assert_eq!(p.level_for(0.3).0.width, 64);
        assert_eq!(p.level_for(1e9).0.width, p.levels.last().unwrap().width);
    }
}
