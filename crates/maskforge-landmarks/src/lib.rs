#![recursion_limit = "1024"] // cpp! expands its C++ text token by token.
//! Face detection and 68-point landmarks with dlib: a thin adapter that turns
//! an [`image::RgbImage`] into [`maskforge_face::Face`] values.
//!
//! * HOG frontal detector by default, the CNN (MMOD) detector as an option;
//!   both report a score. A detector from outside dlib (MTCNN, through
//!   libtorch) comes in as a [`BoxDetector`]: its boxes, placed by its eyes
//!   where dlib's shape model expects them, get dlib's 68 points.
//! * Detection can run on a downscaled copy (longest side capped) — HOG cost
//!   grows with the pixel count, and faces in photos are large — and the boxes
//!   are mapped back; the landmarks are always predicted on the full image.
//! * The 68-point model (~100 MB) is loaded once and shared by all threads
//!   (`Arc`); detectors are cheap to clone, one per worker thread. Its trees
//!   are walked in Rust over a packed copy ([`shape::LandmarkModel`]), with
//!   dlib's results.
//! * [`mask_faces`]: the faces `maskforge mask` draws on, as the mask
//!   pipeline's `FaceSource` (detector, crop fit or landmarks file).

mod ffi;
pub mod mask_faces;
pub mod shape;
pub mod tree;

use dlib_face_recognition::ImageMatrix;
use ffi::{CnnDetector, HogDetector, RawDetection};
use image::RgbImage;
use maskforge_face::detector::{BoxDetector, DetectedBox, CENTERFACE_MODEL_FILE, MTCNN_MODEL_FILES};
use maskforge_face::fit::{box_from_eyes, fit_crop, CropLimits, CropRejection};
use maskforge_face::{BBox, Face, FaceMethod, Landmarks68, Point};
use shape::LandmarkModel;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ffi::RawDetection as DetectionBox;

/// File name of the 68-point shape predictor inside the models folder.
pub const LANDMARK_MODEL: &str = "shape_predictor_68_face_landmarks.dat";
/// File name of the CNN (MMOD) face detector inside the models folder.
pub const CNN_MODEL: &str = "mmod_human_face_detector.dat";

/// Why a detector could not be built or could not run.
#[derive(Debug, thiserror::Error)]
pub enum LandmarkError {
    /// A model file is not in the models folder.
    #[error("model file {} not found: run `cargo xtask setup`, or point --models / MASKFORGE_MODELS at a folder holding it", path.display())]
    ModelMissing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A model file exists but dlib (or the packed-model reader) refused it.
    #[error("model file {} could not be loaded (corrupt or not a dlib model): {message}", path.display())]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// dlib threw a C++ exception while detecting or predicting.
    #[error("dlib failed: {message}")]
    Dlib {
        /// The exception's `what()`.
        message: String,
    },
    /// A detector that is not dlib's failed (its message).
    #[error("{0}")]
    BoxDetector(String),
    /// A detector that needs libtorch ([`DetectorKind::needs_libtorch`])
    /// without its box detector ([`Detector::with_box_detector`]).
    #[error("the {0} detector needs libtorch: this build of maskforge has no `tch` feature")]
    NoBoxDetector(&'static str),
    /// An output file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl LandmarkError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LandmarkError + '_ {
        move |source| LandmarkError::Io { path: path.to_path_buf(), source }
    }
}

fn dlib_error(message: String) -> LandmarkError {
    LandmarkError::Dlib { message }
}

