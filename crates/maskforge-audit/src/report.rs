//! The audit's result: a table of cues per class, the probe's scores and a
//! verdict, as text for people and JSON for tools.

use crate::probe::{Samples, Score, FOLDS};
use crate::{Measured, CUE_NAMES};
use maskforge_imageio::Failure;
use serde::Serialize;
use std::collections::BTreeMap;

/// Fewest images a class needs for the probe to mean anything.
pub const MIN_PER_CLASS: usize = 10;

/// What the probe concluded.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// No cue but the label separates the classes better than chance allows.
    Clean,
    /// `cue` (or `all cues` together) separates them: a shortcut to learn.
    Leaky {
        /// The best-separating cue, or `all cues`.
        cue: String,
        /// Its cross-validated balanced accuracy.
        balanced_accuracy: f64,
    },
    /// Fewer than two classes, or a class under [`MIN_PER_CLASS`] images.
    TooFew {
        /// Which class count or class size fell short.
        reason: String,
    },
}

/// Per class: how its images are encoded and what their pixels look like.
#[derive(Clone, Debug, Serialize)]
pub struct ClassSummary {
    /// The class label.
    pub class: String,
    /// Images measured in the class.
    pub images: usize,
    /// Share of each format.
    pub formats: BTreeMap<String, f64>,
    /// Median estimated JPEG quality of its JPEGs (`None` without JPEGs).
    pub median_jpeg_quality: Option<f32>,
    /// Share of each chroma subsampling (JPEG only).
    pub subsampling: BTreeMap<String, f64>,
    /// Share of images with an EXIF block.
    pub exif_share: f64,
    /// Share of images with an ICC profile.
    pub icc_share: f64,
    /// Median width, pixels.
    pub median_width: u32,
    /// Median height, pixels.
    pub median_height: u32,
    /// Median file size per pixel, in bits: how hard the images are compressed.
    pub median_bits_per_pixel: f64,
    /// Mean of [`PixelCues::brightness`](crate::cues::PixelCues::brightness) (luma, 0–255).
    pub mean_brightness: f64,
    /// Median of [`PixelCues::sharpness`](crate::cues::PixelCues::sharpness).
    pub median_sharpness: f64,
    /// Median of [`PixelCues::noise`](crate::cues::PixelCues::noise).
    pub median_noise: f64,
}

/// An audit: the table, the probe's scores, the verdict, the skipped files.
#[derive(Clone, Debug, Serialize)]
pub struct Audit {
    /// One summary per class, in label order.
    pub classes: Vec<ClassSummary>,
    /// Balanced accuracy of the probe on all cues, then each cue, best first.
    pub scores: Vec<Score>,
    /// Balanced accuracy of guessing: 1 / the class count.
    pub chance: f64,
    /// Scores above this separate the classes.
    pub bar: f64,
    /// What the scores mean.
    pub verdict: Verdict,
    /// Files that could not be read or decoded, left out of everything.
    pub failures: Vec<Failure>,
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

fn shares<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v.to_string()).or_default() += 1;
    }
    let total = counts.values().sum::<usize>().max(1) as f64;
    counts.into_iter().map(|(k, n)| (k, n as f64 / total)).collect()
}

