//! Mask templates: an image with alpha (SVG rendered with resvg, or PNG) and
//! a TOML descriptor naming anchor points and the outline in template
//! coordinates (the SVG's user units, or the PNG's pixels).
//!
//! Recolouring: SVG parts painted with `currentColor` take the mask colour.
//! The SVG is rendered twice, with `currentColor` black and white. Every
//! pixel is affine in that colour (`premultiplied = m·colour + a`), so the
//! two renders give `m` and `a`, and any colour — or a per-pixel colour from
//! a texture — is then applied exactly, without re-rendering.

use crate::colour::Colour;
use crate::raster::{Level, Pyramid};
use crate::raster_cache::{RasterCache, RasterKey};
use maskforge_face::Point;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use crate::raster::{RenderedTemplate, TemplatePixels, RENDER_SIZE};

/// Why a template could not be loaded, rendered or selected.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A descriptor, artwork file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A descriptor is not valid TOML of the expected fields.
    #[error("{}: invalid template descriptor: {message}", path.display())]
    Descriptor {
        /// The descriptor file.
        path: PathBuf,
        /// The parser's or checker's message, one line.
        message: String,
    },
    /// A descriptor's values are out of range or inconsistent (colours,
    /// weights, fit, anchors, outline).
    #[error("template {name:?}: {message}")]
    Invalid {
        /// The template's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The SVG artwork could not be parsed or rendered.
    #[error("template {name:?}: cannot render SVG: {message}")]
    Svg {
        /// The template's name.
        name: String,
        /// The SVG library's message.
        message: String,
    },
    /// The PNG artwork could not be read or decoded.
    #[error("template {name:?}: cannot read image {}: {message}", path.display())]
    Image {
        /// The template's name.
        name: String,
        /// The artwork file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A templates folder holds no `*.toml` descriptor.
    #[error("no template descriptors (*.toml) in {}", .0.display())]
    EmptyDir(PathBuf),
    /// A template name that is not in the set: the name, then the known
    /// names, comma-separated.
    #[error("unknown template {0:?} (known: {1})")]
    Unknown(String, String),
    /// A `name=weight` item of a template list whose weight is not a number >= 0.
    #[error("{0:?}: the weight after '=' must be a number >= 0")]
    Weight(String),
    /// A template named twice in a list.
    #[error("template {0:?} is listed twice")]
    Duplicate(String),
    /// Every template of the selection has weight 0.
    #[error("no template with a weight above 0: nothing to draw")]
    AllZero,
}

/// Named anchor points, in template coordinates. "Right" and "left" are the
/// wearer's, as in the 68-point layout: `right_*` is on the image's left.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Anchors {
    /// Top centre, the point that sits on the nose bridge.
    pub nose_top: [f32; 2],
    /// Top corner on the wearer's right cheek, where the top edge meets the side.
    pub right_cheek_top: [f32; 2],
    /// Top corner on the wearer's left cheek, where the top edge meets the side.
    pub left_cheek_top: [f32; 2],
    /// Lower corner on the wearer's right, where the side meets the lower
    /// edge (along the jaw).
    pub right_jaw: [f32; 2],
    /// Lower corner on the wearer's left, where the side meets the lower
    /// edge (along the jaw).
    pub left_jaw: [f32; 2],
    /// Bottom centre, under the chin.
    pub chin_bottom: [f32; 2],
}

/// The outline as polylines; anchors are inserted where omitted.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutlineSpec {
    /// `right_cheek_top` → `nose_top` → `left_cheek_top`.
    #[serde(default)]
    pub top: Vec<[f32; 2]>,
    /// `right_jaw` → `chin_bottom` → `left_jaw`.
    #[serde(default)]
    pub bottom: Vec<[f32; 2]>,
    /// `right_cheek_top` → `right_jaw` (default: straight).
    #[serde(default)]
    pub right_side: Vec<[f32; 2]>,
    /// `left_cheek_top` → `left_jaw` (default: straight).
    #[serde(default)]
    pub left_side: Vec<[f32; 2]>,
}

