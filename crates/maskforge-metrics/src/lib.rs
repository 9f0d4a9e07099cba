//! Classification metrics, free of any ML framework so that they can be
//! checked by hand: a confusion matrix, accuracy, per-class precision,
//! recall, F1 and support, macro and weighted averages, and a text report in
//! the layout of scikit-learn's `classification_report` (the layout the
//! seeds' reports use), plus JSON through serde.
//!
//! Conventions follow scikit-learn: rows of the confusion matrix are true
//! classes, columns predicted ones; a precision or recall whose denominator
//! is zero (a class never predicted, or absent from the data) is reported
//! as 0; the weighted average weights each class by its support.

pub mod scenes;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Counts of (true class, predicted class) pairs for `n` classes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    n: usize,
    /// Row-major `n × n`: `counts[t * n + p]`.
    counts: Vec<u64>,
}

/// A class index outside `0..n` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOutOfRange {
    /// The offending class index.
    pub index: usize,
    /// The number of classes of the matrix (valid indices are `0..n_classes`).
    pub n_classes: usize,
}

impl std::fmt::Display for ClassOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "class index {} out of range for {} classes", self.index, self.n_classes)
    }
}

impl std::error::Error for ClassOutOfRange {}

impl ConfusionMatrix {
    /// An all-zero `n_classes × n_classes` matrix.
    pub fn new(n_classes: usize) -> Self {
        ConfusionMatrix { n: n_classes, counts: vec![0; n_classes * n_classes] }
    }

    /// Builds a matrix from `(true, predicted)` pairs.
    pub fn from_pairs(
        n_classes: usize,
        pairs: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<Self, ClassOutOfRange> {
        let mut m = Self::new(n_classes);
        for (t, p) in pairs {
            m.add(t, p)?;
        }
        Ok(m)
    }

    /// Builds a matrix from its rows (true classes); rows must be square.
    pub fn from_rows(rows: &[Vec<u64>]) -> Option<Self> {
        let n = rows.len();
        if rows.iter().any(|r| r.len() != n) {
            return None;
        }
        Some(ConfusionMatrix { n, counts: rows.iter().flatten().copied().collect() })
    }

    /// Counts one sample of true class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<(), ClassOutOfRange> {
        for index in [truth, predicted] {
            if index >= self.n {
                return Err(ClassOutOfRange { index, n_classes: self.n });
            }
        }
        self.counts[truth * self.n + predicted] += 1;
        Ok(())
    }

    /// Adds another matrix of the same size (e.g. from another batch).
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        assert_eq!(self.n, other.n, "merging confusion matrices of different sizes");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The number of classes (the matrix is `n × n`).
    pub fn n_classes(&self) -> usize {
        self.n
    }

    /// Samples of true class `truth` predicted as `predicted`; panics when
    /// either index is out of range.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.n + predicted]
    }

    /// The counts as rows (one per true class), the inverse of [`Self::from_rows`].
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts.chunks(self.n.max(1)).map(<[u64]>::to_vec).take(self.n).collect()
    }

    /// Every sample counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Samples predicted as their true class (the diagonal's sum).
    pub fn correct(&self) -> u64 {
        (0..self.n).map(|i| self.get(i, i)).sum()
    }

    /// Fraction of samples on the diagonal; 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Samples whose true class is `c` (row sum).
    pub fn support(&self, c: usize) -> u64 {
        (0..self.n).map(|p| self.get(c, p)).sum()
    }

    /// Samples predicted as `c` (column sum).
    pub fn predicted(&self, c: usize) -> u64 {
        (0..self.n).map(|t| self.get(t, c)).sum()
    }

    /// Of the samples predicted as `c`, the fraction truly `c`; 0 when none was.
    pub fn precision(&self, c: usize) -> f64 {
        ratio(self.get(c, c), self.predicted(c))
    }

    /// Of the samples truly `c`, the fraction predicted as `c`; 0 when none was.
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.get(c, c), self.support(c))
    }

    /// Harmonic mean of [`Self::precision`] and [`Self::recall`] of `c`
    /// (0 when both are 0).
    pub fn f1(&self, c: usize) -> f64 {
        f1(self.precision(c), self.recall(c))
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Precision, recall, F1 and support of one class or one average.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The class name, or the average's label ("macro avg", "weighted avg").
    pub name: String,
    /// Fraction of the samples predicted as the class that truly are, in `[0, 1]`.
    pub precision: f64,
    /// Fraction of the class's samples predicted as it, in `[0, 1]`.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Samples of the class (for an average: every sample).
    pub support: u64,
}

