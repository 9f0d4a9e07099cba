//! What a mask run is asked to do, and the parsers of its option strings
//! (`--variants`, `--class-map`, `--shard`, the template/colour/texture
//! choices). Errors name the option, as the command line spells it; with
//! feature `clap` the enums are clap value enums (their doc comments are
//! the `--help` text).

use crate::framing::MAX_FRAMINGS;
use crate::PipelineError;
use maskforge_face::BBox;
use maskforge_imageio::{DecodeBudget, LoadLimits};
use maskforge_mask::raster_cache::RasterCache;
use maskforge_mask::{ColourChoice, MaskVariant, Synthesizer, TemplateSet, Texture, TextureChoice};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// How the wear variants are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum VariantMode {
    /// One output per image for every listed variant (paired data).
    Each,
    /// One output per image, its variant drawn with the given proportions.
    Random,
}

/// The class key of the originals (`--class-map unmasked=...`).
pub const UNMASKED_KEY: &str = "unmasked";

/// What happens to the originals of masked photos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum UnmaskedMode {
    /// No unmasked class.
    None,
    /// The decoded original written exactly as its masked siblings are (orientation,
    /// crop, format, encoder and quality, no metadata), so a pair differs only where
    /// the mask is (crops with --crop-size). `copy` is an alias.
    #[cfg_attr(feature = "clap", value(alias = "copy"))]
    Encode,
    /// The original files' own bytes (their encoding is a cue a model can learn
    /// instead of the mask: only on purpose).
    Bytes,
    /// Hard-link the originals' bytes (copies where the file system cannot link).
    Hardlink,
    /// Symlink to the originals' absolute paths.
    Symlink,
}

/// The image format of the outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputFormat {
    /// Keep each input's format (by extension).
    Same,
    /// JPEG at [`MaskOptions::quality`].
    Jpg,
    /// PNG (lossless).
    Png,
}

/// A label format of `--labels`: boxes for detector training, written
/// beside the images (see `maskforge_contracts::labels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LabelFormat {
    /// OUT/labels.coco.json: images, one box (and 68 keypoints) per face, categories = classes.
    Coco,
    /// A CLASS CX CY W H .txt beside each image, and OUT/labels.yolo.yaml (Ultralytics).
    Yolo,
}

/// Which detected faces are masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaceFilter {
    /// Faces whose box's shorter side is under this many pixels are skipped.
    pub min_face: u32,
    /// Mask only the largest face.
    pub largest_only: bool,
}

/// What a face source found: the faces (or boxes) to mask and what was left out.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Selected<T> {
    /// The faces to mask: largest box first.
    pub kept: Vec<T>,
    /// Faces under [`FaceFilter::min_face`].
    pub small: usize,
    /// All faces found.
    pub found: usize,
}

/// Boxes with their scores, selected before landmarks are predicted.
pub type SelectedBoxes = Selected<(BBox, f32)>;

impl FaceFilter {
    /// Orders boxes largest first (then top, left, so the order does not
    /// depend on the detector's), drops those under `min_face` and, with
    /// `largest_only`, all but the first.
    pub fn select(&self, boxes: Vec<(BBox, f32)>) -> SelectedBoxes {
        self.select_by(boxes, |(b, _)| *b)
    }

    /// [`FaceFilter::select`] for faces whose box `bbox` gives (faces read
    /// from a file come with their landmarks).
    pub fn select_by<T>(&self, mut faces: Vec<T>, bbox: impl Fn(&T) -> BBox) -> Selected<T> {
        faces.sort_by(|a, b| {
            let (a, b) = (bbox(a), bbox(b));
            b.area().total_cmp(&a.area()).then(a.top.total_cmp(&b.top)).then(a.left.total_cmp(&b.left))
        });
        let found = faces.len();
        let (mut kept, small): (Vec<_>, Vec<_>) =
            faces.into_iter().partition(|f| bbox(f).min_side() >= self.min_face as f32);
        if self.largest_only {
            kept.truncate(1);
        }
        Selected { kept, small: small.len(), found }
    }
}

