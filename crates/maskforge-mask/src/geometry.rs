//! Where a mask goes: from 68 landmarks, a wear variant and a template's
//! outline to a triangle mesh mapping template coordinates onto the image.
//!
//! All construction happens in an upright *face frame* (the image rotated by
//! the face's roll about the landmarks' centre), so "above" and "level with"
//! mean what they do on the face. The mask region is bounded by four curves:
//! the top edge (over the nose bridge, or under the nose, or under the lip),
//! the two side edges and the lower edge, which run along the jaw outline
//! (landmarks 0–16, pushed outward by a margin). A Coons patch fills the
//! region with a grid, built the same way in template coordinates from the
//! template's outline; corresponding grid cells give the piecewise-affine
//! warp. Each half of the mask (split at the nose and chin) maps onto the
//! image span between the nose and that side's jaw, so on a turned face the
//! visible half, which is wider in the image, gets the wider half of the mask.

use crate::rng::SplitMix64;
use crate::template::{Fit, TemplateOutline};
use maskforge_face::{Landmarks68, Point};
use std::fmt;
use std::str::FromStr;

/// How the mask is worn; each is a label the CLI maps to a class name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MaskVariant {
    /// Nose bridge to under the chin: nose and mouth covered.
    Correct,
    /// Top edge between the nose and the upper lip: nostrils visible.
    NoseExposed,
    /// Pulled down under the lower lip, covering only the chin.
    Chin,
    /// Nose and mouth covered, the chin out of the mask.
    ChinExposed,
}

impl MaskVariant {
    /// Every variant, in canonical order.
    pub const ALL: [MaskVariant; 4] =
        [MaskVariant::Correct, MaskVariant::NoseExposed, MaskVariant::Chin, MaskVariant::ChinExposed];

    /// Its `--variants` name: `correct`, `nose_exposed`, `chin`, `chin_exposed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            MaskVariant::Correct => "correct",
            MaskVariant::NoseExposed => "nose_exposed",
            MaskVariant::Chin => "chin",
            MaskVariant::ChinExposed => "chin_exposed",
        }
    }

    /// Landmarks the mask must cover.
    pub fn covered_landmarks(&self) -> Vec<usize> {
        let nose_mouth: Vec<usize> = (30..36).chain(48..68).collect();
        match self {
            MaskVariant::Correct => nose_mouth.into_iter().chain([29, 8]).collect(),
            MaskVariant::NoseExposed => (48..68).chain([8]).collect(),
            MaskVariant::Chin => vec![7, 8, 9],
            MaskVariant::ChinExposed => nose_mouth,
        }
    }

    /// Landmarks that must stay visible (outside the mask and its feathered edge).
    pub fn exposed_landmarks(&self) -> Vec<usize> {
        match self {
            MaskVariant::Correct => vec![27],
            MaskVariant::NoseExposed => (27..36).collect(),
            MaskVariant::Chin => (27..36).chain(48..68).collect(),
            MaskVariant::ChinExposed => vec![8],
        }
    }
}

impl fmt::Display for MaskVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far below the jaw (in face heights, nose top to chin) a mask pulled
/// down to under the nose hangs, beyond its fit's `chin_drop`: the height
/// that slid off the nose sags under the chin instead of vanishing.
pub const PULLED_DOWN_SAG: f32 = 0.07;
/// The same for a mask pushed down onto the chin: most of it bunches under
/// the jaw.
pub const CHIN_SAG: f32 = 0.10;

impl MaskVariant {
    /// The template's fit as this variant wears it: a pulled-down or chin
    /// mask keeps its height, so its lower edge sags below the jaw.
    pub fn worn_fit(self, fit: &Fit) -> Fit {
        let sag = match self {
            MaskVariant::NoseExposed => PULLED_DOWN_SAG,
            MaskVariant::Chin => CHIN_SAG,
            MaskVariant::Correct | MaskVariant::ChinExposed => 0.0,
        };
        Fit { chin_drop: fit.chin_drop + sag, ..*fit }
    }
}

/// A variant name that is none of [`MaskVariant::ALL`] (the text as given).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown mask variant {0:?}: use correct, nose_exposed, chin or chin_exposed")]
pub struct UnknownVariant(pub String);

impl FromStr for MaskVariant {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MaskVariant::ALL.into_iter().find(|v| v.as_str() == s.trim()).ok_or_else(|| UnknownVariant(s.to_string()))
    }
}

/// Why a mask could not be placed on a face.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlacementError {
    /// A landmark coordinate is NaN or infinite.
    #[error("landmarks contain non-finite coordinates")]
    NonFinite,
    /// The face is too small, or its points collapse, to build a mesh on.
    #[error("face too small or landmarks degenerate (face width {width:.1} px, height {height:.1} px)")]
    Degenerate {
        /// Face width, jaw to jaw, pixels.
        width: f32,
        /// Face height, nose top to chin, pixels.
        height: f32,
    },
    /// The placed outline breaks the variant's rule for a landmark.
    #[error("cannot place a {variant} mask: landmark {landmark} would be {}", if *.should_cover { "uncovered" } else { "covered" })]
    Coverage {
        /// The variant being placed.
        variant: MaskVariant,
        /// The landmark index (0..68) at fault.
        landmark: usize,
        /// Whether the variant must cover it (else it must stay visible).
        should_cover: bool,
    },
}

/// Random variations of the placement, each in `-1..1`; zero is the
/// canonical placement. Amplitudes are chosen per variant so the variant's
/// coverage rules hold for any value (a draw that still breaks them falls
/// back to the canonical placement, see `Synthesizer::place`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jitter {
    /// How high the top edge sits: -1 is worn high (over the nose bridge up
    /// to just under the eyes for a proper mask), +1 low.
    pub top: f32,
    /// Where the lower edge crosses the face (masks worn above the chin).
    pub bottom: f32,
    /// How far the sides reach toward the ears (±6%).
    pub width: f32,
    /// How closely the mask hugs the face: -1 tight (half the template's
    /// stand-off at the sides and under the chin), +1 loose (1.5 times).
    pub fit: f32,
}

impl Jitter {
    /// Draws all four variations, each uniform in `-1..1`.
    pub fn draw(rng: &mut SplitMix64) -> Jitter {
        Jitter {
            top: rng.range(-1.0, 1.0),
            bottom: rng.range(-1.0, 1.0),
            width: rng.range(-1.0, 1.0),
            fit: rng.range(-1.0, 1.0),
        }
    }
}

/// Grid resolution of the warp mesh: columns per mask half, rows.
const HALF_COLS: usize = 8;
const ROWS: usize = 8;

