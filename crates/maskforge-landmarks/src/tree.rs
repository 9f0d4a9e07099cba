//! `maskforge detect` as a library: faces and 68 landmarks for every photo of
//! a tree, written to `landmarks.csv` (the contract's one writer), with
//! `failures.csv` and optional overlays.

use crate::{Detector, LandmarkError};
use image::{Rgb, RgbImage};
use maskforge_contracts::{landmarks_header, landmarks_record, LANDMARKS_CSV};
use maskforge_face::Face;
use maskforge_imageio::{
    load_rgb, relative_string, save_rgb_atomic, write_failures_csv, AtomicFile, Failure, LoadLimits,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What to detect and where to write.
#[derive(Clone, Debug)]
pub struct DetectTree {
    pub root: PathBuf,
    /// The photos under `root`, in the order the CSV lists them.
    pub images: Vec<PathBuf>,
    pub out: PathBuf,
    /// Also write each photo with its boxes and points to `out/overlays/`.
    pub overlay: bool,
    pub limits: LoadLimits,
}

/// Counts for the summary line; `failures` lists every skipped file.
#[derive(Clone, Debug, Default)]
pub struct DetectSummary {
    pub images: usize,
    pub faces: usize,
    pub without_face: usize,
    pub failures: Vec<Failure>,
    pub landmarks_csv: PathBuf,
}

enum Outcome {
    Faces(String, Vec<Face>),
    Failed(Failure),
}

impl DetectTree {
    /// Detects on the current rayon pool (one detector clone per thread);
    /// `walk_failures` join failures.csv; `progress` is called once per photo.
    pub fn run(
        &self,
        detector: &Detector,
        walk_failures: Vec<Failure>,
        progress: &(dyn Fn() + Sync),
    ) -> Result<DetectSummary, LandmarkError> {
        let outcomes: Vec<Outcome> = self
            .images
            .par_iter()
            .map_init(
                || detector.clone(),
                |det, path| {
                    let outcome = self.one_photo(det, path);
                    progress();
                    outcome
                },
            )
            .collect();
        std::fs::create_dir_all(&self.out).map_err(LandmarkError::io(&self.out))?;
        let mut summary = self.write_landmarks(&outcomes)?;
        summary.failures.splice(0..0, walk_failures);
        let failures_path = self.out.join("failures.csv");
        write_failures_csv(&failures_path, &summary.failures).map_err(LandmarkError::io(&failures_path))?;
        Ok(summary)
    }

    fn one_photo(&self, det: &mut Detector, path: &Path) -> Outcome {
        let rel = relative_string(&self.root, path);
        let img = match load_rgb(path, self.limits) {
            Ok(img) => img,
            Err(e) => return Outcome::Failed(Failure::new(rel, e.reason())),
        };
        match det.detect(&img) {
            Err(e) => Outcome::Failed(Failure::new(rel, e.to_string())),
            Ok(faces) => {
                if self.overlay {
                    let dst = self.out.join("overlays").join(&rel).with_extension("jpg");
                    if let Err(e) = save_rgb_atomic(&draw_overlay(img, &faces), &dst, 90) {
                        // An overlay is a picture for people: the CSV still counts.
                        eprintln!("warning: {}: cannot write overlay: {e}", dst.display());
                    }
                }
                Outcome::Faces(rel, faces)
            }
        }
    }

    /// Writes `landmarks.csv` from the outcomes (in input order).
    fn write_landmarks(&self, outcomes: &[Outcome]) -> Result<DetectSummary, LandmarkError> {
        let path = self.out.join(LANDMARKS_CSV);
        let mut summary = DetectSummary { landmarks_csv: path.clone(), ..Default::default() };
        let csv_error = |e: csv::Error| LandmarkError::io(&path)(std::io::Error::other(e));
        let mut file = AtomicFile::create(&path).map_err(LandmarkError::io(&path))?;
        {
            let mut w = csv::Writer::from_writer(&mut file);
            w.write_record(landmarks_header()).map_err(csv_error)?;
            for o in outcomes {
                match o {
                    Outcome::Failed(f) => summary.failures.push(f.clone()),
                    Outcome::Faces(rel, faces) => {
                        summary.images += 1;
                        summary.faces += faces.len();
                        summary.without_face += usize::from(faces.is_empty());
                        for (i, face) in faces.iter().enumerate() {
                            w.write_record(landmarks_record(rel, i, face)).map_err(csv_error)?;
                        }
                    }
                }
            }
            w.flush().map_err(LandmarkError::io(&path))?;
        }
        file.commit().map_err(LandmarkError::io(&path))?;
        Ok(summary)
    }
}

/// Draws boxes and the 68 points; everything is clipped to the image.
pub fn draw_overlay(mut img: RgbImage, faces: &[Face]) -> RgbImage {
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
