//! Faces without a detector (`mask --faces crop`): the face box a set of
//! landmarks implies in the HOG detector's convention, the box to start from
//! in a face crop, and the checks that 68 predicted points are a face.
//!
//! dlib's shape predictor always returns 68 points, face or not: it refines
//! its mean shape inside whatever box it is given. So a crop's points are
//! only trusted when they pass three checks:
//!
//! * **shape**: after the best similarity alignment to [`MEAN_SHAPE`], the
//!   points lie close to it (a face, not a smear);
//! * **frame**: eyes, nose and mouth lie inside the image and the face is not
//!   a small part of it (a face crop is mostly face);
//! * **anchoring**: predicted again from shifted and rescaled boxes, the
//!   points stay on the same image features. On a face they barely move;
//!   on a wall, a hand or a blank image they follow the box, because there
//!   is nothing for them to hold on to. [`follow_ratio`] measures how much.
//!
//! The constants were fitted on the faces HOG finds (full resolution, one
//! upsampling) in the sample photos and in insightface's group photo; see
//! `crates/maskforge-landmarks/examples/dump_faces.rs`.

use crate::{BBox, Landmarks68, Point};

/// The HOG box of a face relative to its landmarks, measured on faces HOG
/// finds: box side = `BOX_SIDE` × the larger side of the points' bounds of
/// the inner face (brows, eyes, nose, mouth: 17..68), box centre = their
/// centre + (`BOX_DX`, `BOX_DY`) × that side. The jaw is left out because it
/// is the least reliable part of a prediction from a poor box.
pub const BOX_SIDE: f32 = 1.325;
/// Horizontal offset of the box centre, in box sides (see [`BOX_SIDE`]).
pub const BOX_DX: f32 = 0.0;
/// Vertical offset of the box centre (down), in box sides (see [`BOX_SIDE`]).
pub const BOX_DY: f32 = 0.005;

/// Where the face box starts in a crop: a centred square of this fraction
/// of the crop's shorter side, shifted down by `START_DY` of that side.
/// Typical face crops (a detector box plus 10–50% margin) put the HOG box
/// about here; [`box_from_landmarks`] then refines it.
pub const START_SIDE: f32 = 0.7;
/// Downward shift of the starting box, as a fraction of the crop's shorter
/// side (see [`START_SIDE`]).
pub const START_DY: f32 = 0.05;

/// The mean 68-point face, normalised (eye centres at (±0.5, 0)) and made
/// symmetric (averaged with its mirror image): the reference of the shape
/// check.
#[rustfmt::skip]
pub const MEAN_SHAPE: [(f32, f32); 68] = [
    (-1.190, 0.041), (-1.180, 0.352), (-1.149, 0.672), (-1.080, 0.986), (-0.951, 1.276), (-0.768, 1.542),
    (-0.550, 1.771), (-0.302, 1.956), (0.000, 2.006), (0.302, 1.956), (0.550, 1.771), (0.768, 1.542),
    (0.951, 1.276), (1.080, 0.986), (1.149, 0.672), (1.180, 0.352), (1.190, 0.041), (-0.915, -0.201),
    (-0.770, -0.329), (-0.572, -0.366), (-0.365, -0.345), (-0.170, -0.268), (0.170, -0.268), (0.365, -0.345),
    (0.572, -0.366), (0.770, -0.329), (0.915, -0.201), (0.000, -0.041), (0.000, 0.171), (0.000, 0.382),
    (0.000, 0.599), (-0.260, 0.730), (-0.136, 0.778), (0.000, 0.820), (0.136, 0.778), (0.260, 0.730),
    (-0.693, 0.003), (-0.570, -0.056), (-0.428, -0.057), (-0.299, 0.019), (-0.434, 0.046), (-0.575, 0.044),
    (0.299, 0.019), (0.428, -0.057), (0.570, -0.056), (0.693, 0.003), (0.575, 0.044), (0.434, 0.046),
    (-0.497, 1.116), (-0.326, 1.036), (-0.140, 1.009), (0.000, 1.040), (0.140, 1.009), (0.326, 1.036),
    (0.497, 1.116), (0.330, 1.302), (0.147, 1.393), (0.000, 1.409), (-0.147, 1.393), (-0.330, 1.302),
    (-0.430, 1.129), (-0.140, 1.099), (0.000, 1.118), (0.140, 1.099), (0.430, 1.129), (0.144, 1.229),
    (0.000, 1.247), (-0.144, 1.229),
];