/// How the mask sits on a face; all optional with sensible defaults.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Fit {
    /// How far the sides reach, as a fraction of the way from the face's
    /// midline to its outline (1: to the outline; cup masks are narrower).
    pub side_reach: f32,
    /// Outward offset beyond the jaw outline at the sides, in face widths.
    pub side_margin: f32,
    /// Offset below the chin, in face heights (masks hang below the chin).
    pub chin_drop: f32,
    /// Width, in template units, of the strip beyond each side edge that
    /// holds ear-loop stubs (0: none).
    pub ear_loops: f32,
    /// Where the top edge of a mask over the nose sits, added to the
    /// placement's `top` jitter (-1: high on the bridge, just under the eyes;
    /// +1: low). Sponge masks sit high.
    pub top_bias: f32,
}

impl Default for Fit {
    fn default() -> Self {
        Fit { side_reach: 1.0, side_margin: 0.03, chin_drop: 0.05, ear_loops: 0.0, top_bias: 0.0 }
    }
}

/// A template descriptor as written in TOML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    /// The template's name (`--template`), unique in a set.
    pub name: String,
    /// Free-form style label (surgical, n95, kn95, cloth, printed, ...).
    pub style: String,
    /// Image file beside the descriptor (`.svg` or `.png`).
    pub image: String,
    /// Colour used when `currentColor` parts are not recoloured.
    #[serde(default)]
    pub default_colour: Option<String>,
    /// Colours to draw from when `--colour palette` (the default).
    #[serde(default)]
    pub palette: Vec<String>,
    /// The template's share in the default draw of templates (relative to the
    /// other templates' weights; 0: only when asked for with a weight).
    #[serde(default = "one")]
    pub weight: f32,
    /// Shares of the `palette` colours, parallel to it (default: all equal).
    #[serde(default)]
    pub palette_weights: Vec<f32>,
    /// Built-in texture applied by default (`weave`, `knit`, `melange`) and its weight.
    #[serde(default)]
    pub texture: Option<String>,
    /// How strongly that texture shows, 0..1 (0: not at all).
    #[serde(default)]
    pub texture_weight: f32,
    /// PNG templates only: recolour by luminance relative to `default_colour`.
    #[serde(default)]
    pub recolour: bool,
    /// Where the mask's corners and centres are in the artwork.
    pub anchors: Anchors,
    /// The outline's polylines between the anchors.
    #[serde(default)]
    pub outline: OutlineSpec,
    /// How the mask sits on a face.
    #[serde(default)]
    pub fit: Fit,
}

fn one() -> f32 {
    1.0
}

