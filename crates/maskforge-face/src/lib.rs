//! Plain data types for detected faces, shared by every stage.
//!
//! Coordinates are `f32` pixels in the coordinate frame of the (EXIF-upright)
//! image. They may lie outside the image: a face cut by the frame keeps its
//! true geometry here, and code that reads or draws pixels clips on its own.
//!
//! The 68-point layout is the iBUG 300-W one that dlib's
//! `shape_predictor_68_face_landmarks.dat` produces. "Left" and "right" in the
//! range names are the *subject's*, as in the iBUG annotation: the subject's
//! right eye (36..42) appears on the image's left side.

pub mod crop;
pub mod detector;
pub mod fit;

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A point in image pixel coordinates (x to the right, y down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Column, pixels from the left edge.
    pub x: f32,
    /// Row, pixels from the top edge.
    pub y: f32,
}

impl Point {
    /// The point `(x, y)`.
    pub const fn new(x: f32, y: f32) -> Self {
        Point { x, y }
    }

    /// The point a fraction `t` of the way from `self` (0) to `other` (1);
    /// `t` outside `[0, 1]` extrapolates.
    pub fn lerp(self, other: Point, t: f32) -> Point {
        Point::new(self.x + (other.x - self.x) * t, self.y + (other.y - self.y) * t)
    }

    /// Euclidean distance, pixels.
    pub fn distance(self, other: Point) -> f32 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }

    /// Mean of a non-empty set of points; `None` for an empty one.
    pub fn centroid(points: &[Point]) -> Option<Point> {
        if points.is_empty() {
            return None;
        }
        let n = points.len() as f32;
        let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p.x, sy + p.y));
        Some(Point::new(sx / n, sy / n))
    }
}

impl std::ops::Add for Point {
    type Output = Point;
    fn add(self, o: Point) -> Point {
        Point::new(self.x + o.x, self.y + o.y)
    }
}

impl std::ops::Sub for Point {
    type Output = Point;
    fn sub(self, o: Point) -> Point {
        Point::new(self.x - o.x, self.y - o.y)
    }
}

impl std::ops::Mul<f32> for Point {
    type Output = Point;
    fn mul(self, s: f32) -> Point {
        Point::new(self.x * s, self.y * s)
    }
}

impl std::ops::Neg for Point {
    type Output = Point;
    fn neg(self) -> Point {
        Point::new(-self.x, -self.y)
    }
}

/// An axis-aligned box, `right`/`bottom` exclusive. It may extend past the
/// image border (negative `left`, say); see [`BBox::clip`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge, inclusive.
    pub left: f32,
    /// Top edge, inclusive.
    pub top: f32,
    /// Right edge, exclusive.
    pub right: f32,
    /// Bottom edge, exclusive.
    pub bottom: f32,
}

impl BBox {
    /// The box from its four edges (not reordered: `right < left` makes an
    /// empty box).
    pub const fn new(left: f32, top: f32, right: f32, bottom: f32) -> Self {
        BBox { left, top, right, bottom }
    }

    /// `right - left`, 0 for an inverted box.
    pub fn width(&self) -> f32 {
        (self.right - self.left).max(0.0)
    }

    /// `bottom - top`, 0 for an inverted box.
    pub fn height(&self) -> f32 {
        (self.bottom - self.top).max(0.0)
    }

    /// The tight box around `points` (inverted, `MAX..MIN`, when there are none).
    pub fn enclosing(points: impl IntoIterator<Item = Point>) -> BBox {
        points.into_iter().fold(BBox::new(f32::MAX, f32::MAX, f32::MIN, f32::MIN), |b, p| {
            BBox::new(b.left.min(p.x), b.top.min(p.y), b.right.max(p.x), b.bottom.max(p.y))
        })
    }