/// The square box in HOG's convention for a face with these landmarks.
pub fn box_from_landmarks(lm: &Landmarks68) -> BBox {
    let inner = BBox::enclosing(lm.0[17..].iter().copied());
    let side = inner.width().max(inner.height()) * BOX_SIDE;
    let c = inner.center() + Point::new(BOX_DX, BOX_DY) * side;
    let half = side / 2.0;
    BBox::new(c.x - half, c.y - half, c.x + half, c.y + half)
}

/// Where the centre of HOG's box lies below the eye midpoint, as a fraction
/// of the box side, along the face's own vertical (measured on 74 faces of
/// real crowd photos that both HOG and MTCNN found: 0.194, sd 0.06).
pub const EYES_TO_BOX_CENTRE: f32 = 0.194;

/// The box in HOG's convention of a face whose eye centres are `image_left`
/// and `image_right`, `side` px wide (a detector's box side, scaled to
/// HOG's): centred [`EYES_TO_BOX_CENTRE`] below the eyes. Eyes stay visible
/// above a mask, so this frames masked faces as well as bare ones; the side
/// comes from the detector because the eye distance shrinks on turned faces.
pub fn box_from_eyes(image_left: Point, image_right: Point, side: f32) -> BBox {
    let mid = image_left.lerp(image_right, 0.5);
    let d = image_right - image_left;
    let (sin, cos) = d.y.atan2(d.x).sin_cos();
    // The face's "down" is the eye line turned by 90°.
    let c = mid + Point::new(-sin, cos) * (EYES_TO_BOX_CENTRE * side);
    let half = side / 2.0;
    BBox::new(c.x - half, c.y - half, c.x + half, c.y + half)
}

/// Whether points predicted in a detector's box (in HOG's convention) are a
/// face that box holds: the [`shape_residual`] within `max_shape_residual`,
/// and the box the points imply ([`box_from_landmarks`]) overlapping the
/// detector's by at least `min_overlap` (intersection over union).
/// `Err` says why not, in words.
pub fn check_in_box(lm: &Landmarks68, bbox: &BBox, max_shape_residual: f32, min_overlap: f32) -> Result<(), String> {
    let residual = shape_residual(lm);
    if residual.is_nan() || residual > max_shape_residual {
        return Err(format!(
            "the 68 points do not form a face (shape residual {residual:.2}, limit {max_shape_residual:.2})"
        ));
    }
    let overlap = box_from_landmarks(lm).iou(bbox);
    if overlap.is_nan() || overlap < min_overlap {
        return Err(format!(
            "the 68 points leave the detector's box (overlap {overlap:.2}, at least {min_overlap:.2})"
        ));
    }
    Ok(())
}

/// The box to start from in a `width`×`height` face crop.
pub fn start_box(width: u32, height: u32) -> BBox {
    let (w, h) = (width as f32, height as f32);
    let side = w.min(h) * START_SIDE;
    let c = Point::new(w / 2.0, h / 2.0 + START_DY * w.min(h));
    let half = side / 2.0;
    BBox::new(c.x - half, c.y - half, c.x + half, c.y + half)
}

/// Distance between the eye centres: the face's scale.
pub fn eye_distance(lm: &Landmarks68) -> f32 {
    lm.right_eye_center().distance(lm.left_eye_center())
}

/// Root-mean-square distance of the points from [`MEAN_SHAPE`] after the best
/// similarity alignment (translation, rotation, scale), in units of the mean
/// shape's eye distance: 0 for the mean face itself, about 0.05–0.1 for real
/// faces, more for shapes no face has.
pub fn shape_residual(lm: &Landmarks68) -> f32 {
    shape_residual_to(lm, &MEAN_SHAPE)
}

