//! Mask synthesis for maskforge: put realistic, labelled masks on faces.
//!
//! Pure image code (no dlib, no torch): give it an image, a face's 68
//! landmarks and a wear variant, and it draws a mask from a template,
//! warped onto the face with a triangle mesh, feathered and lit like the
//! skin under it, and returns the mask outline.
//!
//! * [`template`]: SVG/PNG templates with TOML descriptors (built-ins embedded
//!   from `mask_templates/`, user folders via [`TemplateSet::load_dir`]);
//! * [`geometry`]: the wear variants and the placement mesh;
//! * [`render`]: warp, feathering, lighting, relief, contact shadows, compositing;
//! * [`photo`]: what the photo around a face is like (softness, noise,
//!   colourfulness, colour cast), so the mask can match it;
//! * [`texture`], [`colour`]: recolouring and fabric/print overlays (and the
//!   sRGB ↔ linear-light tables rendering and [`photo`] share);
//! * [`raster_cache`]: rendered template rasters kept on disk between runs;
//! * [`rng`]: the `(seed, path, face)`-keyed random streams;
//! * [`sheet`]: contact sheets for previews.

// Channel loops (`for k in 0..3`) index several arrays at once; iterators would hide that.
#![allow(clippy::needless_range_loop)]

pub mod colour;
pub mod geometry;
pub mod photo;
pub mod raster;
pub mod raster_cache;
pub mod render;
pub mod rng;
pub mod sheet;
pub mod template;
pub mod texture;

pub use colour::{Colour, ColourChoice};
pub use geometry::{Jitter, MaskVariant, Placement, PlacementError};
pub use render::{BlendOptions, MaskLayer, MaskStyle};
pub use rng::SplitMix64;
pub use template::{Template, TemplateError, TemplateSet};
pub use texture::{Texture, TextureError};

use image::{GrayImage, RgbImage};
use maskforge_face::Landmarks68;
use std::sync::Arc;

/// Why a face could not be masked.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// A template could not be loaded or rendered.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A texture could not be loaded.
    #[error(transparent)]
    Texture(#[from] TextureError),
    /// The mask could not be placed on the face.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The template set is empty (or all its weights are 0).
    #[error("no templates to choose from")]
    NoTemplates,
}

/// Which texture a face's mask gets.
#[derive(Clone, Debug, Default)]
pub enum TextureChoice {
    /// The template's own default (cloth masks get a weave), at its weight.
    #[default]
    TemplateDefault,
    /// No texture.
    None,
    /// Uniformly one of these.
    Among(Vec<Arc<Texture>>),
}

/// Everything that decides how masks look, shared by all worker threads.
#[derive(Clone, Debug)]
pub struct Synthesizer {
    /// The templates drawn from, with their weights.
    pub templates: TemplateSet,
    /// How each mask's colour is chosen.
    pub colour: ColourChoice,
    /// How each mask's texture is chosen.
    pub texture: TextureChoice,
    /// Overrides the texture weight (templates' own weight otherwise; 0.5 for `Among`).
    pub texture_weight: Option<f32>,
    /// How the mask is blended into the photo.
    pub blend: BlendOptions,
    /// Whether to jitter the placement a little (always within the variant's rules).
    pub jitter: bool,
    builtin_textures: Vec<Arc<Texture>>,
}

/// The result of masking one face.
#[derive(Clone, Debug)]
pub struct MaskedFace {
    /// Where the mask went.
    pub placement: Placement,
    /// What it looks like.
    pub style: MaskStyle,
}

impl Synthesizer {
    /// A synthesizer over `templates` with the defaults: each template's
    /// palette and texture, full blending, jitter on. Errors on an empty set.
    pub fn new(templates: TemplateSet) -> Result<Synthesizer, MaskError> {
        if templates.is_empty() {
            return Err(MaskError::NoTemplates);
        }
        let builtin_textures = texture::BUILTIN_TEXTURES
            .iter()
            .map(|n| Texture::builtin(n).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Synthesizer {
            templates,
            colour: ColourChoice::default(),
            texture: TextureChoice::default(),
            texture_weight: None,
            blend: BlendOptions::default(),
            jitter: true,
            builtin_textures,
        })
    }