    /// Width × height, 0 for an empty box.
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// The centre point.
    pub fn center(&self) -> Point {
        Point::new((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)
    }

    /// The shorter side, the size that `--min-face` style thresholds compare.
    pub fn min_side(&self) -> f32 {
        self.width().min(self.height())
    }

    /// The whole face around a box in dlib's convention (which every
    /// detector's faces are given in: tight, brows to lower lip): a square
    /// [`WHOLE_FACE_SCALE`] times its side, centred [`WHOLE_FACE_RISE`] of
    /// its side higher, so it holds forehead, chin and a worn mask. What
    /// `predict` reports and draws, and matches with labelled boxes.
    pub fn whole_face(&self) -> BBox {
        let c = self.center();
        let side = self.width().max(self.height());
        let half = side * WHOLE_FACE_SCALE / 2.0;
        let cy = c.y - side * WHOLE_FACE_RISE;
        BBox::new(c.x - half, cy - half, c.x + half, cy + half)
    }

    /// Multiplies all coordinates by `s` (maps a box found on a downscaled
    /// copy back to the full-size image).
    pub fn scaled(&self, s: f32) -> BBox {
        BBox::new(self.left * s, self.top * s, self.right * s, self.bottom * s)
    }

    /// Integer pixel rectangle `(x0, y0, x1, y1)` clipped to a `width`×`height`
    /// image, `x1`/`y1` exclusive; `None` when nothing of the box is inside.
    pub fn clip(&self, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let x0 = self.left.floor().max(0.0);
        let y0 = self.top.floor().max(0.0);
        let x1 = self.right.ceil().min(width as f32);
        let y1 = self.bottom.ceil().min(height as f32);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        Some((x0 as u32, y0 as u32, x1 as u32, y1 as u32))
    }

    /// Intersection over union; 0 for disjoint or empty boxes.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = BBox::new(
            self.left.max(other.left),
            self.top.max(other.top),
            self.right.min(other.right),
            self.bottom.min(other.bottom),
        );
        let i = inter.area();
        let u = self.area() + other.area() - i;
        if u <= 0.0 {
            0.0
        } else {
            i / u
        }
    }

    /// Whether `p` lies inside (left/top edges in, right/bottom out).
    pub fn contains(&self, p: Point) -> bool {
        p.x >= self.left && p.x < self.right && p.y >= self.top && p.y < self.bottom
    }

    /// The box grown by `frac` of its size on every side.
    pub fn expanded(&self, frac: f32) -> BBox {
        let dx = self.width() * frac;
        let dy = self.height() * frac;
        BBox::new(self.left - dx, self.top - dy, self.right + dx, self.bottom + dy)
    }
}

/// Error for building landmarks from a wrong number of values.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("expected {expected} landmark values, got {got}")]
pub struct LandmarkCountError {
    /// Values needed (136: x and y of 68 points).
    pub expected: usize,
    /// Values given.
    pub got: usize,
}

/// The 68 dlib / iBUG 300-W facial landmarks of one face.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Landmarks68(pub [Point; 68]);

impl Landmarks68 {
    /// Number of points.
    pub const LEN: usize = 68;
    /// Jaw line, from the subject's right ear (image left) to the left ear.
    pub const JAW: Range<usize> = 0..17;
    /// Subject's right eyebrow (image left), outer end first.
    pub const RIGHT_BROW: Range<usize> = 17..22;
    /// Subject's left eyebrow (image right), inner end first.
    pub const LEFT_BROW: Range<usize> = 22..27;
    /// Nose bridge, top (27, between the eyes) to the tip (30).
    pub const NOSE_BRIDGE: Range<usize> = 27..31;
    /// Lower nose: nostrils and base, 31..36 (33 is under the tip).
    pub const NOSE_LOWER: Range<usize> = 31..36;
    /// The whole nose: bridge and lower nose.
    pub const NOSE: Range<usize> = 27..36;
    /// Subject's right eye, on the image's left side.
    pub const RIGHT_EYE: Range<usize> = 36..42;
    /// Subject's left eye, on the image's right side.
    pub const LEFT_EYE: Range<usize> = 42..48;
    /// The whole mouth: outer and inner lip contours.
    pub const MOUTH: Range<usize> = 48..68;
    /// Outer lip contour, from the subject's right mouth corner (48).
    pub const OUTER_LIPS: Range<usize> = 48..60;
    /// Inner lip contour, from the subject's right inner corner (60).
    pub const INNER_LIPS: Range<usize> = 60..68;