/// [`shape_residual`] against another `reference` shape (same 68-point
/// order; its eye distance is the unit).
pub fn shape_residual_to(lm: &Landmarks68, reference: &[(f32, f32); 68]) -> f32 {
    let c = Point::centroid(&lm.0).unwrap_or_default();
    let q: Vec<Point> = reference.iter().map(|&(x, y)| Point::new(x, y)).collect();
    let qc = Point::centroid(&q).unwrap_or_default();
    let (mut pp, mut a, mut b) = (0.0f64, 0.0f64, 0.0f64);
    for (p, q) in lm.0.iter().zip(&q) {
        let (p, q) = (*p - c, *q - qc);
        pp += (p.x * p.x + p.y * p.y) as f64;
        a += (p.x * q.x + p.y * q.y) as f64;
        b += (p.x * q.y - p.y * q.x) as f64;
    }
    if pp <= f64::EPSILON {
        return f32::INFINITY;
    }
    let (a, b) = ((a / pp) as f32, (b / pp) as f32);
    let mut sum = 0.0f64;
    for (p, q) in lm.0.iter().zip(&q) {
        let p = *p - c;
        let aligned = Point::new(a * p.x - b * p.y, b * p.x + a * p.y);
        let d = aligned - (*q - qc);
        sum += (d.x * d.x + d.y * d.y) as f64;
    }
    let scale =
        Point::centroid(&q[36..42]).unwrap_or_default().distance(Point::centroid(&q[42..48]).unwrap_or_default());
    ((sum / 68.0).sqrt() as f32) / scale.max(f32::EPSILON)
}

/// How far the points followed a change of box: `moved` are the points
/// predicted from box `to`, `base` those from box `from`. 0: they stayed on
/// the image (a face holds them); 1: they moved exactly as the box did
/// (nothing in the image holds them).
pub fn follow_ratio(base: &Landmarks68, from: &BBox, moved: &Landmarks68, to: &BBox) -> f32 {
    let (sx, sy) = (to.width() / from.width().max(f32::EPSILON), to.height() / from.height().max(f32::EPSILON));
    let carried = |p: Point| Point::new(to.left + (p.x - from.left) * sx, to.top + (p.y - from.top) * sy);
    let (mut actual, mut rigid) = (0.0f32, 0.0f32);
    for (p, q) in base.0.iter().zip(&moved.0) {
        actual += p.distance(*q);
        rigid += p.distance(carried(*p));
    }
    if rigid <= f32::EPSILON {
        return 0.0;
    }
    actual / rigid
}

/// The shifted and rescaled boxes the anchoring check predicts from.
pub fn jittered(b: &BBox) -> [BBox; 2] {
    let (w, h) = (b.width(), b.height());
    let d = JITTER * w.max(h);
    let grow = |b: BBox, s: f32| {
        let c = b.center();
        BBox::new(
            c.x - (c.x - b.left) * s,
            c.y - (c.y - b.top) * s,
            c.x + (b.right - c.x) * s,
            c.y + (b.bottom - c.y) * s,
        )
    };
    [
        grow(BBox::new(b.left + d, b.top + d, b.right + d, b.bottom + d), 1.0 + JITTER),
        grow(BBox::new(b.left - d, b.top - d * 0.5, b.right - d, b.bottom - d * 0.5), 1.0 - JITTER),
    ]
}

/// Box shift and scale of the anchoring check, as a fraction of the box side.
pub const JITTER: f32 = 0.1;

/// The limits of the checks; [`CropLimits::default`] is what `mask --faces
/// crop` uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropLimits {
    /// Largest [`shape_residual`] accepted.
    pub max_shape_residual: f32,
    /// Largest mean [`follow_ratio`] over the [`jittered`] boxes.
    pub max_follow: f32,
    /// Smallest eye distance as a fraction of the crop's shorter side.
    pub min_eye_fraction: f32,
}