/// Which dlib face detector to run (`--detector`; with feature `clap`, its
/// value enum, each value with the help the CLI shows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DetectorKind {
    /// HOG + linear SVM: fast on CPU, frontal faces.
    #[default]
    #[cfg_attr(feature = "clap", value(help = "dlib HOG + SVM (fast, frontal faces)"))]
    Hog,
    /// CNN (MMOD): finds turned and small faces too, ~10-50x slower on CPU.
    #[cfg_attr(feature = "clap", value(help = "dlib CNN / MMOD (turned and small faces; much slower on CPU)"))]
    Cnn,
    /// MTCNN through libtorch (a [`BoxDetector`] the caller supplies): finds
    /// masked, turned and small faces; its own image pyramid starts at
    /// `--min-face`, so it always detects on the full-size image.
    #[cfg_attr(
        feature = "clap",
        value(help = "MTCNN through libtorch (masked, turned and small faces; needs the `tch` build and \
                      `cargo xtask setup`'s models/mtcnn_*.pt)")
    )]
    Mtcnn,
    /// CenterFace through libtorch (a [`BoxDetector`] the caller supplies):
    /// one pass over the whole image; finds the most masked faces on real
    /// crowd photos (`cargo xtask bench faces`).
    #[cfg_attr(
        feature = "clap",
        value(
            name = "centerface",
            help = "CenterFace through libtorch (finds the most masked and small faces; needs the `tch` build and \
                    `cargo xtask setup`'s models/centerface.pt)"
        )
    )]
    CenterFace,
}

impl DetectorKind {
    /// The smallest face (box side, pixels) the detector finds without
    /// upsampling: HOG scans an 80×80 window; dlib's MMOD face model was
    /// trained on 40×40 ones.
    /// MTCNN scales its own pyramid so that `--min-face` meets its 12 px
    /// window: its detection image is the full-size photo. CenterFace finds
    /// faces of 16 px and more (dlib's box side) on its detection copy: on
    /// real crowd photos scaled so, it keeps 89% of the 32–63 px faces it
    /// finds at full size, and 84% when scaled to 12 px.
    pub fn window(self) -> u32 {
        match self {
            DetectorKind::Hog => 80,
            DetectorKind::Cnn => 40,
            DetectorKind::Mtcnn => 12,
            DetectorKind::CenterFace => 16,
        }
    }

    /// Whether the detector runs through libtorch, outside dlib: the binary
    /// supplies it as a [`BoxDetector`], and its boxes are checked against
    /// the 68 points predicted in them before a mask is drawn.
    pub fn needs_libtorch(self) -> bool {
        matches!(self, DetectorKind::Mtcnn | DetectorKind::CenterFace)
    }

    /// The `--min-face` a detector gets when none is given: the smallest face
    /// it finds on the full-size photo (HOG's and the CNN's windows), and for
    /// MTCNN, whose pyramid reaches any size, 24 px (on real crowd photos it
    /// finds 83% of the 32–63 px faces from there: `cargo xtask bench faces`).
    pub fn default_min_face(self) -> u32 {
        match self {
            DetectorKind::Hog | DetectorKind::Cnn => self.window(),
            DetectorKind::Mtcnn | DetectorKind::CenterFace => 24,
        }
    }

    /// The largest copy automatic upsampling makes (pixels): HOG's features
    /// take a few bytes a pixel, the CNN's feature maps hundreds (an
    /// upsampled 40 MP copy was killed for memory on a 24 GB machine with
    /// two workers).
    pub fn max_upsampled_pixels(self) -> f32 {
        match self {
            DetectorKind::Hog => 16e6,
            DetectorKind::Cnn => 4e6,
            DetectorKind::Mtcnn => 1.0,
            // Its feature maps take about 1 KB a pixel.
            DetectorKind::CenterFace => 4e6,
        }
    }

    /// The largest copy the detector ever runs on (pixels), whatever the
    /// scale asked for: CenterFace's feature maps take about 1 KB a pixel, so
    /// a 100 MP photo at its default 2/3 scale would need tens of GB; on a
    /// huge photo its smallest faces are missed instead. `None`: no bound
    /// (dlib's detectors take the photo as it is; MTCNN bounds its own
    /// pyramid).
    pub fn max_detection_pixels(self) -> Option<f32> {
        match self {
            DetectorKind::CenterFace => Some(4e6),
            _ => None,
        }
    }

