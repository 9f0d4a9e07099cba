//! `maskforge detect`: faces and 68 landmarks for every photo in a tree.

use crate::common;
use anyhow::Result;
use clap::{Args, ValueEnum};
use maskforge_imageio::{check_disjoint, walk_images, LoadLimits, Output};
use maskforge_landmarks::tree::DetectTree;
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DetectorArg {
    /// dlib HOG + SVM (fast, frontal faces)
    Hog,
    /// dlib CNN / MMOD (turned and small faces; much slower on CPU)
    Cnn,
}

impl From<DetectorArg> for DetectorKind {
    fn from(d: DetectorArg) -> Self {
        match d {
            DetectorArg::Hog => DetectorKind::Hog,
            DetectorArg::Cnn => DetectorKind::Cnn,
        }
    }
}

/// Options that pick and tune the face detector; shared by detect, mask and predict.
#[derive(Args, Clone, Debug)]
pub struct DetectorOpts {
    /// Face detector.
    #[arg(long, value_enum, default_value = "hog")]
    pub detector: DetectorArg,
    /// Detect on a copy whose longest side is at most this many pixels (0 = full size);
    /// landmarks are still predicted on the full image.
    #[arg(long, default_value_t = 640)]
    pub detect_max_side: u32,
    /// Upsample the detection image this many times (finds faces under ~80 px; 4x cost each).
    #[arg(long, default_value_t = 0)]
    pub upsample: u32,
    /// Folder with the dlib models [default: $MASKFORGE_MODELS, else the project's models/].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Skip images with more pixels than this (checked from the header, before decoding).
    #[arg(long, default_value_t = 100_000_000)]
    pub max_pixels: u64,
}

impl DetectorOpts {
    pub fn config(&self) -> DetectorConfig {
        let mut cfg = DetectorConfig::new(common::models_dir(self.models.clone()));
        cfg.kind = self.detector.into();
        cfg.detect_max_side = (self.detect_max_side > 0).then_some(self.detect_max_side);
        cfg.upsample = self.upsample;
        cfg
    }

    pub fn limits(&self) -> LoadLimits {
        LoadLimits { max_pixels: self.max_pixels }
    }
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Folder of photos (searched recursively: jpg, jpeg, png, bmp, webp).
    pub input: PathBuf,
    /// Output folder for landmarks.csv, failures.csv and overlays.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Also write each photo with boxes and landmarks drawn, to OUT/overlays/.
    #[arg(long)]
    pub overlay: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub detector: DetectorOpts,
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
    check_disjoint(&[root], &outputs)?;
    let detector = Detector::new(&args.detector.config())?;
    let walk = walk_images(root);
    let tree = DetectTree {
        root: root.clone(),
        images: walk.images,
        out: args.out.clone(),
        overlay: args.overlay,
        limits: args.detector.limits(),
    };
    let pool = common::thread_pool(args.jobs)?;
    let pb = common::progress_bar(tree.images.len() as u64, "detect");
    let start = Instant::now();
    let summary = pool.install(|| tree.run(&detector, walk.failures, &|| pb.inc(1)))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    for f in &summary.failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    println!(
        "detect: {} images, {} faces, {} images without a face, {} failures, {:.1} images/s -> {}",
        summary.images,
        summary.faces,
        summary.without_face,
        summary.failures.len(),
        (summary.images + summary.failures.len()) as f64 / secs.max(1e-9),
        summary.landmarks_csv.display()
    );
    Ok(())
}
