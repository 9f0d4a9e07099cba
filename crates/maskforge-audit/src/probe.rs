//! The probe: can the classes be told apart by cues that are not the label?
//! A nearest-centroid classifier on standardised cue vectors, and one on each
//! cue alone, scored by cross-validated balanced accuracy (mean per-class
//! recall, so an unbalanced set does not look separable) and compared with a
//! bar above chance that grows with the noise of a small sample.

use serde::Serialize;

/// How many folds the cross-validation uses.
pub const FOLDS: usize = 5;
/// Standard errors above chance a score must reach to count (about one
/// false alarm in a thousand per test, for the ~15 tests of an audit).
const Z: f64 = 3.0;
/// The least gap to chance that counts at any sample size.
const MIN_GAP: f64 = 0.05;

/// The samples of a probe: one cue vector, class and fold each.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// One cue vector per sample, in [`crate::CUE_NAMES`] order.
    pub features: Vec<Vec<f64>>,
    /// Class index of each sample, below `class_count`.
    pub classes: Vec<usize>,
    /// Cross-validation fold of each sample (keep a source's images together).
    pub folds: Vec<usize>,
    /// Number of classes.
    pub class_count: usize,
}

/// A cross-validated score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    /// What was probed: `all cues` or one cue's name.
    pub cue: String,
    /// Cross-validated mean per-class recall, in `[0, 1]`.
    pub balanced_accuracy: f64,
}

impl Samples {
    /// Cross-validated balanced accuracy of nearest centroid on the cues
    /// `columns` (standardised on each training part).
    pub fn balanced_accuracy(&self, columns: &[usize]) -> f64 {
        let k = self.class_count;
        let mut hits = vec![0usize; k];
        let mut totals = vec![0usize; k];
        for fold in 0..FOLDS {
            let train: Vec<usize> = (0..self.classes.len()).filter(|&i| self.folds[i] != fold).collect();
            let Some(model) = Centroids::fit(self, &train, columns) else { continue };
            for i in (0..self.classes.len()).filter(|&i| self.folds[i] == fold) {
                totals[self.classes[i]] += 1;
                if model.predict(&self.features[i]) == self.classes[i] {
                    hits[self.classes[i]] += 1;
                }
            }
        }
        let recalls: Vec<f64> = (0..k).filter(|&c| totals[c] > 0).map(|c| hits[c] as f64 / totals[c] as f64).collect();
        recalls.iter().sum::<f64>() / recalls.len().max(1) as f64
    }

    /// The score above which balanced accuracy means a cue separates the
    /// classes: chance (1/K) plus `Z` standard errors of a chance classifier's
    /// balanced accuracy on these class sizes, and at least `MIN_GAP`.
    pub fn bar(&self) -> f64 {
        let k = self.class_count.max(1) as f64;
        let chance = 1.0 / k;
        let mut counts = vec![0usize; self.class_count];
        for &c in &self.classes {
            counts[c] += 1;
        }
        let variance: f64 =
            counts.iter().filter(|&&n| n > 0).map(|&n| chance * (1.0 - chance) / n as f64).sum::<f64>() / (k * k);
        chance + (Z * variance.sqrt()).max(MIN_GAP)
    }
}

/// Class means of standardised cues.
struct Centroids {
    columns: Vec<usize>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    centroids: Vec<Option<Vec<f64>>>,
}

impl Centroids {
    fn fit(s: &Samples, train: &[usize], columns: &[usize]) -> Option<Centroids> {
        if train.is_empty() {
            return None;
        }
        let n = train.len() as f64;
        let mean: Vec<f64> =
            columns.iter().map(|&c| train.iter().map(|&i| s.features[i][c]).sum::<f64>() / n).collect();
        let scale: Vec<f64> = columns
            .iter()
            .zip(&mean)
            .map(|(&c, m)| {
                let var = train.iter().map(|&i| (s.features[i][c] - m).powi(2)).sum::<f64>() / n;
                // A constant cue says nothing: it gets no weight.
                if var > 1e-12 {
                    1.0 / var.sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        let mut centroids = vec![None; s.class_count];
        for (class, centroid) in centroids.iter_mut().enumerate() {
            let members: Vec<usize> = train.iter().copied().filter(|&i| s.classes[i] == class).collect();
            if members.is_empty() {
                continue;
            }
            let z = |i: usize, j: usize| (s.features[i][columns[j]] - mean[j]) * scale[j];
            let m = members.len() as f64;
            *centroid = Some((0..columns.len()).map(|j| members.iter().map(|&i| z(i, j)).sum::<f64>() / m).collect());
        }
        Some(Centroids { columns: columns.to_vec(), mean, scale, centroids })
    }

    /// The nearest class; ties go to the lowest class index (so cues that
    /// say nothing score chance, never better).
    fn predict(&self, x: &[f64]) -> usize {
        let z: Vec<f64> =
            self.columns.iter().enumerate().map(|(j, &c)| (x[c] - self.mean[j]) * self.scale[j]).collect();
        let mut best = (f64::INFINITY, 0);
        for (class, centroid) in self.centroids.iter().enumerate() {
            let Some(c) = centroid else { continue };
            let d: f64 = c.iter().zip(&z).map(|(a, b)| (a - b).powi(2)).sum();
            if d < best.0 - 1e-12 {
                best = (d, class);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize, cue: impl Fn(usize, usize) -> f64) -> Samples {
        let mut s = Samples { class_count: 2, ..Default::default() };
        for i in 0..n {
            let class = i % 2;
            s.features.push(vec![cue(i, class), (i * 7 % 13) as f64, 5.0]);
            s.classes.push(class);
            s.folds.push((i / 2) % FOLDS);
        }
        s
    }

    #[test]
    fn a_separating_cue_scores_far_above_the_bar_and_noise_stays_under_it() {
        let leaky = samples(60, |_, class| 90.0 - 30.0 * class as f64);
        assert_eq!(leaky.balanced_accuracy(&[0]), 1.0);
        assert!(leaky.balanced_accuracy(&[0, 1, 2]) > leaky.bar());
        // Constant cues and cues unrelated to the class stay under the bar.
        assert!(leaky.balanced_accuracy(&[2]) <= 0.5);
        let clean = samples(60, |i, _| (i * 31 % 17) as f64);
        assert!(clean.balanced_accuracy(&[0, 1, 2]) < clean.bar(), "{}", clean.balanced_accuracy(&[0, 1, 2]));
        assert!((clean.bar() - (0.5 + 3.0 * (0.25f64 / 30.0 / 2.0).sqrt())).abs() < 1e-9);
    }
}