    /// The shorter side (px) of the copy `mask --faces auto` first looks
    /// for a face crop's face on, before the detector's usual scale and the
    /// crop fit. CenterFace's is measured: on 743 real face crops of the
    /// crowds set (20% margin) it finds a face in 712 at its default 2/3
    /// scale, in 725 scaled to 128 px (96: 721, 160: 723), and in 731 with
    /// both. `None`: not measured, the usual scale only.
    pub fn crop_side(self) -> Option<u32> {
        match self {
            DetectorKind::CenterFace => Some(128),
            _ => None,
        }
    }

    /// Scale `s` for a `w`×`h` image, lowered where the copy would exceed
    /// [`DetectorKind::max_detection_pixels`].
    pub fn within_pixel_bound(self, s: f32, w: u32, h: u32) -> f32 {
        match self.max_detection_pixels() {
            Some(max) => s.min((max / (w.max(1) as f32 * h.max(1) as f32)).sqrt()),
            None => s,
        }
    }

    /// The name `--detector` and the settings files use.
    pub fn name(self) -> &'static str {
        self.method().as_str()
    }

    /// The model files the detector reads besides dlib's landmark model.
    pub fn model_files(self) -> &'static [&'static str] {
        match self {
            DetectorKind::Hog => &[],
            DetectorKind::Cnn => &[CNN_MODEL],
            DetectorKind::Mtcnn => &MTCNN_MODEL_FILES,
            DetectorKind::CenterFace => &[CENTERFACE_MODEL_FILE],
        }
    }

    /// How `annotations.csv` names faces this detector found.
    pub fn method(self) -> FaceMethod {
        match self {
            DetectorKind::Hog => FaceMethod::Hog,
            DetectorKind::Cnn => FaceMethod::Cnn,
            DetectorKind::Mtcnn => FaceMethod::Mtcnn,
            DetectorKind::CenterFace => FaceMethod::CenterFace,
        }
    }
}

/// How to build a [`Detector`]: which detector, where its models are, and
/// the size of the image it searches.
#[derive(Clone, Debug)]
pub struct DetectorConfig {
    /// Which face detector finds the boxes.
    pub kind: DetectorKind,
    /// Folder with [`LANDMARK_MODEL`] (and [`CNN_MODEL`] for the CNN detector).
    pub models_dir: PathBuf,
    /// Detect on a copy whose longest side is at most this many pixels.
    /// `None`: the scale [`DetectorConfig::min_face`] asks for. Boxes are
    /// mapped back to full size.
    pub detect_max_side: Option<u32>,
    /// With `detect_max_side` `None`: the smallest face wanted (shorter box
    /// side, pixels). Detection runs on the copy on which such a face just
    /// fills the detector's window ([`DetectorKind::window`]): `window /
    /// min_face`, smaller than the photo for large faces, larger (up to
    /// [`MAX_AUTO_UPSCALE`] a side and [`DetectorKind::max_upsampled_pixels`]) for faces
    /// under the window. 0: full size.
    pub min_face: u32,
    /// Double the detection image this many times first (finds faces smaller
    /// than HOG's 80 px window; each step costs ~4x).
    pub upsample: u32,
    /// Added to the HOG decision threshold (negative finds more, weaker faces).
    pub hog_threshold: f64,
    /// The face probability a box needs when not the detector's default
    /// (MTCNN's last threshold, O-Net's, 0.7; CenterFace's 0.5): higher
    /// drops more false boxes and some faces.
    pub min_score: Option<f32>,
    /// Folder for the packed landmark model ([`LandmarkModel::open_cached`]);
    /// `None`: read the model file each time. Never changes a result.
    pub model_cache: Option<PathBuf>,
}

/// Automatic upsampling ([`DetectorConfig::min_face`] under the window)
/// enlarges a side at most this much, and makes no copy larger than
/// [`DetectorKind::max_upsampled_pixels`]: it upsamples small photos, where
/// small faces cannot be seen otherwise, not large ones.
pub const MAX_AUTO_UPSCALE: f32 = 4.0;