/// The warp mesh: a grid of vertices in image and template coordinates.
/// Columns run from the wearer's right (image left) to left; the first and
/// last columns carry the ear-loop strips (collapsed onto the sides when a
/// side is hidden or the template has none).
#[derive(Clone, Debug)]
pub struct Mesh {
    /// Vertices per row: both mask halves plus the ear-loop columns.
    pub cols: usize,
    /// Vertices per column, top edge to lower edge.
    pub rows: usize,
    /// `rows × cols` vertices, row-major, image coordinates.
    pub image: Vec<Point>,
    /// The same vertices in template coordinates.
    pub template: Vec<Point>,
}

impl Mesh {
    /// Triangles as vertex-index triples, two per grid cell.
    pub fn triangles(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        (0..self.rows - 1).flat_map(move |r| {
            (0..self.cols - 1).flat_map(move |c| {
                let i = r * self.cols + c;
                [[i, i + 1, i + self.cols + 1], [i, i + self.cols + 1, i + self.cols]]
            })
        })
    }

    /// The mesh's boundary in image coordinates, once around: the mask's
    /// polygon plus the ear-loop strips beside it.
    pub fn outline(&self) -> Vec<Point> {
        let (r, c) = (self.rows, self.cols);
        let mut hull = Vec::with_capacity(2 * (r + c));
        hull.extend((0..c).map(|i| self.image[i]));
        hull.extend((0..r).map(|j| self.image[j * c + c - 1]));
        hull.extend((0..c).rev().map(|i| self.image[(r - 1) * c + i]));
        hull.extend((0..r).rev().map(|j| self.image[j * c]));
        hull
    }
}

/// A placed mask.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The wear variant placed.
    pub variant: MaskVariant,
    /// The mask outline in image coordinates, clockwise on screen (ear
    /// loops excluded). It may extend outside the image.
    pub polygon: Vec<Point>,
    /// The warp mesh from template to image coordinates.
    pub mesh: Mesh,
    /// Face width, jaw to jaw, in pixels.
    pub face_width: f32,
    /// Face height, nose top to chin, in pixels.
    pub face_height: f32,
    /// Face roll, radians.
    pub roll: f32,
    /// The rotation centre of the face frame (the landmarks' centre).
    pub centre: Point,
    /// Midline x at the mouth, in the face frame (for shading).
    pub mid_x: f32,
    /// Half width from the midline to the wearer's right edge at the mouth,
    /// face frame, pixels (at least 1).
    pub half_right: f32,
    /// Half width from the midline to the wearer's left edge at the mouth,
    /// face frame, pixels (at least 1).
    pub half_left: f32,
    /// y of the top edge at the nose, in the face frame.
    pub top_y: f32,
    /// y of the lower edge at the chin, in the face frame.
    pub bottom_y: f32,
}

impl Placement {
    /// Gaussian sigma, in pixels, of the edge feathering for this face size.
    pub fn feather_sigma(&self) -> f32 {
        feather_sigma(self.face_width)
    }

    /// The map from image points into the face frame (by `−roll` about
    /// `centre`), for mapping many points.
    pub fn face_frame(&self) -> Rotation {
        Rotation::new(self.centre, -self.roll)
    }

    /// Maps an image point into the face frame.
    pub fn to_face(&self, p: Point) -> Point {
        self.face_frame().apply(p)
    }
}

/// A rotation by a fixed angle about a fixed centre, its sine and cosine
/// worked out once (imageproc's `Rotation` pattern), so that mapping many
/// points costs no trigonometry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation {
    centre: Point,
    sin: f32,
    cos: f32,
}

impl Rotation {
    /// The rotation by `angle` radians (clockwise on screen, y down) about `centre`.
    pub fn new(centre: Point, angle: f32) -> Rotation {
        let (sin, cos) = angle.sin_cos();
        Rotation { centre, sin, cos }
    }

    /// `p` rotated about the centre.
    #[inline]
    pub fn apply(&self, p: Point) -> Point {
        let (c, s, co) = (self.centre, self.sin, self.cos);
        let (dx, dy) = (p.x - c.x, p.y - c.y);
        Point::new(c.x + dx * co - dy * s, c.y + dx * s + dy * co)
    }
}

/// Edge softness grows with the face: about one pixel on small crops.
pub fn feather_sigma(face_width: f32) -> f32 {
    (0.45 + face_width / 450.0).clamp(0.45, 3.0)
}

fn polyline_length(pts: &[Point]) -> f32 {
    pts.windows(2).map(|w| w[0].distance(w[1])).sum()
}

/// `n + 1` points spaced evenly by arc length along `pts` (endpoints kept).
pub fn resample(pts: &[Point], n: usize) -> Vec<Point> {
    if pts.is_empty() {
        return vec![Point::default(); n + 1];
    }
    let total = polyline_length(pts);
    if pts.len() == 1 || total <= 1e-6 {
        return vec![pts[0]; n + 1];
    }
    let mut out = Vec::with_capacity(n + 1);
    let mut seg = 0;
    let mut seg_start = 0.0;
    for i in 0..=n {
        let target = total * i as f32 / n as f32;
        while seg + 1 < pts.len() - 1 && seg_start + pts[seg].distance(pts[seg + 1]) < target {
            seg_start += pts[seg].distance(pts[seg + 1]);
            seg += 1;
        }
        let len = pts[seg].distance(pts[seg + 1]);
        let t = if len > 1e-9 { ((target - seg_start) / len).clamp(0.0, 1.0) } else { 0.0 };
        out.push(pts[seg].lerp(pts[seg + 1], t));
    }
    out
}

/// Centripetal-free uniform Catmull-Rom through `ctrl`, `per_seg` samples per span.
fn catmull_rom(ctrl: &[Point], per_seg: usize) -> Vec<Point> {
    if ctrl.len() < 2 {
        return ctrl.to_vec();
    }
    let mut out = Vec::with_capacity((ctrl.len() - 1) * per_seg + 1);
    for i in 0..ctrl.len() - 1 {
        let p0 = if i == 0 { ctrl[0] * 2.0 - ctrl[1] } else { ctrl[i - 1] };
        let p1 = ctrl[i];
        let p2 = ctrl[i + 1];
        let p3 = if i + 2 < ctrl.len() { ctrl[i + 2] } else { ctrl[i + 1] * 2.0 - ctrl[i] };
        for k in 0..per_seg {
            let t = k as f32 / per_seg as f32;
            let (t2, t3) = (t * t, t * t * t);
            let f = |a: f32, b: f32, c: f32, d: f32| {
                0.5 * (2.0 * b
                    + (-a + c) * t
                    + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
                    + (-a + 3.0 * b - 3.0 * c + d) * t3)
            };
            out.push(Point::new(f(p0.x, p1.x, p2.x, p3.x), f(p0.y, p1.y, p2.y, p3.y)));
        }
    }
    out.push(*ctrl.last().unwrap_or(&Point::default()));
    out
}