/// Everything a [`crate::Pipeline`] needs besides the synthesizer.
#[derive(Clone, Debug)]
pub struct MaskOptions {
    /// The output folder: `OUT/<class>/<relative path>` and the CSVs.
    pub out: PathBuf,
    /// Where segmentation masks go (mirroring the output tree), if anywhere.
    pub seg_dir: Option<PathBuf>,
    /// Wear variants with their weights, in canonical order ([`parse_variants`]).
    pub variants: Vec<(MaskVariant, f32)>,
    /// Every variant per image, or one drawn per image.
    pub mode: VariantMode,
    /// Masked outputs per face and variant, each from its own draws of
    /// template, colour and placement (`--draws`; 1: one, as before).
    pub draws: u32,
    /// Crops per face and output, each at its own framing (`--framings`;
    /// 1: the standard crop only). Needs `crop_size` > 0.
    pub framings: u32,
    /// Class folder per variant name and `unmasked` ([`parse_class_map`]); missing: the name itself.
    pub class_map: HashMap<String, String>,
    /// What is written for the originals (the unmasked class).
    pub unmasked: UnmaskedMode,
    /// Square face crops of this size instead of whole images (0: whole images).
    pub crop_size: u32,
    /// Margin around the detector box, as a fraction of its size per side
    /// (as `predict` crops).
    pub crop_margin: f32,
    /// The image format of the outputs.
    pub format: OutputFormat,
    /// JPEG quality of the outputs.
    pub quality: u8,
    /// The run's seed: with the source path, it decides every draw of an image.
    pub seed: u64,
    /// Which detected faces are masked.
    pub faces: FaceFilter,
    /// Size bounds of the images decoded.
    pub limits: LoadLimits,
    /// Bytes the run's workers may hold in decodes at once (shared by clones).
    pub decode_budget: DecodeBudget,
    /// False for a preview-only run: outputs are kept in memory, nothing is written.
    pub write: bool,
    /// Label files to write at the end of the run (besides those already in OUT).
    /// Not part of the settings: they change no image.
    pub labels: Vec<LabelFormat>,
    /// Whole-image outputs in which a detected face stays bare (under
    /// `--min-face`, not the largest, or not placeable): `None` skips them,
    /// `Some(class)` files them under that class instead of a masked one.
    pub bare_faces: Option<String>,
}

/// Largest crop size (a 8192² RGB crop is 200 MB).
pub const MAX_CROP_SIZE: u32 = 8192;

/// Most `--draws`: each is a full output per face and variant.
pub const MAX_DRAWS: u32 = 64;

impl MaskOptions {
    /// Refuses numbers that would make nonsense outputs or unbounded
    /// allocations, before anything is written.
    pub fn check(&self) -> Result<(), PipelineError> {
        let bad = |m: String| Err(PipelineError::Option(m));
        if !(self.crop_margin.is_finite() && (0.0..=2.0).contains(&self.crop_margin)) {
            let m = self.crop_margin;
            return bad(format!("--crop-margin {m}: must be a number from 0 to 2 (fraction of the face box per side)"));
        }
        if !(1..=MAX_DRAWS).contains(&self.draws) {
            return bad(format!("--draws {}: must be from 1 to {MAX_DRAWS}", self.draws));
        }
        if !(1..=MAX_FRAMINGS).contains(&self.framings) {
            return bad(format!("--framings {}: must be from 1 to {MAX_FRAMINGS}", self.framings));
        }
        if self.framings > 1 && self.crop_size == 0 {
            return bad(format!("--framings {}: frames face crops; give --crop-size too", self.framings));
        }
        if self.crop_size > MAX_CROP_SIZE {
            return bad(format!("--crop-size {}: must be at most {MAX_CROP_SIZE}", self.crop_size));
        }
        if self.variants.is_empty() {
            return bad("--variants: no variant with a positive weight".into());
        }
        if let Some(c) = &self.bare_faces {
            if !valid_class_name(c) {
                return bad(format!("--bare-faces {c:?}: not a usable class folder name"));
            }
            let mut keys: Vec<&str> = self.variants.iter().map(|(v, _)| v.as_str()).collect();
            keys.push(UNMASKED_KEY);
            if keys.iter().any(|k| self.class_map.get(*k).map_or(*k, String::as_str) == c) {
                return bad(format!("--bare-faces {c}: already the class of a variant or of the originals"));
            }
        }
        Ok(())
    }
}

