//! `maskforge mask`: turn a tree of unmasked face photos into a labelled,
//! masked ImageFolder dataset (`OUT/<class>/<relative path>`).
//!
//! The stage itself is `maskforge_pipeline`, its faces
//! `maskforge_landmarks::mask_faces`; this file holds the flags, the checks
//! of their values, and what is printed.

use crate::common;
use crate::detector::{DetectorOpts, Device};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use maskforge_contracts::FaceFileFormat;
use maskforge_landmarks::mask_faces::{self, DetectorFaces, FacesMode, MaskFaces};
use maskforge_landmarks::{Detector, DetectorConfig};
use maskforge_pipeline::{
    build_synthesizer, parse_class_map, parse_shard, parse_variants, save_sheet, FaceFilter, FileFaces, Finished,
    Inputs, MaskOptions, MaskPaths, MaskRun, OutputFormat, Pipeline, Settings, SynthOptions, UnmaskedMode, VariantMode,
};
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
    /// With --crop-size: crops per face and output (1 to 16), each at its own framing. The first
    /// is the standard crop; the others zoom in (the face fills the frame, cut through the forehead)
    /// or out (small and off-centre), drawn per face from --seed. A face's unmasked crop gets the
    /// same windows, so each pair still differs only by the mask. Named `NAME__frameK.EXT`.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub framings: u32,
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
    /// detector finds nothing; its detector is centerface unless --detector names another).
    #[arg(long, value_enum, default_value = "detect", conflicts_with = "landmarks")]
    pub faces: FacesMode,
    #[command(flatten)]
    pub detector: DetectorOpts,
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

/// `--detector`, else the one `--faces` runs by default.
fn detector_config(args: &MaskArgs) -> DetectorConfig {
    args.detector.config(args.faces.default_detector(cfg!(feature = "tch")))
}

/// The file's faces if there is one, else dlib's (its models loaded now).
fn open_faces(args: &MaskArgs, from_file: Option<FileFaces>) -> Result<MaskFaces> {
    if let Some(file) = from_file {
        return Ok(MaskFaces::File(file));
    }
    let config = detector_config(args);
    let det = match args.faces {
        FacesMode::Crop => Detector::landmarks_only(&config)?,
        FacesMode::Detect | FacesMode::Auto => DetectorOpts::build(&config, Device::Cpu)?,
    };
    Ok(MaskFaces::Detector(Box::new(DetectorFaces::new(det, args.faces))))
}

/// Most thumbnails on a preview sheet.
const MAX_PREVIEW_COUNT: usize = 1000;

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
    let min_face = args.detector.min_face.unwrap_or_else(|| mask_faces::default_min_face(detector_config(args).kind));
    Ok(MaskOptions {
        out,
        seg_dir: args.seg_dir.clone(),
        variants: parse_variants(&args.variants)?,
        mode: args.mode,
        draws: args.draws,
        framings: args.framings,
        class_map: parse_class_map(args.class_map.as_deref())?,
        unmasked: args.unmasked,
        crop_size: args.crop_size,
        crop_margin: args.crop_margin,
        format: args.format,
        quality: args.quality,
        seed: args.seed,
        faces: FaceFilter { min_face, largest_only: args.largest_only },
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
    let cache = common::cache_dir();
    let out = (!args.preview_only).then_some(opts.out.as_path());
    let (seg_dir, preview, landmarks) = (args.seg_dir.as_deref(), args.preview.as_deref(), args.landmarks.as_deref());
    MaskPaths { root: &root, out, seg_dir, preview, landmarks, cache: cache.as_deref() }.check()?;

    let outputs: Vec<&Path> = [Some(opts.out.as_path()), args.seg_dir.as_deref()].into_iter().flatten().collect();
    let mut inputs = Inputs::new(&root, args.list.as_deref(), &outputs, shard, args.limit, args.format)?;
    let first_shard = shard.is_none_or(|(i, _)| i == 1);
    let (from_file, file_settings) = match &args.landmarks {
        Some(file) => Some(inputs.faces_from_file(file, args.landmarks_format.format(), first_shard)?),
        None => None,
    }
    .unzip();
    let pipeline = Pipeline::new(opts, synth, inputs.ext_suffixed.clone())?;
    let pool = common::thread_pool(args.jobs)?;
    common::share_cores_with_workers(pool.current_num_threads());
    if args.preview_only {
        return preview_only(&pipeline, &args, &pool, inputs.images, from_file);
    }
    let detector = file_settings.unwrap_or_else(|| mask_faces::settings(&detector_config(&args), args.faces));
    let mut run = MaskRun::open(&pipeline, &Settings::new(&pipeline, &synth_opts, &detector), shard, inputs)?;
    let start = Instant::now();
    let pb = common::progress_bar(run.todo() as u64, "mask");
    if run.todo() > 0 {
        let faces = open_faces(&args, from_file)?;
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
    print_summary(&finished, secs, (args.bare_faces != "skip").then_some(args.bare_faces.as_str()));
    let tip = args.landmarks.is_none().then(|| mask_faces::min_face_tip(&detector_config(&args), &finished.summary));
    if let Some(tip) = tip.flatten() {
        println!("  tip: {tip}");
    }
    Ok(())
}

fn print_summary(finished: &Finished, secs: f64, bare_faces: Option<&str>) {
    for f in &finished.failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    for w in &finished.warnings {
        eprintln!("warning: {w}");
    }
    let s = &finished.summary;
    if s.hardlink_fallbacks > 0 {
        eprintln!("note: {} originals were copied because hard links were not possible", s.hardlink_fallbacks);
    }
    println!("{}", s.report(secs, bare_faces));
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
    let faces = open_faces(args, from_file)?;
    let (items, failures) = pipeline.preview_only(pool, images, args.preview_count, &faces)?;
    for f in &failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    save_sheet(&items, path)?;
    println!("preview: {} outputs -> {}", items.len(), path.display());
    Ok(())
}
