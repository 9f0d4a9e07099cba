//! Scoring a face detector and classifier together on labelled photos
//! (`maskforge predict --labels`): which annotated faces were found, which
//! boxes match no annotated face, and how the found faces were classified,
//! by class and by size band.
//!
//! A detection finds an annotated face when their boxes overlap by at least
//! `min_iou` (intersection over union); pairs are made greedily, best
//! overlap first, one to one. Annotated boxes range from tight faces to whole
//! heads, so a lenient threshold (0.3) is the default of the callers.

use crate::ConfusionMatrix;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The size bands of faces, by the shorter side of the annotated box (px):
/// name, lower bound (inclusive), upper bound (exclusive).
pub const SIZE_BANDS: [(&str, f32, f32); 4] =
    [("<32", 0.0, 32.0), ("32-63", 32.0, 64.0), ("64-127", 64.0, 128.0), (">=128", 128.0, f32::INFINITY)];

/// Faces of at least this size (shorter side, px) make the headline recall.
pub const HEADLINE_MIN_SIDE: f32 = 32.0;

/// A box `[left, top, right, bottom]` in pixels with a class index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassedBox {
    /// `[left, top, right, bottom]`, pixels.
    pub bbox: [f32; 4],
    /// Index into [`SceneScore::classes`].
    pub class: usize,
}