impl Default for CropLimits {
    fn default() -> Self {
        CropLimits { max_shape_residual: 0.35, max_follow: 0.5, min_eye_fraction: 0.1 }
    }
}

/// Why the points predicted in a crop are not taken for a face.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CropRejection {
    /// The points are too far from [`MEAN_SHAPE`] to be a face.
    #[error("no face in the crop: the 68 points do not form a face (shape residual {residual:.2}, limit {limit:.2})")]
    Shape {
        /// Their [`shape_residual`] (NaN for degenerate points).
        residual: f32,
        /// [`CropLimits::max_shape_residual`].
        limit: f32,
    },
    /// An eye, the nose or the mouth falls outside the crop.
    #[error("no face in the crop: {part} lies outside the image")]
    Outside {
        /// Which part, in words (`an eye`, `the nose`, `the mouth`).
        part: &'static str,
    },
    /// The eyes are too close together for a face that fills the crop.
    #[error("no face in the crop: the face found is too small ({fraction:.2} of the crop; at least {limit:.2})")]
    TooSmall {
        /// Eye distance over the crop's shorter side.
        fraction: f32,
        /// [`CropLimits::min_eye_fraction`].
        limit: f32,
    },
    /// The points moved with the box when it was jittered: nothing in the
    /// image holds them.
    #[error(
        "no face in the crop: the points follow the box instead of the image (ratio {ratio:.2}, limit {limit:.2})"
    )]
    Unanchored {
        /// Mean [`follow_ratio`] over the [`jittered`] boxes.
        ratio: f32,
        /// [`CropLimits::max_follow`].
        limit: f32,
    },
}

/// The checks that need no further prediction: shape and frame.
pub fn check_shape_and_frame(
    lm: &Landmarks68,
    width: u32,
    height: u32,
    limits: &CropLimits,
) -> Result<(), CropRejection> {
    let residual = shape_residual(lm);
    if residual.is_nan() || residual > limits.max_shape_residual {
        return Err(CropRejection::Shape { residual, limit: limits.max_shape_residual });
    }
    let (w, h) = (width as f32, height as f32);
    let inside = |p: &Point| p.x >= 0.0 && p.y >= 0.0 && p.x < w && p.y < h;
    for (part, range) in [
        ("an eye", Landmarks68::RIGHT_EYE),
        ("an eye", Landmarks68::LEFT_EYE),
        ("the nose", Landmarks68::NOSE),
        ("the mouth", Landmarks68::MOUTH),
    ] {
        if !lm.range(range).iter().all(inside) {
            return Err(CropRejection::Outside { part });
        }
    }
    let fraction = eye_distance(lm) / w.min(h).max(1.0);
    if fraction < limits.min_eye_fraction {
        return Err(CropRejection::TooSmall { fraction, limit: limits.min_eye_fraction });
    }
    Ok(())
}

/// Refinements of the box from the points before giving up on convergence.
const REFINE_STEPS: usize = 4;
/// A box that moves less than this fraction of its side has settled.
const SETTLED: f32 = 0.04;

/// Moves `bbox` to where the predicted points say HOG would have put it,
/// until it settles (or [`REFINE_STEPS`] times); returns the box the last
/// points were predicted in, and those points.
pub fn refine<E>(
    mut bbox: BBox,
    predict: &mut impl FnMut(&BBox) -> Result<Landmarks68, E>,
) -> Result<(BBox, Landmarks68), E> {
    let mut lm = predict(&bbox)?;
    for _ in 0..REFINE_STEPS {
        let next = box_from_landmarks(&lm);
        if !next.width().is_finite() || next.width() < 1.0 {
            break;
        }
        // dlib's points are whole pixels, so on a small crop the box moves by
        // a pixel or two however good it is: settled is within 4% or 2 px.
        let side = bbox.width().max(1.0);
        let tolerance = (SETTLED * side).max(2.0);
        if next.center().distance(bbox.center()) < tolerance && (next.width() - side).abs() < tolerance {
            break;
        }
        bbox = next;
        lm = predict(&bbox)?;
    }
    Ok((bbox, lm))
}