    /// Draws the template, colour and texture for one face from its stream:
    /// the template with probability proportional to its weight in the set
    /// (descriptor `weight` or `--template name=weight`), then the colour by
    /// the template's `palette_weights` (or the `--colour` list's weights).
    pub fn choose_style(&self, rng: &mut SplitMix64) -> Result<MaskStyle, MaskError> {
        let list = self.templates.templates();
        let i = rng.weighted(self.templates.weights()).ok_or(MaskError::NoTemplates)?;
        let template = list[i].clone();
        let colour = self.colour.choose(rng, &template.palette, &template.palette_weights, template.default_colour);
        let texture = match &self.texture {
            TextureChoice::None => None,
            TextureChoice::TemplateDefault => match &template.descriptor.texture {
                Some(name) if name != "none" => {
                    let t = self
                        .builtin_textures
                        .iter()
                        .find(|t| &t.name == name)
                        .cloned()
                        .ok_or_else(|| TextureError::Unknown(name.clone()))?;
                    Some((t, self.texture_weight.unwrap_or(template.descriptor.texture_weight)))
                }
                _ => None,
            },
            TextureChoice::Among(list) if !list.is_empty() => {
                Some((list[rng.below(list.len())].clone(), self.texture_weight.unwrap_or(0.5)))
            }
            TextureChoice::Among(_) => None,
        };
        Ok(MaskStyle { template, colour, texture })
    }

    /// Places and draws a mask of `style` on the face with `landmarks`.
    /// `rng` supplies the placement jitter (use a per-variant fork of the
    /// face's stream). If the jittered placement breaks the variant's rules,
    /// the canonical one is tried before giving up. Pixels outside the mask,
    /// its few-pixel feathered rim and the contact shadow on the skin around
    /// it ([`render::shadow_reach`]) are left untouched. The added photo
    /// noise is seeded from `rng` too, so the same stream gives the same
    /// bytes. When `seg` is given, pixels at least half covered are set to
    /// 255 in it.
    pub fn apply(
        &self,
        img: &mut RgbImage,
        landmarks: &Landmarks68,
        variant: MaskVariant,
        style: &MaskStyle,
        rng: &mut SplitMix64,
        seg: Option<&mut GrayImage>,
    ) -> Result<Placement, MaskError> {
        let placement = self.place(landmarks, variant, style, rng)?;
        // The noise seed comes last, from a fork: the placement draws and the
        // stream's state after this call are what they were without it.
        let seed = rng.fork("photo-noise").next_u64();
        let layer = render::draw(img, &placement, style, &self.blend, seed)?;
        if let Some(seg) = seg {
            layer.write_segmentation(seg);
        }
        Ok(placement)
    }

    /// The placement alone (no drawing).
    pub fn place(
        &self,
        landmarks: &Landmarks68,
        variant: MaskVariant,
        style: &MaskStyle,
        rng: &mut SplitMix64,
    ) -> Result<Placement, MaskError> {
        let t = &style.template;
        let fit = &t.descriptor.fit;
        let jitter = if self.jitter { Jitter::draw(rng) } else { Jitter::default() };
        let place = |jitter| geometry::place(landmarks, variant, &t.outline, fit, jitter);
        let first = match place(jitter) {
            Err(PlacementError::Coverage { .. }) if jitter != Jitter::default() => place(Jitter::default()),
            r => r,
        };
        match first {
            // A face pitched down (or far away) shows a short nose bridge, and
            // a top edge at its usual height comes within the feathered edge
            // of the bridge's top (27). Masks slip down the bridge on such
            // faces: try the lowest top before giving up. No draw is made,
            // so every placement that succeeded before is unchanged.
            Err(PlacementError::Coverage { landmark: 27, should_cover: false, .. })
                if matches!(variant, MaskVariant::Correct | MaskVariant::ChinExposed) =>
            {
                Ok(place(Jitter { top: 1.0 - fit.top_bias, ..Jitter::default() })?)
            }
            r => Ok(r?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::tests::{frontal_face, rolled, yawed_face};
    use crate::geometry::{distance_to_polygon, point_in_polygon};
    use image::Rgb;
    use maskforge_face::Point;

    const BUILTIN_NAMES: [&str; 8] =
        ["surgical", "n95", "kn95", "cloth", "printed", "sponge", "cloth_pleated", "n95_valve"];

    fn synth() -> Synthesizer {
        Synthesizer::new(TemplateSet::builtin().unwrap()).unwrap()
    }

    fn skin(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(150 + (x % 7) * 3) as u8, (110 + (y % 5) * 4) as u8, 90]))
    }

