//! `maskforge mask`: turn a tree of unmasked face photos into a labelled,
//! masked ImageFolder dataset (`OUT/<class>/<relative path>`).
//!
//! Per image: decode, detect faces on a downscaled copy, predict landmarks,
//! then for each chosen wear variant draw a mask on every face and write one
//! output. Random choices come from `(--seed, relative path, face index)`, so
//! the result does not depend on `--jobs` or on order.
//!
//! Resume and crash safety: every file is written to a temporary name and
//! renamed. After an image's outputs are in place, one JSON line describing
//! them is appended to a journal (`OUT/.mask-journal*.jsonl`); a torn last
//! line from a `kill -9` is ignored. At the end, `annotations.csv` and
//! `failures.csv` are written atomically from all records, sorted, and the
//! journal is removed. A re-run reads the journal or the finished CSVs and
//! skips images whose outputs all exist.

use crate::cmd::detect::DetectorOpts;
use crate::cmd::merge::{self, ANNOTATIONS, FAILURES, SETTINGS};
use crate::common;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use image::{GrayImage, RgbImage};
use maskforge_face::{BBox, Face, Point};
use maskforge_imageio::{check_disjoint, load_rgb, relative_string, resolve_existing_prefix, walk_images, Failure, LoadLimits, Output};
use maskforge_landmarks::{Detector, LandmarkError};
use maskforge_mask::sheet::{contact_sheet, thumbnail, SheetItem};
use maskforge_mask::{
    ColourChoice, MaskStyle, MaskVariant, SplitMix64, Synthesizer, TemplateSet, Texture, TextureChoice,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum VariantMode {
    /// One output per image for every listed variant (paired data).
    Each,
    /// One output per image, its variant drawn with the given proportions.
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum UnmaskedMode {
    /// No unmasked class.
    None,
    /// Copy the original files (crops with --crop-size).
    Copy,
    /// Hard-link the originals (copies where the file system cannot link).
    Hardlink,
    /// Symlink to the originals' absolute paths.
    Symlink,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum OutputFormat {
    /// Keep each input's format (by extension).
    Same,
    Jpg,
    Png,
}

#[derive(Args, Debug)]
pub struct MaskArgs {
    /// Folder of face photos (searched recursively: jpg, jpeg, png, bmp, webp). Never written to.
    pub input: PathBuf,
    /// Output folder (must not be inside the input): OUT/<class>/<relative path>,
    /// annotations.csv, failures.csv, mask_settings.json.
    #[arg(long, short, value_name = "DIR", required_unless_present = "preview_only")]
    pub out: Option<PathBuf>,
    /// Wear variants and their proportions, e.g. `correct=1,nose_exposed=1` or `correct,chin`.
    /// Variants: correct, nose_exposed, chin, chin_exposed.
    #[arg(long, default_value = "correct,nose_exposed,chin,chin_exposed")]
    pub variants: String,
    /// `each`: one output per listed variant per image; `random`: one variant per image,
    /// drawn with the proportions of --variants.
    #[arg(long, value_enum, default_value = "each")]
    pub mode: VariantMode,
    /// Class folder per variant (and `unmasked`), e.g.
    /// `correct=masked,nose_exposed=incorrect,chin=incorrect,chin_exposed=incorrect`.
    /// Default: the variant's name. Variants sharing a class get a `__<variant>` file-name suffix.
    #[arg(long, value_name = "MAP")]
    pub class_map: Option<String>,
    /// Also put the originals (of images where a face was masked) into an `unmasked` class.
    #[arg(long, value_enum, default_value = "none")]
    pub unmasked: UnmaskedMode,
    /// Folder of extra templates (NAME.toml + NAME.svg/png); same names replace built-ins.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Use only these templates (comma-separated names) [default: all].
    #[arg(long, value_name = "NAMES")]
    pub template: Option<String>,
    /// Mask colour: `palette` (each template's own), or comma-separated names/hex (#3a5fcd) to draw from.
    #[arg(long, alias = "color", default_value = "palette")]
    pub colour: String,
    /// Texture: `default` (templates' own), `none`, or comma-separated weave, knit, melange or image files.
    #[arg(long, default_value = "default")]
    pub texture: String,
    /// Texture weight 0..1 [default: the template's, 0.5 for --texture lists].
    #[arg(long)]
    pub texture_weight: Option<f32>,
    /// Strength of the lighting transfer from the skin to the mask (0 = flat).
    #[arg(long, default_value_t = 1.0)]
    pub lighting: f32,
    /// Write aligned square face crops of this size instead of full images (0 = full images).
    #[arg(long, default_value_t = 0)]
    pub crop_size: u32,
    /// Margin around the detector box for crops, per side, as a fraction of its size
    /// (the same default as `predict`).
    #[arg(long, default_value_t = 0.2)]
    pub crop_margin: f32,
    /// Also write binary segmentation masks of the mask region (PNG, 255 = mask) to this
    /// folder, mirroring the output tree. Not inside OUT (it would look like a class).
    #[arg(long, value_name = "DIR")]
    pub seg_dir: Option<PathBuf>,
    /// Write a contact sheet of a sample of the outputs to this PNG file.
    #[arg(long, value_name = "FILE.png")]
    pub preview: Option<PathBuf>,
    /// How many outputs the contact sheet shows.
    #[arg(long, default_value_t = 24)]
    pub preview_count: usize,
    /// Only make the contact sheet (from a sample of the inputs); write nothing else.
    #[arg(long, requires = "preview")]
    pub preview_only: bool,
    /// Seed of every random choice (template, colour, variant, placement jitter).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores). Outputs do not depend on it.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Process only shard I of N (1-based), e.g. `--shard 3/8`: a fixed share of the
    /// images chosen by a hash of their paths. Merge shards with `maskforge merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Faces whose detector box is smaller than this (shorter side, pixels) are not masked.
    #[arg(long, default_value_t = 40)]
    pub min_face: u32,
    /// Mask only the largest face of each image.
    #[arg(long)]
    pub largest_only: bool,
    /// Output image format.
    #[arg(long, value_enum, default_value = "same")]
    pub format: OutputFormat,
    /// JPEG quality of outputs.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Process at most this many images (after sharding), in path order.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub detector: DetectorOpts,
}

/// Everything that decides the outputs; stored as OUT/mask_settings.json so a
/// re-run with different settings cannot silently mix two datasets.
#[derive(Serialize, Debug)]
struct Settings {
    tool: &'static str,
    variants: Vec<(String, f32)>,
    mode: VariantMode,
    classes: BTreeMap<String, String>,
    unmasked: UnmaskedMode,
    templates: Vec<(String, String)>,
    colour: String,
    texture: String,
    texture_weight: Option<f32>,
    lighting: f32,
    crop_size: u32,
    crop_margin: f32,
    seed: u64,
    min_face: u32,
    largest_only: bool,
    format: OutputFormat,
    quality: u8,
    detector: String,
    detect_max_side: u32,
    upsample: u32,
    segmentation: bool,
}

/// What happened to one source image; one journal line.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct Record {
    source: String,
    /// Output files, relative to OUT (and to the segmentation folder, as .png).
    outputs: Vec<String>,
    rows: Vec<Vec<String>>,
    failures: Vec<(String, String)>,
    /// Decode/read errors are retried on a re-run; everything else is final.
    #[serde(default)]
    retry: bool,
    #[serde(default)]
    faces: usize,
    #[serde(default)]
    small_faces: usize,
    /// The source file as it was when processed; a changed file is redone.
    #[serde(default)]
    stamp: Option<SourceStamp>,
}

/// Size and modification time of a source file: cheap to read, and either
/// changes when a photo is replaced by another under the same name.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
struct SourceStamp {
    bytes: u64,
    mtime_ns: u64,
}

impl SourceStamp {
    fn of(path: &Path) -> Option<SourceStamp> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(SourceStamp { bytes: meta.len(), mtime_ns: u64::try_from(mtime.as_nanos()).ok()? })
    }
}

/// `OUT/.mask-sources[.shard-I-of-N].csv`: the stamp of every finished
/// source, so a re-run can tell a replaced input from a finished one.
fn stamps_path(out: &Path, shard: Option<(usize, usize)>) -> PathBuf {
    out.join(merge::csv_name(merge::SOURCES, shard))
}

fn write_stamps(path: &Path, records: &HashMap<String, Record>) -> Result<()> {
    let rows: Vec<Vec<String>> = records
        .iter()
        .filter_map(|(source, r)| {
            let st = r.stamp?;
            Some(vec![source.clone(), st.bytes.to_string(), st.mtime_ns.to_string()])
        })
        .collect();
    merge::write_sources(path, &rows)
}

/// Adds the stamps of an earlier run to the records read from its CSVs.
fn read_stamps(path: &Path, records: &mut HashMap<String, Record>) {
    let Ok(mut r) = csv::Reader::from_path(path) else { return };
    for row in r.records().map_while(Result::ok) {
        let (Some(source), Some(bytes), Some(mtime)) = (row.get(0), row.get(1), row.get(2)) else { continue };
        if let (Some(rec), Ok(bytes), Ok(mtime_ns)) = (records.get_mut(source), bytes.parse(), mtime.parse()) {
            rec.stamp.get_or_insert(SourceStamp { bytes, mtime_ns });
        }
    }
}

/// Removes the outputs an earlier run made for a source that the new run
/// of the (changed) source no longer makes, so no stale image stays filed.
fn remove_replaced_outputs(ctx: &Ctx, old: &Record, new: &Record) {
    for o in old.outputs.iter().filter(|o| !new.outputs.contains(o)) {
        let _ = std::fs::remove_file(ctx.out.join(o));
        if let Some(seg) = &ctx.seg_dir {
            let _ = std::fs::remove_file(seg.join(o).with_extension("png"));
        }
    }
}

struct Ctx {
    out: PathBuf,
    seg_dir: Option<PathBuf>,
    synth: Synthesizer,
    variants: Vec<(MaskVariant, f32)>,
    mode: VariantMode,
    classes: HashMap<String, String>,
    suffixed_classes: HashSet<String>,
    unmasked: UnmaskedMode,
    crop_size: u32,
    crop_margin: f32,
    format: OutputFormat,
    quality: u8,
    seed: u64,
    min_face: u32,
    largest_only: bool,
    limits: LoadLimits,
    /// Sources whose output name would collide after a format change.
    ext_suffixed: HashSet<String>,
    write: bool,
    hardlink_fallbacks: Mutex<usize>,
}

impl Ctx {
    fn class_of<'k>(&'k self, key: &'k str) -> &'k str {
        self.classes.get(key).map(String::as_str).unwrap_or(key)
    }

    /// `class/dir/stem[__variant][__faceK].ext` for a source path.
    fn output_rel(&self, source: &str, class: &str, variant: &str, face: Option<usize>, keep_ext: bool) -> String {
        let (dir, file) = match source.rsplit_once('/') {
            Some((d, f)) => (Some(d), f),
            None => (None, source),
        };
        let (stem, ext) = match file.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s, e),
            _ => (file, ""),
        };
        let out_ext = if keep_ext {
            ext.to_string()
        } else {
            match self.format {
                OutputFormat::Same => ext.to_string(),
                OutputFormat::Jpg => "jpg".into(),
                OutputFormat::Png => "png".into(),
            }
        };
        let mut name = stem.to_string();
        if !keep_ext && self.ext_suffixed.contains(source) {
            name.push_str(&format!("__{}", ext.to_ascii_lowercase()));
        }
        if self.suffixed_classes.contains(class) {
            name.push_str(&format!("__{variant}"));
        }
        if let Some(k) = face.filter(|&k| k > 0) {
            name.push_str(&format!("__face{k}"));
        }
        let file = if out_ext.is_empty() { name } else { format!("{name}.{out_ext}") };
        match dir {
            Some(d) => format!("{class}/{d}/{file}"),
            None => format!("{class}/{file}"),
        }
    }
}