/// Intersection over union of two boxes (0 for empty or non-finite ones).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - iw * ih;
    let v = if union > 0.0 { iw * ih / union } else { 0.0 };
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Greedy one-to-one matching, best overlap first (ties: lower indices
/// first): `(truth index, detection index)` pairs overlapping by at least
/// `min_iou`.
pub fn match_boxes(truth: &[[f32; 4]], detections: &[[f32; 4]], min_iou: f32) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (t, tb) in truth.iter().enumerate() {
        for (d, db) in detections.iter().enumerate() {
            let v = iou(tb, db);
            if v >= min_iou && v > 0.0 {
                pairs.push((v, t, d));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut t_used, mut d_used) = (vec![false; truth.len()], vec![false; detections.len()]);
    let mut out = Vec::new();
    for (_, t, d) in pairs {
        if !t_used[t] && !d_used[d] {
            t_used[t] = true;
            d_used[d] = true;
            out.push((t, d));
        }
    }
    out.sort_unstable();
    out
}

/// Annotated faces, how many were found, and how many of those were
/// classified right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceCounts {
    /// Annotated faces.
    pub annotated: u64,
    /// Annotated faces a detection matched.
    pub found: u64,
    /// Found faces whose detection has the annotated class.
    pub correct: u64,
}

impl FaceCounts {
    /// Found / annotated (0 when none was annotated).
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.annotated)
    }

    /// Correct / found (0 when none was found).
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.found)
    }

    fn add(&mut self, found: bool, correct: bool) {
        self.annotated += 1;
        self.found += u64::from(found);
        self.correct += u64::from(found && correct);
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The score of a run over labelled photos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneScore {
    /// Class names, in index order.
    pub classes: Vec<String>,
    /// The least intersection over union at which a detection finds an
    /// annotated face.
    pub min_iou: f32,
    /// Photos added.
    pub photos: u64,
    /// Faces of at least [`HEADLINE_MIN_SIDE`] px.
    pub headline: FaceCounts,
    /// Every face, by its annotated class.
    pub by_class: Vec<FaceCounts>,
    /// Every face, by [`SIZE_BANDS`].
    pub by_band: Vec<FaceCounts>,
    /// All boxes the detector gave.
    pub detections: u64,
    /// Boxes that match no annotated face (false positives at `min_iou`).
    pub unmatched: u64,
    /// Annotated class (rows) against predicted class (columns), over the
    /// faces found.
    pub confusion: ConfusionMatrix,
}

impl SceneScore {
    /// An empty score for `classes`, matching at `min_iou`.
    pub fn new(classes: Vec<String>, min_iou: f32) -> Self {
        let n = classes.len();
        SceneScore {
            min_iou,
            photos: 0,
            headline: FaceCounts::default(),
            by_class: vec![FaceCounts::default(); n],
            by_band: vec![FaceCounts::default(); SIZE_BANDS.len()],
            detections: 0,
            unmatched: 0,
            confusion: ConfusionMatrix::new(n),
            classes,
        }
    }

    /// Adds one photo: its annotated faces and the detector's classified
    /// boxes. Class indices at or above the class count are an error.
    pub fn add_photo(&mut self, truth: &[ClassedBox], detections: &[ClassedBox]) -> Result<(), String> {
        let n = self.classes.len();
        if let Some(c) = truth.iter().chain(detections).map(|b| b.class).find(|&c| c >= n) {
            return Err(format!("class index {c} with {n} classes"));
        }
        let tb: Vec<[f32; 4]> = truth.iter().map(|b| b.bbox).collect();
        let db: Vec<[f32; 4]> = detections.iter().map(|b| b.bbox).collect();
        let pairs = match_boxes(&tb, &db, self.min_iou);
        let mut matched_det = vec![false; detections.len()];
        let mut found_by = vec![None; truth.len()];
        for &(t, d) in &pairs {
            matched_det[d] = true;
            found_by[t] = Some(d);
        }
        for (t, b) in truth.iter().enumerate() {
            let predicted = found_by[t].map(|d| detections[d].class);
            let (found, correct) = (predicted.is_some(), predicted == Some(b.class));
            if let Some(p) = predicted {
                self.confusion.add(b.class, p).map_err(|e| e.to_string())?;
            }
            self.by_class[b.class].add(found, correct);
            let side = (b.bbox[2] - b.bbox[0]).min(b.bbox[3] - b.bbox[1]);
            if let Some(band) = SIZE_BANDS.iter().position(|&(_, lo, hi)| side >= lo && side < hi) {
                self.by_band[band].add(found, correct);
            }
            if side >= HEADLINE_MIN_SIDE {
                self.headline.add(found, correct);
            }
        }
        self.photos += 1;
        self.detections += detections.len() as u64;
        self.unmatched += matched_det.iter().filter(|m| !**m).count() as u64;
        Ok(())
    }

    /// Balanced accuracy over the faces found: the mean of the per-class
    /// accuracies of the classes that have found faces.
    pub fn balanced_accuracy(&self) -> f64 {
        let with_faces: Vec<f64> = self.by_class.iter().filter(|c| c.found > 0).map(FaceCounts::accuracy).collect();
        if with_faces.is_empty() {
            0.0
        } else {
            with_faces.iter().sum::<f64>() / with_faces.len() as f64
        }
    }

    /// The report as text: headline, by class, by size band, confusion.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let all: FaceCounts = self.by_class.iter().fold(FaceCounts::default(), |a, c| FaceCounts {
            annotated: a.annotated + c.annotated,
            found: a.found + c.found,
            correct: a.correct + c.correct,
        });
        let _ = writeln!(
            s,
            "{} photos, {} annotated faces, {} detector boxes ({} match no annotated face: {:.1}%); match at IoU >= {}",
            self.photos,
            all.annotated,
            self.detections,
            self.unmatched,
            100.0 * ratio(self.unmatched, self.detections),
            self.min_iou
        );
        let _ = writeln!(
            s,
            "faces >= {HEADLINE_MIN_SIDE} px found: {:.1}% ({}/{}); classified right: {:.1}% of those found; balanced accuracy {:.1}%",
            100.0 * self.headline.recall(),
            self.headline.found,
            self.headline.annotated,
            100.0 * self.headline.accuracy(),
            100.0 * self.balanced_accuracy()
        );
        let _ = writeln!(s, "\n{:<16} {:>9} {:>7} {:>7} {:>9}", "", "annotated", "found", "recall", "accuracy");
        let rows = self
            .classes
            .iter()
            .map(String::as_str)
            .zip(&self.by_class)
            .chain([("all", &all)])
            .chain(SIZE_BANDS.iter().map(|b| b.0).zip(&self.by_band));
        for (name, c) in rows {
            let _ = writeln!(
                s,
                "{name:<16} {:>9} {:>7} {:>6.1}% {:>8.1}%",
                c.annotated,
                c.found,
                100.0 * c.recall(),
                100.0 * c.accuracy()
            );
        }
        let _ = writeln!(s, "\nconfusion (rows: annotated class, columns: predicted), faces found:");
        let w = self.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max(8) + 2;
        let _ = writeln!(s, "{:<16} {}", "", self.classes.iter().map(|c| format!("{c:>w$}")).collect::<String>());
        for (name, row) in self.classes.iter().zip(self.confusion.rows()) {
            let _ = writeln!(s, "{name:<16} {}", row.iter().map(|v| format!("{v:>w$}")).collect::<String>());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(l: f32, t: f32, r: f32, bo: f32, class: usize) -> ClassedBox {
        ClassedBox { bbox: [l, t, r, bo], class }
    }

    #[test]
    fn matching_is_one_to_one_best_overlap_first() {
        let truth = [[0.0, 0.0, 10.0, 10.0], [8.0, 0.0, 18.0, 10.0]];
        // Detection 0 overlaps truth 1 best (IoU 0.67) and truth 0 a little (0.25).
        let dets = [[6.0, 0.0, 16.0, 10.0], [0.0, 0.0, 9.0, 10.0], [50.0, 50.0, 60.0, 60.0]];
        assert_eq!(match_boxes(&truth, &dets, 0.3), vec![(0, 1), (1, 0)]);
        assert_eq!(match_boxes(&truth, &dets, 0.95), vec![]);
        assert_eq!(iou(&[0.0, 0.0, f32::NAN, 1.0], &[0.0, 0.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn faces_are_counted_by_class_band_and_headline() {
        let mut s = SceneScore::new(vec!["mask".into(), "no_mask".into()], 0.3);
        // A 100 px masked face found and right, a 40 px bare face found but
        // called masked, a 20 px masked face missed; one false box.
        let truth = [b(0.0, 0.0, 100.0, 100.0, 0), b(200.0, 0.0, 240.0, 40.0, 1), b(300.0, 0.0, 320.0, 20.0, 0)];
        let dets = [b(2.0, 2.0, 98.0, 104.0, 0), b(198.0, 0.0, 238.0, 42.0, 0), b(500.0, 500.0, 560.0, 560.0, 1)];
        s.add_photo(&truth, &dets).unwrap();
        assert_eq!(s.by_class[0], FaceCounts { annotated: 2, found: 1, correct: 1 });
        assert_eq!(s.by_class[1], FaceCounts { annotated: 1, found: 1, correct: 0 });
        assert_eq!(s.by_band[0], FaceCounts { annotated: 1, found: 0, correct: 0 });
        assert_eq!(s.by_band[1], FaceCounts { annotated: 1, found: 1, correct: 0 });
        assert_eq!(s.by_band[2], FaceCounts { annotated: 1, found: 1, correct: 1 });
        assert_eq!(s.headline, FaceCounts { annotated: 2, found: 2, correct: 1 });
        assert_eq!((s.detections, s.unmatched, s.photos), (3, 1, 1));
        assert_eq!(s.confusion.rows(), vec![vec![1, 0], vec![1, 0]]);
        assert_eq!(s.balanced_accuracy(), 0.5);
        let t = s.table();
        assert!(t.contains("3 detector boxes (1 match no annotated face: 33.3%)"), "{t}");
        assert!(t.contains("faces >= 32 px found: 100.0% (2/2); classified right: 50.0%"), "{t}");
        // A photo with no annotated face: every box is unmatched.
        s.add_photo(&[], &[b(0.0, 0.0, 5.0, 5.0, 1)]).unwrap();
        assert_eq!((s.detections, s.unmatched, s.photos), (4, 2, 2));
        assert!(s.add_photo(&[b(0.0, 0.0, 5.0, 5.0, 2)], &[]).is_err());
    }
}