/// `scale` for a `w`×`h` photo, an upsampling one (above 1) cut so the copy
/// holds at most `max_pixels`, but never below full size.
fn capped_upscale(scale: f32, w: u32, h: u32, max_pixels: f32) -> f32 {
    if scale <= 1.0 {
        return scale;
    }
    let pixels = w.max(1) as f32 * h.max(1) as f32;
    scale.min((max_pixels / pixels).sqrt()).max(1.0)
}

impl DetectorConfig {
    /// The scale `min_face` asks for (see [`DetectorConfig::min_face`]),
    /// before the pixel cap of [`Detector::detection_scale`].
    pub fn auto_scale(&self) -> f32 {
        match self.min_face {
            _ if self.kind == DetectorKind::Mtcnn => 1.0,
            0 => 1.0,
            m => (self.kind.window() as f32 / m as f32).min(MAX_AUTO_UPSCALE),
        }
    }

    /// The scale from full-size to detection-image pixels for a `w`×`h`
    /// image: `--detect-max-side`, else [`DetectorConfig::auto_scale`] with
    /// upsampling capped, then `--upsample`; a detector with a pixel bound
    /// ([`DetectorKind::max_detection_pixels`]) never gets a larger copy.
    pub fn detection_scale(&self, w: u32, h: u32) -> f32 {
        let long = w.max(h).max(1) as f32;
        let mut s = match self.detect_max_side {
            Some(max) if max > 0 && (max as f32) < long => max as f32 / long,
            Some(_) => 1.0,
            None => capped_upscale(self.auto_scale(), w, h, self.kind.max_upsampled_pixels()),
        };
        s *= 2f32.powi(self.upsample.min(4) as i32);
        self.kind.within_pixel_bound(s, w, h)
    }

    /// A larger `--min-face` for a run whose smallest detected face was
    /// `smallest` px (shorter box side): a quarter below it, in tens, when
    /// that shrinks the detection copy by at least 1.5× a side; with the
    /// share of the current copy's pixels it would detect on. `None` when
    /// the copy is fixed (`detect_max_side`), upsampled, or would not shrink
    /// that much. Faces under the new value would no longer be found, so it
    /// is a suggestion for runs on photos like these, never applied.
    pub fn faster_min_face(&self, smallest: f32) -> Option<(u32, f32)> {
        if self.detect_max_side.is_some()
            || self.upsample > 0
            || !smallest.is_finite()
            || self.kind == DetectorKind::Mtcnn
        {
            return None;
        }
        // The smallest face the current copy finds: the window at full size.
        let now = self.min_face.max(self.kind.window()) as f32;
        let suggested = (smallest * 0.75 / 10.0).floor() as u32 * 10;
        (suggested as f32 >= 1.5 * now).then(|| (suggested, (now / suggested as f32).powi(2)))
    }

    /// The detector in the settings files: its name, with `--min-score` when
    /// one was given (so the files of default runs are as before).
    pub fn detector_text(&self) -> String {
        match self.min_score {
            Some(s) => format!("{} (min score {s})", self.kind.name()),
            None => self.kind.name().to_string(),
        }
    }

    /// How the detection image is sized, in words (settings files, summaries).
    pub fn scale_text(&self) -> String {
        match self.detect_max_side {
            Some(0) => "full size".into(),
            Some(n) => format!("longest side at most {n} px"),
            None if self.kind == DetectorKind::Mtcnn => {
                format!("auto: full size, pyramid from --min-face {}", self.min_face)
            }
            None => format!(
                "auto: {:.3} of full size ({} px window, --min-face {})",
                self.auto_scale(),
                self.kind.window(),
                self.min_face
            ),
        }
    }

    /// The defaults (HOG at full size, no upsampling, threshold 0) with the
    /// models in `models_dir`.
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        DetectorConfig {
            kind: DetectorKind::Hog,
            models_dir: models_dir.into(),
            detect_max_side: None,
            min_face: 0,
            upsample: 0,
            hog_threshold: 0.0,
            min_score: None,
            model_cache: None,
        }
    }
}