/// A side of the jaw outline in the face frame, from its top down to the chin.
struct Contour {
    pts: Vec<Point>,
}

impl Contour {
    /// The point where the contour first reaches height `y` going down (the
    /// top point moved to `y` when `y` is above it; the chin when below).
    fn at_level(&self, y: f32) -> (Point, usize) {
        let p = &self.pts;
        if y <= p[0].y {
            return (Point::new(p[0].x, y), 0);
        }
        for i in 0..p.len() - 1 {
            let (a, b) = (p[i], p[i + 1]);
            if (a.y <= y && y <= b.y) || (b.y <= y && y <= a.y) {
                let t = if (b.y - a.y).abs() > 1e-6 { (y - a.y) / (b.y - a.y) } else { 0.0 };
                return (a.lerp(b, t.clamp(0.0, 1.0)), i);
            }
        }
        (*p.last().unwrap_or(&Point::default()), p.len() - 1)
    }

    /// Arc-length parameter (distance from the top) of a point given by `at_level`.
    fn arc_at(&self, p: Point, seg: usize) -> f32 {
        polyline_length(&self.pts[..=seg.min(self.pts.len() - 1)]) + self.pts[seg.min(self.pts.len() - 1)].distance(p)
    }

    /// The point at arc length `s` from the top.
    fn at_arc(&self, s: f32) -> (Point, usize) {
        let mut acc = 0.0;
        for i in 0..self.pts.len() - 1 {
            let len = self.pts[i].distance(self.pts[i + 1]);
            if acc + len >= s {
                let t = if len > 1e-9 { (s - acc) / len } else { 0.0 };
                return (self.pts[i].lerp(self.pts[i + 1], t.clamp(0.0, 1.0)), i);
            }
            acc += len;
        }
        (*self.pts.last().unwrap_or(&Point::default()), self.pts.len() - 1)
    }

    /// The contour from `(a, seg_a)` down to `(b, seg_b)` (a above b).
    fn between(&self, a: (Point, usize), b: (Point, usize)) -> Vec<Point> {
        let mut out = vec![a.0];
        for i in a.1 + 1..=b.1.min(self.pts.len() - 1) {
            if self.pts[i].distance(*out.last().unwrap_or(&a.0)) > 1e-3 {
                out.push(self.pts[i]);
            }
        }
        if b.0.distance(*out.last().unwrap_or(&a.0)) > 1e-3 || out.len() == 1 {
            out.push(b.0);
        }
        out
    }
}

/// Ray-casting point-in-polygon test.
pub fn point_in_polygon(p: Point, poly: &[Point]) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Distance from `p` to the polygon's boundary.
pub fn distance_to_polygon(p: Point, poly: &[Point]) -> f32 {
    let n = poly.len();
    let mut best = f32::MAX;
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        let ab = b - a;
        let len2 = ab.x * ab.x + ab.y * ab.y;
        let t = if len2 > 1e-12 { (((p.x - a.x) * ab.x + (p.y - a.y) * ab.y) / len2).clamp(0.0, 1.0) } else { 0.0 };
        best = best.min(p.distance(a + ab * t));
    }
    best
}

/// The four boundary curves of a mask region and the centre split indices.
struct Boundary {
    top: Vec<Point>,
    nose: usize,
    bottom: Vec<Point>,
    chin: usize,
    right: Vec<Point>,
    left: Vec<Point>,
}

/// Splits a curve at `mid` and resamples each half to `half` segments.
fn resample_halves(pts: &[Point], mid: usize, half: usize) -> Vec<Point> {
    let mid = mid.clamp(1, pts.len().saturating_sub(2).max(1));
    let mut a = resample(&pts[..=mid], half);
    let b = resample(&pts[mid..], half);
    a.pop();
    a.extend(b);
    a
}

/// Coons-patch grid over a boundary: `(2·HALF_COLS + 1)` columns × `(ROWS + 1)` rows.
fn coons(b: &Boundary) -> Vec<Point> {
    let nc = 2 * HALF_COLS;
    let top = resample_halves(&b.top, b.nose, HALF_COLS);
    let bottom = resample_halves(&b.bottom, b.chin, HALF_COLS);
    let right = resample(&b.right, ROWS);
    let left = resample(&b.left, ROWS);
    let (t0, t1, b0, b1) = (top[0], top[nc], bottom[0], bottom[nc]);
    let mut grid = Vec::with_capacity((ROWS + 1) * (nc + 1));
    for j in 0..=ROWS {
        let v = j as f32 / ROWS as f32;
        for i in 0..=nc {
            let u = i as f32 / nc as f32;
            let ruled_v = top[i] * (1.0 - v) + bottom[i] * v;
            let ruled_u = right[j] * (1.0 - u) + left[j] * u;
            let corners = t0 * ((1.0 - u) * (1.0 - v)) + t1 * (u * (1.0 - v)) + (b0 * ((1.0 - u) * v) + b1 * (u * v));
            grid.push(ruled_v + ruled_u - corners);
        }
    }
    grid
}

fn template_boundary(o: &TemplateOutline) -> Boundary {
    Boundary {
        top: o.top.clone(),
        nose: o.nose_index,
        bottom: o.bottom.clone(),
        chin: o.chin_index,
        right: o.right_side.clone(),
        left: o.left_side.clone(),
    }
}