/// The face of a `width`×`height` face crop, given a landmark predictor
/// (`predict(box)` → 68 points): [`refine`] from [`start_box`], check shape
/// and frame, then predict again from the [`jittered`] boxes and check the
/// points stay on the image ([`follow_ratio`]). The outer `Err` is the
/// predictor's own failure; the inner one why the crop holds no face. The
/// score of an accepted face is `1 - follow ratio` (1: the points did not
/// move at all).
pub fn fit_crop<E>(
    width: u32,
    height: u32,
    limits: &CropLimits,
    mut predict: impl FnMut(&BBox) -> Result<Landmarks68, E>,
) -> Result<Result<crate::Face, CropRejection>, E> {
    let (bbox, lm) = refine(start_box(width, height), &mut predict)?;
    if let Err(why) = check_shape_and_frame(&lm, width, height, limits) {
        return Ok(Err(why));
    }
    let mut ratio = 0.0;
    let boxes = jittered(&bbox);
    for b in &boxes {
        ratio += follow_ratio(&lm, &bbox, &predict(b)?, b) / boxes.len() as f32;
    }
    if ratio.is_nan() || ratio > limits.max_follow {
        return Ok(Err(CropRejection::Unanchored { ratio, limit: limits.max_follow }));
    }
    Ok(Ok(crate::Face { bbox, score: 1.0 - ratio, landmarks: lm }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mean face with its eyes `eye` pixels apart, eye midpoint at `at`, rotated by `roll`.
    fn mean_face(at: Point, eye: f32, roll: f32) -> Landmarks68 {
        let (s, c) = roll.sin_cos();
        Landmarks68(MEAN_SHAPE.map(|(x, y)| Point::new(at.x + eye * (c * x - s * y), at.y + eye * (s * x + c * y))))
    }

    #[test]
    fn the_box_from_the_eyes_sits_below_them_along_the_face() {
        let b = box_from_eyes(Point::new(170.0, 150.0), Point::new(230.0, 150.0), 150.0);
        let want = BBox::new(125.0, 104.1, 275.0, 254.1);
        assert!(b.iou(&want) > 0.9999, "{b:?}");
        // Rolled a quarter turn (eyes one above the other): "below" is to the left.
        let b = box_from_eyes(Point::new(200.0, 120.0), Point::new(200.0, 180.0), 100.0);
        assert!((b.center().x - (200.0 - 19.4)).abs() < 1e-3 && (b.center().y - 150.0).abs() < 1e-3, "{b:?}");
        // The mean face: close to the box its own points give (upright, and
        // rolled, where the box of the points stays axis-aligned).
        for (roll, overlap) in [(0.0, 0.9), (0.2, 0.85)] {
            let lm = mean_face(Point::new(200.0, 150.0), 60.0, roll);
            let want = box_from_landmarks(&lm);
            let got = box_from_eyes(lm.right_eye_center(), lm.left_eye_center(), want.width());
            assert!(got.iou(&want) > overlap, "roll {roll}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn points_are_checked_against_the_box() {
        let lm = mean_face(Point::new(200.0, 150.0), 60.0, 0.1);
        let b = box_from_landmarks(&lm);
        assert_eq!(check_in_box(&lm, &b, 0.35, 0.5), Ok(()));
        let far = BBox::new(b.left + 100.0, b.top, b.right + 100.0, b.bottom);
        assert!(check_in_box(&lm, &far, 0.35, 0.5).unwrap_err().contains("leave the detector's box"));
        let mut scrambled = lm;
        scrambled.0.swap(8, 19);
        scrambled.0.swap(30, 60);
        assert!(check_in_box(&scrambled, &b, 0.1, 0.5).unwrap_err().contains("do not form a face"));
    }

    /// A face that holds its points: the same landmarks whatever the box.
    fn face_predictor(lm: Landmarks68) -> impl FnMut(&BBox) -> Result<Landmarks68, ()> {
        move |_| Ok(lm)
    }

    /// Nothing to hold on to: the mean face drawn into whatever box it gets.
    fn wall_predictor(b: &BBox) -> Result<Landmarks68, ()> {
        let unit = mean_face(Point::default(), 1.0, 0.0);
        let ub = box_from_landmarks(&unit);
        let scale = b.width() / ub.width();
        Ok(unit.map(|p| b.center() + (p - ub.center()) * scale))
    }

    #[test]
    fn the_mean_face_moved_turned_and_scaled_has_no_residual() {
        for (at, eye, roll) in [(Point::new(50.0, 40.0), 30.0, 0.0), (Point::new(-7.0, 300.0), 110.0, 0.4)] {
            let r = shape_residual(&mean_face(at, eye, roll));
            assert!(r < 1e-3, "{r}");
        }
    }

    #[test]
    fn shapes_no_face_has_are_rejected() {
        // Collapsed onto a line.
        let line = Landmarks68(std::array::from_fn(|i| Point::new(i as f32, 2.0 * i as f32)));
        assert!(shape_residual(&line) > 0.35, "{}", shape_residual(&line));
        // Mouth above the eyes.
        let mut upside = mean_face(Point::new(60.0, 50.0), 30.0, 0.0);
        for p in upside.0[48..].iter_mut() {
            p.y -= 80.0;
        }
        assert!(shape_residual(&upside) > 0.35, "{}", shape_residual(&upside));
        // All points at one place.
        assert_eq!(shape_residual(&Landmarks68([Point::new(3.0, 3.0); 68])), f32::INFINITY);
    }

    #[test]
    fn follow_ratio_is_zero_for_points_that_stay_and_one_for_points_carried_by_the_box() {
        let lm = mean_face(Point::new(60.0, 50.0), 30.0, 0.0);
        let (a, b) = (BBox::new(10.0, 10.0, 110.0, 110.0), BBox::new(20.0, 5.0, 130.0, 115.0));
        assert_eq!(follow_ratio(&lm, &a, &lm, &b), 0.0);
        let carried = lm.map(|p| Point::new(b.left + (p.x - a.left) * 1.1, b.top + (p.y - a.top) * 1.1));
        assert!((follow_ratio(&lm, &a, &carried, &b) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_crop_whose_points_hold_is_accepted_with_the_box_its_points_imply() {
        let lm = mean_face(Point::new(60.0, 52.0), 34.0, 0.05);
        let face = fit_crop(120, 120, &CropLimits::default(), face_predictor(lm)).unwrap().unwrap();
        assert_eq!(face.landmarks, lm);
        assert_eq!(face.bbox, box_from_landmarks(&lm));
        assert_eq!(face.score, 1.0);
    }

    #[test]
    fn a_crop_whose_points_follow_the_box_is_rejected() {
        let got = fit_crop(160, 160, &CropLimits::default(), wall_predictor).unwrap();
        match got {
            Err(CropRejection::Unanchored { ratio, .. }) => assert!(ratio > 0.9, "{ratio}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn faces_cut_by_the_frame_or_too_small_are_rejected() {
        let off = mean_face(Point::new(60.0, 100.0), 34.0, 0.0);
        let got = fit_crop(120, 120, &CropLimits::default(), face_predictor(off)).unwrap();
        assert_eq!(got, Err(CropRejection::Outside { part: "the nose" }));
        let tiny = mean_face(Point::new(60.0, 50.0), 6.0, 0.0);
        let got = fit_crop(120, 120, &CropLimits::default(), face_predictor(tiny)).unwrap();
        assert!(matches!(got, Err(CropRejection::TooSmall { .. })), "{got:?}");
    }

    #[test]
    fn a_predictor_failure_is_passed_on() {
        let got = fit_crop(120, 120, &CropLimits::default(), |_| Err::<Landmarks68, _>("dlib failed"));
        assert_eq!(got, Err("dlib failed"));
    }

    #[test]
    fn the_start_box_is_a_centred_square() {
        let b = start_box(100, 200);
        assert_eq!((b.width(), b.height()), (70.0, 70.0));
        assert_eq!(b.center(), Point::new(50.0, 105.0));
    }
}
