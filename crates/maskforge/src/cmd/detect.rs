//! `maskforge detect`: faces and 68 landmarks for every photo in a tree (or
//! in a `--list`), resumable after a kill (see `maskforge_landmarks::tree`).

use crate::common;
use anyhow::Result;
use clap::{Args, ValueEnum};
use maskforge_contracts::read_image_list;
use maskforge_imageio::{check_disjoint, walk_images, Failure, LoadLimits, Output};
use maskforge_landmarks::tree::{DetectSettings, DetectTree};
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use std::path::{Path, PathBuf};

/// Where a detector runs (MTCNN only: dlib's run on the CPU).
#[cfg(feature = "tch")]
pub use tch::Device;
/// Where a detector runs: the CPU in a build without libtorch.
#[cfg(not(feature = "tch"))]
#[derive(Clone, Copy, Debug)]
pub enum Device {
    Cpu,
}
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DetectorArg {
    /// dlib HOG + SVM (fast, frontal faces)
    Hog,
    /// dlib CNN / MMOD (turned and small faces; much slower on CPU)
    Cnn,
    /// MTCNN through libtorch (masked, turned and small faces; needs the `tch` build and
    /// `cargo xtask setup`'s models/mtcnn_*.pt)
    Mtcnn,
}

impl From<DetectorArg> for DetectorKind {
    fn from(d: DetectorArg) -> Self {
        match d {
            DetectorArg::Hog => DetectorKind::Hog,
            DetectorArg::Cnn => DetectorKind::Cnn,
            DetectorArg::Mtcnn => DetectorKind::Mtcnn,
        }
    }
}

/// Options that pick and tune the face detector; shared by detect, mask and predict.
#[derive(Args, Clone, Debug)]
pub struct DetectorOpts {
    /// Face detector [default: hog; predict and mask --faces auto: mtcnn]. With mtcnn, dlib's
    /// 68 points are predicted in the box the detected eyes place, and mask draws only on faces
    /// whose points pass a check.
    #[arg(long, value_enum)]
    pub detector: Option<DetectorArg>,
    /// Detect on a copy whose longest side is at most this many pixels (0 = full size)
    /// [default: the smallest copy on which a face of --min-face px still fills the
    /// detector's window (HOG 80 px, CNN 40 px), never above full size; mtcnn: full size, its
    /// image pyramid starts at --min-face]. Landmarks are always predicted on the full image.
    #[arg(long, value_name = "PX")]
    pub detect_max_side: Option<u32>,
    /// The smallest face wanted (shorter side of its box, pixels) [default: hog 80, cnn 40,
    /// mtcnn 24]: sets the detection scale, so faces of this size fill the detector's window
    /// (HOG 80 px, CNN 40 px): raise it for large photos of large faces (--min-face 160 detects
    /// at half size); below the window the photo is upsampled (at most 4x a side, and to 16 MP for
    /// hog, 4 MP for cnn);
    /// mtcnn starts its image pyramid there. mask also leaves smaller faces bare (there the
    /// default is 40, mtcnn 24).
    #[arg(long)]
    pub min_face: Option<u32>,
    /// mtcnn only: the face probability a box needs (O-Net's threshold, above 0 and below 1)
    /// [default: 0.7]. Higher drops more false boxes and some real faces (on real crowd photos
    /// 0.9 drops about a third of the boxes matching no labelled face and 5% of the masked faces
    /// found).
    #[arg(long, value_name = "P", value_parser = parse_min_score)]
    pub min_score: Option<f32>,
    /// Upsample the detection image this many times (finds faces under ~80 px; 4x cost each).
    #[arg(long, default_value_t = 0)]
    pub upsample: u32,
    /// Folder with the dlib models [default: $MASKFORGE_MODELS, else the project's models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Skip images with more pixels than this (checked from the header, before decoding);
    /// at most 1000000000.
    #[arg(long, default_value_t = 100_000_000, value_parser = common::parse_max_pixels)]
    pub max_pixels: u64,
}

/// `--min-score`: a probability strictly between 0 and 1.
fn parse_min_score(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("{s:?}: must be a number above 0 and below 1")),
    }
}

impl DetectorOpts {
    /// The detector asked for, or the command's `default`.
    pub fn kind(&self, default: DetectorArg) -> DetectorKind {
        self.detector.unwrap_or(default).into()
    }

    pub fn config(&self, default: DetectorArg) -> DetectorConfig {
        let mut cfg = DetectorConfig::new(common::models_dir(self.models.clone()));
        cfg.kind = self.kind(default);
        cfg.detect_max_side = self.detect_max_side;
        cfg.min_face = self.min_face.unwrap_or(cfg.kind.default_min_face());
        cfg.min_score = self.min_score;
        cfg.upsample = self.upsample;
        cfg.model_cache = common::cache_dir().map(|dir| dir.join("models"));
        cfg
    }