fn parse_variants(s: &str) -> Result<Vec<(MaskVariant, f32)>> {
    let mut map: BTreeMap<MaskVariant, f32> = BTreeMap::new();
    let spec = if s.trim() == "all" { "correct,nose_exposed,chin,chin_exposed" } else { s };
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = match part.split_once('=') {
            Some((n, w)) => {
                let w: f32 = w.trim().parse().with_context(|| format!("--variants: bad weight in {part:?}"))?;
                (n.trim(), w)
            }
            None => (part, 1.0),
        };
        if !(weight.is_finite() && weight >= 0.0) {
            bail!("--variants: weight of {name} must be a non-negative number");
        }
        let v: MaskVariant = name.parse()?;
        if map.insert(v, weight).is_some() {
            bail!("--variants: {name} listed twice");
        }
    }
    // Canonical order, so the argument's order does not change any result.
    let list: Vec<(MaskVariant, f32)> = map.into_iter().filter(|(_, w)| *w > 0.0).collect();
    if list.is_empty() {
        bail!("--variants: no variant with a positive weight");
    }
    Ok(list)
}

fn valid_class_name(c: &str) -> bool {
    !c.is_empty()
        && !c.starts_with('.')
        && !c.contains(['/', '\\', '\0'])
        && c != ".."
        && !c.ends_with(".csv")
        && !c.ends_with(".json")
}

