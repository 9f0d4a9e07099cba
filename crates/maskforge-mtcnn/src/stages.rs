//! The tensor-free half of MTCNN: the image pyramid, candidate boxes from
//! P-Net's maps, non-maximum suppression and the box arithmetic between the
//! three networks. It follows facenet-pytorch's `detect_face` step by step
//! (its rounding, its +1s, its clamping of crops to the image), so the
//! published weights see the inputs they were calibrated on.

/// A face candidate in full-image pixels, with the offsets a network
/// predicted for it (fractions of its width and height).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Left edge, in full-image pixels.
    pub x1: f32,
    /// Top edge, in full-image pixels.
    pub y1: f32,
    /// Right edge, in full-image pixels.
    pub x2: f32,
    /// Bottom edge, in full-image pixels.
    pub y2: f32,
    /// The face probability of the network that last scored it, in `[0, 1]`.
    pub score: f32,
    /// Offsets of `x1, y1, x2, y2` as fractions of the box's width (x) and
    /// height (y); applied by [`regress`].
    pub reg: [f32; 4],
}

/// P-Net's window and stride on its input (pixels).
const CELL: f32 = 12.0;
const STRIDE: f32 = 2.0;
/// Each pyramid level is this much smaller than the one before (MTCNN's).
pub const PYRAMID_FACTOR: f32 = 0.709;

/// The scales of the pyramid for an image whose shorter side is `min_side`:
/// the first maps a face of `min_face` px onto P-Net's 12 px window, then
/// each step shrinks by [`PYRAMID_FACTOR`] while the image still holds one
/// window. `max_levels` caps the count (a 1-px `min_face` would ask for a
/// huge first level).
pub fn pyramid_scales(min_side: u32, min_face: f32, max_levels: usize) -> Vec<f32> {
    let mut scale = CELL / min_face.max(1.0);
    let mut side = min_side as f32 * scale;
    let mut scales = Vec::new();
    while side >= CELL && scales.len() < max_levels {
        scales.push(scale);
        scale *= PYRAMID_FACTOR;
        side *= PYRAMID_FACTOR;
    }
    scales
}

/// The size P-Net sees at `scale` for a `w`×`h` image (facenet's `int(h·s + 1)`).
pub fn level_size(w: u32, h: u32, scale: f32) -> (i64, i64) {
    ((w as f32 * scale + 1.0) as i64, (h as f32 * scale + 1.0) as i64)
}

/// The candidates of one pyramid level: every cell of P-Net's face
/// probability map `prob` (`map_h`×`map_w`, row-major) at or above
/// `threshold`, with its box in full-image pixels and the four offset
/// maps' values (`reg`: 4 planes of `map_h`×`map_w`).
pub fn level_candidates(
    prob: &[f32],
    reg: &[f32],
    map_w: usize,
    map_h: usize,
    scale: f32,
    threshold: f32,
) -> Vec<Candidate> {
    let plane = map_w * map_h;
    debug_assert!(prob.len() >= plane && reg.len() >= 4 * plane);
    let mut out = Vec::new();
    for (i, &p) in prob.iter().take(plane).enumerate() {
        if p < threshold {
            continue;
        }
        let (row, col) = ((i / map_w) as f32, (i % map_w) as f32);
        let x1 = ((STRIDE * col + 1.0) / scale).floor();
        let y1 = ((STRIDE * row + 1.0) / scale).floor();
        let x2 = ((STRIDE * col + CELL) / scale).floor();
        let y2 = ((STRIDE * row + CELL) / scale).floor();
        let reg = [reg[i], reg[plane + i], reg[2 * plane + i], reg[3 * plane + i]];
        out.push(Candidate { x1, y1, x2, y2, score: p, reg });
    }
    out
}

/// How two boxes' overlap is measured in [`nms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union, areas `w·h` (torchvision's `nms`).
    Union,
    /// Intersection over the smaller area, areas `(w+1)·(h+1)` (MTCNN's
    /// last stage: drops a box inside a stronger one).
    Min,
}

