//! Evaluation results and what is written from them, tensor-free: one
//! [`Prediction`] per image, the [`EvalOutcome`] of a pass (the tch adapter
//! computes both), `maskforge eval`'s options and `predictions.csv`.

use crate::data::Item;
use crate::error::{Result, TrainError};
use maskforge_metrics::ConfusionMatrix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Test-time augmentation of `eval` and `predict` (`--tta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tta {
    /// Each image once.
    #[default]
    None,
    /// Each image and its mirror image; their logits are averaged. The
    /// training augmentations flip faces, so a model has seen both.
    Flip,
}

impl Tta {
    /// Its name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Tta::None => "none",
            Tta::Flip => "flip",
        }
    }
}

impl std::str::FromStr for Tta {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Tta::None),
            "flip" => Ok(Tta::Flip),
            _ => Err(format!("unknown test-time augmentation {s:?}: expected none or flip")),
        }
    }
}

/// One evaluated image.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// The image's index in the evaluated dataset.
    pub index: usize,
    /// Its true class index.
    pub label: usize,
    /// The class index with the highest probability.
    pub predicted: usize,
    /// Probability of each class, by index (sums to 1).
    pub probabilities: Vec<f32>,
}

/// The result of an evaluation pass.
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    /// Mean loss over the images (weighted as the criterion says).
    pub loss: f64,
    /// True (rows) against predicted (columns) classes.
    pub confusion: ConfusionMatrix,
    /// Images evaluated (failures excluded).
    pub images: usize,
    /// Images that could not be loaded: (dataset index, reason).
    pub failures: Vec<(usize, String)>,
    /// One per image evaluated, in dataset order.
    pub predictions: Vec<Prediction>,
}

/// `maskforge eval` options.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The checkpoints evaluated (`best.safetensors` or `last.safetensors`):
    /// one, or several as an ensemble (the mean of their probabilities).
    pub models: Vec<PathBuf>,
    /// The manifest of the images to evaluate.
    pub manifest: PathBuf,
    /// Dataset root; `None`: `split.json` beside the manifest.
    pub root: Option<PathBuf>,
    /// Images per batch.
    pub batch_size: usize,
    /// Decoding threads; 0: all cores.
    pub workers: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Images with more pixels are skipped (and reported).
    pub max_pixels: u64,
    /// Test-time augmentation.
    pub tta: Tta,
}

impl EvalOptions {
    /// The manifest's folder (`.` for a bare file name): where its
    /// `split.json` and `classes.csv` are looked for.
    pub fn manifest_dir(&self) -> &Path {
        self.manifest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// Where `eval` writes without `--out`: `MODEL_DIR/eval-MANIFEST`, after
    /// the manifest's file stem; for an ensemble `DIR/eval-ensemble-MANIFEST`
    /// in the deepest folder that holds every model (`runs/` for
    /// `runs/a/best.safetensors` and `runs/b/best.safetensors`).
    pub fn default_out(&self) -> PathBuf {
        let stem =
            self.manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
        let dir = |m: &PathBuf| m.parent().unwrap_or(Path::new("")).to_path_buf();
        match self.models.as_slice() {
            [one] => nonempty(dir(one)).join(format!("eval-{stem}")),
            many => {
                let mut common = many.first().map(dir).unwrap_or_default();
                for m in many {
                    while !dir(m).starts_with(&common) {
                        common = common.parent().map(Path::to_path_buf).unwrap_or_default();
                    }
                }
                nonempty(common).join(format!("eval-ensemble-{stem}"))
            }
        }
    }
}

/// `.` for an empty path (a bare file name's folder).
fn nonempty(p: PathBuf) -> PathBuf {
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p
    }
}

/// The outcome of an ensemble: the mean of the members' probabilities for
/// every image that all of them evaluated (in dataset order), the class
/// with the highest mean (the first on a tie, as `argmax`), and as loss the
/// negative log of the mean probability of the true class (what both
/// losses are per image), weighted by `class_weights` as the criterion
/// weighs a single model's. An image any member failed to load counts as a
/// failure, with that member's reason.
pub fn combine(members: Vec<EvalOutcome>, class_weights: Option<&[f32]>, n_classes: usize) -> Result<EvalOutcome> {
    let n = members.len();
    let mut members = members.into_iter();
    let Some(first) = members.next() else {
        return Err(TrainError::Config("an ensemble needs at least one model".into()));
    };
    if n == 1 {
        return Ok(first);
    }
    // The first reason given for an image, in dataset order.
    let mut failures: BTreeMap<usize, String> = first.failures.into_iter().collect();
    let mut sums: BTreeMap<usize, (usize, Vec<f32>, usize)> =
        first.predictions.into_iter().map(|p| (p.index, (p.label, p.probabilities, 1))).collect();
    for m in members {
        for (index, reason) in m.failures {
            failures.entry(index).or_insert(reason);
        }
        for p in m.predictions {
            if let Some((_, acc, seen)) = sums.get_mut(&p.index) {
                acc.iter_mut().zip(&p.probabilities).for_each(|(a, b)| *a += b);
                *seen += 1;
            }
        }
    }
    let mut confusion = ConfusionMatrix::new(n_classes);
    let (mut loss_sum, mut weight_sum) = (0.0f64, 0.0f64);
    let mut predictions = Vec::with_capacity(sums.len());
    for (index, (label, mut probabilities, seen)) in sums {
        // Left out by a member: it failed there.
        if seen != n {
            continue;
        }
        probabilities.iter_mut().for_each(|v| *v /= n as f32);
        let predicted = argmax(&probabilities);
        confusion.add(label, predicted).map_err(|e| TrainError::Config(e.to_string()))?;
        let weight = class_weights.and_then(|w| w.get(label)).copied().unwrap_or(1.0) as f64;
        let p_true = probabilities.get(label).copied().unwrap_or(0.0) as f64;
        loss_sum += weight * -p_true.max(f64::MIN_POSITIVE).ln();
        weight_sum += weight;
        predictions.push(Prediction { index, label, predicted, probabilities });
    }
    let loss = if weight_sum > 0.0 { loss_sum / weight_sum } else { f64::NAN };
    let failures = failures.into_iter().collect();
    Ok(EvalOutcome { loss, confusion, images: predictions.len(), failures, predictions })
}

/// The index of the highest value, the first of equals.
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// When the manifest's folder has a `classes.csv`, its names must be the
/// model's, index for index: otherwise the numbers would silently compare
/// different classes.
pub fn check_class_names(manifest: &Path, model_classes: &[String], dir: &Path) -> Result<()> {
    let path = dir.join("classes.csv");
    if !path.is_file() {
        return Ok(());
    }
    let classes = crate::manifest::read_classes(&path)?;
    if classes != model_classes {
        return Err(TrainError::manifest(
            manifest,
            format!(
                "classes.csv beside it lists [{}], the model was trained on [{}]",
                classes.join(", "),
                model_classes.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Writes `predictions.csv`: path, true class, predicted class, confidence
/// and the probability of every class.
pub fn write_predictions_csv(path: &Path, classes: &[String], preds: &[(Item, Prediction)]) -> Result<()> {
    let err = |e: csv::Error| TrainError::Config(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header =
        vec!["path".to_string(), "class".into(), "predicted".into(), "confidence".into(), "correct".into()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header).map_err(err)?;
    for (item, p) in preds {
        let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
        let confidence = p.probabilities.get(p.predicted).copied().unwrap_or(f32::NAN);
        let mut row = vec![
            item.rel.clone(),
            name(p.label),
            name(p.predicted),
            format!("{confidence:.6}"),
            (p.label == p.predicted).to_string(),
        ];
        row.extend(p.probabilities.iter().map(|v| format!("{v:.6}")));
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| TrainError::Config(e.to_string()))?;
    maskforge_imageio::write_atomic(path, &bytes).map_err(TrainError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tta_is_named_on_the_command_line_and_in_reports_alike() {
        for t in [Tta::None, Tta::Flip] {
            assert_eq!(t.as_str().parse::<Tta>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.as_str()));
        }
        assert_eq!(" FLIP ".parse::<Tta>().unwrap(), Tta::Flip);
        let err = "mirror".parse::<Tta>().unwrap_err();
        assert!(err.contains("\"mirror\"") && err.contains("none or flip"), "{err}");
        assert_eq!(Tta::default(), Tta::None);
    }

    fn outcome(preds: &[(usize, usize, [f32; 2])], failures: &[usize]) -> EvalOutcome {
        let predictions: Vec<Prediction> = preds
            .iter()
            .map(|&(index, label, p)| Prediction { index, label, predicted: argmax(&p), probabilities: p.to_vec() })
            .collect();
        let failures = failures.iter().map(|&i| (i, format!("bad {i}"))).collect();
        EvalOutcome { loss: 9.0, confusion: ConfusionMatrix::new(2), images: predictions.len(), failures, predictions }
    }

    #[test]
    fn an_ensemble_outcome_is_the_mean_of_its_members_probabilities() {
        // Image 0: the members disagree and the mean sides with the surer one;
        // image 2 failed to load for the second member only: left out.
        let a = outcome(&[(0, 0, [0.9, 0.1]), (1, 1, [0.4, 0.6]), (2, 0, [0.7, 0.3])], &[]);
        let b = outcome(&[(0, 0, [0.3, 0.7]), (1, 1, [0.2, 0.8])], &[2]);
        let both = combine(vec![a.clone(), b], Some(&[1.0, 3.0]), 2).unwrap();
        assert_eq!(both.images, 2);
        assert_eq!(both.failures, vec![(2, "bad 2".to_string())]);
        let got: Vec<(usize, usize)> = both.predictions.iter().map(|p| (p.index, p.predicted)).collect();
        assert_eq!(got, vec![(0, 0), (1, 1)]);
        for (p, want) in both.predictions.iter().zip([[0.6f32, 0.4], [0.3, 0.7]]) {
            assert!(p.probabilities.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{p:?}");
        }
        assert_eq!(both.confusion.get(0, 0) + both.confusion.get(1, 1), 2);
        // −ln p̄(true class), weighted 1 and 3 by class.
        let want = (-(0.6f64.ln()) * 1.0 + -(0.7f64.ln()) * 3.0) / 4.0;
        assert!((both.loss - want).abs() < 1e-6, "{} vs {want}", both.loss);
        // One member: its own outcome, loss included.
        assert_eq!(combine(vec![a], None, 2).unwrap().loss, 9.0);
        assert!(combine(Vec::new(), None, 2).is_err());
    }

    #[test]
    fn an_ensemble_reports_beside_its_models() {
        let opts = |models: &[&str]| EvalOptions {
            models: models.iter().map(PathBuf::from).collect(),
            manifest: PathBuf::from("manifests/val.csv"),
            root: None,
            batch_size: 8,
            workers: 1,
            device: "cpu".into(),
            max_pixels: 1,
            tta: Tta::None,
        };
        assert_eq!(opts(&["runs/a/best.safetensors"]).default_out(), PathBuf::from("runs/a/eval-val"));
        assert_eq!(opts(&["best.safetensors"]).default_out(), PathBuf::from("./eval-val"));
        let two = opts(&["runs/a/best.safetensors", "runs/b/c/best.safetensors"]);
        assert_eq!(two.default_out(), PathBuf::from("runs/eval-ensemble-val"));
        let apart = opts(&["x/best.safetensors", "y/best.safetensors"]);
        assert_eq!(apart.default_out(), PathBuf::from("./eval-ensemble-val"));
    }
}