impl Descriptor {
    /// Parses descriptor TOML (`path` for messages) and checks its weights.
    pub fn parse(text: &str, path: &Path) -> Result<Descriptor, TemplateError> {
        let err = |message: String| TemplateError::Descriptor { path: path.to_path_buf(), message };
        let d: Descriptor =
            toml::from_str(text).map_err(|e| err(e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")))?;
        d.check_weights().map_err(err)?;
        Ok(d)
    }

    /// `weight` and `palette_weights` are finite and >= 0; the palette
    /// weights, when given, match the palette and are not all 0.
    pub fn check_weights(&self) -> Result<(), String> {
        let ok = |w: f32| w.is_finite() && w >= 0.0;
        if !ok(self.weight) {
            return Err(format!("weight = {}: must be a number >= 0", self.weight));
        }
        let pw = &self.palette_weights;
        if pw.is_empty() {
            return Ok(());
        }
        if pw.len() != self.palette.len() {
            return Err(format!(
                "palette_weights has {} entries but palette has {} (one weight per colour)",
                pw.len(),
                self.palette.len()
            ));
        }
        if let Some(w) = pw.iter().find(|w| !ok(**w)) {
            return Err(format!("palette_weights: {w} must be a number >= 0"));
        }
        if pw.iter().all(|w| *w == 0.0) {
            return Err("palette_weights are all 0".into());
        }
        Ok(())
    }

    /// The palette weights, one per palette colour (all 1 when not given).
    pub fn resolved_palette_weights(&self) -> Vec<f32> {
        if self.palette_weights.is_empty() {
            vec![1.0; self.palette.len()]
        } else {
            self.palette_weights.clone()
        }
    }
}

/// The checked outline of a template, in template coordinates.
#[derive(Clone, Debug)]
pub struct TemplateOutline {
    /// Right cheek top → nose top → left cheek top.
    pub top: Vec<Point>,
    /// Index of `nose_top` in `top`.
    pub nose_index: usize,
    /// Right jaw → chin bottom → left jaw.
    pub bottom: Vec<Point>,
    /// Index of `chin_bottom` in `bottom`.
    pub chin_index: usize,
    /// Right cheek top → right jaw: the wearer's right side (image left).
    pub right_side: Vec<Point>,
    /// Left cheek top → left jaw: the wearer's left side (image right).
    pub left_side: Vec<Point>,
}

fn pt(a: [f32; 2]) -> Point {
    Point::new(a[0], a[1])
}

/// Builds a polyline from `start` through `mid` to `end` out of `given`
/// points (which may or may not repeat the anchors); returns it and the
/// index of `mid`.
fn chain(
    name: &str,
    what: &str,
    given: &[[f32; 2]],
    start: Point,
    mid: Option<Point>,
    end: Point,
    tol: f32,
) -> Result<(Vec<Point>, usize), TemplateError> {
    let bad = |message: String| TemplateError::Invalid { name: name.to_string(), message };
    let mut pts: Vec<Point> = given.iter().map(|&a| pt(a)).collect();
    if pts.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
        return Err(bad(format!("outline.{what} has a non-finite coordinate")));
    }
    if pts.first().is_none_or(|p| p.distance(start) > tol) {
        pts.insert(0, start);
    }
    if pts.last().is_none_or(|p| p.distance(end) > tol) {
        pts.push(end);
    }
    let mid_index = match mid {
        None => 0,
        Some(m) => match pts.iter().position(|p| p.distance(m) <= tol) {
            Some(i) => i,
            None => {
                // Insert the anchor where it fits best along x (the outline runs left to right).
                let i = pts.iter().position(|p| p.x > m.x).unwrap_or(pts.len() - 1).max(1);
                if given.len() > 2 {
                    return Err(bad(format!("outline.{what} must pass through its centre anchor ({}, {})", m.x, m.y)));
                }
                pts.insert(i, m);
                i
            }
        },
    };
    if mid.is_some() && (mid_index == 0 || mid_index + 1 >= pts.len()) {
        return Err(bad(format!("outline.{what}: the centre anchor must lie between the corners")));
    }
    Ok((pts, mid_index))
}

impl TemplateOutline {
    /// The outline of `d` in template coordinates, anchors inserted, for
    /// artwork of `size` (width, height); errors name the bad part.
    pub fn from_descriptor(d: &Descriptor, size: (f32, f32)) -> Result<Self, TemplateError> {
        let a = &d.anchors;
        let tol = 0.01 * size.0.max(size.1).max(1.0);
        let (top, nose_index) = chain(
            &d.name,
            "top",
            &d.outline.top,
            pt(a.right_cheek_top),
            Some(pt(a.nose_top)),
            pt(a.left_cheek_top),
            tol,
        )?;
        let (bottom, chin_index) =
            chain(&d.name, "bottom", &d.outline.bottom, pt(a.right_jaw), Some(pt(a.chin_bottom)), pt(a.left_jaw), tol)?;
        let (right_side, _) =
            chain(&d.name, "right_side", &d.outline.right_side, pt(a.right_cheek_top), None, pt(a.right_jaw), tol)?;
        let (left_side, _) =
            chain(&d.name, "left_side", &d.outline.left_side, pt(a.left_cheek_top), None, pt(a.left_jaw), tol)?;
        let o = TemplateOutline { top, nose_index, bottom, chin_index, right_side, left_side };
        let bad = |message: &str| TemplateError::Invalid { name: d.name.clone(), message: message.into() };
        // Sanity: corners on the correct sides, top above bottom.
        if !(a.right_cheek_top[0] < a.nose_top[0] && a.nose_top[0] < a.left_cheek_top[0]) {
            return Err(bad("anchors: expected right_cheek_top.x < nose_top.x < left_cheek_top.x (right is the wearer's, on the image's left)"));
        }
        if !(a.right_jaw[0] < a.chin_bottom[0] && a.chin_bottom[0] < a.left_jaw[0]) {
            return Err(bad("anchors: expected right_jaw.x < chin_bottom.x < left_jaw.x"));
        }
        if !(a.nose_top[1] < a.chin_bottom[1]
            && a.right_cheek_top[1] < a.right_jaw[1]
            && a.left_cheek_top[1] < a.left_jaw[1])
        {
            return Err(bad(
                "anchors: the top (nose_top, cheek tops) must be above the bottom (jaw points, chin_bottom)",
            ));
        }
        for p in o.top.iter().chain(&o.bottom).chain(&o.right_side).chain(&o.left_side) {
            if p.x < -tol || p.y < -tol || p.x > size.0 + tol || p.y > size.1 + tol {
                return Err(bad(&format!(
                    "outline point ({}, {}) lies outside the {}x{} image",
                    p.x, p.y, size.0, size.1
                )));
            }
        }
        Ok(o)
    }