#[derive(Clone)]
enum Engine {
    Hog(HogDetector),
    // Boxed: the network is over 1 KB, and Detector is cloned per thread.
    Cnn(Box<CnnDetector>),
    /// A detector from outside dlib ([`Detector::with_box_detector`]).
    Boxes(Arc<dyn BoxDetector>),
    /// Landmarks only ([`Detector::landmarks_only`]).
    None,
}

/// Detector plus landmark predictor. Detection takes `&mut self` (dlib's
/// detectors keep scratch buffers), so each worker thread needs its own clone
/// (e.g. rayon's `map_init(|| det.clone(), ..)`); clones share the landmark
/// model, whose prediction is read-only.
#[derive(Clone)]
pub struct Detector {
    engine: Engine,
    predictor: Arc<LandmarkModel>,
    config: DetectorConfig,
}

fn require(path: &Path) -> Result<(), LandmarkError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(LandmarkError::ModelMissing { path: path.to_path_buf() })
    }
}

impl Detector {
    /// Loads the models named by `config`; fails with a message that says how
    /// to get them when a file is missing.
    pub fn new(config: &DetectorConfig) -> Result<Self, LandmarkError> {
        Detector::load(config, true)
    }

    /// The landmark model alone, for faces whose boxes come from elsewhere
    /// (`mask --faces crop`): skips building the detector (dlib unpacks the
    /// HOG model's compressed text on every construction, about 0.6 s of CPU).
    /// [`Detector::detect_boxes`] then finds nothing.
    pub fn landmarks_only(config: &DetectorConfig) -> Result<Self, LandmarkError> {
        Detector::load(config, false)
    }

    /// The landmark model with `boxes` as the detector (for
    /// [`DetectorKind::Mtcnn`], which needs libtorch: the binary builds it).
    pub fn with_box_detector(config: &DetectorConfig, boxes: Arc<dyn BoxDetector>) -> Result<Self, LandmarkError> {
        let mut det = Detector::load(config, false)?;
        det.engine = Engine::Boxes(boxes);
        Ok(det)
    }