fn parse_class_map(s: Option<&str>) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    let Some(s) = s else { return Ok(map) };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').with_context(|| format!("--class-map: expected VARIANT=CLASS, got {part:?}"))?;
        let (k, v) = (k.trim(), v.trim());
        if k != "unmasked" {
            k.parse::<MaskVariant>().map_err(|e| anyhow::anyhow!("--class-map: {e} (or unmasked)"))?;
        }
        if !valid_class_name(v) {
            bail!("--class-map: {v:?} is not a usable folder name");
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s.split_once('/').with_context(|| format!("--shard: expected I/N, got {s:?}"))?;
    let (i, n): (usize, usize) = (i.trim().parse()?, n.trim().parse()?);
    if n == 0 || i == 0 || i > n {
        bail!("--shard {s}: need 1 <= I <= N");
    }
    Ok((i, n))
}

/// Refuses numbers that would make nonsense outputs (NaN or negative
/// strengths) or unbounded allocations, before anything is written.
fn check_numbers(args: &MaskArgs) -> Result<()> {
    if !(args.lighting.is_finite() && (0.0..=4.0).contains(&args.lighting)) {
        bail!("--lighting {}: must be a number from 0 (flat) to 4", args.lighting);
    }
    if !(args.crop_margin.is_finite() && (0.0..=2.0).contains(&args.crop_margin)) {
        bail!("--crop-margin {}: must be a number from 0 to 2 (fraction of the face box per side)", args.crop_margin);
    }
    if let Some(w) = args.texture_weight {
        if !(w.is_finite() && (0.0..=1.0).contains(&w)) {
            bail!("--texture-weight {w}: must be a number from 0 to 1");
        }
    }
    if args.crop_size > MAX_CROP_SIZE {
        bail!("--crop-size {}: must be at most {MAX_CROP_SIZE}", args.crop_size);
    }
    if args.preview_count > 1000 {
        bail!("--preview-count {}: must be at most 1000", args.preview_count);
    }
    Ok(())
}

/// Largest `--crop-size` (a 8192² RGB crop is 200 MB).
const MAX_CROP_SIZE: u32 = 8192;

fn fmt2(v: f32) -> String {
    format!("{v:.2}")
}

/// Crop geometry shared with `predict` (one formula for pixels and annotations).
type CropMap = maskforge_face::crop::CropTransform;

/// Nearest-neighbour crop of a segmentation mask.
fn crop_gray(map: &CropMap, seg: &GrayImage) -> GrayImage {
    let size = map.size();
    GrayImage::from_fn(size, size, |x, y| {
        let s = map.to_source(Point::new(x as f32 + 0.5, y as f32 + 0.5));
        let (sx, sy) = (s.x.floor(), s.y.floor());
        if sx >= 0.0 && sy >= 0.0 && (sx as u32) < seg.width() && (sy as u32) < seg.height() {
            *seg.get_pixel(sx as u32, sy as u32)
        } else {
            image::Luma([0])
        }
    })
}

/// A face, the map from image to output coordinates, and its box there.
type FaceGeometry<'a> = (&'a Face, &'a dyn Fn(Point) -> Point, BBox);

/// One annotation row.
#[allow(clippy::too_many_arguments)]
fn annotation_row(
    source: &str,
    output: &str,
    face_index: Option<usize>,
    variant: &str,
    class: &str,
    style: Option<&MaskStyle>,
    seed: u64,
    face: Option<FaceGeometry>,
    polygon: Option<&[Point]>,
) -> Vec<String> {
    let mut r = vec![
        source.to_string(),
        output.to_string(),
        face_index.map(|i| i.to_string()).unwrap_or_default(),
        variant.to_string(),
        class.to_string(),
        style.map(|s| s.template.name().to_string()).unwrap_or_default(),
        style.map(|s| s.colour.name()).unwrap_or_default(),
        seed.to_string(),
    ];
    match face {
        Some((f, map, b)) => {
            r.extend([fmt2(b.left), fmt2(b.top), fmt2(b.right), fmt2(b.bottom), format!("{:.4}", f.score)]);
            for p in f.landmarks.points() {
                let q = map(*p);
                r.push(fmt2(q.x));
                r.push(fmt2(q.y));
            }
        }
        None => r.extend(std::iter::repeat_n(String::new(), 5 + 136)),
    }
    r.push(
        polygon
            .map(|poly| poly.iter().map(|p| format!("{:.1} {:.1}", p.x, p.y)).collect::<Vec<_>>().join(";"))
            .unwrap_or_default(),
    );
    r
}

fn write_image(ctx: &Ctx, img: &RgbImage, rel: &str) -> Result<()> {
    let path = ctx.out.join(rel);
    maskforge_imageio::save_rgb_atomic(img, &path, ctx.quality).with_context(|| format!("write {}", path.display()))
}

