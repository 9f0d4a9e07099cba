//! `maskforge mask`: turn a tree of unmasked face photos into a labelled,
//! masked ImageFolder dataset (`OUT/<class>/<relative path>`).
//!
//! The stage itself is `maskforge_pipeline`; this file holds its flags, the
//! checks of their values, the pipeline's face source (the dlib detector,
//! or `--landmarks FILE`), and what is printed.

use crate::cmd::detect::{DetectorArg, DetectorOpts, Device};
use crate::common;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use image::RgbImage;
use maskforge_contracts::{read_face_file, FaceFileFormat};
use maskforge_face::fit::{self, CropLimits};
use maskforge_face::FaceMethod;
use maskforge_imageio::{check_disjoint, resolve_existing_prefix, Output};
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use maskforge_pipeline::{
    build_synthesizer, parse_class_map, parse_shard, parse_variants, save_sheet, DetectorSettings, FaceFilter,
    FaceSource, FileFaces, Finished, FoundFaces, Inputs, MaskOptions, MaskRun, OutputFormat, Pipeline, Settings,
    SynthOptions, UnmaskedMode, VariantMode,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// drawn with the proportions of --variants (per face with --crop-size).
    #[arg(long, value_enum, default_value = "each")]
    pub mode: VariantMode,
    /// Masked outputs per face and variant (1 to 64), each with its own draw of template,
    /// colour and placement: more samples from few source photos. The first is the output a
    /// run without --draws makes; the others are named `NAME__drawK.EXT`. All share their
    /// source, so `split` keeps them in one group.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub draws: u32,
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
    /// Use only these templates, drawn by weight: comma-separated `name` or `name=weight`, e.g.
    /// `surgical=4,sponge=1,n95` (a bare name keeps its default weight) [default: all built-ins at
    /// their default weights: surgical .38, kn95 .14, cloth .12, printed .10, cloth_pleated .08,
    /// sponge .08, n95 .06, n95_valve .04; user templates: their `weight`, 1 if unset].
    #[arg(long, value_name = "NAMES")]
    pub template: Option<String>,
    /// Mask colour: `palette` (each template's own, drawn by its palette weights: surgical is
    /// surgicalblue .45, white .20, black .20, ...), or comma-separated names/hex to draw from,
    /// each optionally weighted: `black=3,navy,#3a5fcd=0.5` (a bare colour weighs 1).
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
    /// Strength of the contact shadows the mask casts on the skin along its edges (0 = none, 1).
    #[arg(long, default_value_t = 1.0)]
    pub shadow: f32,
    /// Strength of the relief of pleats and seams, lit from the face's own light direction (0 = none, 1).
    #[arg(long, default_value_t = 1.0)]
    pub relief: f32,
    /// Strength of matching the photo: its softness (blur, JPEG), noise, saturation and colour cast
    /// (0 = a clean mask on any photo, 1).
    #[arg(long, default_value_t = 1.0)]
    pub photo_match: f32,
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
    /// Boxes for detector training, comma-separated: `coco` (OUT/labels.coco.json) and/or
    /// `yolo` (a .txt beside each image, OUT/labels.yolo.yaml). One box per face with its class.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FORMATS")]
    pub labels: Vec<maskforge_pipeline::LabelFormat>,
    /// Write a contact sheet of a sample of the outputs to this PNG file (JPEG when it ends in .jpg).
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
    /// Worker threads (default: all cores), at most 1024. Outputs do not depend on it.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
    /// Process only shard I of N (1-based), e.g. `--shard 3/8`: a fixed share of the
    /// images chosen by a hash of their paths. Merge shards with `maskforge merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Mask only the largest face of each image.
    #[arg(long)]
    pub largest_only: bool,
    /// A whole-image output in which a detected face stays bare (under --min-face, not the
    /// largest, or its mask could not be placed) would be a wrongly labelled masked image:
    /// `skip` leaves it out (a failures.csv line, counted in the summary); a class name files
    /// it under that class instead. Crops (--crop-size) are per face and not affected.
    #[arg(long, value_name = "skip|CLASS", default_value = "skip")]
    pub bare_faces: String,
    /// Output image format.
    #[arg(long, value_enum, default_value = "same")]
    pub format: OutputFormat,
    /// JPEG quality of outputs.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Process at most this many images (after sharding), in path order.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Process the images named in this file instead of walking INPUT: one path relative to
    /// INPUT a line (blank lines and `#` comments ignored), or a manifest CSV as `split` writes
    /// it. Listed files that are missing or not images go to failures.csv.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Take the faces from this file instead of detecting them (no dlib model is loaded;
    /// landmarks and boxes are used as given): `maskforge detect`'s landmarks.csv, FFHQ's
    /// ffhq-dataset-v2.json, or a CSV `path,x0,y0,...,x67,y67` [optional face, left,top,right,bottom,
    /// score]. Paths are relative to INPUT, with `/`. Images without a face in the file are not masked.
    #[arg(long, value_name = "FILE")]
    pub landmarks: Option<PathBuf>,
    /// Layout of the --landmarks file: auto (JSON is FFHQ's, a CSV with detect's header is detect's,
    /// any other CSV is plain).
    #[arg(long, value_enum, default_value = "auto")]
    pub landmarks_format: LandmarksFormat,
    /// How faces are found: `detect` (the --detector), `crop` (for datasets of face crops,
    /// one face per image: no detector; the face box comes from the crop and is refined from
    /// the predicted landmarks, which must pass a check: face shape, eyes, nose and mouth
    /// inside the image, points that stay put when refitted from moved boxes; rejected crops
    /// go to failures.csv with the reason) or `auto` (detect, and fit a crop where the
    /// detector finds nothing; its detector is mtcnn unless --detector names another).
    #[arg(long, value_enum, default_value = "detect", conflicts_with = "landmarks")]
    pub faces: FacesMode,
    #[command(flatten)]
    pub detector: DetectorOpts,
}

