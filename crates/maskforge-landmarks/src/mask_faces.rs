//! The faces `maskforge mask` draws on, as the pipeline's [`FaceSource`]:
//! from dlib ([`DetectorFaces`]: boxes on the detection copy, the size
//! filter, then landmarks on the full image; or the crop fit of `--faces
//! crop`), or from a landmarks file ([`MaskFaces::File`]). `mask` and
//! `bench_mask` both use this one source.

use crate::{Detector, DetectorConfig, DetectorKind};
use image::RgbImage;
use maskforge_face::fit::{self, CropLimits};
use maskforge_face::FaceMethod;
use maskforge_pipeline::{DetectorSettings, FaceFilter, FaceSource, FileFaces, FoundFaces, Summary};
use std::path::Path;
use std::time::{Duration, Instant};

/// How `mask` finds faces without a landmarks file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FacesMode {
    /// The face detector (--detector).
    Detect,
    /// No detector: every image is a face crop; its landmarks are fitted and checked.
    Crop,
    /// The detector (CenterFace first on the image scaled as a face crop), and the crop fit where it finds no face.
    Auto,
}

impl FacesMode {
    /// What mask_settings.json records beside the detector.
    pub fn settings(self) -> Option<String> {
        match self {
            FacesMode::Detect => None,
            FacesMode::Crop => Some("crop (box from the crop, landmarks checked)".into()),
            FacesMode::Auto => Some("auto (detector, CenterFace first at the crop scale; else crop)".into()),
        }
    }

    /// The detector run when none is named: HOG; CenterFace for `auto` in
    /// a build with libtorch (`has_libtorch`: on real face crops it finds the
    /// most faces, `cargo xtask bench faces`).
    pub fn default_detector(self, has_libtorch: bool) -> DetectorKind {
        if self == FacesMode::Auto && has_libtorch {
            DetectorKind::CenterFace
        } else {
            DetectorKind::Hog
        }
    }
}

/// What `mask_settings.json` records of the detector `config` and `mode`.
pub fn settings(config: &DetectorConfig, mode: FacesMode) -> DetectorSettings {
    DetectorSettings {
        detector: config.detector_text(),
        detect_max_side: config.detect_max_side.unwrap_or(0),
        scale: Some(config.scale_text()),
        upsample: config.upsample,
        faces: mode.settings(),
    }
}

/// Faces smaller than this are left bare unless `--min-face` says: 40 px,
/// or the detector's own default where that is smaller (MTCNN's and
/// CenterFace's 24). Not
/// the detector's default alone: HOG's 80 would drop the smaller faces that
/// `--faces crop` fits and landmark files list.
pub fn default_min_face(kind: DetectorKind) -> u32 {
    const DEFAULT: u32 = 40;
    kind.default_min_face().min(DEFAULT)
}

/// The points check of faces from a detector other than dlib's: the crop
/// fit's shape limit, and the box the points imply overlapping the detector's
/// by at least half.
const MAX_SHAPE_RESIDUAL: f32 = 0.35;
const MIN_POINTS_OVERLAP: f32 = 0.5;

/// Faces from dlib: boxes on the downscaled copy, the size filter, then
/// landmarks on the full image for the faces kept; or the crop fit.
#[derive(Clone)]
pub struct DetectorFaces {
    det: Detector,
    mode: FacesMode,
    /// Time spent finding boxes (not landmarks, not the crop fit).
    detect_time: Duration,
}

impl DetectorFaces {
    /// `det` must hold the landmark model; with [`FacesMode::Crop`] it needs
    /// no detector ([`Detector::landmarks_only`]).
    pub fn new(det: Detector, mode: FacesMode) -> DetectorFaces {
        DetectorFaces { det, mode, detect_time: Duration::ZERO }
    }

    /// Time this source (this clone) spent finding boxes so far.
    pub fn detect_time(&self) -> Duration {
        self.detect_time
    }

    /// The face of a face crop, or why there is none.
    fn crop_face(&self, image: &RgbImage, filter: FaceFilter) -> Result<FoundFaces, String> {
        let face = self.det.face_in_crop(image, &CropLimits::default()).map_err(|e| e.to_string())?;
        let face = face.map_err(|why| why.to_string())?;
        let selected = filter.select_by(vec![face], |f| f.bbox);
        Ok(FoundFaces { faces: selected.kept, small: selected.small, found: selected.found, method: FaceMethod::Crop })
    }

    /// The detector's faces on a copy scaled by `scale`, size-filtered, with
    /// their landmarks; from a libtorch detector only those whose points
    /// agree with the box.
    fn detected_faces(&mut self, image: &RgbImage, filter: FaceFilter, scale: f32) -> Result<FoundFaces, String> {
        let start = Instant::now();
        let boxes = self.det.detect_boxes_at(image, scale).map_err(|e| e.to_string());
        self.detect_time += start.elapsed();
        let selected = filter.select(boxes?);
        let mut faces = self.det.faces_in_boxes(image, selected.kept).map_err(|e| e.to_string())?;
        let mut found = selected.found;
        if self.det.config().kind.needs_libtorch() {
            // Its boxes come from another model: draw only on faces whose
            // 68 points agree with the box (as the crop fit checks its own).
            let before = faces.len();
            faces.retain(|f| fit::check_in_box(&f.landmarks, &f.bbox, MAX_SHAPE_RESIDUAL, MIN_POINTS_OVERLAP).is_ok());
            found -= before - faces.len();
        }
        let method = self.det.config().kind.method();
        Ok(FoundFaces { faces, small: selected.small, found, method })
    }

