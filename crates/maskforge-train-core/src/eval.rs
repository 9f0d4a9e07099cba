//! Evaluation results and what is written from them, tensor-free: one
//! [`Prediction`] per image, the [`EvalOutcome`] of a pass (the tch adapter
//! computes both), `maskforge eval`'s options and `predictions.csv`.

use crate::data::Item;
use crate::error::{Result, TrainError};
use maskforge_metrics::ConfusionMatrix;
use serde::{Deserialize, Serialize};
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
    /// The checkpoint evaluated (`best.safetensors` or `last.safetensors`).
    pub model: PathBuf,
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
    /// the manifest's file stem.
    pub fn default_out(&self) -> PathBuf {
        let stem =
            self.manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
        self.model.parent().unwrap_or(Path::new(".")).join(format!("eval-{stem}"))
    }
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
}