fn write_seg(ctx: &Ctx, seg: &GrayImage, rel: &str) -> Result<()> {
    let Some(dir) = &ctx.seg_dir else { return Ok(()) };
    let path = dir.join(rel).with_extension("png");
    let mut bytes = Vec::new();
    seg.write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes))?;
    maskforge_imageio::write_atomic(&path, &bytes).with_context(|| format!("write {}", path.display()))
}

/// Places the original file in the unmasked class, atomically.
fn link_original(ctx: &Ctx, src: &Path, rel: &str) -> Result<()> {
    let target = ctx.out.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = maskforge_imageio::temp_path_for(&target, "link");
    let _ = std::fs::remove_file(&tmp);
    match ctx.unmasked {
        UnmaskedMode::None => return Ok(()),
        UnmaskedMode::Copy => {
            let bytes = std::fs::read(src).with_context(|| format!("read {}", src.display()))?;
            return maskforge_imageio::write_atomic(&target, &bytes).with_context(|| format!("write {}", target.display()));
        }
        UnmaskedMode::Hardlink => {
            if std::fs::hard_link(src, &tmp).is_err() {
                // Another file system, or links not allowed: copy instead.
                if let Ok(mut n) = ctx.hardlink_fallbacks.lock() {
                    *n += 1;
                }
                let bytes = std::fs::read(src).with_context(|| format!("read {}", src.display()))?;
                return maskforge_imageio::write_atomic(&target, &bytes).with_context(|| format!("write {}", target.display()));
            }
        }
        UnmaskedMode::Symlink => {
            let abs = src.canonicalize().with_context(|| format!("resolve {}", src.display()))?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(&abs, &tmp).with_context(|| format!("symlink {}", tmp.display()))?;
            #[cfg(not(unix))]
            std::fs::copy(&abs, &tmp).with_context(|| format!("copy {}", tmp.display()))?;
        }
    }
    std::fs::rename(&tmp, &target).with_context(|| format!("rename onto {}", target.display()))
}

fn label(class: &str, variant: &str, style: Option<&MaskStyle>) -> String {
    let first = if class == variant { class.to_string() } else { format!("{class} ({variant})") };
    match style {
        Some(s) => format!("{first}\n{} {}", s.template.name(), s.colour.name()),
        None => first,
    }
}

/// Detects the faces to mask: boxes on the downscaled copy, the size filter,
/// then landmarks on the full image. Returns faces and the number too small.
fn detect_faces(
    det: &mut Detector,
    img: &RgbImage,
    min_face: u32,
    largest_only: bool,
) -> Result<(Vec<Face>, usize, usize), LandmarkError> {
    let mut boxes = det.detect_boxes(img)?;
    boxes.sort_by(|a, b| {
        b.0.area().total_cmp(&a.0.area()).then(a.0.top.total_cmp(&b.0.top)).then(a.0.left.total_cmp(&b.0.left))
    });
    let found = boxes.len();
    let (mut kept, small): (Vec<_>, Vec<_>) = boxes.into_iter().partition(|(b, _)| b.min_side() >= min_face as f32);
    if largest_only {
        kept.truncate(1);
    }
    if kept.is_empty() {
        return Ok((Vec::new(), small.len(), found));
    }
    let full = maskforge_landmarks::to_matrix(img);
    let faces = kept
        .into_iter()
        .map(|(bbox, score)| Ok(Face { bbox, score, landmarks: det.landmarks(&full, &bbox)? }))
        .collect::<Result<_, LandmarkError>>()?;
    Ok((faces, small.len(), found))
}