/// How `mask` finds faces without a landmarks file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FacesMode {
    /// The face detector (--detector).
    Detect,
    /// No detector: every image is a face crop; its landmarks are fitted and checked.
    Crop,
    /// The detector, and the crop fit where it finds no face.
    Auto,
}

impl FacesMode {
    /// What mask_settings.json records beside the detector.
    fn settings(self) -> Option<String> {
        match self {
            FacesMode::Detect => None,
            FacesMode::Crop => Some("crop (box from the crop, landmarks checked)".into()),
            FacesMode::Auto => Some("auto (detector, else crop)".into()),
        }
    }
}

/// The layouts `--landmarks` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LandmarksFormat {
    /// By content: JSON is FFHQ's, a CSV with landmarks.csv's header detect's, any other CSV plain.
    Auto,
    /// `maskforge detect`'s landmarks.csv.
    Detect,
    /// FFHQ's metadata JSON (ffhq-dataset-v2.json).
    Ffhq,
    /// `path,x0,y0,...,x67,y67` with optional face, left,top,right,bottom and score columns.
    Csv,
}

impl LandmarksFormat {
    fn format(self) -> Option<FaceFileFormat> {
        match self {
            LandmarksFormat::Auto => None,
            LandmarksFormat::Detect => Some(FaceFileFormat::Detect),
            LandmarksFormat::Ffhq => Some(FaceFileFormat::Ffhq),
            LandmarksFormat::Csv => Some(FaceFileFormat::Csv),
        }
    }
}

/// `--detector`, else HOG; MTCNN for `--faces auto` in a build with
/// libtorch (on real face crops it finds the most faces).
fn detector_config(args: &MaskArgs) -> DetectorConfig {
    let default =
        if args.faces == FacesMode::Auto && cfg!(feature = "tch") { DetectorArg::Mtcnn } else { DetectorArg::Hog };
    args.detector.config(default)
}

/// Faces smaller than this are left bare: `--min-face`, else 40 px, or
/// the detector's own default where that is smaller (MTCNN's 24). Not the
/// detector's default alone: HOG's 80 would drop the smaller faces that
/// `--faces crop` fits and landmark files list.
fn filter_min_face(args: &MaskArgs) -> u32 {
    const DEFAULT: u32 = 40;
    args.detector.min_face.unwrap_or_else(|| detector_config(args).kind.default_min_face().min(DEFAULT))
}

/// Where a run's faces come from.
#[derive(Clone)]
enum Faces {
    Detected(Box<DlibFaces>),
    FromFile(FileFaces),
}