/// Everything a classification report shows, ready for text or JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// One row per class, in index order.
    pub classes: Vec<ClassMetrics>,
    /// Fraction of all samples classified right.
    pub accuracy: f64,
    /// Unweighted mean over classes (sklearn's "macro avg").
    pub macro_avg: ClassMetrics,
    /// Mean over classes weighted by support (sklearn's "weighted avg").
    pub weighted_avg: ClassMetrics,
    /// Every sample counted.
    pub total: u64,
    /// The confusion matrix's rows: true classes, predicted ones across.
    pub confusion_matrix: Vec<Vec<u64>>,
}

impl ClassificationReport {
    /// Computes the report; `names` gives the class names in index order
    /// (missing names are written as the index).
    pub fn new(cm: &ConfusionMatrix, names: &[String]) -> Self {
        let n = cm.n_classes();
        let classes: Vec<ClassMetrics> = (0..n)
            .map(|c| ClassMetrics {
                name: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                precision: cm.precision(c),
                recall: cm.recall(c),
                f1: cm.f1(c),
                support: cm.support(c),
            })
            .collect();
        let total = cm.total();
        let mean = |f: &dyn Fn(&ClassMetrics) -> f64| {
            if n == 0 {
                0.0
            } else {
                classes.iter().map(f).sum::<f64>() / n as f64
            }
        };
        let weighted = |f: &dyn Fn(&ClassMetrics) -> f64| {
            if total == 0 {
                0.0
            } else {
                classes.iter().map(|c| f(c) * c.support as f64).sum::<f64>() / total as f64
            }
        };
        let macro_avg = ClassMetrics {
            name: "macro avg".into(),
            precision: mean(&|c| c.precision),
            recall: mean(&|c| c.recall),
            f1: mean(&|c| c.f1),
            support: total,
        };
        let weighted_avg = ClassMetrics {
            name: "weighted avg".into(),
            precision: weighted(&|c| c.precision),
            recall: weighted(&|c| c.recall),
            f1: weighted(&|c| c.f1),
            support: total,
        };
        ClassificationReport {
            classes,
            accuracy: cm.accuracy(),
            macro_avg,
            weighted_avg,
            total,
            confusion_matrix: cm.rows(),
        }
    }

