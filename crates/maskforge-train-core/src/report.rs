//! `report.json` and `report.txt`: per-class precision, recall, F1 and
//! support, macro and weighted averages and the confusion matrix, in the
//! layout of seed 001's report, headed by the loss and what was evaluated.

use crate::error::{Result, TrainError};
use crate::eval::{EvalOutcome, Tta};
use maskforge_imageio::{write_atomic, Failure};
use maskforge_metrics::ClassificationReport;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Decimals in `report.txt` (sklearn's default is 2; 4 shows the
/// differences small validation sets make).
pub const DIGITS: usize = 4;

/// `report.{txt,json}` of `maskforge eval` (and of a run's final test).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The checkpoint evaluated, as given (an ensemble's first).
    pub model: String,
    /// An ensemble's checkpoints, in the order given; empty for one model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<String>,
    /// The manifest evaluated, as given.
    pub manifest: String,
    /// `val`, `test`, ... (the manifest's name).
    pub split: String,
    /// Epoch of the checkpoint evaluated.
    pub epoch: Option<usize>,
    /// The device it ran on (`cpu`, `cuda:0`...).
    pub device: String,
    /// Test-time augmentation (reports written before it existed: none).
    #[serde(default)]
    pub tta: Tta,
    /// Images evaluated.
    pub images: usize,
    /// Rows and images left out (the length of `skipped_files`).
    pub skipped: usize,
    /// Mean loss over the images evaluated.
    pub loss: f64,
    /// Fraction of the images evaluated classified right.
    pub accuracy: f64,
    /// Per-class precision, recall, F1, averages and the confusion matrix.
    pub classification: ClassificationReport,
    /// Rows and images left out, with reasons.
    pub skipped_files: Vec<Failure>,
}

impl EvalReport {
    /// The report of `outcome`, the pass of the checkpoint `model` (its
    /// `epoch`) over `manifest` on `device`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &Path,
        manifest: &Path,
        split: &str,
        epoch: Option<usize>,
        classes: &[String],
        outcome: &EvalOutcome,
        skipped: Vec<Failure>,
        device: &str,
    ) -> Self {
        let classification = ClassificationReport::new(&outcome.confusion, classes);
        EvalReport {
            model: model.display().to_string(),
            ensemble: Vec::new(),
            manifest: manifest.display().to_string(),
            split: split.to_string(),
            epoch,
            device: device.to_string(),
            tta: Tta::None,
            images: outcome.images,
            skipped: skipped.len(),
            loss: outcome.loss,
            accuracy: classification.accuracy,
            classification,
            skipped_files: skipped,
        }
    }

    /// `report.txt`: the header lines, the classification report in
    /// scikit-learn's layout, the confusion matrix and the skipped files.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if self.ensemble.is_empty() {
            let epoch = self.epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
            let _ = writeln!(s, "model:    {}{epoch}", self.model);
        } else {
            let _ = writeln!(s, "models:   {} (ensemble: mean of their probabilities)", self.ensemble.join(", "));
        }
        let _ = writeln!(s, "manifest: {} ({})", self.manifest, self.split);
        let _ = writeln!(s, "images:   {} evaluated, {} skipped", self.images, self.skipped);
        if self.tta != Tta::None {
            let _ = writeln!(s, "tta:      {} (logits of each image and its mirror image averaged)", self.tta.as_str());
        }
        let _ = writeln!(s, "loss:     {:.4}", self.loss);
        let _ = writeln!(s, "accuracy: {:.4}", self.accuracy);
        s.push('\n');
        s.push_str(&self.classification.to_text(DIGITS));
        s.push('\n');
        s.push_str("confusion matrix (rows: true class, columns: predicted)\n");
        s.push_str(&self.classification.confusion_text());
        if !self.skipped_files.is_empty() {
            let _ = writeln!(s, "\nskipped ({}):", self.skipped_files.len());
            for f in &self.skipped_files {
                let _ = writeln!(s, "  {}: {}", f.path, f.reason);
            }
        }
        s
    }

    /// Writes `report.json` and `report.txt` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json_path = dir.join("report.json");
        let mut json = serde_json::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))?;
        json.push('\n');
        write_atomic(&json_path, json.as_bytes()).map_err(TrainError::io(&json_path))?;
        let txt_path = dir.join("report.txt");
        write_atomic(&txt_path, self.to_text().as_bytes()).map_err(TrainError::io(&txt_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_metrics::ConfusionMatrix;

    fn report() -> EvalReport {
        let mut confusion = ConfusionMatrix::new(2);
        confusion.add(0, 0).unwrap();
        confusion.add(1, 0).unwrap();
        let outcome = EvalOutcome { loss: 0.5, confusion, images: 2, failures: Vec::new(), predictions: Vec::new() };
        let classes = ["masked".to_string(), "unmasked".to_string()];
        EvalReport::new(
            Path::new("m.safetensors"),
            Path::new("val.csv"),
            "val",
            Some(3),
            &classes,
            &outcome,
            Vec::new(),
            "cpu",
        )
    }

    #[test]
    fn test_time_augmentation_is_reported_and_older_reports_read_as_none() {
        let mut r = report();
        assert!(!r.to_text().contains("tta:"), "{}", r.to_text());
        r.tta = Tta::Flip;
        assert!(r.to_text().contains("tta:      flip"), "{}", r.to_text());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["tta"], "flip");
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("tta");
        let read: EvalReport = serde_json::from_value(old).unwrap();
        assert_eq!(read.tta, Tta::None);
        assert_eq!(serde_json::from_value::<EvalReport>(json).unwrap(), r);
    }

    #[test]
    fn an_ensemble_lists_its_models_and_one_model_reads_as_before() {
        let mut r = report();
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("ensemble").is_none(), "{json}");
        assert!(r.to_text().starts_with("model:    m.safetensors (epoch 3)\n"), "{}", r.to_text());
        r.ensemble = vec!["a/best.safetensors".into(), "b/best.safetensors".into()];
        r.epoch = None;
        let text = r.to_text();
        assert!(text.starts_with("models:   a/best.safetensors, b/best.safetensors (ensemble"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["ensemble"][1], "b/best.safetensors");
        assert_eq!(serde_json::from_value::<EvalReport>(json).unwrap(), r);
    }
}