    /// A face pitched down: its nose bridge (27–29) foreshortened toward
    /// the tip (30) by `k`.
    fn short_bridge(k: f32) -> Landmarks68 {
        let mut lm = frontal_face();
        let tip = lm.0[30];
        for i in 27..30 {
            lm.0[i].y = tip.y + (lm.0[i].y - tip.y) * k;
        }
        lm
    }

    /// Where the usual top edge comes within the feather of 27, a correct
    /// mask slips down the bridge instead of being refused, and 27 stays
    /// clear; a face the usual top fits is placed exactly as before.
    #[test]
    fn a_short_nose_bridge_gets_a_lower_top_instead_of_a_refusal() {
        let s = synth();
        let mut rescued = 0;
        for step in 0..=12 {
            let lm = short_bridge(0.2 + 0.05 * step as f32);
            let mut rng = SplitMix64::for_face(1, "pitched.jpg", 0);
            let style = s.choose_style(&mut rng).unwrap();
            let t = &style.template;
            let usual = geometry::place(&lm, MaskVariant::Correct, &t.outline, &t.descriptor.fit, Jitter::default());
            let placed = s.place(&lm, MaskVariant::Correct, &style, &mut rng.clone());
            match usual {
                Err(PlacementError::Coverage { landmark: 27, should_cover: false, .. }) => {
                    let Ok(p) = placed else { continue };
                    rescued += 1;
                    let poly = p.polygon;
                    assert!(!point_in_polygon(lm.0[27], &poly), "step {step}: 27 covered");
                    for i in [30, 33, 51, 57, 62] {
                        assert!(point_in_polygon(lm.0[i], &poly), "step {step}: {i} uncovered");
                    }
                }
                Ok(_) => assert!(placed.is_ok(), "step {step}: the usual placement fits, yet refused"),
                Err(_) => {}
            }
        }
        assert!(rescued >= 2, "only {rescued} short bridges were rescued");
    }

    #[test]
    fn builtin_descriptors_parse_and_render_with_art_matching_the_outline() {
        let set = TemplateSet::builtin().unwrap();
        assert_eq!(set.names(), BUILTIN_NAMES);
        for t in set.templates() {
            let r = t.rendered().unwrap();
            assert!(r.recolourable, "{}", t.name());
            let lvl = r.pixels.base();
            let alpha = |p: Point| lvl.sample(p.x * r.scale, p.y * r.scale, raster::Edge::Zero)[4];
            // Just inside the outline the art is opaque; just outside (away
            // from the ear-loop strips) it is clear.
            let poly = t.outline.polygon();
            let c = Point::centroid(&poly).unwrap();
            for (i, p) in poly.iter().enumerate() {
                let inward = p.lerp(c, 0.04);
                assert!(alpha(inward) > 200.0, "{}: art not opaque inside outline point {i} {p:?}", t.name());
                let outward = p.lerp(c, -0.04);
                let beside_loops = (outward.x < poly[0].x + 2.0) || (outward.x > t.outline.top.last().unwrap().x - 2.0);
                if !beside_loops {
                    assert!(alpha(outward) < 30.0, "{}: art outside outline point {i} {p:?}", t.name());
                }
            }
        }
    }