    /// The closed outline polygon, clockwise on screen: top, left side, bottom reversed, right side reversed.
    pub fn polygon(&self) -> Vec<Point> {
        let mut poly = self.top.clone();
        poly.extend(self.left_side.iter().skip(1));
        poly.extend(self.bottom.iter().rev().skip(1));
        poly.extend(self.right_side.iter().rev().skip(1).take(self.right_side.len().saturating_sub(2)));
        poly
    }
}

enum Source {
    Svg(String),
    Png(PathBuf),
}

/// A loaded template; its raster is rendered on first use and shared.
pub struct Template {
    /// The descriptor as read.
    pub descriptor: Descriptor,
    /// The outline, in template coordinates.
    pub outline: TemplateOutline,
    /// Template-coordinate size (SVG user units or PNG pixels).
    pub size: (f32, f32),
    /// The descriptor's palette, parsed.
    pub palette: Vec<Colour>,
    /// The palette's weights, parallel to `palette`.
    pub palette_weights: Vec<f32>,
    /// The descriptor's `default_colour`, else the first palette colour.
    pub default_colour: Colour,
    /// Stable hash of the descriptor and the artwork: output depends on both.
    pub fingerprint: u64,
    source: Source,
    raster: OnceLock<Result<Arc<RenderedTemplate>, String>>,
    /// Where a rendered raster is looked up first and kept.
    cache: OnceLock<RasterCache>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("name", &self.descriptor.name).field("size", &self.size).finish()
    }
}

fn svg_tree(name: &str, text: &str, resources: Option<&Path>) -> Result<resvg::usvg::Tree, TemplateError> {
    let opt = resvg::usvg::Options { resources_dir: resources.map(Path::to_path_buf), ..Default::default() };
    resvg::usvg::Tree::from_str(text, &opt)
        .map_err(|e| TemplateError::Svg { name: name.into(), message: e.to_string() })
}