/// Greedy non-maximum suppression: the strongest candidate first, dropping
/// every later one that overlaps a kept one by more than `threshold`.
/// Returns the kept indices in input order. Ties keep the earlier
/// candidate, so the result does not depend on the sort's stability.
pub fn nms_indices(cands: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score).then(a.cmp(&b)));
    let plus = if overlap == Overlap::Min { 1.0 } else { 0.0 };
    let area = |c: &Candidate| (c.x2 - c.x1 + plus).max(0.0) * (c.y2 - c.y1 + plus).max(0.0);
    let mut kept: Vec<usize> = Vec::new();
    for &i in &order {
        let c = &cands[i];
        let suppressed = kept.iter().any(|&k| {
            let k = &cands[k];
            let iw = (c.x2.min(k.x2) - c.x1.max(k.x1) + plus).max(0.0);
            let ih = (c.y2.min(k.y2) - c.y1.max(k.y1) + plus).max(0.0);
            let inter = iw * ih;
            let denom = match overlap {
                Overlap::Union => area(c) + area(k) - inter,
                Overlap::Min => area(c).min(area(k)),
            };
            denom > 0.0 && inter / denom > threshold
        });
        if !suppressed {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept
}

/// [`nms_indices`], keeping the candidates themselves.
pub fn nms(cands: Vec<Candidate>, threshold: f32, overlap: Overlap) -> Vec<Candidate> {
    nms_indices(&cands, threshold, overlap).into_iter().map(|i| cands[i]).collect()
}

/// Moves a box by its offsets; `plus_one` measures the box as
/// `x2 - x1 + 1` wide (the second and third stages), else `x2 - x1` (the
/// first).
pub fn regress(c: &Candidate, plus_one: bool) -> Candidate {
    let extra = if plus_one { 1.0 } else { 0.0 };
    let (w, h) = (c.x2 - c.x1 + extra, c.y2 - c.y1 + extra);
    Candidate {
        x1: c.x1 + c.reg[0] * w,
        y1: c.y1 + c.reg[1] * h,
        x2: c.x2 + c.reg[2] * w,
        y2: c.y2 + c.reg[3] * h,
        ..*c
    }
}

/// The square around a box's centre with side its longer side.
pub fn square(c: &Candidate) -> Candidate {
    let (w, h) = (c.x2 - c.x1, c.y2 - c.y1);
    let l = w.max(h);
    let x1 = c.x1 + w * 0.5 - l * 0.5;
    let y1 = c.y1 + h * 0.5 - l * 0.5;
    Candidate { x1, y1, x2: x1 + l, y2: y1 + l, ..*c }
}

/// The pixels a candidate's crop takes from a `w`×`h` image: the box
/// truncated to whole pixels and clamped into the image, as a half-open
/// range (`x0, y0, x1, y1`); `None` when nothing is left.
pub fn crop_window(c: &Candidate, w: u32, h: u32) -> Option<(i64, i64, i64, i64)> {
    if ![c.x1, c.y1, c.x2, c.y2].iter().all(|v| v.is_finite()) {
        return None;
    }
    // 1-based like MATLAB's original: the crop is x-1..ex.
    let (x, y) = ((c.x1.trunc() as i64).max(1), (c.y1.trunc() as i64).max(1));
    let (ex, ey) = ((c.x2.trunc() as i64).min(w as i64), (c.y2.trunc() as i64).min(h as i64));
    (ex >= x && ey >= y).then_some((x - 1, y - 1, ex, ey))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Candidate {
        Candidate { x1, y1, x2, y2, score, reg: [0.0; 4] }
    }

    #[test]
    fn the_pyramid_starts_at_the_smallest_face_and_stops_at_the_window() {
        // A 400 px image, faces from 24 px: 12/24 = 0.5, then ×0.709 while ≥ 12 px.
        let s = pyramid_scales(400, 24.0, 64);
        assert_eq!(s[0], 0.5);
        assert!((s[1] - 0.3545).abs() < 1e-6);
        assert!(s.iter().all(|&x| 400.0 * x >= 12.0));
        assert!(400.0 * s.last().unwrap() * PYRAMID_FACTOR < 12.0);
        assert_eq!(s.len(), 9);
        assert_eq!(pyramid_scales(400, 1.0, 3).len(), 3);
        assert!(pyramid_scales(10, 24.0, 64).is_empty());
    }

    #[test]
    fn candidates_map_cells_back_to_the_image() {
        // A 2×3 map, one cell over the threshold: row 1, column 2.
        let prob = [0.1, 0.2, 0.3, 0.4, 0.5, 0.95];
        let mut reg = vec![0.0; 24];
        reg[5] = 0.1;
        reg[6 + 5] = -0.2;
        let c = level_candidates(&prob, &reg, 3, 2, 0.5, 0.6);
        assert_eq!(c.len(), 1);
        // x: (2·2 + 1)/0.5 = 10 .. (2·2 + 12)/0.5 = 32; y: (2 + 1)/0.5 = 6 .. (2 + 12)/0.5 = 28.
        assert_eq!((c[0].x1, c[0].y1, c[0].x2, c[0].y2, c[0].score), (10.0, 6.0, 32.0, 28.0, 0.95));
        assert_eq!(c[0].reg, [0.1, -0.2, 0.0, 0.0]);
    }

    #[test]
    fn nms_keeps_the_strongest_of_overlapping_boxes_in_input_order() {
        let boxes = vec![
            cand(0.0, 0.0, 10.0, 10.0, 0.8),
            cand(1.0, 1.0, 11.0, 11.0, 0.9),
            cand(50.0, 50.0, 60.0, 60.0, 0.5),
            cand(2.0, 2.0, 8.0, 8.0, 0.7),
        ];
        let kept = nms(boxes.clone(), 0.5, Overlap::Union);
        // The small box inside has IoU 36/100 with the first: kept by union...
        assert_eq!(kept.iter().map(|c| c.score).collect::<Vec<_>>(), vec![0.9, 0.5, 0.7]);
        // ...dropped by min (it lies inside the 0.9 box).
        let kept = nms(boxes, 0.7, Overlap::Min);
        assert_eq!(kept.iter().map(|c| c.score).collect::<Vec<_>>(), vec![0.9, 0.5]);
    }

    #[test]
    fn regression_squaring_and_crops() {
        let c = Candidate { reg: [0.1, 0.0, -0.1, 0.5], ..cand(10.0, 20.0, 30.0, 40.0, 1.0) };
        let r = regress(&c, false);
        assert_eq!((r.x1, r.y1, r.x2, r.y2), (12.0, 20.0, 28.0, 50.0));
        let r1 = regress(&c, true);
        assert!((r1.x1 - 12.1).abs() < 1e-5 && (r1.y2 - 50.5).abs() < 1e-5);
        let s = square(&r);
        assert_eq!((s.x1, s.y1, s.x2, s.y2), (5.0, 20.0, 35.0, 50.0));
        assert_eq!(crop_window(&s, 100, 100), Some((4, 19, 35, 50)));
        // Clamped into the image; nothing left outside it.
        assert_eq!(crop_window(&cand(-20.0, -5.0, 8.0, 300.0, 1.0), 100, 100), Some((0, 0, 8, 100)));
        assert_eq!(crop_window(&cand(200.0, 200.0, 220.0, 220.0, 1.0), 100, 100), None);
        assert_eq!(crop_window(&cand(f32::NAN, 0.0, f32::NAN, 5.0, 1.0), 100, 100), None);
    }
}