    /// The scale of `--faces auto`'s look at a `w`×`h` image as a face
    /// crop: its shorter side at [`DetectorKind::crop_side`] (within the
    /// detector's pixel bound). `None` for a detector without one, or when
    /// it is within 10% of the detector's own scale `usual` (the same try).
    fn crop_scale(&self, w: u32, h: u32, usual: f32) -> Option<f32> {
        let kind = self.det.config().kind;
        let s = kind.within_pixel_bound(kind.crop_side()? as f32 / w.min(h).max(1) as f32, w, h);
        ((s / usual - 1.0).abs() > 0.1).then_some(s)
    }
}

impl FaceSource for DetectorFaces {
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
        let (w, h) = image.dimensions();
        let scale = self.det.detection_scale(w, h);
        // `auto` looks at the image as a face crop first: for a crop, that
        // copy is much smaller than the detector's usual one and finds more
        // faces. The usual scale runs only where no face found on it fills
        // the image.
        let mut as_crop = None;
        if self.mode == FacesMode::Auto {
            if let Some(s) = self.crop_scale(w, h, scale) {
                let found = self.detected_faces(image, filter, s)?;
                if fills_the_image(&found, w, h) {
                    return Ok(found);
                }
                as_crop = Some(found);
            }
        }
        let found = self.detected_faces(image, filter, scale)?;
        if found.faces.is_empty() && found.small == 0 && self.mode == FacesMode::Auto {
            if let Some(again) = as_crop.filter(|f| !f.faces.is_empty()) {
                return Ok(again);
            }
            return self.crop_face(image, filter);
        }
        Ok(found)
    }
}

/// The shorter side of a face that makes the image a face crop, as a
/// share of the image's shorter side. Measured on 743 real face crops of
/// the crowds set (20% margin): CenterFace's boxes at the crop scale have a
/// median share of 0.60 and nine in ten reach 0.48; the few under 0.4 are
/// neighbours' faces at a crop's edge. A photo whose faces all fill this
/// much of it is a close-up, in which a small background face is rare.
const CROP_FACE_SHARE: f32 = 0.4;

/// Whether every face found was kept, landmarked and large enough
/// ([`CROP_FACE_SHARE`]) that the image is a face crop: then the detector's
/// own, larger scale has nothing to add.
fn fills_the_image(found: &FoundFaces, w: u32, h: u32) -> bool {
    let side = w.min(h) as f32;
    !found.faces.is_empty()
        && found.small == 0
        && found.found == found.faces.len()
        && found.faces.iter().all(|f| f.bbox.width().min(f.bbox.height()) >= CROP_FACE_SHARE * side)
}

/// Where a run's faces come from: dlib, or a landmarks file (`--landmarks`).
#[derive(Clone)]
pub enum MaskFaces {
    /// Found in each image by dlib (or MTCNN or CenterFace), or fitted to a face crop.
    Detector(Box<DetectorFaces>),
    /// Read from a landmarks file, by the image's relative path.
    File(FileFaces),
}

impl FaceSource for MaskFaces {
    fn find_faces(
        &mut self,
        image: &RgbImage,
        path: &Path,
        rel: &str,
        filter: FaceFilter,
    ) -> Result<FoundFaces, String> {
        match self {
            MaskFaces::Detector(dlib) => dlib.find_faces(image, path, rel, filter),
            MaskFaces::File(file) => file.find_faces(image, path, rel, filter),
        }
    }
}

/// Detection at full size is most of a run on large faces (FFHQ): when every
/// face a detector found was large, which `--min-face` would detect on a
/// smaller copy, and what it would cost; `None` when that says nothing new.
pub fn min_face_tip(config: &DetectorConfig, s: &Summary) -> Option<String> {
    /// Too few faces say little about a dataset.
    const MIN_FACES: usize = 10;
    if s.small_faces > 0 || s.faces_masked < MIN_FACES {
        return None;
    }
    let smallest = s.smallest_detected_face?;
    let (suggested, pixel_share) = config.faster_min_face(smallest)?;
    Some(format!(
        "the smallest face found was {smallest:.0} px; --min-face {suggested} detects on a copy with 1/{:.0} of \
         the pixels (faster) and misses faces under {suggested} px",
        1.0 / pixel_share
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_face::{BBox, Face, Landmarks68, Point};

    fn found(sides: &[f32], found: usize, small: usize) -> FoundFaces {
        let face = |s: f32| Face {
            bbox: BBox::new(10.0, 10.0, 10.0 + s, 10.0 + s * 1.2),
            score: 0.9,
            landmarks: Landmarks68([Point { x: 0.0, y: 0.0 }; 68]),
        };
        FoundFaces { faces: sides.iter().map(|&s| face(s)).collect(), small, found, method: FaceMethod::CenterFace }
    }

    #[test]
    fn only_faces_that_fill_the_image_make_it_a_face_crop() {
        // A 100x150 image: a face crop's face is at least 40 px across.
        assert!(fills_the_image(&found(&[60.0], 1, 0), 100, 150));
        assert!(fills_the_image(&found(&[40.0], 1, 0), 150, 100));
        assert!(!fills_the_image(&found(&[39.0], 1, 0), 100, 150), "too small a share");
        assert!(!fills_the_image(&found(&[60.0, 20.0], 2, 0), 100, 150), "a small face beside it");
        assert!(fills_the_image(&found(&[60.0, 45.0], 2, 0), 100, 150), "two large faces");
        assert!(!fills_the_image(&found(&[60.0], 1, 1), 100, 150), "a face under --min-face");
        assert!(!fills_the_image(&found(&[60.0], 2, 0), 100, 150), "a face --largest-only left out");
        assert!(!fills_the_image(&found(&[], 0, 0), 100, 150), "no face");
    }
}