impl Template {
    fn new(descriptor: Descriptor, source: Source, size: (f32, f32), art: &[u8]) -> Result<Template, TemplateError> {
        let name = descriptor.name.clone();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(TemplateError::Invalid {
                name,
                message: "name must be non-empty ASCII letters, digits, '_' or '-'".into(),
            });
        }
        let outline = TemplateOutline::from_descriptor(&descriptor, size)?;
        descriptor.check_weights().map_err(|message| TemplateError::Invalid { name: name.clone(), message })?;
        let palette_weights = descriptor.resolved_palette_weights();
        let parse = |s: &str| {
            Colour::parse(s)
                .map_err(|e| TemplateError::Invalid { name: descriptor.name.clone(), message: e.to_string() })
        };
        let palette = descriptor.palette.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
        let default_colour = match &descriptor.default_colour {
            Some(s) => parse(s)?,
            None => palette.first().copied().unwrap_or(Colour([240, 240, 240])),
        };
        if !(0.0..=1.0).contains(&descriptor.texture_weight) {
            return Err(TemplateError::Invalid { name, message: "texture_weight must be within 0..1".into() });
        }
        let f = &descriptor.fit;
        if !(f.side_reach > 0.2
            && f.side_reach <= 1.5
            && f.side_margin.abs() <= 0.3
            && f.chin_drop.abs() <= 0.3
            && f.ear_loops >= 0.0)
        {
            return Err(TemplateError::Invalid {
                name,
                message:
                    "fit values out of range (side_reach 0.2..1.5, |side_margin|, |chin_drop| <= 0.3, ear_loops >= 0)"
                        .into(),
            });
        }
        let mut key = format!("{descriptor:?}").into_bytes();
        key.extend_from_slice(art);
        let fingerprint = crate::rng::stable_hash(&key);
        Ok(Template {
            descriptor,
            outline,
            size,
            palette,
            palette_weights,
            default_colour,
            fingerprint,
            source,
            raster: OnceLock::new(),
            cache: OnceLock::new(),
        })
    }

    /// Builds a template from an SVG document and its descriptor.
    pub fn from_svg(descriptor: Descriptor, svg: String, resources: Option<&Path>) -> Result<Template, TemplateError> {
        let tree = svg_tree(&descriptor.name, &svg, resources)?;
        let size = (tree.size().width(), tree.size().height());
        let art = svg.as_bytes().to_vec();
        Template::new(descriptor, Source::Svg(svg), size, &art)
    }

    /// Builds a template from a PNG file (with alpha) and its descriptor.
    pub fn from_png(descriptor: Descriptor, path: &Path) -> Result<Template, TemplateError> {
        let err =
            |message: String| TemplateError::Image { name: descriptor.name.clone(), path: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|e| err(e.to_string()))?
            .into_dimensions()
            .map_err(|e| err(e.to_string()))?;
        Template::new(descriptor, Source::Png(path.to_path_buf()), (w as f32, h as f32), &bytes)
    }

    /// The descriptor's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// Whether the art is a PNG file (read again when first rendered) rather
    /// than SVG text (parsed when loaded).
    pub fn is_png(&self) -> bool {
        matches!(self.source, Source::Png(_))
    }

    /// The raster, rendered on first call (thread-safe, deterministic), or
    /// read from the raster cache when one is set and holds it.
    pub fn rendered(&self) -> Result<Arc<RenderedTemplate>, TemplateError> {
        self.raster
            .get_or_init(|| self.render_or_load().map(Arc::new).map_err(|e| e.to_string()))
            .clone()
            .map_err(|message| TemplateError::Invalid { name: self.name().to_string(), message })
    }

    /// What names this template's raster in a [`RasterCache`].
    pub fn raster_key(&self) -> RasterKey<'_> {
        RasterKey { name: self.name(), fingerprint: self.fingerprint }
    }

    /// Looks the raster up in this template's cache and keeps it there
    /// (see [`RasterCache`]); a first call wins, later ones are ignored.
    pub fn use_raster_cache(&self, cache: &RasterCache) {
        let _ = self.cache.set(cache.clone());
    }

    fn render_or_load(&self) -> Result<RenderedTemplate, TemplateError> {
        let cache = self.cache.get();
        if let Some(cached) = cache.and_then(|c| c.load(self.raster_key())) {
            return Ok(cached);
        }
        let rendered = self.render()?;
        if let Some(c) = cache {
            c.store(self.raster_key(), &rendered);
        }
        Ok(rendered)
    }

    fn render(&self) -> Result<RenderedTemplate, TemplateError> {
        let name = self.name();
        let long = self.size.0.max(self.size.1).max(1.0);
        let scale = RENDER_SIZE as f32 / long;
        match &self.source {
            Source::Svg(text) => {
                let w = (self.size.0 * scale).round().max(1.0) as u32;
                let h = (self.size.1 * scale).round().max(1.0) as u32;
                let render = |colour: &str| -> Result<Vec<u8>, TemplateError> {
                    let text = text.replace("currentColor", colour).replace("currentcolor", colour);
                    let tree = svg_tree(name, &text, None)?;
                    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h)
                        .ok_or_else(|| TemplateError::Svg { name: name.into(), message: "empty size".into() })?;
                    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
                    Ok(pixmap.take())
                };
                // The two renders are independent: the white one on a thread
                // of its own (not rayon's: a worker waiting in a join could
                // pick up a job that waits for this very raster).
                let (black, white) = std::thread::scope(|s| {
                    let white = s.spawn(|| render("#ffffff"));
                    let black = render("#000000");
                    (black, white.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                });
                let (black, white) = (black?, white?);
                let mut data = Vec::with_capacity((w * h) as usize);
                let mut recolourable = false;
                for (b, wh) in black.chunks_exact(4).zip(white.chunks_exact(4)) {
                    // Channel-averaged m; the two renders differ only where currentColor shows.
                    let m =
                        ((wh[0] as i32 - b[0] as i32) + (wh[1] as i32 - b[1] as i32) + (wh[2] as i32 - b[2] as i32))
                            / 3;
                    let m = m.clamp(0, 255) as u8;
                    recolourable |= m > 8;
                    data.push([m, b[0], b[1], b[2], b[3].max(wh[3])]);
                }
                Ok(RenderedTemplate { pixels: Pyramid::build(Level::new(w, h, data)), scale, recolourable })
            }
            Source::Png(path) => {
                let img = image::open(path).map_err(|e| TemplateError::Image {
                    name: name.into(),
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let mut rgba = img.to_rgba8();
                // Keep big PNGs to the same working size as SVGs.
                let mut scale = 1.0;
                if rgba.width().max(rgba.height()) > RENDER_SIZE * 2 {
                    scale = RENDER_SIZE as f32 / rgba.width().max(rgba.height()) as f32;
                    let w = ((rgba.width() as f32 * scale).round() as u32).max(1);
                    let h = ((rgba.height() as f32 * scale).round() as u32).max(1);
                    rgba = image::imageops::resize(&rgba, w, h, image::imageops::FilterType::Triangle);
                }
                let base = self.default_colour.0;
                let base_lum = (0.299 * base[0] as f32 + 0.587 * base[1] as f32 + 0.114 * base[2] as f32).max(1.0);
                let recolour = self.descriptor.recolour;
                let data = rgba
                    .pixels()
                    .map(|p| {
                        let [r, g, b, a] = p.0;
                        let af = a as f32 / 255.0;
                        if recolour {
                            let lum = 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
                            let m = (lum / base_lum).min(1.0) * af * 255.0;
                            // Highlights brighter than the base colour go to the additive part.
                            let extra = ((lum - base_lum).max(0.0) * af).min(255.0) as u8;
                            [m.round() as u8, extra, extra, extra, a]
                        } else {
                            let pm = |c: u8| (c as f32 * af).round() as u8;
                            [0, pm(r), pm(g), pm(b), a]
                        }
                    })
                    .collect();
                let level = Level::new(rgba.width(), rgba.height(), data);
                Ok(RenderedTemplate { pixels: Pyramid::build(level), scale, recolourable: recolour })
            }
        }
    }
}

/// The templates drawn for this project, embedded in the binary, in the
/// order `TemplateSet::builtin` lists them.
macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$((
            concat!($name, ".toml"),
            include_str!(concat!("../../../mask_templates/", $name, ".toml")),
            include_str!(concat!("../../../mask_templates/", $name, ".svg")),
        )),*]
    };
}
const BUILTIN: &[(&str, &str, &str)] =
    builtin!["surgical", "n95", "kn95", "cloth", "printed", "sponge", "cloth_pleated", "n95_valve"];