    /// The report in scikit-learn's `classification_report` layout, with
    /// `digits` decimals (sklearn's default is 2).
    pub fn to_text(&self, digits: usize) -> String {
        let heading_width = self.classes.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
        let width = heading_width.max("weighted avg".len()).max(digits);
        let mut s = String::new();
        // `{:>width$} ` then ` {:>9}` per column, exactly as sklearn pads.
        let _ = writeln!(s, "{:>width$}  {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "f1-score", "support");
        s.push('\n');
        let row = |s: &mut String, m: &ClassMetrics| {
            let _ = writeln!(
                s,
                "{:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}",
                m.name, m.precision, m.recall, m.f1, m.support
            );
        };
        for c in &self.classes {
            row(&mut s, c);
        }
        s.push('\n');
        let _ =
            writeln!(s, "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}", "accuracy", "", "", self.accuracy, self.total);
        row(&mut s, &self.macro_avg);
        row(&mut s, &self.weighted_avg);
        s
    }

    /// The confusion matrix as an aligned table: rows are true classes,
    /// columns predicted ones.
    pub fn confusion_text(&self) -> String {
        let names: Vec<&str> = self.classes.iter().map(|c| c.name.as_str()).collect();
        let max_count = self.confusion_matrix.iter().flatten().copied().max().unwrap_or(0);
        let col = names.iter().map(|n| n.chars().count()).max().unwrap_or(1).max(max_count.to_string().len()).max(4);
        let label = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max("true \\ predicted".len());
        let mut s = String::new();
        let _ = write!(s, "{:<label$}", "true \\ predicted");
        for n in &names {
            let _ = write!(s, "  {n:>col$}");
        }
        s.push('\n');
        for (name, row) in names.iter().zip(&self.confusion_matrix) {
            let _ = write!(s, "{name:<label$}");
            for v in row {
                let _ = write!(s, "  {v:>col$}");
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Binary case worked by hand:
    ///            pred 0  pred 1
    ///   true 0      5       1
    ///   true 1      2       4
    /// class 0: P = 5/7, R = 5/6; class 1: P = 4/5, R = 4/6; accuracy 9/12.
    #[test]
    fn binary_by_hand() {
        let pairs = [(0, 0); 5].into_iter().chain([(0, 1)]).chain([(1, 0); 2]).chain([(1, 1); 4]);
        let cm = ConfusionMatrix::from_pairs(2, pairs).unwrap();
        assert_eq!(cm.rows(), vec![vec![5, 1], vec![2, 4]]);
        assert!(close(cm.accuracy(), 0.75));
        assert!(close(cm.precision(0), 5.0 / 7.0));
        assert!(close(cm.recall(0), 5.0 / 6.0));
        assert!(close(cm.precision(1), 0.8));
        assert!(close(cm.recall(1), 4.0 / 6.0));
        let f1_0 = 2.0 * (5.0 / 7.0) * (5.0 / 6.0) / (5.0 / 7.0 + 5.0 / 6.0); // 10/13
        assert!(close(cm.f1(0), f1_0));
        assert!(close(f1_0, 10.0 / 13.0));
        let f1_1 = 2.0 * 0.8 * (2.0 / 3.0) / (0.8 + 2.0 / 3.0); // 8/11
        assert!(close(cm.f1(1), 8.0 / 11.0));

        let r = ClassificationReport::new(&cm, &names(&["unmasked", "masked"]));
        assert!(close(r.macro_avg.precision, (5.0 / 7.0 + 0.8) / 2.0));
        assert!(close(r.macro_avg.f1, (f1_0 + f1_1) / 2.0));
        // Supports are 6 and 6, so weighted = macro here.
        assert!(close(r.weighted_avg.recall, 0.75));
        assert_eq!(r.total, 12);
    }

    /// Three classes with an unpredicted class and unequal supports:
    ///            p0  p1  p2
    ///   t0        3   0   1
    ///   t1        1   0   1
    ///   t2        0   0   4
    #[test]
    fn three_classes_zero_division_and_weighted() {
        let cm = ConfusionMatrix::from_rows(&[vec![3, 0, 1], vec![1, 0, 1], vec![0, 0, 4]]).unwrap();
        let r = ClassificationReport::new(&cm, &names(&["a", "b", "c"]));
        // class a: P 3/4, R 3/4; b: never predicted → P 0, R 0, F1 0; c: P 4/6, R 1.
        assert!(close(r.classes[0].precision, 0.75) && close(r.classes[0].recall, 0.75));
        assert_eq!((r.classes[1].precision, r.classes[1].recall, r.classes[1].f1), (0.0, 0.0, 0.0));
        assert!(close(r.classes[2].precision, 4.0 / 6.0) && close(r.classes[2].recall, 1.0));
        assert!(close(r.classes[2].f1, 0.8));
        assert_eq!(r.classes.iter().map(|c| c.support).collect::<Vec<_>>(), vec![4, 2, 4]);
        assert!(close(r.accuracy, 0.7));
        assert!(close(r.macro_avg.recall, (0.75 + 0.0 + 1.0) / 3.0));
        assert!(close(r.weighted_avg.precision, (0.75 * 4.0 + 0.0 * 2.0 + 4.0 / 6.0 * 4.0) / 10.0));
        assert!(close(r.weighted_avg.f1, (0.75 * 4.0 + 0.8 * 4.0) / 10.0));
    }

    #[test]
    fn text_layout_matches_sklearn() {
        // sklearn.metrics.classification_report(y, p, target_names=["a", "b"])
        // for the binary matrix above, digits=2, is exactly this text.
        let cm = ConfusionMatrix::from_rows(&[vec![5, 1], vec![2, 4]]).unwrap();
        let r = ClassificationReport::new(&cm, &names(&["a", "b"]));
        let expected = "              precision    recall  f1-score   support\n\
                        \n\
                        \x20          a       0.71      0.83      0.77         6\n\
                        \x20          b       0.80      0.67      0.73         6\n\
                        \n\
                        \x20   accuracy                           0.75        12\n\
                        \x20  macro avg       0.76      0.75      0.75        12\n\
                        weighted avg       0.76      0.75      0.75        12\n";
        assert_eq!(r.to_text(2), expected);
    }

    #[test]
    fn long_names_widen_the_first_column_and_json_round_trips() {
        let cm = ConfusionMatrix::from_rows(&[vec![1, 0], vec![0, 1]]).unwrap();
        let r = ClassificationReport::new(&cm, &names(&["AFDB_masked_face_dataset", "without_mask"]));
        let text = r.to_text(2);
        assert!(text.contains("AFDB_masked_face_dataset       1.00      1.00      1.00         1\n"), "{text}");
        assert!(text.contains("            without_mask       1.00"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        let back: ClassificationReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(r.confusion_text().contains("true \\ predicted"));
    }

    #[test]
    fn out_of_range_and_empty() {
        let mut cm = ConfusionMatrix::new(2);
        assert_eq!(cm.add(2, 0), Err(ClassOutOfRange { index: 2, n_classes: 2 }));
        let r = ClassificationReport::new(&cm, &[]);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.classes[0].name, "0");
        assert!(ConfusionMatrix::from_rows(&[vec![1, 2], vec![3]]).is_none());
    }
}