impl FaceSource for Faces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        path: &Path,
        rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        match self {
            Faces::Detected(dlib) => dlib.find_faces(image, path, rel, filter),
            Faces::FromFile(file) => file.find_faces(image, path, rel, filter),
        }
    }
}

impl Faces {
    /// The file's faces if there is one, else dlib's detector (its models loaded now).
    fn open(args: &MaskArgs, from_file: Option<FileFaces>) -> Result<Faces> {
        Ok(match from_file {
            Some(file) => Faces::FromFile(file),
            None => {
                let config = detector_config(args);
                let det = match args.faces {
                    FacesMode::Crop => Detector::landmarks_only(&config)?,
                    FacesMode::Detect | FacesMode::Auto => DetectorOpts::build(&config, Device::Cpu)?,
                };
                Faces::Detected(Box::new(DlibFaces { det, mode: args.faces }))
            }
        })
    }
}

/// `--landmarks`: reads the file and matches it to the images (all of them,
/// before sharding). Its bad rows and the rows without an image go into the
/// failures of the first shard; the settings record the file by name, format
/// and SHA-256.
fn faces_from_file(args: &MaskArgs, inputs: &mut Inputs) -> Result<Option<(FileFaces, DetectorSettings)>> {
    let Some(path) = &args.landmarks else { return Ok(None) };
    let name = path.display().to_string();
    let file = read_face_file(path, &name, args.landmarks_format.format())?;
    let (faces, failures) = FileFaces::new(&file, &name, &inputs.all_sources);
    let first_shard = args.shard.as_deref().map(parse_shard).transpose()?.is_none_or(|(i, _)| i == 1);
    if first_shard {
        inputs.walk_failures.extend(failures);
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| name.clone());
    let settings = DetectorSettings {
        detector: "none".into(),
        detect_max_side: 0,
        scale: None,
        upsample: 0,
        faces: Some(format!("landmarks {file_name} ({}, sha256 {})", file.format.name(), file.sha256)),
    };
    Ok(Some((faces, settings)))
}

/// The points check of faces from a detector other than dlib's: the crop
/// fit's shape limit, and the box the points imply overlapping the detector's
/// by at least half.
const MAX_SHAPE_RESIDUAL: f32 = 0.35;
const MIN_POINTS_OVERLAP: f32 = 0.5;

/// Faces from dlib: boxes on the downscaled copy, the size filter, then
/// landmarks on the full image for the faces kept; or the crop fit.
#[derive(Clone)]
struct DlibFaces {
    det: Detector,
    mode: FacesMode,
}

impl DlibFaces {
    /// The face of a face crop, or why there is none.
    fn crop_face(&self, image: &RgbImage, filter: FaceFilter) -> Result<FoundFaces, String> {
        let face = self.det.face_in_crop(image, &CropLimits::default()).map_err(|e| e.to_string())?;
        let face = face.map_err(|why| why.to_string())?;
        let selected = filter.select_by(vec![face], |f| f.bbox);
        Ok(FoundFaces { faces: selected.kept, small: selected.small, found: selected.found, method: FaceMethod::Crop })
    }
}

impl FaceSource for DlibFaces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        _path: &Path,
        _rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        if self.mode == FacesMode::Crop {
            return self.crop_face(image, filter);
        }
        let boxes = self.det.detect_boxes(image).map_err(|e| e.to_string())?;
        let selected = filter.select(boxes);
        let mut faces = self.det.faces_in_boxes(image, selected.kept).map_err(|e| e.to_string())?;
        let mut found = selected.found;
        if self.det.config().kind == DetectorKind::Mtcnn {
            // Its boxes come from another model: draw only on faces whose
            // 68 points agree with the box (as the crop fit checks its own).
            let before = faces.len();
            faces.retain(|f| fit::check_in_box(&f.landmarks, &f.bbox, MAX_SHAPE_RESIDUAL, MIN_POINTS_OVERLAP).is_ok());
            found -= before - faces.len();
        }
        if faces.is_empty() && selected.small == 0 && self.mode == FacesMode::Auto {
            return self.crop_face(image, filter);
        }
        let method = self.det.config().kind.method();
        Ok(FoundFaces { faces, small: selected.small, found, method })
    }
}