/// Parses `--variants` (`correct=1,nose_exposed=2`, `correct,chin` or `all`)
/// into variants with positive weights, in canonical order so that the
/// argument's order changes no result.
pub fn parse_variants(s: &str) -> Result<Vec<(MaskVariant, f32)>, PipelineError> {
    let bad = |m: String| PipelineError::Option(format!("--variants: {m}"));
    let mut map: BTreeMap<MaskVariant, f32> = BTreeMap::new();
    let spec = if s.trim() == "all" { "correct,nose_exposed,chin,chin_exposed" } else { s };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = match part.split_once('=') {
            Some((n, w)) => {
                let w: f32 = w.trim().parse().map_err(|e| bad(format!("bad weight in {part:?}: {e}")))?;
                (n.trim(), w)
            }
            None => (part, 1.0),
        };
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(bad(format!("weight of {name} must be a non-negative number")));
        }
        let v: MaskVariant = name.parse().map_err(|e| PipelineError::Option(format!("{e}")))?;
        if map.insert(v, weight).is_some() {
            return Err(bad(format!("{name} listed twice")));
        }
    }
    let list: Vec<(MaskVariant, f32)> = map.into_iter().filter(|(_, w)| *w > 0.0).collect();
    if list.is_empty() {
        return Err(bad("no variant with a positive weight".into()));
    }
    Ok(list)
}

/// Whether `c` can be a class folder: one plain name that no reader of the
/// output folder mistakes for something else (a hidden file, a CSV, the settings).
fn valid_class_name(c: &str) -> bool {
    !c.is_empty()
        && !c.starts_with('.')
        && !c.contains(['/', '\\', '\0'])
        && c != ".."
        && !c.ends_with(".csv")
        && !c.ends_with(".json")
}

/// Parses `--class-map` (`VARIANT=CLASS,...`, `unmasked=CLASS`).
pub fn parse_class_map(s: Option<&str>) -> Result<HashMap<String, String>, PipelineError> {
    let bad = |m: String| PipelineError::Option(format!("--class-map: {m}"));
    let mut map = HashMap::new();
    let Some(s) = s else { return Ok(map) };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("expected VARIANT=CLASS, got {part:?}")))?;
        let (k, v) = (k.trim(), v.trim());
        if k != "unmasked" {
            k.parse::<MaskVariant>().map_err(|e| bad(format!("{e} (or unmasked)")))?;
        }
        if !valid_class_name(v) {
            return Err(bad(format!("{v:?} is not a usable folder name")));
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

/// Parses `--shard I/N` (1-based).
pub fn parse_shard(s: &str) -> Result<(usize, usize), PipelineError> {
    let bad = || PipelineError::Option(format!("--shard {s}: expected I/N with 1 <= I <= N"));
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// How the masks look: the option strings behind a [`Synthesizer`].
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Folder of extra templates (same names replace built-ins).
    pub templates_dir: Option<PathBuf>,
    /// Only these templates (comma-separated `name` or `name=weight`); all,
    /// at their descriptors' weights, when `None`.
    pub template_names: Option<String>,
    /// `palette`, or comma-separated colour names / hex, each optionally `=weight`.
    pub colour: String,
    /// `default`, `none`, or comma-separated texture names / image files.
    pub texture: String,
    /// Texture strength, 0 (none) to 1 (full); `None`: the template's own,
    /// 0.5 for texture lists.
    pub texture_weight: Option<f32>,
    /// Lighting transfer strength, 0 to 4; used clamped to 0..1.
    pub lighting: f32,
    /// Contact shadows on the skin along the mask's edges, 0 to 1.
    pub shadow: f32,
    /// Relief of pleats and seams lit from the face's light direction, 0 to 1.
    pub relief: f32,
    /// Matching the photo's softness, noise and colour, 0 to 1.
    pub photo_match: f32,
    /// Folder of rendered template rasters kept between runs (see
    /// `maskforge_mask::raster_cache`); never changes an output.
    pub raster_cache: Option<PathBuf>,
}

/// What `maskforge mask` does without flags: template palettes and textures,
/// every rendering effect at full strength.
impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            templates_dir: None,
            template_names: None,
            colour: "palette".into(),
            texture: "default".into(),
            texture_weight: None,
            lighting: 1.0,
            shadow: 1.0,
            relief: 1.0,
            photo_match: 1.0,
            raster_cache: None,
        }
    }
}