    /// The default draw as documented (docs/mask.md "Built-in styles" and
    /// tools/draw_templates.py STYLES): template shares, surgical colour shares.
    const DOCUMENTED_WEIGHTS: [(&str, f64); 8] = [
        ("surgical", 0.38),
        ("n95", 0.06),
        ("kn95", 0.14),
        ("cloth", 0.12),
        ("printed", 0.10),
        ("sponge", 0.08),
        ("cloth_pleated", 0.08),
        ("n95_valve", 0.04),
    ];
    const DOCUMENTED_SURGICAL_COLOURS: [(&str, f64); 7] = [
        ("surgicalblue", 0.45),
        ("white", 0.20),
        ("black", 0.20),
        ("lightblue", 0.05),
        ("pink", 0.04),
        ("mint", 0.03),
        ("navy", 0.03),
    ];

    #[test]
    fn default_draw_follows_the_documented_weights() {
        let s = synth();
        let total: f32 = s.templates.weights().iter().sum();
        for (name, want) in DOCUMENTED_WEIGHTS {
            let i = s.templates.names().iter().position(|n| n == name).unwrap();
            assert!((s.templates.weights()[i] / total - want as f32).abs() < 1e-6, "{name}");
        }
        let n = 20_000;
        let mut counts = std::collections::HashMap::<String, usize>::new();
        let mut surgical_colours = std::collections::HashMap::<String, usize>::new();
        for face in 0..n {
            let style = s.choose_style(&mut SplitMix64::for_face(7, "people/a.jpg", face)).unwrap();
            *counts.entry(style.template.name().to_string()).or_default() += 1;
            if style.template.name() == "surgical" {
                *surgical_colours.entry(style.colour.name()).or_default() += 1;
            }
        }
        for (name, want) in DOCUMENTED_WEIGHTS {
            let share = counts.get(name).copied().unwrap_or(0) as f64 / n as f64;
            assert!((share - want).abs() < 0.015, "{name}: {share:.4} drawn, {want} documented");
        }
        // Colours within the surgical template, over a draw of surgical masks only.
        let mut s = synth();
        s.templates = TemplateSet::builtin().unwrap().select(&["surgical".to_string()]).unwrap();
        let mut colours = std::collections::HashMap::<String, usize>::new();
        for face in 0..n {
            let style = s.choose_style(&mut SplitMix64::for_face(8, "people/b.jpg", face)).unwrap();
            *colours.entry(style.colour.name()).or_default() += 1;
        }
        assert_eq!(colours.len(), DOCUMENTED_SURGICAL_COLOURS.len(), "{colours:?}");
        for (name, want) in DOCUMENTED_SURGICAL_COLOURS {
            let share = colours.get(name).copied().unwrap_or(0) as f64 / n as f64;
            assert!((share - want).abs() < 0.015, "surgical {name}: {share:.4} drawn, {want} documented");
        }
        // The same within the mixed draw, where surgical is a 38% share.
        let m: usize = surgical_colours.values().sum();
        let blue = surgical_colours["surgicalblue"] as f64 / m as f64;
        assert!((blue - 0.45).abs() < 0.025, "{blue}");
    }

    #[test]
    fn template_and_colour_overrides_change_the_draw() {
        let mut s = synth();
        s.templates = TemplateSet::builtin().unwrap().select_spec("surgical=4,sponge=1").unwrap();
        s.colour = ColourChoice::parse("black=3,#102030=1").unwrap();
        let n = 20_000;
        let (mut surgical, mut black) = (0usize, 0usize);
        for face in 0..n {
            let style = s.choose_style(&mut SplitMix64::for_face(3, "x.jpg", face)).unwrap();
            assert!(["surgical", "sponge"].contains(&style.template.name()));
            surgical += (style.template.name() == "surgical") as usize;
            assert!(style.colour == Colour::parse("black").unwrap() || style.colour == Colour([0x10, 0x20, 0x30]));
            black += (style.colour.name() == "black") as usize;
        }
        assert!((surgical as f64 / n as f64 - 0.8).abs() < 0.015, "{surgical}");
        assert!((black as f64 / n as f64 - 0.75).abs() < 0.015, "{black}");
        // A zero weight removes a template from the draw.
        s.templates = TemplateSet::builtin().unwrap().select_spec("surgical=0,n95_valve").unwrap();
        for face in 0..200 {
            assert_eq!(
                s.choose_style(&mut SplitMix64::for_face(3, "x.jpg", face)).unwrap().template.name(),
                "n95_valve"
            );
        }
    }