/// Places a mask of the template with `outline` and `fit` on a face.
///
/// The steps run in a fixed order (face frame, jaw, sides, top edge, lower
/// edge, mesh, outline, coverage check); each is a pure function of what the
/// earlier ones produced, and none draws random numbers (the jitter comes in).
pub fn place(
    landmarks: &Landmarks68,
    variant: MaskVariant,
    outline: &TemplateOutline,
    fit: &Fit,
    jitter: Jitter,
) -> Result<Placement, PlacementError> {
    let face = FaceFrame::new(landmarks)?;
    let jaw = face.jaw_outline(&variant.worn_fit(fit), jitter);
    let cover = variant.covered_landmarks();
    let (right, left) = face.side_contours(&jaw, &cover);
    let top = face.top_edge(face.top_shape(variant, jitter, fit.top_bias), &right, &left);
    let lower = match variant {
        MaskVariant::ChinExposed => face.lower_edge_above_chin(jitter, &right, &left, &top),
        _ => face.lower_edge_along_jaw(outline, &right, &left, &top),
    };
    let (r_top, l_top) = (top.right.0, top.left.0);
    let boundary = Boundary {
        top: top.curve,
        nose: top.nose,
        bottom: lower.bottom,
        chin: lower.chin,
        right: lower.right,
        left: lower.left,
    };
    let mesh = face_frame_mesh(&boundary, outline, fit, r_top, l_top);
    let polygon = boundary.polygon();
    face.check_coverage(variant, &cover, &polygon)?;

    let mouth_y = face.l(62).y;
    let to_image = Rotation::new(face.centre, face.roll);
    let back = |p: Point| to_image.apply(p);
    Ok(Placement {
        variant,
        polygon: polygon.iter().map(|&p| back(p)).collect(),
        mesh: Mesh { image: mesh.image.iter().map(|&p| back(p)).collect(), ..mesh },
        face_width: face.w,
        face_height: face.h,
        roll: face.roll,
        centre: face.centre,
        mid_x: face.mid_x(mouth_y),
        half_right: (face.mid_x(mouth_y) - right.at_level(mouth_y).0.x).max(1.0),
        half_left: (left.at_level(mouth_y).0.x - face.mid_x(mouth_y)).max(1.0),
        top_y: boundary.top[boundary.nose].y,
        bottom_y: boundary.bottom[boundary.chin].y,
    })
}

/// The face in its upright frame: the landmarks rotated by `-roll` about
/// `centre`, its width `w` (jaw to jaw) and height `h` (nose top to chin),
/// and the facial midline used to measure left and right from.
struct FaceFrame {
    up: Landmarks68,
    roll: f32,
    centre: Point,
    w: f32,
    h: f32,
    /// Through bridge, nose base, lips and chin (not the nose tip, which
    /// swings sideways on turned faces), top to bottom.
    midline: Vec<Point>,
}

/// The shape of the top edge before it becomes a curve.
struct TopShape {
    /// The edge's centre point.
    nose: Point,
    /// The height of its corners.
    corner_y: f32,
    /// Points beside the centre, wearer's right then left (set where the edge
    /// must clear the nose or the lips; computed from the corners otherwise).
    beside: Option<(Point, Point)>,
    /// Whether the points beside the centre must stay below the lower eyelids.
    under_eyes: bool,
}

/// The top edge as a curve, and where its corners meet the side contours.
struct TopEdge {
    curve: Vec<Point>,
    /// Index of the centre point in `curve`.
    nose: usize,
    /// Corner on the wearer's right contour, with its segment there.
    right: (Point, usize),
    /// Corner on the wearer's left contour, with its segment there.
    left: (Point, usize),
}

/// The lower edge (with the index of its centre) and the two side edges.
struct LowerEdges {
    bottom: Vec<Point>,
    chin: usize,
    right: Vec<Point>,
    left: Vec<Point>,
}