/// Everything for one source image.
fn process(ctx: &Ctx, det: &mut Detector, path: &Path, rel: &str, preview: &mut Vec<SheetItem>) -> Result<Record> {
    let mut rec = Record { source: rel.to_string(), stamp: SourceStamp::of(path), ..Default::default() };
    let img = match load_rgb(path, ctx.limits) {
        Ok(img) => img,
        Err(e) => {
            rec.failures.push((rel.to_string(), e.reason()));
            rec.retry = true;
            return Ok(rec);
        }
    };
    let (faces, small, found) = match detect_faces(det, &img, ctx.min_face, ctx.largest_only) {
        Ok(v) => v,
        Err(e) => {
            rec.failures.push((rel.to_string(), e.to_string()));
            return Ok(rec);
        }
    };
    rec.faces = faces.len();
    rec.small_faces = small;
    if faces.is_empty() {
        let reason = if found == 0 {
            "no face found".to_string()
        } else {
            format!("no face of at least {} px (--min-face); {small} smaller found", ctx.min_face)
        };
        rec.failures.push((rel.to_string(), reason));
        return Ok(rec);
    }

    // Styles per face, from the face's own stream.
    let mut face_rngs: Vec<SplitMix64> = (0..faces.len()).map(|i| SplitMix64::for_face(ctx.seed, rel, i)).collect();
    let styles: Vec<MaskStyle> = face_rngs.iter_mut().map(|r| ctx.synth.choose_style(r)).collect::<Result<_, _>>()?;

    let variants: Vec<MaskVariant> = match ctx.mode {
        VariantMode::Each => ctx.variants.iter().map(|(v, _)| *v).collect(),
        VariantMode::Random => {
            let weights: Vec<f32> = ctx.variants.iter().map(|(_, w)| *w).collect();
            let i = SplitMix64::for_image(ctx.seed, rel).weighted(&weights).unwrap_or(0);
            vec![ctx.variants[i].0]
        }
    };
    let identity = |p: Point| p;
    let mut masked_any = false;
    for v in variants {
        let mut out = img.clone();
        let mut seg = ctx.seg_dir.as_ref().map(|_| GrayImage::new(img.width(), img.height()));
        let mut placements = Vec::with_capacity(faces.len());
        let mut failed = None;
        for (i, face) in faces.iter().enumerate() {
            let mut rng = face_rngs[i].fork(v.as_str());
            match ctx.synth.apply(&mut out, &face.landmarks, v, &styles[i], &mut rng, seg.as_mut()) {
                Ok(p) => placements.push(p),
                Err(e) => {
                    failed = Some(format!("{v}: face {i}: {e}"));
                    break;
                }
            }
        }
        if let Some(reason) = failed {
            // A wrongly labelled output is worse than none.
            rec.failures.push((rel.to_string(), reason));
            continue;
        }
        masked_any = true;
        let class = ctx.class_of(v.as_str()).to_string();
        if ctx.crop_size == 0 {
            let out_rel = ctx.output_rel(rel, &class, v.as_str(), None, false);
            if ctx.write {
                write_image(ctx, &out, &out_rel)?;
                if let Some(seg) = &seg {
                    write_seg(ctx, seg, &out_rel)?;
                }
            } else {
                preview.push(SheetItem { thumbnail: thumbnail(&out, Some(faces[0].bbox), 160), label: label(&class, v.as_str(), Some(&styles[0])) });
            }
            rec.outputs.push(out_rel.clone());
            for (i, (face, p)) in faces.iter().zip(&placements).enumerate() {
                rec.rows.push(annotation_row(rel, &out_rel, Some(i), v.as_str(), &class, Some(&styles[i]), ctx.seed, Some((face, &identity, face.bbox)), Some(&p.polygon)));
            }
        } else {
            for (i, (face, p)) in faces.iter().zip(&placements).enumerate() {
                let crop = maskforge_face::crop::crop_face(&out, face, ctx.crop_size, ctx.crop_margin);
                let map = CropMap::for_face(face, ctx.crop_size, ctx.crop_margin);
                let out_rel = ctx.output_rel(rel, &class, v.as_str(), Some(i), false);
                if ctx.write {
                    write_image(ctx, &crop, &out_rel)?;
                    if let Some(seg) = &seg {
                        write_seg(ctx, &crop_gray(&map, seg), &out_rel)?;
                    }
                } else {
                    preview.push(SheetItem { thumbnail: thumbnail(&crop, None, 160), label: label(&class, v.as_str(), Some(&styles[i])) });
                }
                rec.outputs.push(out_rel.clone());
                let poly: Vec<Point> = p.polygon.iter().map(|&q| map.to_crop(q)).collect();
                let f = |q: Point| map.to_crop(q);
                rec.rows.push(annotation_row(rel, &out_rel, Some(i), v.as_str(), &class, Some(&styles[i]), ctx.seed, Some((face, &f, map.box_to_crop(&face.bbox))), Some(&poly)));
            }
        }
    }

    // The original, as the unmasked class (only where a face was masked, so the
    // class holds the same kind of photos as the masked ones).
    if ctx.unmasked != UnmaskedMode::None && masked_any && ctx.write {
        let class = ctx.class_of("unmasked").to_string();
        if ctx.crop_size == 0 {
            let out_rel = ctx.output_rel(rel, &class, "unmasked", None, true);
            link_original(ctx, path, &out_rel)?;
            rec.outputs.push(out_rel.clone());
            rec.rows.push(annotation_row(rel, &out_rel, None, "none", &class, None, ctx.seed, None, None));
        } else {
            for (i, face) in faces.iter().enumerate() {
                let crop = maskforge_face::crop::crop_face(&img, face, ctx.crop_size, ctx.crop_margin);
                let map = CropMap::for_face(face, ctx.crop_size, ctx.crop_margin);
                let out_rel = ctx.output_rel(rel, &class, "unmasked", Some(i), false);
                write_image(ctx, &crop, &out_rel)?;
                rec.outputs.push(out_rel.clone());
                let f = |q: Point| map.to_crop(q);
                rec.rows.push(annotation_row(rel, &out_rel, Some(i), "none", &class, None, ctx.seed, Some((face, &f, map.box_to_crop(&face.bbox))), None));
            }
        }
    }
    Ok(rec)
}

/// Append-only journal of finished images.
struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    fn open(path: &Path) -> Result<Journal> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)
            .with_context(|| format!("open {}", path.display()))?;
        // A torn last line (killed mid-write) must not glue onto the next record.
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Journal { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    fn append(&self, rec: &Record) -> Result<()> {
        let mut line = serde_json::to_string(rec)?;
        line.push('\n');
        let mut f = self.file.lock().map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        f.write_all(line.as_bytes()).with_context(|| format!("append to {}", self.path.display()))
    }

    fn read(path: &Path) -> HashMap<String, Record> {
        let mut map = HashMap::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok(rec) = serde_json::from_str::<Record>(&line) {
                    map.insert(rec.source.clone(), rec);
                }
            }
        }
        map
    }
}

/// Records from a finished earlier run's CSVs.
fn read_finished(annotations: &Path, failures: &Path) -> Result<HashMap<String, Record>> {
    let mut map: HashMap<String, Record> = HashMap::new();
    if !annotations.is_file() {
        return Ok(map);
    }
    let mut r = csv::Reader::from_path(annotations).with_context(|| format!("read {}", annotations.display()))?;
    let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
    if header != merge::annotations_header() {
        bail!("{}: not an annotations file of this maskforge version; use a new --out folder", annotations.display());
    }
    for row in r.records() {
        let row: Vec<String> = row?.iter().map(str::to_string).collect();
        let rec = map.entry(row[0].clone()).or_insert_with(|| Record { source: row[0].clone(), ..Default::default() });
        if !rec.outputs.contains(&row[1]) {
            rec.outputs.push(row[1].clone());
        }
        rec.rows.push(row);
    }
    // Failures of partly done images (one variant could not be placed) stay with them.
    if let Ok(mut r) = csv::Reader::from_path(failures) {
        for row in r.records().map_while(Result::ok) {
            if let (Some(p), Some(reason)) = (row.get(0), row.get(1)) {
                if let Some(rec) = map.get_mut(p) {
                    rec.failures.push((p.to_string(), reason.to_string()));
                }
            }
        }
    }
    Ok(map)
}