/// A set of templates, looked up by name, each with its weight in the draw
/// (its descriptor's `weight` unless a selection said otherwise).
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    templates: Vec<Arc<Template>>,
    weights: Vec<f32>,
}

impl TemplateSet {
    /// The templates shipped in `mask_templates/`.
    pub fn builtin() -> Result<TemplateSet, TemplateError> {
        let mut set = TemplateSet::default();
        for (file, toml_text, svg) in BUILTIN {
            let d = Descriptor::parse(toml_text, Path::new(file))?;
            set.insert(Template::from_svg(d, svg.to_string(), None)?);
        }
        Ok(set)
    }

    /// Loads every `*.toml` descriptor in `dir` (not recursive), sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<TemplateSet, TemplateError> {
        let io = |source| TemplateError::Io { path: dir.to_path_buf(), source };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(TemplateError::EmptyDir(dir.to_path_buf()));
        }
        let mut set = TemplateSet::default();
        for file in files {
            set.insert(Self::load_file(&file)?);
        }
        Ok(set)
    }

    /// Loads one descriptor and the image it names (relative to the descriptor).
    pub fn load_file(file: &Path) -> Result<Template, TemplateError> {
        let text =
            std::fs::read_to_string(file).map_err(|source| TemplateError::Io { path: file.to_path_buf(), source })?;
        let d = Descriptor::parse(&text, file)?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let image = dir.join(&d.image);
        let is_svg = image.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
        if is_svg {
            let svg =
                std::fs::read_to_string(&image).map_err(|source| TemplateError::Io { path: image.clone(), source })?;
            Template::from_svg(d, svg, Some(dir))
        } else {
            Template::from_png(d, &image)
        }
    }

    /// Adds a template (at its descriptor's weight), replacing one of the same name.
    pub fn insert(&mut self, t: Template) {
        self.put(Arc::new(t));
    }

    fn put(&mut self, t: Arc<Template>) {
        let w = t.descriptor.weight;
        match self.templates.iter().position(|x| x.name() == t.name()) {
            Some(i) => {
                self.templates[i] = t;
                self.weights[i] = w;
            }
            None => {
                self.templates.push(t);
                self.weights.push(w);
            }
        }
    }

    /// Adds all templates of `other` (at their descriptors' weights), replacing same-named ones.
    pub fn extend(&mut self, other: TemplateSet) {
        for t in other.templates {
            self.put(t);
        }
    }

    /// Keeps only the named templates, in the order given, at their descriptors' weights.
    pub fn select(&self, names: &[String]) -> Result<TemplateSet, TemplateError> {
        let items: Vec<(String, Option<f32>)> = names.iter().map(|n| (n.clone(), None)).collect();
        self.select_weighted(&items)
    }

    /// Keeps only the named templates, in the order given, each at the
    /// given weight or (`None`) its descriptor's. Weights must be finite and
    /// >= 0, not all 0; each name may appear once.
    pub fn select_weighted(&self, items: &[(String, Option<f32>)]) -> Result<TemplateSet, TemplateError> {
        let mut out = TemplateSet::default();
        for (n, weight) in items {
            let t = self.get(n).ok_or_else(|| TemplateError::Unknown(n.clone(), self.names().join(", ")))?;
            if out.get(n).is_some() {
                return Err(TemplateError::Duplicate(n.clone()));
            }
            let w = weight.unwrap_or(t.descriptor.weight);
            if !(w.is_finite() && w >= 0.0) {
                return Err(TemplateError::Weight(format!("{n}={w}")));
            }
            out.templates.push(t.clone());
            out.weights.push(w);
        }
        if out.weights.iter().all(|w| *w <= 0.0) {
            return Err(TemplateError::AllZero);
        }
        Ok(out)
    }

    /// Parses and applies a `--template` list: comma-separated `name` or
    /// `name=weight` items, e.g. `surgical=4,sponge=1,n95` (a bare name keeps
    /// its descriptor's weight); only the listed templates are kept.
    pub fn select_spec(&self, spec: &str) -> Result<TemplateSet, TemplateError> {
        let items = spec
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| {
                crate::colour::split_weighted(item)
                    .map(|(n, w)| (n.to_string(), w))
                    .map_err(|()| TemplateError::Weight(item.trim().to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.select_weighted(&items)
    }

    /// The template called `name`, if in the set.
    pub fn get(&self, name: &str) -> Option<&Arc<Template>> {
        self.templates.iter().find(|t| t.name() == name)
    }

    /// The templates' names, in set order.
    pub fn names(&self) -> Vec<String> {
        self.templates.iter().map(|t| t.name().to_string()).collect()
    }

    /// Sets the raster cache of every template (see [`RasterCache`]).
    pub fn use_raster_cache(&self, cache: &RasterCache) {
        for t in &self.templates {
            t.use_raster_cache(cache);
        }
    }

    /// The templates, in set order.
    pub fn templates(&self) -> &[Arc<Template>] {
        &self.templates
    }

    /// Each template's weight in the draw, parallel to [`TemplateSet::templates`].
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Whether the set holds no template.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.templates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><path d="M5 20 L50 5 L95 20 L95 70 L50 95 L5 70 Z" fill="currentColor"/></svg>"#;

    fn desc(extra: &str) -> String {
        format!(
            "name = \"w\"\nstyle = \"plain\"\nimage = \"w.svg\"\npalette = [\"black\", \"white\"]\n{extra}\n[anchors]\nnose_top = [50, 5]\nright_cheek_top = [5, 20]\nleft_cheek_top = [95, 20]\nright_jaw = [5, 70]\nleft_jaw = [95, 70]\nchin_bottom = [50, 95]\n"
        )
    }

    #[test]
    fn descriptor_weights_parse_with_defaults() {
        let d = Descriptor::parse(&desc(""), Path::new("w.toml")).unwrap();
        assert_eq!((d.weight, d.palette_weights.as_slice()), (1.0, &[][..]));
        let t = Template::from_svg(d, SVG.into(), None).unwrap();
        assert_eq!(t.palette_weights, [1.0, 1.0]);
        let d = Descriptor::parse(&desc("weight = 0.25\npalette_weights = [3, 0]"), Path::new("w.toml")).unwrap();
        assert_eq!((d.weight, d.palette_weights.as_slice()), (0.25, &[3.0, 0.0][..]));
        let t = Template::from_svg(d, SVG.into(), None).unwrap();
        assert_eq!(t.palette_weights, [3.0, 0.0]);
        let mut set = TemplateSet::default();
        set.insert(t);
        assert_eq!(set.weights(), [0.25]);
    }

    #[test]
    fn bad_descriptor_weights_name_the_file() {
        for (extra, want) in [
            ("weight = -1.0", "weight = -1: must be a number >= 0"),
            ("weight = nan", "weight = NaN: must be a number >= 0"),
            ("weight = inf", "weight = inf: must be a number >= 0"),
            ("weight = \"x\"", "invalid type"),
            ("palette_weights = [1.0]", "palette_weights has 1 entries but palette has 2"),
            ("palette_weights = [1.0, -2.0]", "palette_weights: -2 must be a number >= 0"),
            ("palette_weights = [0, 0]", "palette_weights are all 0"),
        ] {
            let e = Descriptor::parse(&desc(extra), Path::new("dir/w.toml")).unwrap_err();
            assert!(matches!(e, TemplateError::Descriptor { .. }), "{extra}: {e:?}");
            let msg = e.to_string();
            assert!(msg.starts_with("dir/w.toml: invalid template descriptor: "), "{msg}");
            assert!(msg.contains(want), "{extra}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        // Descriptors built in code are checked too.
        let mut d = Descriptor::parse(&desc(""), Path::new("w.toml")).unwrap();
        d.palette_weights = vec![1.0];
        assert!(matches!(Template::from_svg(d, SVG.into(), None), Err(TemplateError::Invalid { .. })));
    }

    #[test]
    fn template_lists_parse_with_weights() {
        let set = TemplateSet::builtin().unwrap();
        let sel = set.select_spec("surgical=4, sponge=1,n95").unwrap();
        assert_eq!(sel.names(), ["surgical", "sponge", "n95"]);
        assert_eq!(sel.weights(), [4.0, 1.0, set.get("n95").unwrap().descriptor.weight]);
        let sel = set.select(&["kn95".to_string(), "cloth".to_string()]).unwrap();
        assert_eq!(sel.weights(), [0.14, 0.12]);
        assert_eq!(set.select_spec("surgical=0,n95").unwrap().weights(), [0.0, 0.06]);
        for (spec, want) in [
            ("surgical=-1", "\"surgical=-1\": the weight after '=' must be a number >= 0"),
            ("surgical=x", "\"surgical=x\": the weight after '=' must be a number >= 0"),
            ("surgical=", "\"surgical=\": the weight after '=' must be a number >= 0"),
            ("nosuch=1", "unknown template \"nosuch\" (known: surgical, n95, kn95, cloth, printed, sponge"),
            ("surgical=0,n95=0", "no template with a weight above 0: nothing to draw"),
            ("surgical,surgical=2", "template \"surgical\" is listed twice"),
            (" , ", "no template with a weight above 0"),
        ] {
            let e = set.select_spec(spec).unwrap_err().to_string();
            assert!(e.starts_with(want), "{spec}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