impl FaceFrame {
    /// Rotates the landmarks upright; refuses non-finite or tiny faces.
    fn new(landmarks: &Landmarks68) -> Result<FaceFrame, PlacementError> {
        if landmarks.points().iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
            return Err(PlacementError::NonFinite);
        }
        let roll = {
            let r = landmarks.roll();
            if r.is_finite() {
                r
            } else {
                0.0
            }
        };
        let centre = Point::centroid(landmarks.points()).unwrap_or_default();
        let upright = Rotation::new(centre, -roll);
        let up = landmarks.map(|p| upright.apply(p));
        let l = |i: usize| up.point(i);
        let width = l(16).x - l(0).x;
        let height = l(8).y - l(27).y;
        if !(width > 4.0 && height > 4.0) {
            return Err(PlacementError::Degenerate { width, height });
        }
        let midline: Vec<Point> = [27, 28, 29, 33, 51, 62, 66, 57, 8].iter().map(|&i| l(i)).collect();
        Ok(FaceFrame { up, roll, centre, w: width, h: height, midline })
    }

    /// Landmark `i` in the face frame.
    fn l(&self, i: usize) -> Point {
        self.up.point(i)
    }

    /// The facial midline's x at height `y` (its ends beyond the midline's ends).
    fn mid_x(&self, y: f32) -> f32 {
        let midline = &self.midline;
        if y <= midline[0].y {
            return midline[0].x;
        }
        for s in midline.windows(2) {
            if y <= s[1].y && s[1].y > s[0].y {
                let t = ((y - s[0].y) / (s[1].y - s[0].y)).clamp(0.0, 1.0);
                return s[0].x + (s[1].x - s[0].x) * t;
            }
        }
        midline[midline.len() - 1].x
    }

    /// Jaw outline (landmarks 0–16) pushed outward (more below the chin),
    /// narrowed by the fit.
    fn jaw_outline(&self, fit: &Fit, jitter: Jitter) -> Vec<Point> {
        let l = |i: usize| self.l(i);
        let (w, h) = (self.w, self.h);
        let interior = Point::centroid(&[l(30), l(33), l(51), l(57), l(62)]).unwrap_or(l(33));
        let reach = fit.side_reach * (1.0 + 0.06 * jitter.width);
        let slack = 1.0 + 0.5 * jitter.fit.clamp(-1.0, 1.0);
        (0..17)
            .map(|i| {
                let prev = l(if i == 0 { 0 } else { i - 1 });
                let next = l(if i == 16 { 16 } else { i + 1 });
                let t = next - prev;
                let len = (t.x * t.x + t.y * t.y).sqrt().max(1e-6);
                let mut n = Point::new(t.y / len, -t.x / len);
                let out = l(i) - interior;
                if n.x * out.x + n.y * out.y < 0.0 {
                    n = -n;
                }
                let down = n.y.max(0.0);
                let d = slack * (fit.side_margin * w * (1.0 - down) + fit.chin_drop * h * down);
                let p = l(i) + n * d;
                let m = self.mid_x(p.y);
                Point::new(m + reach * (p.x - m), p.y)
            })
            .collect()
    }

    /// The wearer's right and left halves of `jaw`, each from its top down
    /// to the chin, extended upward and widened where they would not reach
    /// the landmarks in `cover` (the nose tip of a turned face sticks out
    /// past its cheek).
    fn side_contours(&self, jaw: &[Point], cover: &[usize]) -> (Contour, Contour) {
        let h = self.h;
        let pad = 0.05 * self.w;
        let mut right_pts: Vec<Point> = jaw[0..=8].to_vec();
        let mut left_pts: Vec<Point> = jaw[8..=16].iter().rev().copied().collect();
        // Extend both sides upward (a top corner may sit above landmark 0/16).
        for pts in [&mut right_pts, &mut left_pts] {
            let (a, b) = (pts[0], pts[1]);
            let dir = a - b;
            let len = (dir.x * dir.x + dir.y * dir.y).sqrt().max(1e-6);
            pts.insert(0, a + dir * (0.35 * h / len));
        }
        // Per contour point, only covered points at about its height count; jaw
        // points are already inside through the outward offset.
        let band = 0.08 * h;
        let inner: Vec<Point> = cover.iter().filter(|&&i| i > 16).map(|&i| self.l(i)).collect();
        for p in right_pts.iter_mut() {
            for q in inner.iter().filter(|q| (q.y - p.y).abs() <= band) {
                p.x = p.x.min(q.x - pad);
            }
        }
        for p in left_pts.iter_mut() {
            for q in inner.iter().filter(|q| (q.y - p.y).abs() <= band) {
                p.x = p.x.max(q.x + pad);
            }
        }
        (Contour { pts: right_pts }, Contour { pts: left_pts })
    }

    /// Where the variant's top edge goes: over the nose bridge, between the
    /// nose and the upper lip, or under the lower lip.
    fn top_shape(&self, variant: MaskVariant, jitter: Jitter, top_bias: f32) -> TopShape {
        let l = |i: usize| self.l(i);
        let (w, h) = (self.w, self.h);
        match variant {
            MaskVariant::Correct | MaskVariant::ChinExposed => {
                // From high on the bridge (22% of the way down from its top,
                // where sponge and snug masks sit) to low (52%, a loose
                // surgical mask that has slipped a little).
                let top = (jitter.top + top_bias).clamp(-1.0, 1.0);
                let nose = l(27).lerp(l(29), 0.37 + 0.15 * top);
                let corner_y = nose.y + (l(30).y - nose.y) * 0.6;
                TopShape { nose, corner_y, beside: None, under_eyes: true }
            }
            MaskVariant::NoseExposed => {
                let nose = l(33).lerp(l(51), 0.5 + 0.12 * jitter.top);
                let y = nose.y + 0.01 * h;
                let half_nose = 0.5 * (l(35).x - l(31).x).abs();
                let xr = l(31).x.min(l(33).x - half_nose) - 0.05 * w;
                let xl = l(35).x.max(l(33).x + half_nose) + 0.05 * w;
                let beside = Some((Point::new(xr, y), Point::new(xl, y)));
                TopShape { nose, corner_y: nose.y - 0.06 * h, beside, under_eyes: false }
            }
            MaskVariant::Chin => {
                let nose = l(57).lerp(l(8), 0.30 + 0.06 * jitter.top);
                let y = nose.y + 0.005 * h;
                let xr = l(48).x.min(l(59).x) - 0.04 * w;
                let xl = l(54).x.max(l(55).x) + 0.04 * w;
                let beside = Some((Point::new(xr, y), Point::new(xl, y)));
                TopShape { nose, corner_y: nose.y - 0.08 * h, beside, under_eyes: false }
            }
        }
    }

    /// The top edge through the shape's corners (on the side contours), the
    /// points beside its centre, and its centre.
    fn top_edge(&self, top: TopShape, right: &Contour, left: &Contour) -> TopEdge {
        let lid_r = self.l(40).y.max(self.l(41).y);
        let lid_l = self.l(46).y.max(self.l(47).y);
        let (r_top, r_top_seg) = right.at_level(top.corner_y);
        let (l_top, l_top_seg) = left.at_level(top.corner_y);
        let (beside_r, beside_l) = match top.beside {
            Some(b) => b,
            None => {
                // Halfway across, and nearer the corners' height than the nose's:
                // the edge drops steeply beside the nose, then runs flatter over
                // the cheeks. Always below the lower eyelids.
                let mut br = Point::new(r_top.lerp(top.nose, 0.5).x, r_top.y + (top.nose.y - r_top.y) * 0.35);
                let mut bl = Point::new(l_top.lerp(top.nose, 0.5).x, l_top.y + (top.nose.y - l_top.y) * 0.35);
                if top.under_eyes {
                    br.y = br.y.max(lid_r + 0.10 * self.h);
                    bl.y = bl.y.max(lid_l + 0.10 * self.h);
                }
                (br, bl)
            }
        };
        let ctrl = [r_top, beside_r, top.nose, beside_l, l_top];
        let mut curve = catmull_rom(&ctrl, 8);
        // Keep the curve's corners exact.
        curve[0] = r_top;
        if let Some(last) = curve.last_mut() {
            *last = l_top;
        }
        TopEdge { curve, nose: 2 * 8, right: (r_top, r_top_seg), left: (l_top, l_top_seg) }
    }

    /// For a mask worn above the chin: the lower edge crosses the face between
    /// the lower lip and the chin, and the sides end where it meets them.
    fn lower_edge_above_chin(&self, jitter: Jitter, right: &Contour, left: &Contour, top: &TopEdge) -> LowerEdges {
        let l = |i: usize| self.l(i);
        let (w, h) = (self.w, self.h);
        let b = l(57).lerp(l(8), 0.5 + 0.10 * jitter.bottom);
        let cut = b.y - 0.05 * h;
        let rj = right.at_level(cut);
        let lj = left.at_level(cut);
        let y = b.y - 0.01 * h;
        let br = Point::new(l(48).x.min(l(59).x) - 0.04 * w, y);
        let bl = Point::new(l(54).x.max(l(55).x) + 0.04 * w, y);
        let mut curve = catmull_rom(&[rj.0, br, b, bl, lj.0], 8);
        curve[0] = rj.0;
        if let Some(last) = curve.last_mut() {
            *last = lj.0;
        }
        let rs = right.between(top.right, rj);
        let ls = left.between(top.left, lj);
        LowerEdges { bottom: curve, chin: 16, right: rs, left: ls }
    }

    /// For a mask over the chin: the lower edge runs along the jaw contours
    /// to the chin, and the sides take the share of each contour (below the
    /// top corner) that the template's sides take of its outline.
    fn lower_edge_along_jaw(
        &self,
        outline: &TemplateOutline,
        right: &Contour,
        left: &Contour,
        top: &TopEdge,
    ) -> LowerEdges {
        let (r_top, r_top_seg) = top.right;
        let (l_top, l_top_seg) = top.left;
        let t_side_r = polyline_length(&outline.right_side);
        let t_side_l = polyline_length(&outline.left_side);
        let t_bot_r = polyline_length(&outline.bottom[..=outline.chin_index]);
        let t_bot_l = polyline_length(&outline.bottom[outline.chin_index..]);
        let share_r = t_side_r / (t_side_r + t_bot_r).max(1e-6);
        let share_l = t_side_l / (t_side_l + t_bot_l).max(1e-6);
        let chin_r = (*right.pts.last().unwrap_or(&self.l(8)), right.pts.len() - 1);
        let chin_l = (*left.pts.last().unwrap_or(&self.l(8)), left.pts.len() - 1);
        let a_r = right.arc_at(r_top, r_top_seg);
        let a_l = left.arc_at(l_top, l_top_seg);
        let len_r = right.arc_at(chin_r.0, chin_r.1) - a_r;
        let len_l = left.arc_at(chin_l.0, chin_l.1) - a_l;
        let rj = right.at_arc(a_r + share_r * len_r);
        let lj = left.at_arc(a_l + share_l * len_l);
        let rs = right.between((r_top, r_top_seg), rj);
        let ls = left.between((l_top, l_top_seg), lj);
        let mut bottom = right.between(rj, chin_r);
        let lower_left = left.between(lj, chin_l);
        let chin = bottom.len() - 1;
        bottom.extend(lower_left.iter().rev().skip(1));
        LowerEdges { bottom, chin, right: rs, left: ls }
    }

    /// Checked in the face frame, before mapping back: the covered landmarks
    /// must lie inside `polygon`, the exposed ones outside it and clear of its
    /// feathered edge.
    fn check_coverage(&self, variant: MaskVariant, cover: &[usize], polygon: &[Point]) -> Result<(), PlacementError> {
        let w = self.w;
        let sigma = feather_sigma(w);
        let expose_margin = (2.5 * sigma + 1.0).max(0.02 * w);
        for &i in cover {
            let p = self.l(i);
            if !point_in_polygon(p, polygon) {
                return Err(PlacementError::Coverage { variant, landmark: i, should_cover: true });
            }
        }
        for i in variant.exposed_landmarks() {
            let p = self.l(i);
            if point_in_polygon(p, polygon) || distance_to_polygon(p, polygon) < expose_margin {
                return Err(PlacementError::Coverage { variant, landmark: i, should_cover: false });
            }
        }
        Ok(())
    }
}

