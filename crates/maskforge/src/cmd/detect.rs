//! `maskforge detect`: faces and 68 landmarks for every photo in a tree.

use crate::common;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use image::{Rgb, RgbImage};
use maskforge_contracts::{landmarks_header, landmarks_record, LANDMARKS_CSV};
use maskforge_face::Face;
use maskforge_imageio::{check_disjoint, load_rgb, relative_string, walk_images, AtomicFile, Failure, LoadLimits, Output};
use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind};
use rayon::prelude::*;
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

enum Outcome {
    Faces(String, Vec<Face>),
    Failed(Failure),
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
    let mut failures = walk.failures;
    let pool = common::thread_pool(args.jobs)?;
    let pb = common::progress_bar(walk.images.len() as u64, "detect");
    let limits = args.detector.limits();
    let start = Instant::now();

    let outcomes: Vec<Outcome> = pool.install(|| {
        walk.images
            .par_iter()
            .map_init(
                || detector.clone(),
                |det, path| {
                    let rel = relative_string(root, path);
                    let out = match load_rgb(path, limits) {
                        Err(e) => Outcome::Failed(Failure::new(rel, e.reason())),
                        Ok(img) => match det.detect(&img) {
                            Err(e) => Outcome::Failed(Failure::new(rel, e.to_string())),
                            Ok(faces) => {
                            if args.overlay {
                                let dst = overlay_dir.join(&rel).with_extension("jpg");
                                if let Err(e) = maskforge_imageio::save_rgb_atomic(&draw_overlay(img, &faces), &dst, 90) {
                                    eprintln!("warning: {}: cannot write overlay: {e}", dst.display());
                                }
                            }
                            Outcome::Faces(rel, faces)
                        }
                        },
                    };
                    pb.inc(1);
                    out
                },
            )
            .collect()
    });
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();

    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let mut images = 0usize;
    let mut faces_total = 0usize;
    let mut without_face = 0usize;
    let csv_path = args.out.join(LANDMARKS_CSV);
    let mut file = AtomicFile::create(&csv_path).with_context(|| format!("cannot write {}", csv_path.display()))?;
    {
        let mut w = csv::Writer::from_writer(&mut file);
        w.write_record(landmarks_header())?;
        for o in &outcomes {
            match o {
                Outcome::Failed(f) => failures.push(f.clone()),
                Outcome::Faces(rel, faces) => {
                    images += 1;
                    faces_total += faces.len();
                    if faces.is_empty() {
                        without_face += 1;
                    }
                    for (i, face) in faces.iter().enumerate() {
                        w.write_record(landmarks_record(rel, i, face)).with_context(|| format!("cannot write {}", csv_path.display()))?;
                    }
                }
            }
        }
        w.flush().with_context(|| format!("cannot write {}", csv_path.display()))?;
    }
    file.commit().with_context(|| format!("cannot write {}", csv_path.display()))?;
    let failures_path = args.out.join("failures.csv");
    maskforge_imageio::write_failures_csv(&failures_path, &failures)
        .with_context(|| format!("cannot write {}", failures_path.display()))?;
    for f in &failures {
        eprintln!("skipped: {}: {}", f.path, f.reason);
    }
    println!(
        "detect: {images} images, {faces_total} faces, {without_face} images without a face, {} failures, {:.1} images/s -> {}",
        failures.len(),
        (images + failures.len()) as f64 / secs.max(1e-9),
        csv_path.display()
    );
    Ok(())
}

/// Draws boxes and the 68 points; everything is clipped to the image.
fn draw_overlay(mut img: RgbImage, faces: &[Face]) -> RgbImage {
    let thick = ((img.width().max(img.height()) as f32) / 400.0).ceil().max(1.0) as i32;
    for face in faces {
        let b = face.bbox;
        let rect_color = Rgb([0, 255, 0]);
        for t in 0..thick {
            let r = imageproc::rect::Rect::at(b.left as i32 - t, b.top as i32 - t)
                .of_size((b.width() as u32 + 2 * t as u32).max(1), (b.height() as u32 + 2 * t as u32).max(1));
            imageproc::drawing::draw_hollow_rect_mut(&mut img, r, rect_color);
        }
        for (i, p) in face.landmarks.points().iter().enumerate() {
            let color = match i {
                0..=16 => Rgb([255, 255, 0]),
                27..=35 => Rgb([255, 0, 0]),
                48..=67 => Rgb([255, 0, 255]),
                _ => Rgb([0, 200, 255]),
            };
            imageproc::drawing::draw_filled_circle_mut(&mut img, (p.x as i32, p.y as i32), thick + 1, color);
        }
    }
    img
}