    fn load(config: &DetectorConfig, with_detector: bool) -> Result<Self, LandmarkError> {
        let lm_path = config.models_dir.join(LANDMARK_MODEL);
        require(&lm_path)?;
        let cnn_path = config.models_dir.join(CNN_MODEL);
        if with_detector && config.kind == DetectorKind::Cnn {
            require(&cnn_path)?;
        }
        let build_engine = || match config.kind {
            _ if !with_detector => Ok(Engine::None),
            DetectorKind::Hog => Ok(Engine::Hog(HogDetector::new())),
            kind @ (DetectorKind::Mtcnn | DetectorKind::CenterFace) => Err(LandmarkError::NoBoxDetector(kind.name())),
            DetectorKind::Cnn => {
                CnnDetector::open(&cnn_path).map(|d| Engine::Cnn(Box::new(d))).ok_or_else(|| LandmarkError::ModelLoad {
                    path: cnn_path.clone(),
                    message: "dlib could not deserialise the MMOD network".into(),
                })
            }
        };
        // Both take a good fraction of a second (the HOG model is unpacked
        // from compressed text, the landmark model is 100 MB): side by side.
        let (engine, predictor) = std::thread::scope(|s| {
            let engine = s.spawn(build_engine);
            let predictor = LandmarkModel::open_cached(&lm_path, config.model_cache.as_deref());
            (engine.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), predictor)
        });
        let engine = engine?;
        let predictor = predictor.map_err(|message| LandmarkError::ModelLoad { path: lm_path.clone(), message })?;
        Ok(Detector { engine, predictor: Arc::new(predictor), config: config.clone() })
    }

    /// The configuration the detector was built from.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The scale from full-size to detection-image pixels for a `w`×`h` image.
    pub fn detection_scale(&self, w: u32, h: u32) -> f32 {
        self.config.detection_scale(w, h)
    }

    /// Face boxes (full-image coordinates) and scores, without landmarks.
    /// Boxes are in the convention of dlib's frontal detector, whichever
    /// detector found them, so that the 68 points and face crops come out
    /// the same.
    pub fn detect_boxes(&mut self, img: &RgbImage) -> Result<Vec<(BBox, f32)>, LandmarkError> {
        let (w, h) = img.dimensions();
        self.detect_boxes_at(img, self.detection_scale(w, h))
    }

    /// [`Detector::detect_boxes`] on a copy scaled by `s` instead of the
    /// configured scale.
    pub fn detect_boxes_at(&mut self, img: &RgbImage, s: f32) -> Result<Vec<(BBox, f32)>, LandmarkError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        if let Engine::Boxes(boxes) = &self.engine {
            return detect_with(boxes.as_ref(), img, s, self.config.min_face as f32);
        }
        let dets: Vec<RawDetection> = if (s - 1.0).abs() < 1e-6 {
            let m = to_matrix(img);
            self.run_engine(&m)?
        } else {
            let dw = ((w as f32 * s).round() as u32).max(1);
            let dh = ((h as f32 * s).round() as u32).max(1);
            let small = if s < 1.0 {
                // Box-filtered, fast, and alias-free for large factors.
                image::imageops::thumbnail(img, dw, dh)
            } else {
                image::imageops::resize(img, dw, dh, image::imageops::FilterType::Triangle)
            };
            let m = to_matrix(&small);
            self.run_engine(&m)?
        };
        let (sx, sy) = if (s - 1.0).abs() < 1e-6 {
            (1.0, 1.0)
        } else {
            (w as f32 / (w as f32 * s).round().max(1.0), h as f32 / (h as f32 * s).round().max(1.0))
        };
        Ok(dets
            .into_iter()
            .map(|d| {
                // dlib rectangles are inclusive; ours are exclusive.
                let b = BBox::new(
                    d.left as f32 * sx,
                    d.top as f32 * sy,
                    (d.right + 1) as f32 * sx,
                    (d.bottom + 1) as f32 * sy,
                );
                (b, d.score as f32)
            })
            .collect())
    }

    fn run_engine(&mut self, m: &ImageMatrix) -> Result<Vec<RawDetection>, LandmarkError> {
        match &mut self.engine {
            Engine::Hog(d) => d.detect(m, self.config.hog_threshold),
            Engine::Cnn(d) => d.detect(m),
            Engine::Boxes(_) | Engine::None => Ok(Vec::new()),
        }
        .map_err(dlib_error)
    }

    /// The 68 landmarks inside `bbox`, predicted on the full-size image.
    pub fn landmarks(&self, full: &ImageMatrix, bbox: &BBox) -> Result<Landmarks68, LandmarkError> {
        // dlib rectangles are inclusive.
        let rect = [
            bbox.left.round() as _,
            bbox.top.round() as _,
            (bbox.right.round() as i64 - 1) as _,
            (bbox.bottom.round() as i64 - 1) as _,
        ];
        let parts = self.predictor.predict(full, rect).map_err(dlib_error)?;
        let mut pts = [Point::default(); 68];
        for (dst, [x, y]) in pts.iter_mut().zip(parts) {
            *dst = Point::new(x as f32, y as f32);
        }
        Ok(Landmarks68(pts))
    }

    /// Faces for the given boxes (full-image coordinates, with scores): the
    /// 68 landmarks of each, predicted on the full-size image, in box order.
    pub fn faces_in_boxes(&self, img: &RgbImage, boxes: Vec<(BBox, f32)>) -> Result<Vec<Face>, LandmarkError> {
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let full = to_matrix(img);
        boxes
            .into_iter()
            .map(|(bbox, score)| Ok(Face { bbox, score, landmarks: self.landmarks(&full, &bbox)? }))
            .collect()
    }

    /// The face of a face crop without detection (`mask --faces crop`): the
    /// box comes from the crop and is refined from the predicted points, and
    /// the points are checked ([`maskforge_face::fit::fit_crop`]). `Ok(Err)`
    /// says why the crop holds no face.
    pub fn face_in_crop(
        &self,
        img: &RgbImage,
        limits: &CropLimits,
    ) -> Result<Result<Face, CropRejection>, LandmarkError> {
        let full = to_matrix(img);
        fit_crop(img.width(), img.height(), limits, |b| self.landmarks(&full, b))
    }

    /// Detects every face in `img` and predicts its landmarks. Faces come
    /// sorted by box area, largest first (ties by position, so the order is
    /// deterministic).
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Face>, LandmarkError> {
        let boxes = self.detect_boxes(img)?;
        let mut faces = self.faces_in_boxes(img, boxes)?;
        faces.sort_by(|a, b| {
            b.bbox
                .area()
                .total_cmp(&a.bbox.area())
                .then(a.bbox.top.total_cmp(&b.bbox.top))
                .then(a.bbox.left.total_cmp(&b.bbox.left))
        });
        Ok(faces)
    }
}