impl Boundary {
    /// The outline polygon: top, left side down, bottom back to the right,
    /// right side up.
    fn polygon(&self) -> Vec<Point> {
        let mut polygon: Vec<Point> = self.top.clone();
        polygon.extend(self.left.iter().skip(1));
        polygon.extend(self.bottom.iter().rev().skip(1));
        let rn = self.right.len();
        polygon.extend(self.right.iter().rev().skip(1).take(rn.saturating_sub(2)));
        polygon
    }
}

/// The warp mesh, image side still in the face frame: Coons grids over the
/// image boundary and the template's, plus ear-loop strips, extra columns
/// outside each side, hidden on a side that faces away (its half is much
/// narrower than the other). `r_top`, `l_top` are the top edge's corners.
fn face_frame_mesh(boundary: &Boundary, outline: &TemplateOutline, fit: &Fit, r_top: Point, l_top: Point) -> Mesh {
    let target_grid = coons(boundary);
    let source_grid = coons(&template_boundary(outline));
    let nc = 2 * HALF_COLS + 1;
    let half_r = (top_curve_x(&boundary.top, boundary.nose) - r_top.x).abs().max(1e-3);
    let half_l = (l_top.x - top_curve_x(&boundary.top, boundary.nose)).abs().max(1e-3);
    let t_width = polyline_length(&outline.top).max(1e-3);
    let px_per_unit = polyline_length(&boundary.top) / t_width;
    let loop_r = if half_r / half_l < 0.55 { 0.0 } else { (half_r / half_l).min(1.0) };
    let loop_l = if half_l / half_r < 0.55 { 0.0 } else { (half_l / half_r).min(1.0) };
    let cols = nc + 2;
    let mut image_pts = Vec::with_capacity((ROWS + 1) * cols);
    let mut template_pts = Vec::with_capacity((ROWS + 1) * cols);
    for j in 0..=ROWS {
        let row_t = &target_grid[j * nc..(j + 1) * nc];
        let row_s = &source_grid[j * nc..(j + 1) * nc];
        let ext = fit.ear_loops;
        image_pts.push(Point::new(row_t[0].x - ext * px_per_unit * loop_r, row_t[0].y));
        template_pts.push(Point::new(row_s[0].x - ext, row_s[0].y));
        image_pts.extend_from_slice(row_t);
        template_pts.extend_from_slice(row_s);
        image_pts.push(Point::new(row_t[nc - 1].x + ext * px_per_unit * loop_l, row_t[nc - 1].y));
        template_pts.push(Point::new(row_s[nc - 1].x + ext, row_s[nc - 1].y));
    }
    Mesh { cols, rows: ROWS + 1, image: image_pts, template: template_pts }
}