/// Most thumbnails on a preview sheet.
const MAX_PREVIEW_COUNT: usize = 1000;

/// The never-write-into-the-input rule, and segmentation masks outside OUT.
fn check_paths(args: &MaskArgs, root: &Path, out: &Path) -> Result<()> {
    let mut outputs = Vec::new();
    if !args.preview_only {
        outputs.push(Output::new(out, "output folder"));
    }
    if let Some(seg) = &args.seg_dir {
        outputs.push(Output::new(seg, "segmentation folder"));
    }
    if let Some(p) = &args.preview {
        outputs.push(Output::new(p, "preview"));
    }
    let mut inputs = vec![root];
    if let Some(file) = &args.landmarks {
        inputs.push(file.as_path());
    }
    check_disjoint(&inputs, &outputs)?;
    let mut folders = vec![root];
    if !args.preview_only {
        folders.push(out);
    }
    common::check_cache_folder(&folders)?;
    if let Some(preview) = &args.preview {
        let seg: Vec<&Path> = args.seg_dir.iter().map(PathBuf::as_path).collect();
        maskforge_pipeline::check_preview_path(preview, (!args.preview_only).then_some(out), &seg)?;
    }
    if let Some(seg) = &args.seg_dir {
        if !args.preview_only && resolve_existing_prefix(seg)?.starts_with(resolve_existing_prefix(out)?) {
            bail!("--seg-dir must not be inside the output folder (ImageFolder readers would take it for a class)");
        }
    }
    Ok(())
}

fn synth_options(args: &MaskArgs) -> SynthOptions {
    SynthOptions {
        templates_dir: args.templates.clone(),
        template_names: args.template.clone(),
        colour: args.colour.clone(),
        texture: args.texture.clone(),
        texture_weight: args.texture_weight,
        lighting: args.lighting,
        shadow: args.shadow,
        relief: args.relief,
        photo_match: args.photo_match,
        raster_cache: common::cache_dir().map(|dir| dir.join("templates")),
    }
}

/// The pipeline's options; `--variants` and `--class-map` parsed here.
fn mask_options(args: &MaskArgs, out: PathBuf) -> Result<MaskOptions> {
    Ok(MaskOptions {
        out,
        seg_dir: args.seg_dir.clone(),
        variants: parse_variants(&args.variants)?,
        mode: args.mode,
        draws: args.draws,
        class_map: parse_class_map(args.class_map.as_deref())?,
        unmasked: args.unmasked,
        crop_size: args.crop_size,
        crop_margin: args.crop_margin,
        format: args.format,
        quality: args.quality,
        seed: args.seed,
        faces: FaceFilter { min_face: filter_min_face(args), largest_only: args.largest_only },
        limits: args.detector.limits(),
        decode_budget: maskforge_imageio::DecodeBudget::from_available_memory(),
        write: !args.preview_only,
        labels: args.labels.clone(),
        bare_faces: (args.bare_faces != "skip").then(|| args.bare_faces.clone()),
    })
}

pub fn run(args: MaskArgs) -> Result<()> {
    let root = args.input.clone();
    if !root.is_dir() {
        bail!("{}: not a folder", root.display());
    }
    let out = args.out.clone().unwrap_or_else(|| std::env::temp_dir().join("maskforge-preview-unused"));
    let opts = mask_options(&args, out)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let synth_opts = synth_options(&args);
    let synth = build_synthesizer(&synth_opts)?;
    opts.check()?;
    if args.preview_count > MAX_PREVIEW_COUNT {
        bail!("--preview-count {}: must be at most {MAX_PREVIEW_COUNT}", args.preview_count);
    }
    check_paths(&args, &root, &opts.out)?;

    let outputs: Vec<&Path> = [Some(opts.out.as_path()), args.seg_dir.as_deref()].into_iter().flatten().collect();
    let mut inputs = Inputs::new(&root, args.list.as_deref(), &outputs, shard, args.limit, args.format)?;
    let (from_file, file_settings) = faces_from_file(&args, &mut inputs)?.unzip();
    let pipeline = Pipeline::new(opts, synth, inputs.ext_suffixed.clone())?;
    let pool = common::thread_pool(args.jobs)?;
    common::share_cores_with_workers(pool.current_num_threads());
    if args.preview_only {
        return preview_only(&pipeline, &args, &pool, inputs.images, from_file);
    }
    let detector = file_settings.unwrap_or_else(|| DetectorSettings {
        detector: detector_config(&args).detector_text(),
        detect_max_side: args.detector.detect_max_side.unwrap_or(0),
        scale: Some(detector_config(&args).scale_text()),
        upsample: args.detector.upsample,
        faces: args.faces.settings(),
    });
    let mut run = MaskRun::open(&pipeline, &Settings::new(&pipeline, &synth_opts, &detector), shard, inputs)?;
    let start = Instant::now();
    let pb = common::progress_bar(run.todo() as u64, "mask");
    if run.todo() > 0 {
        let faces = Faces::open(&args, from_file)?;
        run.process(&pool, &faces, &|| pb.inc(1))?;
    }
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let finished = run.finish()?;
    if let Some(preview) = &args.preview {
        let items = pipeline.preview_from_disk(&finished.rows, args.preview_count);
        save_sheet(&items, preview)?;
        println!("preview: {} outputs -> {}", items.len(), preview.display());
    }
    print_summary(&finished, secs, &args.bare_faces);
    print_min_face_tip(&args, &finished.summary);
    Ok(())
}