fn summarise(class: &str, m: &[&Measured]) -> ClassSummary {
    let n = m.len().max(1) as f64;
    let share = |f: &dyn Fn(&Measured) -> bool| m.iter().filter(|x| f(x)).count() as f64 / n;
    let bits = |x: &&Measured| x.file.bytes as f64 * 8.0 / (x.file.width as f64 * x.file.height as f64).max(1.0);
    ClassSummary {
        class: class.to_string(),
        images: m.len(),
        formats: shares(m.iter().map(|x| x.file.format.as_str())),
        median_jpeg_quality: median(m.iter().filter_map(|x| x.file.jpeg_quality).collect()),
        subsampling: shares(m.iter().filter_map(|x| x.file.subsampling.as_deref())),
        exif_share: share(&|x| x.file.exif),
        icc_share: share(&|x| x.file.icc),
        median_width: median(m.iter().map(|x| x.file.width).collect()).unwrap_or(0),
        median_height: median(m.iter().map(|x| x.file.height).collect()).unwrap_or(0),
        median_bits_per_pixel: median(m.iter().map(bits).collect()).unwrap_or(0.0),
        mean_brightness: m.iter().map(|x| x.pixels.brightness as f64).sum::<f64>() / n,
        median_sharpness: median(m.iter().map(|x| x.pixels.sharpness as f64).collect()).unwrap_or(0.0),
        median_noise: median(m.iter().map(|x| x.pixels.noise as f64).collect()).unwrap_or(0.0),
    }
}

impl Audit {
    /// Summarises and probes the measured images.
    pub fn new(measured: Vec<Measured>, failures: Vec<Failure>) -> Audit {
        let mut by_class: BTreeMap<&str, Vec<&Measured>> = BTreeMap::new();
        for m in &measured {
            by_class.entry(m.item.class.as_str()).or_default().push(m);
        }
        let classes: Vec<ClassSummary> = by_class.iter().map(|(c, m)| summarise(c, m)).collect();
        let index: BTreeMap<&str, usize> = by_class.keys().enumerate().map(|(i, c)| (*c, i)).collect();
        let samples = Samples {
            features: measured.iter().map(Measured::features).collect(),
            classes: measured.iter().map(|m| index[m.item.class.as_str()]).collect(),
            folds: measured
                .iter()
                .map(|m| (maskforge_rng::stable_hash(m.item.group.as_bytes()) % FOLDS as u64) as usize)
                .collect(),
            class_count: by_class.len(),
        };
        let chance = 1.0 / by_class.len().max(1) as f64;
        let bar = samples.bar();
        let too_few = if by_class.len() < 2 {
            Some(format!("{} class(es): an audit needs two or more", by_class.len()))
        } else {
            classes.iter().find(|c| c.images < MIN_PER_CLASS).map(|c| {
                format!("class {} has {} images: the probe needs at least {MIN_PER_CLASS} a class", c.class, c.images)
            })
        };
        let scores = match too_few {
            Some(_) => Vec::new(),
            None => probe_scores(&samples),
        };
        let verdict = match too_few {
            Some(reason) => Verdict::TooFew { reason },
            None => leak(&scores, bar).unwrap_or(Verdict::Clean),
        };
        Audit { classes, scores, chance, bar, verdict, failures }
    }

    /// Whether a cue other than the label separates the classes.
    pub fn is_leaky(&self) -> bool {
        matches!(self.verdict, Verdict::Leaky { .. })
    }