fn top_curve_x(top: &[Point], nose: usize) -> f32 {
    top.get(nose).map(|p| p.x).unwrap_or(0.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::template::TemplateSet;

    /// A frontal face about 200 px wide, built from a mean 68-point shape.
    pub fn frontal_face() -> Landmarks68 {
        // Mean iBUG shape (roughly), face width ~ 200 px, centred at (250, 260).
        #[rustfmt::skip]
        let pts: [(f32, f32); 68] = [
            (-0.97, -0.32), (-0.95, -0.08), (-0.91, 0.15), (-0.85, 0.38), (-0.74, 0.58), (-0.57, 0.75), (-0.37, 0.88), (-0.19, 0.96),
            (0.0, 0.99), (0.19, 0.96), (0.37, 0.88), (0.57, 0.75), (0.74, 0.58), (0.85, 0.38), (0.91, 0.15), (0.95, -0.08), (0.97, -0.32),
            (-0.78, -0.55), (-0.65, -0.64), (-0.49, -0.66), (-0.33, -0.64), (-0.18, -0.59),
            (0.18, -0.59), (0.33, -0.64), (0.49, -0.66), (0.65, -0.64), (0.78, -0.55),
            (0.0, -0.44), (0.0, -0.30), (0.0, -0.16), (0.0, -0.02),
            (-0.17, 0.09), (-0.09, 0.12), (0.0, 0.14), (0.09, 0.12), (0.17, 0.09),
            (-0.60, -0.42), (-0.50, -0.48), (-0.38, -0.48), (-0.28, -0.41), (-0.39, -0.38), (-0.51, -0.37),
            (0.28, -0.41), (0.38, -0.48), (0.50, -0.48), (0.60, -0.42), (0.51, -0.37), (0.39, -0.38),
            (-0.32, 0.42), (-0.20, 0.35), (-0.08, 0.31), (0.0, 0.33), (0.08, 0.31), (0.20, 0.35), (0.32, 0.42),
            (0.21, 0.52), (0.10, 0.56), (0.0, 0.57), (-0.10, 0.56), (-0.21, 0.52),
            (-0.27, 0.42), (-0.08, 0.39), (0.0, 0.40), (0.08, 0.39), (0.27, 0.42), (0.08, 0.45), (0.0, 0.46), (-0.08, 0.45),
        ];
        let mut out = [Point::default(); 68];
        for (o, (x, y)) in out.iter_mut().zip(pts) {
            *o = Point::new(250.0 + 100.0 * x, 260.0 + 100.0 * y);
        }
        Landmarks68(out)
    }

    /// The frontal face turned: points compress toward one side with depth.
    pub fn yawed_face(yaw: f32) -> Landmarks68 {
        let f = frontal_face();
        // Rough depth per point: jaw sides far back, nose tip forward.
        f.map(|p| p).0.iter().enumerate().fold(f, |mut acc, (i, p)| {
            let x = (p.x - 250.0) / 100.0;
            let depth = match i {
                0..=16 => -0.55 * x.abs().powf(1.5),
                27..=35 => {
                    0.15 + if i == 30 {
                        0.35
                    } else if i >= 31 {
                        0.2
                    } else {
                        0.1 * (i - 27) as f32
                    }
                }
                48..=67 => 0.15 * (1.0 - x.abs()),
                _ => 0.0,
            };
            let nx = x * yaw.cos() + depth * yaw.sin();
            acc.0[i] = Point::new(250.0 + 100.0 * nx, p.y);
            acc
        })
    }

    pub fn rolled(f: &Landmarks68, angle: f32) -> Landmarks68 {
        let turn = Rotation::new(Point::new(250.0, 260.0), angle);
        f.map(|p| turn.apply(p))
    }

    fn builtin_outlines() -> Vec<(String, TemplateOutline, Fit)> {
        TemplateSet::builtin()
            .unwrap()
            .templates()
            .iter()
            .map(|t| (t.name().to_string(), t.outline.clone(), t.descriptor.fit))
            .collect()
    }

    fn faces() -> Vec<(&'static str, Landmarks68)> {
        vec![
            ("frontal", frontal_face()),
            ("yaw+25", yawed_face(0.45)),
            ("yaw-25", yawed_face(-0.45)),
            ("yaw+40", yawed_face(0.7)),
            ("roll+20", rolled(&frontal_face(), 0.35)),
            ("roll-35", rolled(&yawed_face(0.3), -0.6)),
            ("upside-down", rolled(&frontal_face(), 3.1)),
        ]
    }

    fn inside(p: &Placement, i: usize, lm: &Landmarks68) -> bool {
        point_in_polygon(lm.point(i), &p.polygon)
    }

    #[test]
    fn variants_cover_and_expose_the_right_landmarks() {
        for (tname, outline, fit) in builtin_outlines() {
            for (fname, lm) in faces() {
                for jit in [
                    Jitter::default(),
                    Jitter { top: 1.0, bottom: 1.0, width: 1.0, fit: 1.0 },
                    Jitter { top: -1.0, bottom: -1.0, width: -1.0, fit: -1.0 },
                    Jitter { top: -1.0, bottom: 1.0, width: 1.0, fit: 1.0 },
                ] {
                    let ctx = format!("{tname} on {fname} with {jit:?}");
                    let p =
                        place(&lm, MaskVariant::Correct, &outline, &fit, jit).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    for i in [30, 31, 32, 33, 34, 35].into_iter().chain(48..68) {
                        assert!(inside(&p, i, &lm), "correct: {ctx}: landmark {i} not covered");
                    }
                    let p = place(&lm, MaskVariant::NoseExposed, &outline, &fit, jit)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    for i in 48..68 {
                        assert!(inside(&p, i, &lm), "nose_exposed: {ctx}: mouth landmark {i} not covered");
                    }
                    for i in 30..36 {
                        assert!(!inside(&p, i, &lm), "nose_exposed: {ctx}: nose landmark {i} covered");
                    }
                    let p = place(&lm, MaskVariant::Chin, &outline, &fit, jit).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    for i in (27..36).chain(48..68) {
                        assert!(!inside(&p, i, &lm), "chin: {ctx}: landmark {i} covered");
                    }
                    assert!(inside(&p, 8, &lm), "chin: {ctx}: chin not covered");
                    let p = place(&lm, MaskVariant::ChinExposed, &outline, &fit, jit)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    for i in (30..36).chain(48..68) {
                        assert!(inside(&p, i, &lm), "chin_exposed: {ctx}: landmark {i} not covered");
                    }
                    assert!(!inside(&p, 8, &lm), "chin_exposed: {ctx}: chin covered");
                }
            }
        }
    }

    #[test]
    fn a_mask_worn_down_keeps_its_height_and_sags_under_the_chin() {
        let lm = frontal_face();
        let h = lm.point(27).distance(lm.point(8));
        for (tname, outline, fit) in builtin_outlines() {
            let lowest = |v: MaskVariant| {
                let p = place(&lm, v, &outline, &fit, Jitter::default()).unwrap();
                p.polygon.iter().map(|&q| p.to_face(q).y).fold(f32::MIN, f32::max)
            };
            let worn_up = lowest(MaskVariant::Correct);
            assert!(lowest(MaskVariant::NoseExposed) > worn_up + 0.5 * PULLED_DOWN_SAG * h, "{tname}: nose_exposed");
            assert!(lowest(MaskVariant::Chin) > worn_up + 0.5 * CHIN_SAG * h, "{tname}: chin");
            assert_eq!(lowest(MaskVariant::ChinExposed), lowest(MaskVariant::ChinExposed), "{tname}");
        }
    }

    #[test]
    fn polygon_stays_within_the_jaw_outline_plus_a_margin() {
        for (tname, outline, fit) in builtin_outlines() {
            for (fname, lm) in faces() {
                let jaw: Vec<Point> = lm.jaw().to_vec();
                // Jaw outline closed over the top by the brows.
                let mut hull = jaw.clone();
                hull.extend((17..27).rev().map(|i| lm.point(i)));
                let w = lm.point(16).distance(lm.point(0));
                let h = lm.point(27).distance(lm.point(8));
                for v in MaskVariant::ALL {
                    let p = place(&lm, v, &outline, &fit, Jitter::default()).unwrap();
                    // A mask worn down sags below the jaw by its extra drop (times the fit's slack, at most 1.5).
                    let sag = 1.5 * (v.worn_fit(&fit).chin_drop - fit.chin_drop) * h;
                    for q in &p.polygon {
                        let ok = point_in_polygon(*q, &hull) || distance_to_polygon(*q, &hull) < 0.12 * w + sag;
                        assert!(ok, "{tname} {v} on {fname}: polygon point {q:?} far outside the face");
                    }
                    // And the top never rises above the eyes.
                    let eyes_y = lm.right_eye_center().lerp(lm.left_eye_center(), 0.5);
                    let up = |q: Point| p.to_face(q);
                    let eye_level = up(eyes_y).y;
                    assert!(
                        p.polygon.iter().all(|&q| up(q).y > eye_level),
                        "{tname} {v} on {fname}: mask over the eyes"
                    );
                }
            }
        }
    }

    fn polygon_area(poly: &[Point]) -> f32 {
        let n = poly.len();
        (0..n).map(|i| poly[i].x * poly[(i + 1) % n].y - poly[(i + 1) % n].x * poly[i].y).sum::<f32>().abs() / 2.0
    }

    #[test]
    fn jitter_spans_high_to_low_and_tight_to_loose_within_the_rules() {
        let lm = frontal_face();
        let eye_level = lm.right_eye_center().lerp(lm.left_eye_center(), 0.5).y;
        for (tname, outline, fit) in builtin_outlines() {
            // The template's own bias (sponge sits high) shifts the range; measured without it here.
            let unbiased = Fit { top_bias: 0.0, ..fit };
            let at = |j: Jitter| place(&lm, MaskVariant::Correct, &outline, &unbiased, j).unwrap();
            let high = at(Jitter { top: -1.0, ..Jitter::default() });
            let low = at(Jitter { top: 1.0, ..Jitter::default() });
            // Worn high, the edge over the bridge sits over a quarter of the
            // bridge's length above where a low mask's does, still under the eyes.
            let bridge = lm.point(29).y - lm.point(27).y;
            assert!(low.top_y - high.top_y > 0.25 * bridge, "{tname}: high {} vs low {}", high.top_y, low.top_y);
            assert!(high.top_y < lm.point(27).y + 0.3 * bridge, "{tname}: a high mask starts at {}", high.top_y);
            assert!(high.polygon.iter().all(|q| q.y > eye_level), "{tname}: a high mask rises above the eyes");
            for i in 36..48 {
                assert!(!point_in_polygon(lm.point(i), &high.polygon), "{tname}: a high mask covers eye point {i}");
            }
            let tight = at(Jitter { fit: -1.0, ..Jitter::default() });
            let loose = at(Jitter { fit: 1.0, ..Jitter::default() });
            let (a_tight, a_loose) = (polygon_area(&tight.polygon), polygon_area(&loose.polygon));
            assert!(a_loose > 1.04 * a_tight, "{tname}: loose {a_loose} vs tight {a_tight}");
            assert!(loose.bottom_y > tight.bottom_y, "{tname}: a loose mask hangs lower under the chin");
            let narrow = at(Jitter { width: -1.0, ..Jitter::default() });
            let wide = at(Jitter { width: 1.0, ..Jitter::default() });
            assert!(wide.half_right + wide.half_left > narrow.half_right + narrow.half_left, "{tname}: width");
        }
    }

    #[test]
    fn a_template_biased_high_sits_higher_on_the_nose() {
        let lm = frontal_face();
        let (_, outline, fit) = builtin_outlines().into_iter().find(|(n, _, _)| n == "sponge").unwrap();
        assert!(fit.top_bias < -0.3, "sponge's descriptor: {fit:?}");
        let at = |f: &Fit| place(&lm, MaskVariant::Correct, &outline, f, Jitter::default()).unwrap().top_y;
        let bridge = lm.point(29).y - lm.point(27).y;
        assert!(at(&Fit { top_bias: 0.0, ..fit }) - at(&fit) > 0.08 * bridge);
    }

    #[test]
    fn turned_face_gives_the_visible_half_the_wider_half() {
        let (_, outline, fit) = builtin_outlines().remove(0);
        // Positive yaw here moves points toward +x with depth: the nose swings to
        // the image right, so the image-left half (wearer's right) is the visible one.
        let lm = yawed_face(0.5);
        let p = place(&lm, MaskVariant::Correct, &outline, &fit, Jitter::default()).unwrap();
        let mid_row = p.mesh.rows / 2;
        let row = &p.mesh.image[mid_row * p.mesh.cols..(mid_row + 1) * p.mesh.cols];
        let centre_col = p.mesh.cols / 2;
        let right_half = row[centre_col].x - row[1].x;
        let left_half = row[p.mesh.cols - 2].x - row[centre_col].x;
        assert!(right_half > 1.3 * left_half, "visible half {right_half} vs hidden {left_half}");
        // The hidden side's ear loops are folded away.
        assert!((row[p.mesh.cols - 1].x - row[p.mesh.cols - 2].x).abs() < 1e-3);
        assert!(row[1].x - row[0].x > 1.0);
    }

    #[test]
    fn landmarks_far_outside_the_image_or_degenerate_do_not_panic() {
        let (_, outline, fit) = builtin_outlines().remove(0);
        let far = frontal_face().map(|p| Point::new(p.x - 5000.0, p.y + 9000.0));
        assert!(place(&far, MaskVariant::Correct, &outline, &fit, Jitter::default()).is_ok());
        let flat = Landmarks68([Point::new(3.0, 3.0); 68]);
        assert!(matches!(
            place(&flat, MaskVariant::Correct, &outline, &fit, Jitter::default()),
            Err(PlacementError::Degenerate { .. })
        ));
        let mut nan = frontal_face();
        nan.0[5].x = f32::NAN;
        assert_eq!(
            place(&nan, MaskVariant::Chin, &outline, &fit, Jitter::default()).unwrap_err(),
            PlacementError::NonFinite
        );
    }

    #[test]
    fn variant_names_round_trip() {
        for v in MaskVariant::ALL {
            assert_eq!(v.as_str().parse::<MaskVariant>().unwrap(), v);
        }
        assert!("masked".parse::<MaskVariant>().is_err());
    }

    #[test]
    fn resample_spaces_points_evenly() {
        let pts = [Point::new(0.0, 0.0), Point::new(1.0, 0.0), Point::new(10.0, 0.0)];
        let r = resample(&pts, 5);
        assert_eq!(r.len(), 6);
        for (i, p) in r.iter().enumerate() {
            assert!((p.x - 2.0 * i as f32).abs() < 1e-4, "{r:?}");
        }
    }
}