    /// Bottom of the chin (middle of the jaw line).
    pub const CHIN: usize = 8;
    /// Top of the nose bridge, between the eyes.
    pub const NOSE_TOP: usize = 27;
    /// Tip of the nose.
    pub const NOSE_TIP: usize = 30;
    /// Base of the nose, under the tip, above the upper lip.
    pub const NOSE_BASE: usize = 33;
    /// Top of the upper lip, at its middle.
    pub const UPPER_LIP_TOP: usize = 51;
    /// Bottom of the lower lip, at its middle.
    pub const LOWER_LIP_BOTTOM: usize = 57;

    /// Builds landmarks from 136 interleaved values `x0, y0, x1, y1, ...`.
    pub fn from_flat(values: &[f32]) -> Result<Self, LandmarkCountError> {
        if values.len() != 2 * Self::LEN {
            return Err(LandmarkCountError { expected: 2 * Self::LEN, got: values.len() });
        }
        let mut pts = [Point::default(); 68];
        for (i, p) in pts.iter_mut().enumerate() {
            *p = Point::new(values[2 * i], values[2 * i + 1]);
        }
        Ok(Landmarks68(pts))
    }

    /// 136 interleaved values `x0, y0, x1, y1, ...`.
    pub fn to_flat(&self) -> Vec<f32> {
        self.0.iter().flat_map(|p| [p.x, p.y]).collect()
    }

    /// Point `index` (0..68); panics above.
    pub fn point(&self, index: usize) -> Point {
        self.0[index]
    }

    /// All 68 points, in iBUG order.
    pub fn points(&self) -> &[Point; 68] {
        &self.0
    }

    /// The points of `r`, one of the range constants ([`Self::JAW`], ...).
    pub fn range(&self, r: Range<usize>) -> &[Point] {
        &self.0[r]
    }

    /// The 17 points of [`Self::JAW`].
    pub fn jaw(&self) -> &[Point] {
        self.range(Self::JAW)
    }

    /// The 9 points of [`Self::NOSE`].
    pub fn nose(&self) -> &[Point] {
        self.range(Self::NOSE)
    }

    /// The 20 points of [`Self::MOUTH`].
    pub fn mouth(&self) -> &[Point] {
        self.range(Self::MOUTH)
    }

    /// The 6 points of [`Self::RIGHT_EYE`] (image left).
    pub fn right_eye(&self) -> &[Point] {
        self.range(Self::RIGHT_EYE)
    }

    /// The 6 points of [`Self::LEFT_EYE`] (image right).
    pub fn left_eye(&self) -> &[Point] {
        self.range(Self::LEFT_EYE)
    }

    /// Centre of the subject's right eye (image left).
    pub fn right_eye_center(&self) -> Point {
        Point::centroid(self.right_eye()).unwrap_or_default()
    }

    /// Centre of the subject's left eye (image right).
    pub fn left_eye_center(&self) -> Point {
        Point::centroid(self.left_eye()).unwrap_or_default()
    }

    /// In-plane rotation (roll) of the face in radians: the angle of the line
    /// from the image-left eye to the image-right eye.
    pub fn roll(&self) -> f32 {
        let a = self.right_eye_center();
        let b = self.left_eye_center();
        (b.y - a.y).atan2(b.x - a.x)
    }

    /// Tight bounding box of all 68 points.
    pub fn bounds(&self) -> BBox {
        BBox::enclosing(self.0)
    }

    /// Every point moved by `f` (a scale, shift or rotation into another frame).
    pub fn map(&self, f: impl Fn(Point) -> Point) -> Landmarks68 {
        let mut out = self.0;
        for p in out.iter_mut() {
            *p = f(*p);
        }
        Landmarks68(out)
    }
}

/// [`BBox::whole_face`]'s side over dlib's box side, and how far (in dlib
/// box sides) its centre sits above dlib's: the medians over 795 faces of
/// real crowd photos with hand-drawn boxes (`cargo xtask bench faces`'
/// set), where dlib-convention boxes are 0.77 of the drawn side and 0.084
/// of it lower. Matched at IoU 0.5, CenterFace's faces go from 49% to 78%
/// found with it.
pub const WHOLE_FACE_SCALE: f32 = 1.30;
/// See [`WHOLE_FACE_SCALE`].
pub const WHOLE_FACE_RISE: f32 = 0.11;