    /// The report for people: a table per cue and class, the probe, the verdict.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let row = |name: &str, f: &dyn Fn(&ClassSummary) -> String| {
            let cells: Vec<String> = self.classes.iter().map(|c| format!("{:>16}", f(c))).collect();
            format!("{name:<20}{}\n", cells.join(""))
        };
        let fmt_shares = |m: &BTreeMap<String, f64>| {
            m.iter().map(|(k, v)| format!("{k} {:.0}%", v * 100.0)).collect::<Vec<_>>().join(", ")
        };
        t += &row("class", &|c| c.class.clone());
        t += &row("images", &|c| c.images.to_string());
        t += &row("format", &|c| fmt_shares(&c.formats));
        t += &row("JPEG quality", &|c| c.median_jpeg_quality.map_or("-".into(), |q| format!("{q:.0}")));
        t += &row("subsampling", &|c| fmt_shares(&c.subsampling));
        t += &row("EXIF", &|c| format!("{:.0}%", c.exif_share * 100.0));
        t += &row("ICC", &|c| format!("{:.0}%", c.icc_share * 100.0));
        t += &row("size (median)", &|c| format!("{}x{}", c.median_width, c.median_height));
        t += &row("bits/pixel", &|c| format!("{:.2}", c.median_bits_per_pixel));
        t += &row("brightness", &|c| format!("{:.1}", c.mean_brightness));
        t += &row("sharpness", &|c| format!("{:.2}", c.median_sharpness));
        t += &row("noise", &|c| format!("{:.2}", c.median_noise));
        t += &format!(
            "\nprobe: nearest centroid on the cues, {FOLDS}-fold by source, balanced accuracy \
             (chance {:.2}, separating above {:.2}):\n",
            self.chance, self.bar
        );
        for s in self.scores.iter().take(5) {
            t += &format!("  {:<14}{:.2}\n", s.cue, s.balanced_accuracy);
        }
        t += &format!("verdict: {}\n", self.verdict_line());
        t
    }

    /// The verdict in one line.
    pub fn verdict_line(&self) -> String {
        match &self.verdict {
            Verdict::Clean => "clean: no cue but the label tells the classes apart".into(),
            Verdict::Leaky { cue, balanced_accuracy } => format!(
                "LEAKY: {cue} tell(s) the classes apart (balanced accuracy {balanced_accuracy:.2}, chance {:.2}); \
                 a model can learn it instead of the label",
                self.chance
            ),
            Verdict::TooFew { reason } => format!("not probed: {reason}"),
        }
    }
}

/// The cues that separate the classes: the single cues with the best score
/// when it is over the bar (named together when they tie), else all cues
/// together when they are; `None` when nothing is.
fn leak(scores: &[Score], bar: f64) -> Option<Verdict> {
    let single = scores.iter().filter(|s| s.cue != ALL_CUES);
    let best = single.clone().map(|s| s.balanced_accuracy).fold(f64::NEG_INFINITY, f64::max);
    if best > bar {
        let names: Vec<&str> = single.filter(|s| s.balanced_accuracy == best).map(|s| s.cue.as_str()).collect();
        return Some(Verdict::Leaky { cue: names.join(", "), balanced_accuracy: best });
    }
    let all = scores.iter().find(|s| s.cue == ALL_CUES)?;
    (all.balanced_accuracy > bar)
        .then(|| Verdict::Leaky { cue: "all cues together".into(), balanced_accuracy: all.balanced_accuracy })
}

const ALL_CUES: &str = "all cues";

/// The probe on all cues and on each alone, best first.
fn probe_scores(samples: &Samples) -> Vec<Score> {
    let all: Vec<usize> = (0..CUE_NAMES.len()).collect();
    let mut scores = vec![Score { cue: ALL_CUES.into(), balanced_accuracy: samples.balanced_accuracy(&all) }];
    for (i, name) in CUE_NAMES.iter().enumerate() {
        scores.push(Score { cue: name.to_string(), balanced_accuracy: samples.balanced_accuracy(&[i]) });
    }
    scores.sort_by(|a, b| b.balanced_accuracy.total_cmp(&a.balanced_accuracy).then(a.cue.cmp(&b.cue)));
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(cue: &str, balanced_accuracy: f64) -> Score {
        Score { cue: cue.into(), balanced_accuracy }
    }

    #[test]
    fn the_verdict_names_the_separating_cues() {
        let tied = [score(ALL_CUES, 1.0), score("jpeg_quality", 1.0), score("subsampling", 1.0), score("noise", 0.5)];
        let v = leak(&tied, 0.7).unwrap();
        assert_eq!(v, Verdict::Leaky { cue: "jpeg_quality, subsampling".into(), balanced_accuracy: 1.0 });
        let together = [score(ALL_CUES, 0.9), score("width", 0.6)];
        assert_eq!(
            leak(&together, 0.7).unwrap(),
            Verdict::Leaky { cue: "all cues together".into(), balanced_accuracy: 0.9 }
        );
        assert_eq!(leak(&[score(ALL_CUES, 0.5), score("width", 0.6)], 0.7), None);
    }
}