/// Detection at full size is most of a run on large faces (FFHQ): when every
/// face found was large, say which `--min-face` would detect on a smaller
/// copy, and what it would cost.
fn print_min_face_tip(args: &MaskArgs, s: &maskforge_pipeline::Summary) {
    /// Too few faces say little about a dataset.
    const MIN_FACES: usize = 10;
    if args.landmarks.is_some() || s.small_faces > 0 || s.faces_masked < MIN_FACES {
        return;
    }
    let config = detector_config(args);
    let Some(smallest) = s.smallest_detected_face else { return };
    let Some((suggested, pixel_share)) = config.faster_min_face(smallest) else { return };
    println!(
        "  tip: the smallest face found was {smallest:.0} px; --min-face {suggested} detects on a copy with \
         1/{:.0} of the pixels (faster) and misses faces under {suggested} px",
        1.0 / pixel_share
    );
}

fn print_summary(finished: &Finished, secs: f64, bare_faces: &str) {
    let s = &finished.summary;
    let bare_note = match bare_faces {
        "skip" => "skipped (failures.csv; --bare-faces CLASS keeps them apart)".to_string(),
        class => format!("filed under {class}/"),
    };
    let fmt_counts =
        |m: &BTreeMap<String, usize>| m.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(", ");
    for f in &finished.failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    for w in &finished.warnings {
        eprintln!("warning: {w}");
    }
    if s.hardlink_fallbacks > 0 {
        eprintln!("note: {} originals were copied because hard links were not possible", s.hardlink_fallbacks);
    }
    println!(
        "mask: {} images ({} processed now, {} already done), {} faces masked, {} faces under --min-face skipped",
        s.images, s.processed, s.skipped, s.faces_masked, s.small_faces
    );
    if s.bare_outputs > 0 {
        println!("  {} whole-image outputs with a bare detected face: {}", s.bare_outputs, bare_note);
    }
    println!("  outputs per variant: {}", fmt_counts(&s.outputs_per_variant));
    println!("  outputs per class:   {}", fmt_counts(&s.outputs_per_class));
    println!(
        "  {} failures (failures.csv), {:.2} images/s -> {}",
        s.failures,
        s.processed as f64 / secs.max(1e-9),
        s.annotations.display()
    );
}

/// `--preview-only`: mask a hash-chosen sample of the inputs in memory and
/// write just the contact sheet.
fn preview_only(
    pipeline: &Pipeline,
    args: &MaskArgs,
    pool: &rayon::ThreadPool,
    images: Vec<(PathBuf, String)>,
    from_file: Option<FileFaces>,
) -> Result<()> {
    let Some(path) = &args.preview else { bail!("--preview-only needs --preview FILE.png") };
    let faces = Faces::open(args, from_file)?;
    let (items, failures) = pipeline.preview_only(pool, images, args.preview_count, &faces)?;
    for f in &failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    save_sheet(&items, path)?;
    println!("preview: {} outputs -> {}", items.len(), path.display());
    Ok(())
}