/// How a face was found: `annotations.csv`'s `method` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaceMethod {
    /// dlib's HOG detector.
    Hog,
    /// dlib's CNN (MMOD) detector.
    Cnn,
    /// MTCNN (through libtorch), with dlib's landmarks in its face boxes.
    Mtcnn,
    /// CenterFace (through libtorch), with dlib's landmarks in its face boxes.
    CenterFace,
    /// Read from a landmarks file (`mask --landmarks`).
    Landmarks,
    /// Fitted in a face crop without a detector (`mask --faces crop`).
    Crop,
}

impl FaceMethod {
    /// Its name in `annotations.csv`: `hog`, `cnn`, `mtcnn`, `centerface`, `landmarks`, `crop`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaceMethod::Hog => "hog",
            FaceMethod::Cnn => "cnn",
            FaceMethod::Mtcnn => "mtcnn",
            FaceMethod::CenterFace => "centerface",
            FaceMethod::Landmarks => "landmarks",
            FaceMethod::Crop => "crop",
        }
    }
}

impl std::fmt::Display for FaceMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detected face: where it is, how sure the detector was, and its landmarks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// The detector's box (for `crop`/`landmarks` faces: the one fitted or read).
    pub bbox: BBox,
    /// Detector confidence. HOG: SVM margin (about -0.5..3, > 0 is a face at
    /// the default threshold); CNN (MMOD): detection confidence.
    pub score: f32,
    /// The 68 points, in the same pixel frame as `bbox`.
    pub landmarks: Landmarks68,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_arithmetic() {
        let (a, b) = (Point::new(1.0, 2.0), Point::new(4.0, -2.0));
        assert_eq!(a + b, Point::new(5.0, 0.0));
        assert_eq!(b - a, Point::new(3.0, -4.0));
        assert_eq!(a * 2.0, Point::new(2.0, 4.0));
        assert_eq!(-a, Point::new(-1.0, -2.0));
        assert_eq!(a.lerp(b, 0.5), Point::new(2.5, 0.0));
        assert_eq!(a.distance(b), 5.0);
    }

    #[test]
    fn the_whole_face_box_is_larger_and_higher() {
        // A 100 px dlib box at (200..300, 400..500): a 130 px square, its
        // centre 11 px higher, so it reaches 26 px above the brows and 4 px
        // below the box's lower edge.
        let w = BBox::new(200.0, 400.0, 300.0, 500.0).whole_face();
        for (got, want) in [(w.left, 185.0), (w.top, 374.0), (w.right, 315.0), (w.bottom, 504.0)] {
            assert!((got - want).abs() < 1e-3, "{w:?}");
        }
        // It is square whatever the box: a taller one is squared on its long side.
        let t = BBox::new(0.0, 0.0, 80.0, 100.0).whole_face();
        assert!((t.width() - 130.0).abs() < 1e-3 && (t.height() - 130.0).abs() < 1e-3, "{t:?}");
    }

    #[test]
    fn flat_round_trip_and_wrong_count() {
        let v: Vec<f32> = (0..136).map(|i| i as f32).collect();
        let l = Landmarks68::from_flat(&v).unwrap();
        assert_eq!(l.point(1), Point::new(2.0, 3.0));
        assert_eq!(l.to_flat(), v);
        assert_eq!(Landmarks68::from_flat(&v[..10]), Err(LandmarkCountError { expected: 136, got: 10 }));
    }

    #[test]
    fn clip_handles_boxes_outside_the_image() {
        let b = BBox::new(-54.0, 10.0, 100.0, 300.0);
        assert_eq!(b.clip(80, 200), Some((0, 10, 80, 200)));
        assert_eq!(BBox::new(-50.0, -50.0, -1.0, -1.0).clip(80, 80), None);
        assert_eq!(BBox::new(90.0, 0.0, 120.0, 10.0).clip(80, 80), None);
    }

    #[test]
    fn iou_of_identical_and_disjoint_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn roll_of_level_and_tilted_eyes() {
        let mut pts = [Point::default(); 68];
        for i in Landmarks68::RIGHT_EYE {
            pts[i] = Point::new(10.0, 10.0);
        }
        for i in Landmarks68::LEFT_EYE {
            pts[i] = Point::new(20.0, 10.0);
        }
        assert!(Landmarks68(pts).roll().abs() < 1e-6);
        for i in Landmarks68::LEFT_EYE {
            pts[i] = Point::new(20.0, 20.0);
        }
        assert!((Landmarks68(pts).roll() - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    }
}