impl SynthOptions {
    /// Refuses a NaN or out-of-range lighting strength or texture weight.
    pub fn check(&self) -> Result<(), PipelineError> {
        if !(self.lighting.is_finite() && (0.0..=4.0).contains(&self.lighting)) {
            let l = self.lighting;
            return Err(PipelineError::Option(format!("--lighting {l}: must be a number from 0 (flat) to 4")));
        }
        for (flag, v) in [("--shadow", self.shadow), ("--relief", self.relief), ("--photo-match", self.photo_match)] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(PipelineError::Option(format!("{flag} {v}: must be a number from 0 (off) to 1")));
            }
        }
        if let Some(w) = self.texture_weight.filter(|w| !(w.is_finite() && (0.0..=1.0).contains(w))) {
            return Err(PipelineError::Option(format!("--texture-weight {w}: must be a number from 0 to 1")));
        }
        Ok(())
    }
}

/// Builds the synthesizer (after [`SynthOptions::check`]), rendering every
/// template now so that a broken user template fails the run before any image.
pub fn build_synthesizer(opts: &SynthOptions) -> Result<Synthesizer, PipelineError> {
    opts.check()?;
    let mut templates = TemplateSet::builtin()?;
    if let Some(dir) = &opts.templates_dir {
        templates.extend(TemplateSet::load_dir(dir)?);
    }
    if let Some(spec) = &opts.template_names {
        templates = templates.select_spec(spec).map_err(|e| PipelineError::Option(format!("--template: {e}")))?;
    }
    if let Some(cache) = opts.raster_cache.as_ref().and_then(RasterCache::new) {
        templates.use_raster_cache(&cache);
    }
    // SVG art was parsed when loaded and is rendered on first use, or read
    // from the cache (3 s of CPU for all eight built-ins: a run that draws two
    // styles pays for two, once per cache). PNG art is decoded now, so that a broken file stops the run
    // before it starts instead of failing every image.
    for t in templates.templates().iter().filter(|t| t.is_png()) {
        t.rendered()?;
    }
    let mut synth = Synthesizer::new(templates)?;
    synth.colour = ColourChoice::parse(&opts.colour).map_err(|e| PipelineError::Option(format!("--colour: {e}")))?;
    synth.texture = match opts.texture.trim() {
        "default" => TextureChoice::TemplateDefault,
        "none" => TextureChoice::None,
        list => TextureChoice::Among(list.split(',').map(|s| Texture::load(s.trim())).collect::<Result<_, _>>()?),
    };
    synth.texture_weight = opts.texture_weight;
    synth.blend.lighting = opts.lighting.clamp(0.0, 1.0);
    synth.blend.shadow = opts.shadow;
    synth.blend.relief = opts.relief;
    synth.blend.photo_match = opts.photo_match;
    Ok(synth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_with_weights_in_canonical_order() {
        let v = parse_variants("nose_exposed=2, correct").unwrap();
        assert_eq!(v, vec![(MaskVariant::Correct, 1.0), (MaskVariant::NoseExposed, 2.0)]);
        assert_eq!(parse_variants("all").unwrap().len(), 4);
        assert!(parse_variants("correct=0").is_err());
        assert!(parse_variants("correct,correct").is_err());
        assert!(parse_variants("masked").is_err());
        assert!(parse_variants("chin=-1").is_err());
    }

    #[test]
    fn class_map_and_shard_parse() {
        let m = parse_class_map(Some("correct=masked, unmasked=plain")).unwrap();
        assert_eq!(m["correct"], "masked");
        assert_eq!(m["unmasked"], "plain");
        assert!(parse_class_map(Some("correct=../x")).is_err());
        assert!(parse_class_map(Some("bogus=x")).is_err());
        assert!(parse_class_map(Some("correct")).is_err());
        assert_eq!(parse_shard("3/8").unwrap(), (3, 8));
        assert!(parse_shard("0/8").is_err());
        assert!(parse_shard("9/8").is_err());
        assert!(parse_shard("x").unwrap_err().to_string().contains("--shard x"));
    }

    #[test]
    fn numbers_are_checked() {
        let synth = SynthOptions { lighting: 1.0, ..Default::default() };
        assert!(synth.check().is_ok());
        let nan = SynthOptions { lighting: f32::NAN, ..synth.clone() };
        let bad_shadow = SynthOptions { shadow: 1.5, ..synth.clone() };
        let bad_match = SynthOptions { photo_match: f32::NAN, ..synth.clone() };
        let bad_relief = SynthOptions { relief: -0.1, ..synth.clone() };
        for bad in [nan, SynthOptions { texture_weight: Some(2.0), ..synth.clone() }, bad_shadow, bad_match, bad_relief]
        {
            assert!(bad.check().is_err());
        }
        let err = build_synthesizer(&SynthOptions { lighting: -1.0, ..synth }).unwrap_err().to_string();
        assert!(err.starts_with("--lighting -1"), "{err}");
    }

    #[test]
    fn template_and_colour_lists_take_weights() {
        let opts = |template: &str, colour: &str| SynthOptions {
            lighting: 1.0,
            template_names: Some(template.into()),
            colour: colour.into(),
            texture: "default".into(),
            ..Default::default()
        };
        let synth = build_synthesizer(&opts("surgical=4, sponge=1,n95", "black=3,#102030=1")).unwrap();
        assert_eq!(synth.templates.names(), ["surgical", "sponge", "n95"]);
        assert_eq!(synth.templates.weights(), [4.0, 1.0, 0.06]);
        let (black, hex) = (maskforge_mask::Colour::parse("black").unwrap(), maskforge_mask::Colour([16, 32, 48]));
        assert_eq!(synth.colour, ColourChoice::Among(vec![(black, 3.0), (hex, 1.0)]));
        for (template, colour, want) in [
            ("surgical=-1", "palette", "--template: \"surgical=-1\": the weight after '=' must be a number >= 0"),
            ("surgical=x", "palette", "--template: \"surgical=x\": the weight after '=' must be a number >= 0"),
            ("nosuch=1", "palette", "--template: unknown template \"nosuch\" (known: surgical, "),
            ("surgical=0,kn95=0", "palette", "--template: no template with a weight above 0"),
            ("surgical", "black=-1", "--colour: \"black=-1\": the weight after '=' must be a number >= 0"),
            ("surgical", "nosuch=2", "--colour: unknown colour \"nosuch\""),
            ("surgical", "black=0,white=0", "--colour: all colour weights are 0"),
        ] {
            let err = build_synthesizer(&opts(template, colour)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{template} {colour}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn faces_are_chosen_largest_first_above_the_minimum() {
        let b = |l: f32, t: f32, side: f32| (BBox::new(l, t, l + side, t + side), 1.0);
        let filter = FaceFilter { min_face: 40, largest_only: false };
        let s = filter.select(vec![b(0.0, 0.0, 50.0), b(10.0, 5.0, 30.0), b(5.0, 0.0, 80.0), b(0.0, 9.0, 50.0)]);
        assert_eq!((s.found, s.small), (4, 1));
        assert_eq!(s.kept, vec![b(5.0, 0.0, 80.0), b(0.0, 0.0, 50.0), b(0.0, 9.0, 50.0)]);
        let s = FaceFilter { largest_only: true, ..filter }.select(vec![b(0.0, 0.0, 50.0), b(5.0, 0.0, 80.0)]);
        assert_eq!(s.kept, vec![b(5.0, 0.0, 80.0)]);
    }
}