/// Runs a [`BoxDetector`] on `img` scaled by `s` (full size when 1) and
/// maps its faces back to full size, in dlib's box convention: a square of
/// its box's size placed by its eyes ([`box_from_eyes`]), else its own box.
fn detect_with(
    boxes: &dyn BoxDetector,
    img: &RgbImage,
    s: f32,
    min_face: f32,
) -> Result<Vec<(BBox, f32)>, LandmarkError> {
    let (w, h) = img.dimensions();
    let resized;
    let (input, sx, sy) = if (s - 1.0).abs() < 1e-6 {
        (img, 1.0, 1.0)
    } else {
        let dw = ((w as f32 * s).round() as u32).max(1);
        let dh = ((h as f32 * s).round() as u32).max(1);
        resized = image::imageops::resize(img, dw, dh, image::imageops::FilterType::Triangle);
        (&resized, w as f32 / dw as f32, h as f32 / dh as f32)
    };
    let found = boxes.detect(input, min_face * s).map_err(LandmarkError::BoxDetector)?;
    let back = |p: Point| Point::new(p.x * sx, p.y * sy);
    Ok(found
        .into_iter()
        .map(|DetectedBox { bbox, score, eyes }| {
            let full = BBox::new(bbox.left * sx, bbox.top * sy, bbox.right * sx, bbox.bottom * sy);
            let b = match eyes {
                Some([l, r]) if l.distance(r) > 0.0 => box_from_eyes(back(l), back(r), full.area().sqrt()),
                _ => full,
            };
            (b, score)
        })
        .collect())
}