    #[test]
    fn descriptor_errors_are_reported() {
        let bad = r#"name = "x"
style = "s"
image = "x.svg"
[anchors]
nose_top = [50, 0]
right_cheek_top = [90, 10]
left_cheek_top = [10, 10]
right_jaw = [0, 90]
left_jaw = [100, 90]
chin_bottom = [50, 100]
"#;
        let d = template::Descriptor::parse(bad, std::path::Path::new("x.toml")).unwrap();
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="currentColor"/></svg>"#;
        let e = Template::from_svg(d, svg.into(), None).unwrap_err();
        assert!(e.to_string().contains("right_cheek_top.x < nose_top.x"), "{e}");
        let e = template::Descriptor::parse("name = 3", std::path::Path::new("y.toml")).unwrap_err();
        assert!(e.to_string().starts_with("y.toml: invalid template descriptor"), "{e}");
    }

    #[test]
    fn user_template_folder_loads_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("maskforge-mask-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let desc = |name: &str, image: &str| {
            format!(
                "name = \"{name}\"\nstyle = \"plain\"\nimage = \"{image}\"\npalette = [\"black\"]\nrecolour = {}\n[anchors]\nnose_top = [50, 5]\nright_cheek_top = [5, 20]\nleft_cheek_top = [95, 20]\nright_jaw = [5, 70]\nleft_jaw = [95, 70]\nchin_bottom = [50, 95]\n",
                image.ends_with(".png")
            )
        };
        std::fs::write(dir.join("a.toml"), desc("plain_svg", "a.svg")).unwrap();
        std::fs::write(
            dir.join("a.svg"),
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><path d="M5 20 L50 5 L95 20 L95 70 L50 95 L5 70 Z" fill="currentColor"/></svg>"#,
        )
        .unwrap();
        std::fs::write(dir.join("b.toml"), desc("plain_png", "b.png")).unwrap();
        image::RgbaImage::from_pixel(100, 100, image::Rgba([200, 200, 200, 255])).save(dir.join("b.png")).unwrap();
        let set = TemplateSet::load_dir(&dir).unwrap();
        assert_eq!(set.names(), ["plain_svg", "plain_png"]);
        for t in set.templates() {
            assert!(t.rendered().unwrap().recolourable);
        }
        let mut s = synth();
        s.templates.extend(set);
        assert_eq!(s.templates.len(), BUILTIN_NAMES.len() + 2);
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(TemplateSet::load_dir(std::path::Path::new("/nonexistent/x")), Err(TemplateError::Io { .. })));
    }

    #[test]
    fn blending_changes_only_the_mask_region() {
        let mut s = synth();
        for t in BUILTIN_NAMES {
            s.templates = TemplateSet::builtin().unwrap().select(&[t.to_string()]).unwrap();
            for (name, lm) in
                [("frontal", frontal_face()), ("yawed", yawed_face(0.4)), ("rolled", rolled(&frontal_face(), 0.3))]
            {
                for v in MaskVariant::ALL {
                    let orig = skin(520, 520);
                    let mut img = orig.clone();
                    let mut rng = SplitMix64::for_face(1, "x.jpg", 0);
                    let style = s.choose_style(&mut rng).unwrap();
                    let p = s.apply(&mut img, &lm, v, &style, &mut rng.fork(v.as_str()), None).unwrap();
                    // Feathered rim, plus the contact shadow on the skin around it.
                    let margin = 3.0 * p.feather_sigma() + 2.0 + render::shadow_reach(&p);
                    // The ear-loop strips lie beside the polygon; only pixels away from
                    // the whole mesh (polygon plus strips) must be untouched.
                    let hull = p.mesh.outline();
                    let mut changed_inside = 0;
                    for (x, y, px) in img.enumerate_pixels() {
                        let q = Point::new(x as f32 + 0.5, y as f32 + 0.5);
                        let inside_mesh = point_in_polygon(q, &hull) || distance_to_polygon(q, &hull) < margin;
                        if !inside_mesh {
                            assert_eq!(
                                px,
                                orig.get_pixel(x, y),
                                "{t} {v} {name}: pixel ({x},{y}) outside the mask changed"
                            );
                        } else if point_in_polygon(q, &p.polygon) && px != orig.get_pixel(x, y) {
                            changed_inside += 1;
                        }
                    }
                    assert!(changed_inside > 500, "{t} {v} {name}: mask drew only {changed_inside} pixels");
                    // Landmarks that must stay visible are untouched.
                    for i in v.exposed_landmarks() {
                        let q = lm.point(i);
                        let (x, y) = (q.x as u32, q.y as u32);
                        assert_eq!(
                            img.get_pixel(x, y),
                            orig.get_pixel(x, y),
                            "{t} {v} {name}: exposed landmark {i} changed"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn faces_cut_by_the_frame_never_panic() {
        let s = synth();
        let mut rng = SplitMix64::new(5);
        let style = s.choose_style(&mut rng).unwrap();
        for (dx, dy) in [(-250.0, 0.0), (0.0, -300.0), (240.0, 250.0), (-5000.0, -5000.0), (1e7, 0.0)] {
            let lm = frontal_face().map(|p| Point::new(p.x + dx, p.y + dy));
            let mut img = skin(300, 280);
            let mut seg = GrayImage::new(300, 280);
            let r = s.apply(&mut img, &lm, MaskVariant::Correct, &style, &mut rng, Some(&mut seg));
            assert!(r.is_ok(), "{dx},{dy}: {r:?}");
        }
        let mut tiny = skin(1, 1);
        let _ = s.apply(&mut tiny, &frontal_face(), MaskVariant::Chin, &style, &mut rng, None);
    }

    #[test]
    fn same_stream_same_pixels() {
        let s = synth();
        let run = || {
            let mut img = skin(500, 500);
            let mut rng = SplitMix64::for_face(42, "people/a.jpg", 0);
            let style = s.choose_style(&mut rng).unwrap();
            s.apply(&mut img, &yawed_face(0.3), MaskVariant::NoseExposed, &style, &mut rng.fork("nose_exposed"), None)
                .unwrap();
            img
        };
        assert_eq!(run().as_raw(), run().as_raw());
    }

    #[test]
    fn segmentation_matches_the_polygon() {
        let s = synth();
        let mut rng = SplitMix64::new(9);
        let style = s.choose_style(&mut rng).unwrap();
        let mut img = skin(520, 520);
        let mut seg = GrayImage::new(520, 520);
        let p = s.apply(&mut img, &frontal_face(), MaskVariant::Correct, &style, &mut rng, Some(&mut seg)).unwrap();
        let mut agree = 0;
        let mut total = 0;
        for (x, y, v) in seg.enumerate_pixels() {
            let q = Point::new(x as f32 + 0.5, y as f32 + 0.5);
            if point_in_polygon(q, &p.polygon) {
                total += 1;
                agree += (v[0] == 255) as u32;
            }
        }
        assert!(agree as f32 > 0.97 * total as f32, "{agree}/{total}");
    }

    #[test]
    fn side_light_shades_the_mask() {
        let mut s = synth();
        s.colour = ColourChoice::parse("white").unwrap();
        s.texture = TextureChoice::None;
        s.templates = TemplateSet::builtin().unwrap().select(&["n95".to_string()]).unwrap();
        // Skin lit from the image left: bright left, dark right.
        let orig = RgbImage::from_fn(500, 500, |x, _| {
            let v = (230.0 - 180.0 * x as f32 / 500.0) as u8;
            Rgb([v, (v as f32 * 0.8) as u8, (v as f32 * 0.7) as u8])
        });
        let mut img = orig.clone();
        let mut rng = SplitMix64::new(2);
        let style = s.choose_style(&mut rng).unwrap();
        s.apply(&mut img, &frontal_face(), MaskVariant::Correct, &style, &mut rng, None).unwrap();
        let lum = |x: u32, y: u32| img.get_pixel(x, y).0.iter().map(|&c| c as u32).sum::<u32>();
        let (left, right) = (lum(200, 300), lum(300, 300));
        assert!(left > right + 45, "lit side {left} vs shaded side {right}");
    }
}