    /// The detector `config` names with its models loaded: dlib's own, or
    /// MTCNN (through libtorch, on `device`) with dlib's landmark model.
    pub fn build(config: &DetectorConfig, #[allow(unused_variables)] device: Device) -> Result<Detector> {
        if config.min_score.is_some() && config.kind != DetectorKind::Mtcnn {
            anyhow::bail!("--min-score applies to --detector mtcnn only");
        }
        #[cfg(feature = "tch")]
        if config.kind == DetectorKind::Mtcnn {
            use maskforge_mtcnn::{Mtcnn, MtcnnParams};
            let mut params = MtcnnParams::default();
            if let Some(s) = config.min_score {
                params.thresholds[2] = s;
            }
            let mtcnn = Mtcnn::load(&config.models_dir, device, params)?;
            return Ok(Detector::with_box_detector(config, std::sync::Arc::new(mtcnn))?);
        }
        Ok(Detector::new(config)?)
    }

    pub fn limits(&self) -> LoadLimits {
        LoadLimits { max_pixels: self.max_pixels }
    }
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Folder of photos (searched recursively: jpg, jpeg, png, bmp, webp).
    pub input: PathBuf,
    /// Output folder for landmarks.csv, failures.csv and overlays. A re-run into it resumes:
    /// photos finished before (same detector settings, file unchanged) are not detected again.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Also write each photo with boxes and landmarks drawn, to OUT/overlays/.
    #[arg(long)]
    pub overlay: bool,
    /// Worker threads (default: all cores), at most 1024.
    #[arg(long, short, value_parser = common::jobs_parser("--jobs"))]
    pub jobs: Option<usize>,
    /// Process the images named in this file instead of walking INPUT: one path relative to
    /// INPUT a line (blank lines and `#` comments ignored), or a manifest CSV as `split` writes
    /// it. Listed files that are missing or not images go to failures.csv.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorOpts,
}

/// The photos to detect: the walk's or the list's, with the problems of finding them.
fn photos(root: &Path, list: Option<&Path>, out: &Path) -> Result<(Vec<PathBuf>, Vec<Failure>)> {
    let Some(file) = list else {
        let walk = walk_images(root, &[out]);
        return Ok((walk.images, walk.failures));
    };
    let list = read_image_list(file)?;
    let (images, mut failures) = list.resolve(root);
    failures.extend(list.skipped);
    Ok((images.into_iter().map(|(path, _)| path).collect(), failures))
}

pub fn run(args: DetectArgs) -> Result<()> {
    let root = &args.input;
    if !root.is_dir() {
        anyhow::bail!("{}: not a folder", root.display());
    }
    let mut outputs = vec![Output::new(&args.out, "output folder")];
    let overlay_dir = args.out.join("overlays");
    if args.overlay {
        outputs.push(Output::new(&overlay_dir, "overlay folder"));
    }
    let mut inputs = vec![root.as_path()];
    inputs.extend(args.list.as_deref());
    check_disjoint(&inputs, &outputs)?;
    common::check_cache_folder(&[root, &args.out])?;
    let config = args.detector.config(DetectorArg::Hog);
    let detector = DetectorOpts::build(&config, Device::Cpu)?;
    let (images, find_failures) = photos(root, args.list.as_deref(), &args.out)?;
    let tree = DetectTree {
        root: root.clone(),
        images,
        out: args.out.clone(),
        overlay: args.overlay,
        limits: args.detector.limits(),
        decode_budget: maskforge_imageio::DecodeBudget::from_available_memory(),
    };
    let mut run = tree.open(&DetectSettings::of(&config))?;
    let pool = common::thread_pool(args.jobs)?;
    common::share_cores_with_workers(pool.current_num_threads());
    let pb = common::progress_bar(run.todo() as u64, "detect");
    let start = Instant::now();
    pool.install(|| run.process(&detector, &|| pb.inc(1)))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let summary = run.finish(find_failures)?;
    for f in &summary.failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    println!(
        "detect: {} images, {} faces, {} images without a face, {} failures ({} detected now, {} already done), \
         {:.1} images/s -> {}",
        summary.images,
        summary.faces,
        summary.without_face,
        summary.failures.len(),
        summary.processed,
        summary.already_done,
        summary.processed as f64 / secs.max(1e-9),
        summary.landmarks_csv.display()
    );
    Ok(())
}