fn build_synth(args: &MaskArgs) -> Result<Synthesizer> {
    let mut templates = TemplateSet::builtin()?;
    if let Some(dir) = &args.templates {
        templates.extend(TemplateSet::load_dir(dir)?);
    }
    if let Some(names) = &args.template {
        let names: Vec<String> = names.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        templates = templates.select(&names)?;
    }
    // Render every template now: a broken user template fails the run up front.
    for t in templates.templates() {
        t.rendered()?;
    }
    let mut synth = Synthesizer::new(templates)?;
    synth.colour = ColourChoice::parse(&args.colour)?;
    synth.texture = match args.texture.trim() {
        "default" => TextureChoice::TemplateDefault,
        "none" => TextureChoice::None,
        list => TextureChoice::Among(list.split(',').map(|s| Texture::load(s.trim())).collect::<Result<_, _>>()?),
    };
    if let Some(w) = args.texture_weight {
        if !(0.0..=1.0).contains(&w) {
            bail!("--texture-weight must be within 0..1");
        }
    }
    synth.texture_weight = args.texture_weight;
    synth.blend.lighting = args.lighting.clamp(0.0, 1.0);
    Ok(synth)
}

pub fn run(args: MaskArgs) -> Result<()> {
    let root = args.input.clone();
    if !root.is_dir() {
        bail!("{}: not a folder", root.display());
    }
    let variants = parse_variants(&args.variants)?;
    let class_map = parse_class_map(args.class_map.as_deref())?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let synth = build_synth(&args)?;
    check_numbers(&args)?;

    // Where things go, and the never-write-into-the-input rule.
    let out = match (&args.out, args.preview_only) {
        (Some(o), _) => o.clone(),
        (None, _) => std::env::temp_dir().join("maskforge-preview-unused"),
    };
    let mut outputs = Vec::new();
    if !args.preview_only {
        outputs.push(Output::new(&out, "output folder"));
    }
    if let Some(seg) = &args.seg_dir {
        outputs.push(Output::new(seg, "segmentation folder"));
    }
    if let Some(p) = &args.preview {
        outputs.push(Output::new(p, "preview"));
    }
    check_disjoint(&[&root], &outputs)?;
    if let Some(seg) = &args.seg_dir {
        if !args.preview_only && resolve_existing_prefix(seg)?.starts_with(resolve_existing_prefix(&out)?) {
            bail!("--seg-dir must not be inside the output folder (ImageFolder readers would take it for a class)");
        }
    }

    // Classes and file-name suffixes.
    let mut classes: HashMap<String, String> = HashMap::new();
    for v in MaskVariant::ALL {
        classes.insert(v.as_str().into(), class_map.get(v.as_str()).cloned().unwrap_or_else(|| v.as_str().into()));
    }
    classes.insert("unmasked".into(), class_map.get("unmasked").cloned().unwrap_or_else(|| "unmasked".into()));
    let mut producers: HashMap<String, usize> = HashMap::new();
    match args.mode {
        VariantMode::Each => {
            for (v, _) in &variants {
                *producers.entry(classes[v.as_str()].clone()).or_default() += 1;
            }
        }
        VariantMode::Random => {
            let set: BTreeSet<&String> = variants.iter().map(|(v, _)| &classes[v.as_str()]).collect();
            for c in set {
                *producers.entry(c.clone()).or_default() += 1;
            }
        }
    }
    if args.unmasked != UnmaskedMode::None {
        *producers.entry(classes["unmasked"].clone()).or_default() += 1;
    }
    let suffixed_classes: HashSet<String> = producers.into_iter().filter(|(_, n)| *n > 1).map(|(c, _)| c).collect();

    // Inputs: walk, shard, limit.
    let walk = walk_images(&root);
    let mut walk_failures = walk.failures;
    let all: Vec<(PathBuf, String)> = walk.images.into_iter().map(|p| {
        let rel = relative_string(&root, &p);
        (p, rel)
    }).collect();
    // Sources whose output name collides with another's after a format change.
    let mut ext_suffixed = HashSet::new();
    if args.format != OutputFormat::Same {
        let mut by_stem: HashMap<String, Vec<&String>> = HashMap::new();
        for (_, rel) in &all {
            let stem = rel.rsplit_once('.').map(|(s, _)| s).unwrap_or(rel).to_string();
            by_stem.entry(stem).or_default().push(rel);
        }
        for list in by_stem.values().filter(|l| l.len() > 1) {
            ext_suffixed.extend(list.iter().map(|r| r.to_string()));
        }
    }
    let mut images: Vec<(PathBuf, String)> = match shard {
        Some((i, n)) => all.into_iter().filter(|(_, rel)| maskforge_mask::rng::stable_hash(rel.as_bytes()) % n as u64 == (i - 1) as u64).collect(),
        None => all,
    };
    if let Some((_, n)) = shard {
        // Walk failures are reported by the first shard only.
        if shard.map(|s| s.0) != Some(1) || n == 0 {
            walk_failures.clear();
        }
    }
    let shard_sources: HashSet<String> = images.iter().map(|(_, r)| r.clone()).collect();
    if let Some(limit) = args.limit {
        images.truncate(limit);
    }

    let settings = Settings {
        tool: concat!("maskforge mask ", env!("CARGO_PKG_VERSION")),
        variants: variants.iter().map(|(v, w)| (v.as_str().to_string(), *w)).collect(),
        mode: args.mode,
        classes: classes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        unmasked: args.unmasked,
        templates: synth.templates.templates().iter().map(|t| (t.name().to_string(), format!("{:016x}", t.fingerprint))).collect(),
        colour: args.colour.clone(),
        texture: args.texture.clone(),
        texture_weight: args.texture_weight,
        lighting: synth.blend.lighting,
        crop_size: args.crop_size,
        crop_margin: args.crop_margin,
        seed: args.seed,
        min_face: args.min_face,
        largest_only: args.largest_only,
        format: args.format,
        quality: args.quality,
        detector: format!("{:?}", args.detector.detector).to_lowercase(),
        detect_max_side: args.detector.detect_max_side,
        upsample: args.detector.upsample,
        segmentation: args.seg_dir.is_some(),
    };
    let settings_json = serde_json::to_string_pretty(&settings)? + "\n";

    let ctx = Ctx {
        out: out.clone(),
        seg_dir: args.seg_dir.clone(),
        synth,
        variants,
        mode: args.mode,
        classes,
        suffixed_classes,
        unmasked: args.unmasked,
        crop_size: args.crop_size,
        crop_margin: args.crop_margin,
        format: args.format,
        quality: args.quality,
        seed: args.seed,
        min_face: args.min_face,
        largest_only: args.largest_only,
        limits: args.detector.limits(),
        ext_suffixed,
        write: !args.preview_only,
        hardlink_fallbacks: Mutex::new(0),
    };
    let pool = common::thread_pool(args.jobs)?;

    if args.preview_only {
        return preview_only(&ctx, &args, &pool, images);
    }

    // Output folder: ours or new, with matching settings.
    let settings_path = out.join(SETTINGS);
    if out.exists() {
        match std::fs::read_to_string(&settings_path) {
            Ok(old) if old != settings_json => {
                bail!(
                    "{} was made with different settings:\n{}\nuse a new --out folder (or delete this one)",
                    out.display(),
                    settings_diff(&old, &settings_json)
                );
            }
            Ok(_) => {}
            Err(_) => {
                let non_empty = std::fs::read_dir(&out).map(|mut d| d.next().is_some()).unwrap_or(false);
                if non_empty {
                    bail!("{} is not empty and was not made by `maskforge mask`: choose a new or empty --out folder", out.display());
                }
            }
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    maskforge_imageio::write_atomic(&settings_path, settings_json.as_bytes())
        .with_context(|| format!("cannot write {}", settings_path.display()))?;
    maskforge_imageio::remove_stale_temp_files(&out);
    if let Some(seg) = &args.seg_dir {
        maskforge_imageio::remove_stale_temp_files(seg);
    }

    // Resume state.
    let ann_path = out.join(merge::csv_name(ANNOTATIONS, shard));
    let fail_path = out.join(merge::csv_name(FAILURES, shard));
    let journal_path = out.join(match shard {
        Some((i, n)) => format!(".mask-journal.shard-{i}-of-{n}.jsonl"),
        None => ".mask-journal.jsonl".to_string(),
    });
    let stamps_file = stamps_path(&out, shard);
    let mut records = read_finished(&ann_path, &fail_path)?;
    read_stamps(&stamps_file, &mut records);
    records.extend(Journal::read(&journal_path));
    // Folders of older versions have no stamps: their records count as current.
    let is_current = |rec: &Record, path: &Path| rec.stamp.is_none() || rec.stamp == SourceStamp::of(path);
    let is_done = |rec: &Record| {
        !rec.retry
            && rec.outputs.iter().all(|o| {
                out.join(o).symlink_metadata().is_ok()
                    && ctx.seg_dir.as_ref().is_none_or(|d| {
                        // Unmasked copies have no segmentation mask.
                        rec.rows.iter().any(|r| &r[1] == o && r[3] == "none") || d.join(o).with_extension("png").is_file()
                    })
            })
    };
    let todo: Vec<&(PathBuf, String)> =
        images.iter().filter(|(path, rel)| records.get(rel).is_none_or(|r| !is_done(r) || !is_current(r, path))).collect();
    let skipped = images.len() - todo.len();

    let journal = Journal::open(&journal_path)?;
    let start = Instant::now();
    let pb = common::progress_bar(todo.len() as u64, "mask");
    let new_records: Vec<Record> = if todo.is_empty() {
        Vec::new()
    } else {
        let detector = Detector::new(&args.detector.config())?;
        pool.install(|| {
            todo.par_iter()
                .map_init(
                    || detector.clone(),
                    |det, (path, rel)| -> Result<Record> {
                        let mut unused = Vec::new();
                        let rec = process(&ctx, det, path, rel, &mut unused)?;
                        journal.append(&rec)?;
                        pb.inc(1);
                        Ok(rec)
                    },
                )
                .collect::<Result<Vec<_>>>()
        })?
    };
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    for r in new_records {
        if let Some(old) = records.get(&r.source) {
            remove_replaced_outputs(&ctx, old, &r);
        }
        records.insert(r.source.clone(), r);
    }
    // Keep records of this shard's inputs (a --limit run keeps earlier results).
    records.retain(|src, _| shard_sources.contains(src));

    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut failures = walk_failures;
    for rec in records.values() {
        rows.extend(rec.rows.iter().cloned());
        failures.extend(rec.failures.iter().map(|(p, r)| Failure::new(p.clone(), r.clone())));
    }
    merge::write_annotations(&ann_path, &rows)?;
    maskforge_imageio::write_failures_csv(&fail_path, &failures)
        .with_context(|| format!("cannot write {}", fail_path.display()))?;
    write_stamps(&stamps_file, &records)?;
    drop(journal);
    let _ = std::fs::remove_file(&journal_path);

    if let Some(preview) = &args.preview {
        write_preview_from_disk(&ctx, &rows, preview, args.preview_count)?;
    }

    // Summary.
    let mut per_variant: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
    let mut per_class: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
    let mut faces = BTreeSet::new();
    for r in &rows {
        per_variant.entry(r[3].clone()).or_default().insert(&r[1]);
        per_class.entry(r[4].clone()).or_default().insert(&r[1]);
        if r[3] != "none" {
            faces.insert((&r[0], &r[2]));
        }
    }
    let small: usize = records.values().map(|r| r.small_faces).sum();
    let fmt_counts = |m: &BTreeMap<String, BTreeSet<&String>>| {
        m.iter().map(|(k, v)| format!("{k}={}", v.len())).collect::<Vec<_>>().join(", ")
    };
    for f in &failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    let fallbacks = ctx.hardlink_fallbacks.lock().map(|n| *n).unwrap_or(0);
    if fallbacks > 0 {
        eprintln!("note: {fallbacks} originals were copied because hard links were not possible");
    }
    println!(
        "mask: {} images ({} processed now, {skipped} already done), {} faces masked, {small} faces under --min-face skipped",
        images.len(),
        todo.len(),
        faces.len()
    );
    println!("  outputs per variant: {}", fmt_counts(&per_variant));
    println!("  outputs per class:   {}", fmt_counts(&per_class));
    println!(
        "  {} failures (failures.csv), {:.2} images/s -> {}",
        failures.len(),
        todo.len() as f64 / secs.max(1e-9),
        ann_path.display()
    );
    Ok(())
}

fn settings_diff(old: &str, new: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    match (parse(old), parse(new)) {
        (Some(serde_json::Value::Object(a)), Some(serde_json::Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "  {k}: {} -> {}",
                        a.get(k).map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                        b.get(k).map(|v| v.to_string()).unwrap_or_else(|| "-".into())
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => "  (unreadable mask_settings.json)".into(),
    }
}

/// Output rows picked for a preview: one per output, sampled by a hash of
/// the seed and path so the choice is stable and spread over the tree.
fn preview_sample(rows: &[Vec<String>], seed: u64, count: usize) -> Vec<&Vec<String>> {
    let mut firsts: BTreeMap<&String, &Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[3] != "none") {
        firsts.entry(&r[1]).or_insert(r);
    }
    let mut list: Vec<&Vec<String>> = firsts.into_values().collect();
    list.sort_by_key(|r| (maskforge_mask::rng::stable_hash(format!("{seed}:{}", r[1]).as_bytes()), r[1].clone()));
    list.truncate(count);
    list.sort_by(|a, b| a[1].cmp(&b[1]));
    list
}

fn write_preview_from_disk(ctx: &Ctx, rows: &[Vec<String>], path: &Path, count: usize) -> Result<()> {
    let mut items = Vec::new();
    for r in preview_sample(rows, ctx.seed, count) {
        let file = ctx.out.join(&r[1]);
        let Ok(img) = load_rgb(&file, LoadLimits::default()) else { continue };
        let f = |i: usize| r[i].parse::<f32>().ok();
        let focus = match (f(8), f(9), f(10), f(11)) {
            (Some(l), Some(t), Some(rt), Some(b)) if ctx.crop_size == 0 => Some(BBox::new(l, t, rt, b)),
            _ => None,
        };
        let text = {
            let first = if r[4] == r[3] { r[4].clone() } else { format!("{} ({})", r[4], r[3]) };
            format!("{first}\n{} {}", r[5], r[6])
        };
        items.push(SheetItem { thumbnail: thumbnail(&img, focus, 160), label: text });
    }
    save_sheet(&items, path)
}

fn save_sheet(items: &[SheetItem], path: &Path) -> Result<()> {
    let cols = (items.len() as f64).sqrt().ceil().clamp(1.0, 8.0) as usize;
    let sheet = contact_sheet(items, cols, 160);
    let bytes = maskforge_imageio::encode_image(&sheet, &path.with_extension("png"), 90)?;
    maskforge_imageio::write_atomic(path, &bytes).with_context(|| format!("write {}", path.display()))?;
    println!("preview: {} outputs -> {}", items.len(), path.display());
    Ok(())
}

/// `--preview-only`: mask a hash-chosen sample of the inputs in memory and
/// write just the contact sheet.
fn preview_only(ctx: &Ctx, args: &MaskArgs, pool: &rayon::ThreadPool, mut images: Vec<(PathBuf, String)>) -> Result<()> {
    let Some(path) = &args.preview else { bail!("--preview-only needs --preview FILE.png") };
    images.sort_by_key(|(_, rel)| (maskforge_mask::rng::stable_hash(format!("{}:{rel}", ctx.seed).as_bytes()), rel.clone()));
    let detector = Detector::new(&args.detector.config())?;
    let mut items: Vec<SheetItem> = Vec::new();
    let mut failures = Vec::new();
    let batch = pool.current_num_threads().max(1) * 2;
    for chunk in images.chunks(batch) {
        if items.len() >= args.preview_count {
            break;
        }
        let results: Vec<(Vec<SheetItem>, Record)> = pool.install(|| {
            chunk
                .par_iter()
                .map_init(
                    || detector.clone(),
                    |det, (p, rel)| -> Result<(Vec<SheetItem>, Record)> {
                        let mut thumbs = Vec::new();
                        let rec = process(ctx, det, p, rel, &mut thumbs)?;
                        Ok((thumbs, rec))
                    },
                )
                .collect::<Result<Vec<_>>>()
        })?;
        for (thumbs, rec) in results {
            items.extend(thumbs);
            failures.extend(rec.failures);
        }
    }
    items.truncate(args.preview_count);
    for (p, r) in &failures {
        eprintln!("skipped: {p}: {r}");
    }
    save_sheet(&items, path)
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
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn crop_map_inverts_and_matches_crop_face() {
        use maskforge_face::Landmarks68;
        let mut pts = [Point::new(50.0, 50.0); 68];
        pts[36..42].fill(Point::new(40.0, 40.0));
        pts[42..48].fill(Point::new(60.0, 50.0));
        let face = Face { bbox: BBox::new(30.0, 30.0, 70.0, 80.0), score: 1.0, landmarks: Landmarks68(pts) };
        let map = CropMap::for_face(&face, 64, 0.2);
        let p = Point::new(47.0, 61.0);
        let back = map.to_source(map.to_crop(p));
        assert!((back.x - p.x).abs() < 1e-3 && (back.y - p.y).abs() < 1e-3);
        // A bright pixel lands where the map says in the real crop.
        let mut img = RgbImage::new(100, 100);
        img.put_pixel(47, 61, image::Rgb([255, 255, 255]));
        let crop = maskforge_face::crop::crop_face(&img, &face, 64, 0.2);
        let q = map.to_crop(Point::new(47.5, 61.5));
        let (x, y) = (q.x.floor() as u32, q.y.floor() as u32);
        let best = (x.saturating_sub(1)..=x + 1)
            .flat_map(|xx| (y.saturating_sub(1)..=y + 1).map(move |yy| (xx, yy)))
            .map(|(xx, yy)| crop.get_pixel(xx, yy)[0])
            .max()
            .unwrap_or(0);
        assert!(best > 60, "bright pixel not near the mapped point ({x},{y})");
    }
}