extern "C" {
    // OpenBLAS (Debian's pthread build), which dlib's CNN layers call for
    // their matrix products.
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

/// Gives OpenBLAS the cores that `workers` threads of our own leave free:
/// `cores / workers`, at least one. Without it every worker's matrix
/// product starts a thread per core, so N workers run N×cores busy threads
/// on N cores (the CNN detector slows down instead of speeding up).
/// Returns the thread count set.
pub fn share_cores_with_workers(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per_worker = (cores / workers.max(1)).max(1);
    // SAFETY: plain setters of OpenBLAS's global thread count; safe to call
    // while no BLAS call is running (before the workers start).
    unsafe { openblas_set_num_threads(per_worker as std::os::raw::c_int) };
    per_worker
}

/// Copies an RGB image into dlib's matrix type. Goes through the raw buffer,
/// so it works with any `image` version (the dlib crate pins image 0.24).
pub fn to_matrix(img: &RgbImage) -> ImageMatrix {
    let raw: &[u8] = img.as_raw();
    debug_assert_eq!(raw.len(), img.width() as usize * img.height() as usize * 3);
    // SAFETY: `raw` holds width*height packed RGB8 pixels, row-major, which is
    // exactly what ImageMatrix::new reads; the buffer outlives the call.
    unsafe { ImageMatrix::new(img.width() as usize, img.height() as usize, raw.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_face_under_the_window_upsamples_small_photos_only() {
        let hog = |min_face| DetectorConfig { min_face, ..DetectorConfig::new("models") };
        assert_eq!(hog(0).auto_scale(), 1.0);
        assert_eq!(hog(160).auto_scale(), 0.5);
        assert_eq!(hog(40).auto_scale(), 2.0);
        assert_eq!(hog(10).auto_scale(), MAX_AUTO_UPSCALE);
        let mtcnn = DetectorConfig { kind: DetectorKind::Mtcnn, ..hog(10) };
        assert_eq!(mtcnn.auto_scale(), 1.0, "MTCNN's pyramid does its own scaling");
        // HOG: a 400×300 photo is doubled; a 4000×2000 one (8 MP) only to 16 MP; a 20 MP one not at all.
        let hog_cap = DetectorKind::Hog.max_upsampled_pixels();
        assert_eq!(capped_upscale(2.0, 400, 300, hog_cap), 2.0);
        assert!((capped_upscale(2.0, 4000, 2000, hog_cap) - 2f32.sqrt()).abs() < 1e-6);
        assert_eq!(capped_upscale(2.0, 5000, 4000, hog_cap), 1.0);
        assert_eq!(capped_upscale(0.5, 400, 300, hog_cap), 0.5);
        // The CNN's cap is lower: a 2000×1000 photo goes to 4 MP at most.
        assert!((capped_upscale(2.0, 2000, 1000, DetectorKind::Cnn.max_upsampled_pixels()) - 2f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn centerface_never_runs_on_more_than_4_mp() {
        let centerface =
            |min_face| DetectorConfig { kind: DetectorKind::CenterFace, min_face, ..DetectorConfig::new("m") };
        // Its 16 px smallest face: --min-face 24 is a 2/3 copy, 8 doubles a small photo.
        assert!((centerface(24).detection_scale(1200, 900) - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(centerface(8).detection_scale(400, 300), 2.0);
        // A 12000×9000 photo (108 MP) goes to 4 MP, not to 48 MP; so do
        // --upsample and --detect-max-side.
        let pixels = |c: &DetectorConfig, w: u32, h: u32| {
            let s = c.detection_scale(w, h);
            (w as f32 * s) * (h as f32 * s)
        };
        assert!((pixels(&centerface(24), 12000, 9000) - 4e6).abs() < 4e3);
        let upsampled = DetectorConfig { upsample: 2, ..centerface(24) };
        assert!((pixels(&upsampled, 2000, 1500) - 4e6).abs() < 4e3);
        let fixed = DetectorConfig { detect_max_side: Some(0), ..centerface(24) };
        assert!((pixels(&fixed, 4000, 3000) - 4e6).abs() < 4e3);
        // HOG has no bound: a 108 MP photo stays full size at its default.
        let hog = DetectorConfig { min_face: 80, ..DetectorConfig::new("m") };
        assert_eq!(hog.detection_scale(12000, 9000), 1.0);
    }

    #[test]
    fn a_larger_min_face_is_suggested_only_when_it_shrinks_the_copy() {
        let config = DetectorConfig::new("models");
        // FFHQ-like: faces of 400 px found at full size (HOG window 80).
        assert_eq!(config.faster_min_face(400.0), Some((300, (80.0f32 / 300.0).powi(2))));
        let suggested = |c: &DetectorConfig, smallest: f32| c.faster_min_face(smallest).map(|(m, _)| m);
        assert_eq!(suggested(&config, 163.0), Some(120));
        // 0.75 × 150 = 112 < 1.5 × 80: not worth it.
        assert_eq!(suggested(&config, 150.0), None);
        assert_eq!(suggested(&config, f32::INFINITY), None);
        let raised = DetectorConfig { min_face: 200, ..config.clone() };
        assert_eq!(suggested(&raised, 400.0), Some(300));
        assert_eq!(suggested(&raised, 390.0), None);
        let cnn = DetectorConfig { kind: DetectorKind::Cnn, ..config.clone() };
        assert_eq!(suggested(&cnn, 100.0), Some(70));
        for fixed in
            [DetectorConfig { detect_max_side: Some(640), ..config.clone() }, DetectorConfig { upsample: 1, ..config }]
        {
            assert_eq!(suggested(&fixed, 400.0), None);
        }
    }
}
